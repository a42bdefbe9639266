"""Point-cloud pictures: round splats through the mesh renderer's :class:`~.render.Camera`.

Each point is a disc of ``radius_px`` pixels; per pixel the nearest point wins (one
``np.minimum.at`` depth test over all splat pixels at once). Colour runs from ``near`` to
``far`` with depth, so the shape reads in 3-D without lighting.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb

from isofield.errors import InputError
from isofield.viz.render import Camera, bounding_sphere

NEAR_COLOR = (0.12, 0.30, 0.62)
FAR_COLOR = (0.62, 0.78, 0.95)


def camera_for(clouds: list[np.ndarray], resolution: tuple[int, int], view: tuple[float, float],
               up: str = "y") -> Camera:
    """One camera framing every cloud (N_i, 3) of ``clouds`` (empty ones are ignored)."""
    present = [c for c in clouds if len(c)]
    points = np.concatenate(present) if present else np.zeros((1, 3))
    center, radius = bounding_sphere(points)
    return Camera.looking_at(center, radius, resolution, view, up=up)


def render_points(points: np.ndarray, camera: Camera, radius_px: float = 1.5,
                  background: object = "white") -> np.ndarray:
    """Picture (H, W, 3) uint8 of points (N, 3) seen by ``camera``."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"render_points: points must have shape (N, 3), got {points.shape}")
    image = np.empty((camera.height, camera.width, 3))
    image[:] = to_rgb(background)
    points = points[np.isfinite(points).all(axis=1)]
    pixels, depth = camera.project(points)
    visible = depth > 0
    pixels, depth = pixels[visible], depth[visible]
    if not len(depth):
        return _to_uint8(image)
    offsets = _disc(radius_px)                                           # (K, 2)
    columns = (np.floor(pixels[:, None, 0]) + offsets[None, :, 0]).astype(np.int64).ravel()
    rows = (np.floor(pixels[:, None, 1]) + offsets[None, :, 1]).astype(np.int64).ravel()
    owner = np.repeat(np.arange(len(depth)), len(offsets))
    inside = (columns >= 0) & (columns < camera.width) & (rows >= 0) & (rows < camera.height)
    flat = rows[inside] * camera.width + columns[inside]
    owner = owner[inside]
    nearest = np.full(camera.height * camera.width, np.inf)
    np.minimum.at(nearest, flat, depth[owner])
    winner = depth[owner] == nearest[flat]
    shade = _depth_shade(depth)
    colors = (1 - shade)[:, None] * np.array(NEAR_COLOR) + shade[:, None] * np.array(FAR_COLOR)
    image.reshape(-1, 3)[flat[winner]] = colors[owner[winner]]
    return _to_uint8(image)


def _disc(radius_px: float) -> np.ndarray:
    """Integer pixel offsets (K, 2) of a disc of the given radius (at least the centre pixel)."""
    reach = int(np.ceil(radius_px))
    grid = np.stack(np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1)), -1).reshape(-1, 2)
    return grid[(grid ** 2).sum(axis=1) <= max(radius_px, 0.5) ** 2]


def _depth_shade(depth: np.ndarray) -> np.ndarray:
    """Depths (N,) mapped to [0, 1], nearest 0."""
    low, high = depth.min(), depth.max()
    return np.zeros_like(depth) if high <= low else (depth - low) / (high - low)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
