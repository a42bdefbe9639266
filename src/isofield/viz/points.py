"""Point-cloud pictures: round splats through the mesh renderer's :class:`~.render.Camera`.

Each point is a disc of ``radius_px`` pixels; per pixel the nearest point wins (one
``np.minimum.at`` depth test over all splat pixels at once). Colour runs from ``near`` to
``far`` with depth, so the shape reads in 3-D without lighting, unless the caller gives one
colour per point (e.g. :func:`normal_colors`: a normal (x, y, z) shows as RGB ((x, y, z) + 1) / 2).
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.geometry.raster import Camera, bounding_sphere

NEAR_COLOR = (0.12, 0.30, 0.62)
FAR_COLOR = (0.62, 0.78, 0.95)
_SPACING_QUERIES = 20_000
_SPACING_NEIGHBOURS = 8


def camera_for(clouds: list[np.ndarray], resolution: tuple[int, int], view: tuple[float, float],
               up: str = "y", margin: float = 1.05) -> Camera:
    """One camera framing every cloud (N_i, 3) of ``clouds`` (empty ones are ignored), with
    ``margin`` as in :meth:`Camera.looking_at`."""
    present = [c for c in clouds if len(c)]
    points = np.concatenate(present) if present else np.zeros((1, 3))
    center, radius = bounding_sphere(points)
    return Camera.looking_at(center, radius, resolution, view, up=up, margin=margin)


def cloud_picture(points: np.ndarray, resolution: tuple[int, int], view: tuple[float, float],
                  colors: np.ndarray | None = None) -> np.ndarray:
    """Picture (H, W, 3) uint8 of a point cloud (N, 3) as a closed surface: splats of
    :func:`splat_radius`, with ``occlusion``, framed with room for the splats at the border;
    ``colors`` (N, 3) as in :func:`render_points`."""
    camera = camera_for([points], resolution, view)
    radius = splat_radius(points, camera)
    half = 0.5 * min(camera.width, camera.height)
    margin = 1.05 * half / max(half - 2 * radius, 0.5 * half)   # the large splats reach 2 radii out
    camera = camera_for([points], resolution, view, margin=margin)
    return render_points(points, camera, splat_radius(points, camera), colors=colors, occlusion=True)


def render_points(points: np.ndarray, camera: Camera, radius_px: float = 1.5,
                  background: object = "white", colors: np.ndarray | None = None,
                  occlusion: bool = False) -> np.ndarray:
    """Picture (H, W, 3) uint8 of points (N, 3) seen by ``camera``; ``colors`` (N, 3) floats in
    [0, 1] colour each point (default: by depth, from ``NEAR_COLOR`` to ``FAR_COLOR``).

    ``occlusion``: the points behind the surface that nearer points sample do not show through
    the gaps between its splats. Splats of twice the radius make a closed front layer; a pixel
    shows its nearest radius-sized splat where that lies on the front layer (within the large
    splat's size in world units), else the front layer's point; depth colours then span the
    depths of the points shown."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"render_points: points must have shape (N, 3), got {points.shape}")
    if colors is not None and np.shape(colors) != points.shape:
        raise InputError(f"render_points: colors must have shape {points.shape}, got {np.shape(colors)}")
    image = np.empty((camera.height * camera.width, 3))
    image[:] = to_rgb(background)
    finite = np.isfinite(points).all(axis=1)
    pixels, depth = camera.project(points[finite])
    visible = depth > 0
    pixels, depth = pixels[visible], depth[visible]
    if not len(depth):
        return _to_uint8(image.reshape(camera.height, camera.width, 3))
    nearest, shown = _z_buffer(pixels, depth, radius_px, camera)
    if occlusion:
        front, cover = _z_buffer(pixels, depth, 2 * radius_px, camera)
        behind = ~(nearest <= front + 2 * radius_px * _pixel_size(front, camera))
        shown = np.where(behind, cover, shown)
    drawn = shown >= 0
    if not drawn.any():
        return _to_uint8(image.reshape(camera.height, camera.width, 3))
    if colors is None:
        ranged = depth[shown[drawn]] if occlusion else depth
        low, high = ranged.min(), ranged.max()
        shade = np.zeros_like(depth) if high <= low else np.clip((depth - low) / (high - low), 0, 1)
        colors = (1 - shade)[:, None] * np.array(NEAR_COLOR) + shade[:, None] * np.array(FAR_COLOR)
    else:
        colors = np.asarray(colors, dtype=np.float64)[finite][visible]
    image[drawn] = colors[shown[drawn]]
    return _to_uint8(image.reshape(camera.height, camera.width, 3))


def _z_buffer(pixels: np.ndarray, depth: np.ndarray, radius_px: float,
              camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel (H * W,): the depth of the nearest disc of ``radius_px`` around the projected
    points (P, 2) at depths (P,) (inf where none) and its point's index (-1 where none)."""
    flat, owner = _splat_pixels(pixels, radius_px, camera)
    nearest = np.full(camera.height * camera.width, np.inf)
    np.minimum.at(nearest, flat, depth[owner])
    winner = depth[owner] == nearest[flat]
    index = np.full(camera.height * camera.width, -1, dtype=np.int64)
    index[flat[winner]] = owner[winner]
    return nearest, index


def _splat_pixels(pixels: np.ndarray, radius_px: float, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices (F,) ``row * width + column`` of the discs around ``pixels`` (P, 2)
    inside the picture, and the index (F,) of the point each belongs to."""
    offsets = _disc(radius_px)                                           # (K, 2)
    columns = (np.floor(pixels[:, None, 0]) + offsets[None, :, 0]).astype(np.int64).ravel()
    rows = (np.floor(pixels[:, None, 1]) + offsets[None, :, 1]).astype(np.int64).ravel()
    owner = np.repeat(np.arange(len(pixels)), len(offsets))
    inside = (columns >= 0) & (columns < camera.width) & (rows >= 0) & (rows < camera.height)
    return rows[inside] * camera.width + columns[inside], owner[inside]


def _pixel_size(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """World size (P,) of one pixel at camera depths (P,)."""
    half = 0.5 * min(camera.width, camera.height) * camera.scale
    return depth / half if camera.projection == "perspective" else np.full_like(depth, 1.0 / half)


def normal_colors(normals: np.ndarray) -> np.ndarray:
    """Colours (N, 3) in [0, 1] of unit normals (N, 3): RGB = (normal + 1) / 2, so +x is red,
    +y green, +z blue (the usual normal-map colours)."""
    return np.clip((np.asarray(normals, dtype=np.float64) + 1.0) / 2.0, 0.0, 1.0)


def splat_radius(points: np.ndarray, camera: Camera, limits: tuple[float, float] = (1.0, 16.0)) -> float:
    """A splat radius in pixels that covers the surface sampled by points (N, 3) seen by
    ``camera``, so that points behind it do not show through: discs of radius R around random
    points of density rho leave exp(-rho pi R^2) uncovered; with rho = k / (pi r_k^2) from the
    median distance r_k to the k-th neighbour (k = ``_SPACING_NEIGHBOURS``, of at most
    ``_SPACING_QUERIES`` points), R = r_k sqrt(4 / k) leaves about 2%. In pixels at the centre
    of the points' bounding sphere, within ``limits``."""
    points = np.asarray(points, dtype=np.float64)
    points = points[np.isfinite(points).all(axis=1)]
    k = min(_SPACING_NEIGHBOURS, len(points) - 1)
    if k < 1:
        return limits[0]
    queries = points[:: max(1, len(points) // _SPACING_QUERIES)]
    spacing = float(np.median(cKDTree(points).query(queries, k=k + 1)[0][:, k]))
    radius = max(spacing * np.sqrt(4.0 / k), 1e-12)
    center, _ = bounding_sphere(points)
    pixels, _ = camera.project(np.stack([center, center + radius * camera.right]))
    return float(np.clip(np.linalg.norm(pixels[1] - pixels[0]), *limits))


def _disc(radius_px: float) -> np.ndarray:
    """Integer pixel offsets (K, 2) of a disc of the given radius (at least the centre pixel)."""
    reach = int(np.ceil(radius_px))
    grid = np.stack(np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1)), -1).reshape(-1, 2)
    return grid[(grid ** 2).sum(axis=1) <= max(radius_px, 0.5) ** 2]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
