"""Software mesh rendering: a vectorised NumPy z-buffer rasteriser (no OpenGL, no display).

Pipeline: a :class:`Camera` looks at the mesh's bounding sphere from ``view = (azimuth,
elevation)`` degrees; :func:`rasterize` projects the triangles and keeps, per pixel, the nearest
triangle covering the pixel centre (all triangles at once: each triangle's bounding box is
expanded into candidate pixels with ``np.repeat``, and the depth test is one
``np.minimum.at``); :func:`shade` lights the visible surface (ambient + Lambert key light +
headlight fill + a little specular, two-sided so that flipped faces still show).

Conventions: a resolution is ``(width, height)`` in pixels; images are ``(H, W, 3)`` uint8 with
row 0 at the top; colours are anything matplotlib understands (``"white"``, ``"#b0c4de"``,
``(r, g, b)`` in [0, 1]).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import trimesh
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw, ImageFont

from isofield.errors import InputError
from isofield.files import atomic_path

DEFAULT_COLOR = (0.70, 0.75, 0.85)
DEFAULT_VIEW = (30.0, 20.0)
DEFAULT_VIEWS = ((30.0, 20.0), (120.0, 20.0), (210.0, 20.0), (300.0, 20.0))
DEFAULT_CREASE_DEG = 50.0
MAX_RESOLUTION = 4096
# Candidate pixels handled per vectorised batch (bounds the temporary memory to ~ 0.3 GB).
_CANDIDATE_BATCH = 2_000_000
# A pixel centre on a shared edge belongs to both triangles: no cracks between them.
_INSIDE_TOLERANCE = 1e-6
_AXES = {"x": 0, "y": 1, "z": 2}
# For each up axis, the direction the camera sits in at azimuth 0, elevation 0, chosen so that
# the other two axes appear right-handed on screen (y up: +z front, x right; z up: -y front).
_FRONT = {"x": (0.0, 1.0, 0.0), "y": (0.0, 0.0, 1.0), "z": (0.0, -1.0, 0.0)}


@dataclass(frozen=True)
class Camera:
    """A pinhole or orthographic camera looking at a bounding sphere.

    Attributes:
        eye: (3,) camera position (world units).
        right, up, backward: (3,) orthonormal camera axes in world coordinates; the camera looks
            along ``-backward``.
        width, height: image size in pixels.
        projection: ``"perspective"`` or ``"orthographic"``.
        scale: perspective: ``1 / tan(fov / 2)``; orthographic: ``1 / half_extent`` (world units).
    """

    eye: np.ndarray
    right: np.ndarray
    up: np.ndarray
    backward: np.ndarray
    width: int
    height: int
    projection: str
    scale: float

    @classmethod
    def looking_at(
        cls,
        center: Sequence[float],
        radius: float,
        resolution: tuple[int, int] = (512, 512),
        view: tuple[float, float] = DEFAULT_VIEW,
        projection: str = "perspective",
        fov_deg: float = 30.0,
        up: str = "y",
        margin: float = 1.05,
    ) -> "Camera":
        """Frame the sphere ``(center (3,), radius)`` so that it fills the shorter image side.

        ``view = (azimuth_deg, elevation_deg)``: the azimuth turns the camera about the ``up``
        axis (``"x"``, ``"y"``, ``"z"``, optionally with a ``"-"`` sign), the elevation raises it
        above the horizontal plane. ``margin`` > 1 leaves a border around the sphere.
        """
        width, height = _check_resolution(resolution)
        if projection not in ("perspective", "orthographic"):
            raise InputError(f"projection must be 'perspective' or 'orthographic', got {projection!r}")
        if not (0.0 < fov_deg < 180.0):
            raise InputError(f"fov_deg must be in (0, 180), got {fov_deg!r}")
        radius = float(radius) if radius > 0 else 1.0
        up_axis, front = _up_and_front(up)
        azimuth, elevation = _check_view(view)
        side = np.cross(up_axis, front)
        horizontal = math.cos(azimuth) * front + math.sin(azimuth) * side
        backward = math.cos(elevation) * horizontal + math.sin(elevation) * up_axis
        right = np.cross(up_axis, backward)
        if np.linalg.norm(right) < 1e-9:  # looking straight down/up: any horizontal right works
            right = side
        right = right / np.linalg.norm(right)
        cam_up = np.cross(backward, right)
        half_extent = radius * margin
        if projection == "perspective":
            half_fov = math.radians(fov_deg) / 2.0
            distance = half_extent / math.sin(half_fov)
            scale = 1.0 / math.tan(half_fov)
        else:
            distance = 3.0 * half_extent
            scale = 1.0 / half_extent
        eye = np.asarray(center, dtype=np.float64) + distance * backward
        return cls(eye, right, cam_up, backward, width, height, projection, scale)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) to pixel coordinates (N, 2) ``(column, row)`` and depth (N,).

        Pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``; depth is the distance along the
        viewing direction in world units (positive in front of the camera).
        """
        rel = np.asarray(points, dtype=np.float64) - self.eye
        x, y = rel @ self.right, rel @ self.up
        depth = -(rel @ self.backward)
        if self.projection == "perspective":
            x, y = x / depth, y / depth
        half = 0.5 * min(self.width, self.height) * self.scale
        pixels = np.stack([0.5 * self.width + half * x, 0.5 * self.height - half * y], axis=1)
        return pixels, depth


@dataclass(frozen=True)
class Raster:
    """What the rasteriser sees per pixel.

    Attributes:
        face: (H, W) int64, index of the visible face, -1 for background.
        depth: (H, W) float64, camera depth of the visible surface (world units), inf for background.
        barycentric: (H, W, 3) float64, perspective-correct barycentric coordinates of the pixel
            centre in its face (0 for background).
    """

    face: np.ndarray
    depth: np.ndarray
    barycentric: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True where a face is visible."""
        return self.face >= 0


def rasterize(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> Raster:
    """Z-buffer the triangles ``vertices[faces]`` (V, 3) / (F, 3) as seen by ``camera``.

    A pixel is covered by a triangle when its centre lies inside (edges count as inside). No
    back-face culling: both sides of every triangle are visible.
    """
    width, height = camera.width, camera.height
    pixels, depth = camera.project(vertices)
    if np.any(depth <= 0):
        raise InputError("rasterize: some vertices are behind the camera; frame the mesh with Camera.looking_at")
    coeffs, boxes = _triangle_setup(pixels, _linear_depth_key(depth, camera), faces, width, height)
    zbuffer = np.full(width * height, np.inf)
    face_buffer = np.full(width * height, -1, dtype=np.int64)
    for face, pixel, key in _fragments(coeffs, boxes, width):
        np.minimum.at(zbuffer, pixel, key)
        won = key <= zbuffer[pixel]
        face_buffer[pixel[won]] = face[won]
    face_buffer = face_buffer.reshape(height, width)
    barycentric = _pixel_barycentrics(face_buffer, coeffs, depth[faces], camera)
    key_buffer = zbuffer.reshape(height, width)
    if camera.projection == "perspective":
        with np.errstate(divide="ignore"):
            key_buffer = -1.0 / key_buffer
        key_buffer[face_buffer < 0] = np.inf
    return Raster(face_buffer, key_buffer, barycentric)


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


def bounding_sphere(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) of the axis-aligned bounding box and the radius that encloses every vertex."""
    center = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    return center, float(np.linalg.norm(vertices - center, axis=1).max())


# --- rasterisation -------------------------------------------------------------------------


def _linear_depth_key(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """A per-vertex depth key that is affine in screen space and increases with depth.

    Orthographic: depth itself; perspective: ``-1 / depth`` (1/depth is affine on screen).
    """
    return -1.0 / depth if camera.projection == "perspective" else depth


def _triangle_setup(
    pixels: np.ndarray, key: np.ndarray, faces: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-face affine coefficients and pixel boxes.

    Returns ``coeffs`` (9, F): ``(a, b, c)`` triples with ``value = a * x + b * y + c`` at pixel
    position ``(x, y)`` for barycentric 1, barycentric 2 and the depth key, in that order; and
    ``boxes`` (F, 4) int64 ``(column_min, row_min, columns, rows)`` of the pixel centres to test,
    clipped to the image (0 columns for triangles off screen or degenerate on screen).
    """
    p0, p1, p2 = (pixels[faces[:, k]] for k in range(3))
    e1, e2 = p1 - p0, p2 - p0
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    valid = np.abs(area) > 1e-12
    inv = np.where(valid, 1.0 / np.where(valid, area, 1.0), 0.0)
    # barycentric 1 = cross(p - p0, e2) / area, barycentric 2 = cross(e1, p - p0) / area
    a1, b1 = e2[:, 1] * inv, -e2[:, 0] * inv
    a2, b2 = -e1[:, 1] * inv, e1[:, 0] * inv
    c1 = -(a1 * p0[:, 0] + b1 * p0[:, 1])
    c2 = -(a2 * p0[:, 0] + b2 * p0[:, 1])
    k0, dk1, dk2 = key[faces[:, 0]], key[faces[:, 1]] - key[faces[:, 0]], key[faces[:, 2]] - key[faces[:, 0]]
    az, bz, cz = a1 * dk1 + a2 * dk2, b1 * dk1 + b2 * dk2, k0 + c1 * dk1 + c2 * dk2
    coeffs = np.stack([a1, b1, c1, a2, b2, c2, az, bz, cz])
    low = np.maximum(np.ceil(np.minimum(np.minimum(p0, p1), p2) - 0.5), 0).astype(np.int64)
    high = np.minimum(np.floor(np.maximum(np.maximum(p0, p1), p2) - 0.5), [width - 1, height - 1]).astype(np.int64)
    size = np.where(valid[:, None], np.maximum(high - low + 1, 0), 0)
    return coeffs, np.concatenate([low, size], axis=1)


def _fragments(coeffs: np.ndarray, boxes: np.ndarray, width: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield ``(face, pixel, key)`` arrays of covered pixel centres, in batches of whole faces.

    ``pixel`` is the flat index ``row * width + column``; ``key`` the depth key at the centre.
    Batches hold at most about ``_CANDIDATE_BATCH`` pixels (one face may exceed it alone).
    """
    counts = boxes[:, 2] * boxes[:, 3]
    drawn = np.flatnonzero(counts)
    ends = np.cumsum(counts[drawn])
    start = 0
    while start < len(drawn):
        done = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, done + _CANDIDATE_BATCH, side="right")), start + 1)
        batch = drawn[start:stop]
        yield _covered(batch, coeffs[:, batch], boxes[batch], width)
        start = stop


def _covered(
    faces: np.ndarray, coeffs: np.ndarray, boxes: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scan-convert a batch of triangles: for every (face, row) pair, the run of pixel centres
    inside the triangle is the intersection of three half-lines (one per barycentric >= 0);
    the runs are then expanded into pixels with ``np.repeat``."""
    rows = boxes[:, 3]
    row_owner = np.repeat(np.arange(len(faces)), rows)
    row = boxes[row_owner, 1] + np.arange(len(row_owner)) - np.repeat(np.cumsum(rows) - rows, rows)
    y = row + 0.5
    a1, b1, c1, a2, b2, c2 = (coeffs[k][row_owner] for k in range(6))
    # along the row each barycentric is  slope * x + intercept  and must be >= -tolerance
    slopes = (a1, a2, -(a1 + a2))
    intercepts = (b1 * y + c1, b2 * y + c2, 1.0 - (b1 + b2) * y - c1 - c2)
    box_low = boxes[row_owner, 0] + 0.5
    box_high = box_low + boxes[row_owner, 2] - 1.0
    low, high = box_low, box_high
    empty = np.zeros(len(row), dtype=bool)
    for slope, intercept in zip(slopes, intercepts):
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = (-_INSIDE_TOLERANCE - intercept) / slope
        low = np.where(slope > 0, np.maximum(low, bound), low)
        high = np.where(slope < 0, np.minimum(high, bound), high)
        empty |= (slope == 0) & (intercept < -_INSIDE_TOLERANCE)
    first = np.ceil(np.minimum(low, box_high + 1.0) - 0.5).astype(np.int64)
    last = np.floor(np.maximum(high, box_low - 1.0) - 0.5).astype(np.int64)
    run = np.where(empty, 0, np.maximum(last - first + 1, 0))
    owner = np.repeat(row_owner, run)
    column = np.repeat(first, run) + np.arange(len(owner)) - np.repeat(np.cumsum(run) - run, run)
    row = np.repeat(row, run)
    key = coeffs[6][owner] * (column + 0.5) + coeffs[7][owner] * (row + 0.5) + coeffs[8][owner]
    return faces[owner], row * width + column, key


def _pixel_barycentrics(
    face_buffer: np.ndarray, coeffs: np.ndarray, corner_depth: np.ndarray, camera: Camera
) -> np.ndarray:
    """(H, W, 3) perspective-correct barycentric coordinates of each pixel centre in its face.

    ``corner_depth``: (F, 3) camera depth of each face's corners.
    """
    barycentric = np.zeros(face_buffer.shape + (3,))
    rows, columns = np.nonzero(face_buffer >= 0)
    face = face_buffer[rows, columns]
    x, y = columns + 0.5, rows + 0.5
    a1, b1, c1, a2, b2, c2 = (coeffs[k][face] for k in range(6))
    l1 = a1 * x + b1 * y + c1
    l2 = a2 * x + b2 * y + c2
    weights = np.clip(np.stack([1.0 - l1 - l2, l1, l2], axis=1), 0.0, 1.0)
    if camera.projection == "perspective":
        weights = weights / corner_depth[face]
    barycentric[rows, columns] = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    return barycentric


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


def _check_resolution(resolution: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` as ints in 1..MAX_RESOLUTION, else InputError."""
    try:
        width, height = (int(v) for v in resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution must be (width, height), got {resolution!r}") from None
    if not (1 <= width <= MAX_RESOLUTION and 1 <= height <= MAX_RESOLUTION):
        raise InputError(f"resolution must be between 1 and {MAX_RESOLUTION} pixels per side, got {resolution!r}")
    return width, height


def _check_view(view: tuple[float, float]) -> tuple[float, float]:
    """``(azimuth, elevation)`` in radians from two finite numbers in degrees, else InputError."""
    try:
        azimuth, elevation = (float(a) for a in view)
    except (TypeError, ValueError):
        raise InputError(f"view must be (azimuth_deg, elevation_deg), got {view!r}") from None
    if not (math.isfinite(azimuth) and math.isfinite(elevation)):
        raise InputError(f"view must be finite angles in degrees, got {view!r}")
    return math.radians(azimuth), math.radians(elevation)


def _up_and_front(up: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit up axis and azimuth-0 direction for ``up`` in ``x, y, z, -x, -y, -z``."""
    up = str(up)
    sign, axis = (-1.0, up[1:]) if up.startswith("-") else (1.0, up.lstrip("+"))
    if axis not in _AXES:
        raise InputError(f"up must be one of x, y, z, -x, -y, -z; got {up!r}")
    up_axis = np.zeros(3)
    up_axis[_AXES[axis]] = sign
    return up_axis, np.asarray(_FRONT[axis])


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
