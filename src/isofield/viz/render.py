"""Software mesh rendering on the NumPy z-buffer of :mod:`isofield.geometry.raster` (no OpenGL,
no display).

Pipeline: a :class:`~isofield.geometry.raster.Camera` looks at the mesh's bounding sphere from
``view = (azimuth, elevation)`` degrees; :func:`~isofield.geometry.raster.rasterize` keeps, per
pixel, the nearest triangle covering the pixel centre; :func:`light` lights the visible surface
(ambient + Lambert key light + headlight fill + a little specular, two-sided so that flipped
faces still show) and :func:`paint` colours it: one lit view (:class:`LitView`) can be painted
in several colourings (the fit's render and its error picture share theirs).

Conventions: a resolution is ``(width, height)`` in pixels; images are ``(H, W, 3)`` uint8 with
row 0 at the top; colours are anything matplotlib understands (``"white"``, ``"#b0c4de"``,
``(r, g, b)`` in [0, 1]).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LitView:
    """One view of a mesh, rasterised and lit, to be painted in any colours (:func:`paint`):
    the geometry's share of a render, done once for several colourings of the same view.

    Attributes:
        raster: the supersampled raster, ``(s*H, s*W)`` pixels.
        faces: (F, 3) int64 faces of the mesh it shows; ``vertex_count``: its V.
        diffuse, specular: (P,) float64 light factors of the P covered pixels (``raster.mask``
            order): a pixel of base colour ``c`` shows ``c * diffuse + 0.18 * specular``.
        view: (azimuth, elevation) in degrees, or None for a camera given directly.
        supersample: s; the painted image is ``(H, W, 3)``.
    """

    raster: Raster
    faces: np.ndarray
    vertex_count: int
    diffuse: np.ndarray
    specular: np.ndarray
    view: tuple[float, float] | None
    supersample: int


def light(
    raster: Raster,
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera,
    crease_deg: float = DEFAULT_CREASE_DEG,
) -> tuple[np.ndarray, np.ndarray]:
    """The light factors ``(diffuse, specular)``, each (P,) float64, of the P covered pixels
    of ``raster`` (``raster.mask`` order): ambient + Lambert key light + headlight fill, and a
    little specular. Normals are smoothed across edges whose faces meet at less than
    ``crease_deg`` degrees (0: flat facets; 180: fully smooth); sharper edges, and faces whose
    orientation is flipped relative to a neighbour, stay crisp. Lighting is two-sided: normals
    are turned towards the camera."""
    mask = raster.mask
    if not mask.any():
        return np.empty(0), np.empty(0)
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
    return _light_factors(normal, to_eye, camera)


def paint(
    lit: LitView,
    color: object = DEFAULT_COLOR,
    background: object = "white",
    vertex_color: np.ndarray | None = None,
) -> np.ndarray:
    """The lit view in colours: an (H, W, 3) uint8 image (the supersampled pixels averaged).

    ``color`` is one colour or an (F, 3) array of per-face RGB values (floats in [0, 1] or
    integers in 0..255), e.g. to colour faces by their error; ``vertex_color``, a (V, 3) array
    of the same kind, overrides it with colours interpolated across each face.
    """
    raster, s = lit.raster, lit.supersample
    image = np.empty(raster.face.shape + (3,))
    image[:] = _rgb(background, "background")
    mask = raster.mask
    if mask.any():
        shown = raster.face[mask]
        if vertex_color is not None:
            corners = _color_array(vertex_color, lit.vertex_count, "vertex_color: per-vertex")[lit.faces[shown]]
            colors = np.einsum("pk,pkj->pj", raster.barycentric[mask], corners)
        else:
            colors = _surface_colors(color, shown, len(lit.faces))
        image[mask] = np.clip(colors * lit.diffuse[:, None] + 0.18 * lit.specular[:, None], 0.0, 1.0)
    height, width = raster.face.shape[0] // s, raster.face.shape[1] // s
    image = image.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def light_view(
    mesh: trimesh.Trimesh,
    resolution: tuple[int, int] = (512, 512),
    view: tuple[float, float] = DEFAULT_VIEW,
    projection: str = "perspective",
    up: str = "y",
    crease_deg: float = DEFAULT_CREASE_DEG,
    supersample: int = 1,
    camera: Camera | None = None,
) -> LitView:
    """Rasterise and light ``mesh`` seen from ``view`` (or by ``camera``); :func:`paint` gives
    the picture. Arguments: see :func:`render_mesh`."""
    vertices, faces = _mesh_arrays(mesh)
    if not (isinstance(supersample, int) and 1 <= supersample <= 4):
        raise InputError(f"supersample must be an integer in 1..4, got {supersample!r}")
    framed = camera is None
    if framed:
        center, radius = bounding_sphere(vertices)
        camera = Camera.looking_at(center, radius, resolution, view, projection, up=up)
    big = Camera(
        camera.eye, camera.right, camera.up, camera.backward,
        camera.width * supersample, camera.height * supersample, camera.projection, camera.scale,
    )
    raster = rasterize(vertices, faces, big)
    diffuse, specular = light(raster, vertices, faces, big, crease_deg)
    return LitView(raster, faces, len(vertices), diffuse, specular, view if framed else None, supersample)


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
    meshes). ``crease_deg``: see :func:`light`; ``color``, ``background`` and ``vertex_color``
    (V, 3): see :func:`paint`. ``supersample = s`` renders at ``s`` times the resolution and
    averages ``s x s`` blocks (anti-aliased edges, ``s**2`` times the cost).
    """
    lit = light_view(mesh, resolution, view, projection, up, crease_deg, supersample, camera)
    image = paint(lit, color, background, vertex_color)
    if path is not None:
        write_png(image, path)
    return image


def light_views(
    mesh: trimesh.Trimesh,
    views: Sequence[tuple[float, float]] = DEFAULT_VIEWS,
    resolution: tuple[int, int] = (384, 384),
    supersample: int = 2,
    **options: object,
) -> list[LitView]:
    """1-4 ``views`` of one mesh rasterised and lit (``options``: see :func:`light_view`), for
    :func:`paint_views`."""
    if not 1 <= len(views) <= 4:
        raise InputError(f"render_views: give 1 to 4 views, got {len(views)}")
    return [light_view(mesh, resolution, view, supersample=supersample, **options) for view in views]


def paint_views(
    lit: Sequence[LitView],
    path: str | os.PathLike | None = None,
    label_views: bool = True,
    background: object = "white",
    **colors: object,
) -> np.ndarray:
    """The views of :func:`light_views` painted (``colors``: ``color`` or ``vertex_color``, see
    :func:`paint`) and tiled in one image (one row, or 2 x 2 for four views). With
    ``label_views`` each tile is captioned with its azimuth/elevation. Returns the tiled
    (H, W, 3) uint8 image and writes it if ``path`` is given."""
    tiles = [paint(view, background=background, **colors) for view in lit]
    labels = [f"azimuth {v.view[0]:g}°, elevation {v.view[1]:g}°" if v.view else "" for v in lit] if label_views else None
    image = tile_images(tiles, 2 if len(lit) == 4 else len(lit), labels, background)
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
    """Render 1-4 ``views`` of one mesh tiled in one image (one row, or 2 x 2 for four views):
    :func:`light_views` then :func:`paint_views`.

    ``supersample`` and ``options`` (those of :func:`render_mesh`) are passed on. With
    ``label_views`` each tile is captioned with its azimuth/elevation. Returns the tiled
    (H, W, 3) uint8 image and writes it if ``path`` is given.
    """
    colors = {key: options.pop(key) for key in ("color", "background", "vertex_color") if key in options}
    return paint_views(light_views(mesh, views, resolution, supersample, **options), path, label_views, **colors)


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


def _light_factors(normal: np.ndarray, to_eye: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse (ambient + key + headlight) and specular factors, (P,) each, of (P, 3) unit
    normals seen along (P, 3) unit directions to the eye."""
    key_light = -0.45 * camera.right + 0.55 * camera.up + 0.70 * camera.backward
    key_light /= np.linalg.norm(key_light)
    key = np.clip(normal @ key_light, 0.0, None)
    head = np.clip(np.einsum("ij,ij->i", normal, to_eye), 0.0, None)
    half = key_light + to_eye
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    specular = np.clip(np.einsum("ij,ij->i", normal, half), 0.0, None) ** 40
    return 0.22 + 0.55 * key + 0.30 * head, specular


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
