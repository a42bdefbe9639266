"""Software mesh rendering on the NumPy z-buffer of :mod:`isofield.geometry.raster` (no OpenGL,
no display).

Pipeline: a :class:`~isofield.geometry.raster.Camera` looks at the mesh's bounding sphere from
``view = (azimuth, elevation)`` degrees; :func:`~isofield.geometry.raster.rasterize` keeps, per
pixel, the nearest triangle covering the pixel centre; :func:`shade` lights the visible surface
(ambient + Lambert key light + headlight fill + a little specular, two-sided so that flipped
faces still show).

Conventions: a resolution is ``(width, height)`` in pixels; images are ``(H, W, 3)`` uint8 with
row 0 at the top; colours are anything matplotlib understands (``"white"``, ``"#b0c4de"``,
``(r, g, b)`` in [0, 1]).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import trimesh
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw, ImageFont

from isofield.errors import InputError
from isofield.files import atomic_path
from isofield.geometry.raster import DEFAULT_VIEW, Camera, Raster, bounding_sphere, rasterize

DEFAULT_COLOR = (0.70, 0.75, 0.85)
DEFAULT_VIEWS = ((30.0, 20.0), (120.0, 20.0), (210.0, 20.0), (300.0, 20.0))
DEFAULT_CREASE_DEG = 50.0


def shade(
    raster: Raster,
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera,
    color: object = DEFAULT_COLOR,
    background: object = "white",
    crease_deg: float = DEFAULT_CREASE_DEG,
    vertex_color: np.ndarray | None = None,
) -> np.ndarray:
    """Light the visible surface; returns an (H, W, 3) float64 image in [0, 1].

    ``color`` is one colour or an (F, 3) array of per-face RGB values (floats in [0, 1] or
    integers in 0..255), e.g. to colour faces by their error; ``vertex_color``, a (V, 3) array
    of the same kind, overrides it with colours interpolated across each face. Normals are
    smoothed across edges whose faces meet at less than ``crease_deg`` degrees (0: flat facets;
    180: fully smooth); sharper edges, and faces whose orientation is flipped relative to a
    neighbour, stay crisp. Lighting is two-sided: normals are turned towards the camera.
    """
    image = np.empty(raster.face.shape + (3,))
    image[:] = _rgb(background, "background")
    mask = raster.mask
    if not mask.any():
        return image
    visible, face_slot = np.unique(raster.face[mask], return_inverse=True)
    area_normals = _area_normals(vertices, faces)
    face_normals = area_normals / np.maximum(np.linalg.norm(area_normals, axis=1, keepdims=True), 1e-300)
    to_eye = _directions_to_eye(raster, vertices, faces, camera)
    normal = face_normals[visible][face_slot]
    if crease_deg > 0:
        corners = _corner_normals(faces, area_normals, face_normals, visible, crease_deg)
        normal = np.einsum("pk,pkj->pj", raster.barycentric[mask], corners[face_slot])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    facing = np.einsum("ij,ij->i", face_normals[visible][face_slot], to_eye)
    normal *= np.where(facing < 0, -1.0, 1.0)[:, None]
    if vertex_color is not None:
        corners = _color_array(vertex_color, len(vertices), "vertex_color: per-vertex")[faces[raster.face[mask]]]
        colors = np.einsum("pk,pkj->pj", raster.barycentric[mask], corners)
    else:
        colors = _surface_colors(color, visible, len(faces))[face_slot]
    image[mask] = _lighting(normal, to_eye, camera, colors)
    return image


def render_mesh(
    mesh: trimesh.Trimesh,
    path: str | os.PathLike | None = None,
    resolution: tuple[int, int] = (512, 512),
    view: tuple[float, float] = DEFAULT_VIEW,
    color: object = DEFAULT_COLOR,
    background: object = "white",
    projection: str = "perspective",
    up: str = "y",
    crease_deg: float = DEFAULT_CREASE_DEG,
    supersample: int = 1,
    camera: Camera | None = None,
    vertex_color: np.ndarray | None = None,
) -> np.ndarray:
    """Render ``mesh`` to an (H, W, 3) uint8 image and, if ``path`` is given, write it as PNG.

    The camera frames the mesh's bounding sphere (see :meth:`Camera.looking_at` for ``view``,
    ``projection`` and ``up``) unless ``camera`` is given (e.g. to share one framing between
    meshes). ``crease_deg`` and ``vertex_color`` (V, 3): see :func:`shade`. ``supersample = s`` renders at ``s`` times the
    resolution and averages ``s x s`` blocks (anti-aliased edges, ``s**2`` times the cost).
    """
    vertices, faces = _mesh_arrays(mesh)
    if not (isinstance(supersample, int) and 1 <= supersample <= 4):
        raise InputError(f"supersample must be an integer in 1..4, got {supersample!r}")
    if camera is None:
        center, radius = bounding_sphere(vertices)
        camera = Camera.looking_at(center, radius, resolution, view, projection, up=up)
    big = Camera(
        camera.eye, camera.right, camera.up, camera.backward,
        camera.width * supersample, camera.height * supersample, camera.projection, camera.scale,
    )
    raster = rasterize(vertices, faces, big)
    image = shade(raster, vertices, faces, big, color, background, crease_deg, vertex_color)
    image = image.reshape(camera.height, supersample, camera.width, supersample, 3).mean(axis=(1, 3))
    image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if path is not None:
        write_png(image, path)
    return image


def render_views(
    mesh: trimesh.Trimesh,
    path: str | os.PathLike | None = None,
    views: Sequence[tuple[float, float]] = DEFAULT_VIEWS,
    resolution: tuple[int, int] = (384, 384),
    label_views: bool = True,
    supersample: int = 2,
    **options: object,
) -> np.ndarray:
    """Render 1-4 ``views`` of one mesh tiled in one image (one row, or 2 x 2 for four views).

    ``supersample`` and ``options`` are passed to :func:`render_mesh`. With ``label_views`` each
    tile is captioned with its azimuth/elevation. Returns the tiled (H, W, 3) uint8 image and
    writes it if ``path`` is given.
    """
    if not 1 <= len(views) <= 4:
        raise InputError(f"render_views: give 1 to 4 views, got {len(views)}")
    tiles = [render_mesh(mesh, None, resolution, view, supersample=supersample, **options) for view in views]
    labels = [f"azimuth {v[0]:g}°, elevation {v[1]:g}°" for v in views] if label_views else None
    columns = 2 if len(views) == 4 else len(views)
    image = tile_images(tiles, columns, labels, options.get("background", "white"))
    if path is not None:
        write_png(image, path)
    return image


def render_comparison(
    meshes: Mapping[str, trimesh.Trimesh],
    path: str | os.PathLike | None = None,
    views: Sequence[tuple[float, float]] = (DEFAULT_VIEW,),
    resolution: tuple[int, int] = (384, 384),
    supersample: int = 2,
    **options: object,
) -> np.ndarray:
    """Render labelled meshes side by side (e.g. ``{"reference": gt, "prediction": pred}``).

    One column per mesh, one row per view; all tiles share one camera framing the union of the
    meshes' bounding spheres, so that sizes and positions compare directly. ``supersample`` and
    ``options`` are passed to :func:`render_mesh` (``projection``, ``up``, ``color``, ...).
    """
    if not meshes:
        raise InputError("render_comparison: no meshes given")
    arrays = {name: _mesh_arrays(mesh) for name, mesh in meshes.items()}
    center, radius = bounding_sphere(np.concatenate([v for v, _ in arrays.values()]))
    camera_options = {k: options.pop(k) for k in ("projection", "up") if k in options}
    tiles, labels = [], []
    for view in views:
        camera = Camera.looking_at(center, radius, resolution, view, **camera_options)
        for name, mesh in meshes.items():
            tiles.append(render_mesh(mesh, None, camera=camera, supersample=supersample, **options))
            labels.append(name if len(views) == 1 else f"{name} ({view[0]:g}°, {view[1]:g}°)")
    image = tile_images(tiles, len(meshes), labels, options.get("background", "white"))
    if path is not None:
        write_png(image, path)
    return image


def tile_images(
    images: Sequence[np.ndarray],
    columns: int,
    labels: Sequence[str] | None = None,
    background: object = "white",
) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 images row-major into a grid, each under its label."""
    height, width = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    font = ImageFont.load_default(size=max(12, height // 24))
    label_height = int(font.size * 1.8) if labels else 0
    fill = tuple(int(round(255 * c)) for c in _rgb(background, "background"))
    canvas = Image.new("RGB", (columns * width, rows * (height + label_height)), fill)
    draw = ImageDraw.Draw(canvas)
    text_color = (255, 255, 255) if sum(fill) < 384 else (30, 30, 30)
    for index, tile in enumerate(images):
        x, y = (index % columns) * width, (index // columns) * (height + label_height)
        canvas.paste(Image.fromarray(tile), (x, y + label_height))
        if labels:
            draw.text((x + width / 2, y + label_height / 2), labels[index], fill=text_color, font=font, anchor="mm")
    return np.asarray(canvas)


def write_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) uint8 image to ``path`` as PNG, atomically."""
    if Path(path).suffix.lower() != ".png":
        raise InputError(f"{path}: renders are written as PNG; give a .png file name")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


# --- shading -------------------------------------------------------------------------------


def _area_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) face normals (right-hand rule) whose length is twice the face area."""
    origin = vertices[faces[:, 0]]
    return np.cross(vertices[faces[:, 1]] - origin, vertices[faces[:, 2]] - origin)


def _corner_normals(
    faces: np.ndarray, area_normals: np.ndarray, unit_normals: np.ndarray, selected: np.ndarray, crease_deg: float
) -> np.ndarray:
    """(S, 3, 3) unit normals at the corners of the ``selected`` faces (S,).

    A corner's normal is the area-weighted sum of the normals of the faces around its vertex
    that make an angle below ``crease_deg`` with the corner's own face (the face included).
    All (corner, incident face) pairs are formed at once with ``np.repeat``.
    """
    flat = faces.ravel()
    incident_face = np.argsort(flat, kind="stable") // 3
    degree = np.bincount(flat, minlength=int(flat.max()) + 1)
    first = np.cumsum(degree) - degree
    corner_vertex = faces[selected].ravel()
    corner_face = np.repeat(selected, 3)
    count = degree[corner_vertex]
    pair_corner = np.repeat(np.arange(len(corner_vertex)), count)
    within = np.arange(len(pair_corner)) - np.repeat(np.cumsum(count) - count, count)
    pair_face = incident_face[first[corner_vertex][pair_corner] + within]
    cosine = np.einsum("ij,ij->i", unit_normals[corner_face[pair_corner]], unit_normals[pair_face])
    keep = cosine >= math.cos(math.radians(min(float(crease_deg), 180.0))) - 1e-9
    summed = np.stack(
        [np.bincount(pair_corner[keep], area_normals[pair_face[keep], k], len(corner_vertex)) for k in range(3)], 1
    ).astype(np.float64)
    summed /= np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-300)
    return summed.reshape(-1, 3, 3)


def _directions_to_eye(raster: Raster, vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> np.ndarray:
    """(P, 3) unit vectors from each visible surface point towards the camera (P = covered pixels)."""
    mask = raster.mask
    if camera.projection == "orthographic":
        return np.broadcast_to(camera.backward, (int(mask.sum()), 3)).copy()
    points = np.einsum("pk,pkj->pj", raster.barycentric[mask], vertices[faces[raster.face[mask]]])
    direction = camera.eye - points
    return direction / np.linalg.norm(direction, axis=1, keepdims=True)


def _lighting(normal: np.ndarray, to_eye: np.ndarray, camera: Camera, base: np.ndarray) -> np.ndarray:
    """Shade (P, 3) unit normals with base colours (P, 3): ambient + key + headlight + specular."""
    key_light = -0.45 * camera.right + 0.55 * camera.up + 0.70 * camera.backward
    key_light /= np.linalg.norm(key_light)
    key = np.clip(normal @ key_light, 0.0, None)
    head = np.clip(np.einsum("ij,ij->i", normal, to_eye), 0.0, None)
    half = key_light + to_eye
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    specular = np.clip(np.einsum("ij,ij->i", normal, half), 0.0, None) ** 40
    diffuse = 0.22 + 0.55 * key + 0.30 * head
    return np.clip(base * diffuse[:, None] + 0.18 * specular[:, None], 0.0, 1.0)


def _surface_colors(color: object, face: np.ndarray, face_count: int) -> np.ndarray:
    """(len(face), 3) base colours of ``face`` from one colour or an (F, 3) per-face array
    (floats in [0, 1], or integers in 0..255)."""
    array = np.asarray(color) if not isinstance(color, str) else None
    if array is not None and array.ndim == 2:
        return _color_array(array, face_count, "color: per-face")[face]
    return np.broadcast_to(_rgb(color, "color"), (len(face), 3))


def _color_array(colors: np.ndarray, count: int, name: str) -> np.ndarray:
    """(count, 3) floats in [0, 1] from an array of RGB rows (floats in [0, 1], or integers in
    0..255), else InputError."""
    array = np.asarray(colors)
    if array.shape != (count, 3):
        raise InputError(f"{name} colours must have shape ({count}, 3), got {array.shape}")
    scale = 255.0 if np.issubdtype(array.dtype, np.integer) else 1.0
    return np.clip(array / scale, 0.0, 1.0)


# --- input checks --------------------------------------------------------------------------


def _rgb(color: object, name: str) -> np.ndarray:
    """(3,) float RGB in [0, 1] from any matplotlib colour specification."""
    try:
        return np.asarray(to_rgb(color), dtype=np.float64)
    except (ValueError, TypeError):
        raise InputError(f"{name}: not a colour: {color!r}") from None


def _mesh_arrays(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Float64 vertices (V, 3) and int64 faces (F, 3) of a non-empty, finite triangle mesh."""
    vertices = np.asarray(getattr(mesh, "vertices", None), dtype=np.float64)
    faces = np.asarray(getattr(mesh, "faces", None))
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError("render: the mesh has no triangles to draw")
    if not np.all(np.isfinite(vertices)):
        raise InputError("render: the mesh has non-finite vertex coordinates")
    faces = faces.astype(np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"render: face indices must be in 0..{len(vertices) - 1}")
    return vertices, faces
