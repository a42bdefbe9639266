"""The NumPy z-buffer rasteriser shared by the renders and the virtual depth scans (no OpenGL).

A :class:`Camera` looks at a bounding sphere from ``view = (azimuth, elevation)`` degrees;
:func:`rasterize` projects the triangles and keeps, per pixel, the nearest triangle covering the
pixel centre (all triangles at once: each triangle's bounding box is expanded into candidate
pixels with ``np.repeat``, and the depth test is one ``np.minimum.at``). What the pixels show is
up to the caller: :mod:`isofield.viz.render` shades them, :mod:`isofield.geometry.scan` turns
them into surface points.

Conventions: a resolution is ``(width, height)`` in pixels; per-pixel arrays are ``(H, W, ...)``
with row 0 at the top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from isofield.errors import InputError

DEFAULT_VIEW = (30.0, 20.0)
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


# --- input checks --------------------------------------------------------------------------


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
