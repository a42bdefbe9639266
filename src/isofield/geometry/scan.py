"""Virtual depth scans of a mesh: the partial oriented point cloud one depth camera would see.

A :class:`ScanCamera` is a perspective depth camera placed around the mesh's bounding sphere
(centre of the bounding box, radius reaching the farthest vertex) by azimuth and elevation,
with the same conventions as :meth:`isofield.geometry.raster.Camera.looking_at`; no OpenGL is
involved: the NumPy z-buffer of :func:`isofield.geometry.raster.rasterize` finds, for every pixel
centre, the nearest triangle on its ray. :func:`depth_scan` turns each covered pixel into one
surface point (in the mesh's own coordinates) with a unit normal, optionally with Gaussian depth
noise along the ray; :func:`free_space_samples` draws points on the rays between the camera
and the observed points, which a shape-completion loss can push outside the shape.

Normals are the face normals of the visible triangles turned to face the camera. A surface
seen from outside is entered by the ray at the visible point, so its outward normal always
faces the camera: for closed meshes this is the outward normal whatever the winding of the
faces (ShapeNet-style meshes are often inconsistently oriented), and it is what a real scanner
estimates from a depth image. Known limit: on an open mesh, a wall seen from its inner side
(through a hole) gets a camera-facing, i.e. inward, normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import trimesh

from isofield.errors import InputError
from isofield.geometry.io import PointCloud
from isofield.geometry.raster import MAX_RESOLUTION, Camera, bounding_sphere, rasterize

UP_AXES = ("x", "y", "z", "-x", "-y", "-z")


@dataclass(frozen=True)
class ScanCamera:
    """A perspective depth camera looking at the centre of a mesh's bounding sphere.

    Attributes:
        azimuth: degrees about the ``up`` axis (0: the camera on the +z side for up ``y``).
        elevation: degrees above the horizontal plane (90: looking straight down).
        distance: camera distance from the sphere's centre in bounding-sphere radii (> 1, so
            the camera is outside the mesh); ``None`` frames the sphere so that it just fills
            the image (``1.05 / sin(fov / 2)`` radii).
        fov: full field of view in degrees, in (0, 180).
        resolution: pixels per side of the square depth image, 1..4096.
        up: the world axis that is up on screen: ``x, y, z, -x, -y, -z``.
    """

    azimuth: float = 30.0
    elevation: float = 20.0
    distance: float | None = None
    fov: float = 40.0
    resolution: int = 256
    up: str = "y"

    def __post_init__(self) -> None:
        for key in ("azimuth", "elevation"):
            self._require(key, _is_finite(getattr(self, key)), "a finite angle in degrees")
        self._require("fov", _is_finite(self.fov) and 0 < self.fov < 180, "degrees in (0, 180)")
        whole = _is_finite(self.resolution) and not isinstance(self.resolution, (float, np.floating))
        self._require(
            "resolution", whole and 1 <= self.resolution <= MAX_RESOLUTION,
            f"an integer in 1..{MAX_RESOLUTION}",
        )
        self._require(
            "distance", self.distance is None or (_is_finite(self.distance) and self.distance > 1),
            "a number of bounding-sphere radii > 1 (the camera must be outside the mesh)",
        )
        self._require("up", self.up in UP_AXES, f"one of {', '.join(UP_AXES)}")

    def _require(self, key: str, condition: bool, expected: str) -> None:
        """InputError naming the camera ``key`` and its value unless ``condition`` holds."""
        if not condition:
            raise InputError(f"camera {key}: expected {expected}, got {getattr(self, key)!r}")

    def camera_for(self, vertices: np.ndarray) -> Camera:
        """The render :class:`Camera` of this view for a mesh with vertices (V, 3)."""
        center, radius = bounding_sphere(vertices)
        half_fov = math.radians(self.fov) / 2.0
        # looking_at puts the eye at radius * margin / sin(fov / 2) from the centre
        margin = 1.05 if self.distance is None else self.distance * math.sin(half_fov)
        return Camera.looking_at(
            center, radius, (self.resolution, self.resolution), (self.azimuth, self.elevation),
            "perspective", fov_deg=self.fov, up=self.up, margin=margin,
        )

    def describe(self) -> str:
        """E.g. ``azimuth 30°, elevation 20°, fov 40°, 256x256``."""
        return (
            f"azimuth {self.azimuth:g}°, elevation {self.elevation:g}°, fov {self.fov:g}°, "
            f"{self.resolution}x{self.resolution}"
        )


def _is_finite(value: object) -> bool:
    """True for a finite real number (bool excluded)."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return real and math.isfinite(value)


@dataclass(frozen=True, eq=False)
class Scan:
    """A partial oriented point cloud seen by one depth camera.

    Attributes:
        points: (N, 3) float32, one visible surface point per covered pixel, in the mesh's
            coordinates; ``points[k]`` belongs to the k-th finite pixel of ``depth`` in row-major
            order (row 0 at the top).
        normals: (N, 3) float32, unit face normals of the visible triangles, turned towards the
            camera (see the module docstring).
        depth: (H, W) float32 camera depth of each point along the optical axis (mesh units),
            ``inf`` where the ray misses the mesh.
        camera: the render camera; ``camera.eye`` is the ray origin.
        view: the :class:`ScanCamera` the scan was taken with.
    """

    points: np.ndarray
    normals: np.ndarray
    depth: np.ndarray
    camera: Camera
    view: ScanCamera

    @property
    def origin(self) -> np.ndarray:
        """(3,) float64 camera centre, the common origin of all rays."""
        return self.camera.eye

    def point_cloud(self) -> PointCloud:
        """The points with their normals, ready for :func:`isofield.geometry.io.write_points`."""
        return PointCloud(self.points, self.normals, source=f"depth scan ({self.view.describe()})")


def depth_scan(
    mesh: trimesh.Trimesh, camera: ScanCamera | None = None, noise: float = 0.0, seed: int = 0
) -> Scan:
    """Scan ``mesh`` from ``camera`` (default: :class:`ScanCamera` ``()``).

    Each pixel centre's ray is cast from the camera centre; its first hit with a triangle (both
    sides count) becomes a point. ``noise`` is the standard deviation of a Gaussian error of each
    point's distance along its ray, as a fraction of the mesh's bounding-box diagonal (0: exact);
    the noise is drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same scan.
    Normals are those of the exact surface (noise moves points only); ``depth`` holds the noisy
    points' depths. Cost: 0.04-0.09 s at 256^2 and 0.08-0.12 s at 512^2 for the 52k-face
    armadillo (loaded 2-core machine).

    Raises:
        InputError: the mesh has no faces or non-finite vertices, ``noise`` is negative or not a
            number, or no pixel sees the mesh.
    """
    vertices, faces = _mesh_arrays(mesh)
    noise = _number(noise, "scan noise", "a non-negative number", lambda x: x >= 0)
    view = ScanCamera() if camera is None else camera
    render_camera = view.camera_for(vertices)
    raster = rasterize(vertices, faces, render_camera)
    mask = raster.mask
    if not mask.any():
        raise InputError(
            f"scan: no surface is visible from the camera ({view.describe()}); "
            "change the view or the fov"
        )
    visible = raster.face[mask]
    points = np.einsum("pk,pkj->pj", raster.barycentric[mask], vertices[faces[visible]])
    rays = points - render_camera.eye
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    normals = _camera_facing_normals(vertices, faces[visible], rays)
    if noise > 0:
        diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0)))
        error = np.random.default_rng(seed).normal(0.0, noise * diagonal, (len(points), 1))
        points = points + error * rays
    depth = np.full(mask.shape, np.inf, dtype=np.float32)
    depth[mask] = (points - render_camera.eye) @ -render_camera.backward
    return Scan(points.astype(np.float32), normals.astype(np.float32), depth, render_camera, view)


def _camera_facing_normals(vertices: np.ndarray, faces: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """(P, 3) unit normals of the triangles ``faces`` (P, 3), flipped where they face away from
    the camera, i.e. where their dot product with the unit viewing ray ``rays`` (P, 3) is positive.
    The rasteriser reports only triangles of non-zero area, so every normal has a length."""
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals *= np.where(np.einsum("ij,ij->i", normals, rays) > 0, -1.0, 1.0)[:, None]
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def free_space_samples(
    scan: Scan, count: int, seed: int, margin: float, max_distance: float | None = None
) -> np.ndarray:
    """Points known to be OUTSIDE the shape: on the rays from the scan's camera to its points
    (:func:`free_space_along_rays` with ``scan.points`` and ``scan.origin``)."""
    return free_space_along_rays(scan.points, scan.origin, count, seed, margin, max_distance)


def free_space_along_rays(
    points: np.ndarray, origin: np.ndarray, count: int, seed: int, margin: float,
    max_distance: float | None = None,
) -> np.ndarray:
    """Points known to be OUTSIDE the shape: on the rays from a camera to the points it saw.

    Each sample picks an observed point q uniformly at random, then a distance ``s`` before it,
    uniform in ``[margin, max_distance]`` (default: the whole segment from the camera,
    ``[margin, |q - origin|]``), and returns ``q - s * (q - origin) / |q - origin|``. Since the
    camera is outside the shape and q is the first hit of its ray, every sample has SDF > 0
    (occupancy 0); a caller's free-space loss should penalise a predicted SDF <= 0 there (or an
    occupancy logit > 0). With scan noise, choose ``margin`` above the noise (e.g. 3 sigma):
    a point pushed behind the true surface would otherwise put samples inside.

    Args:
        points: (N, 3) observed surface points, the first hits of rays from ``origin``.
        origin: (3,) the camera centre, in the points' coordinates.
        count: number of samples, >= 1.
        seed: seed of ``numpy.random.default_rng``.
        margin: smallest distance before the observed point, > 0, in mesh units.
        max_distance: largest distance before the observed point (>= margin), or None.

    Returns:
        (count, 3) float32 points in the points' coordinates.
    """
    count = _positive_int(count, "free-space sample count")
    margin = _positive(margin, "free-space margin")
    if max_distance is not None and _positive(max_distance, "free-space max_distance") < margin:
        raise InputError(
            f"free-space max_distance: expected at least the margin {margin:g}, got {max_distance!r}"
        )
    origin = np.asarray(origin, dtype=np.float64).reshape(-1)
    if origin.shape != (3,) or not np.isfinite(origin).all():
        raise InputError(f"camera origin: expected 3 finite numbers, got {origin.tolist()}")
    lengths = np.linalg.norm(points - origin, axis=1)
    usable = np.flatnonzero(lengths > margin)
    if len(usable) == 0:
        raise InputError(
            f"free-space margin {margin:g} is longer than every ray (longest {lengths.max():.4g})"
        )
    rng = np.random.default_rng(seed)
    chosen = usable[rng.integers(0, len(usable), count)]
    far = lengths[chosen] if max_distance is None else np.minimum(lengths[chosen], max_distance)
    before = rng.uniform(margin, far)
    target = points[chosen].astype(np.float64)
    direction = (target - origin) / lengths[chosen, None]
    return (target - before[:, None] * direction).astype(np.float32)


def _mesh_arrays(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """float64 vertices (V, 3) and int64 faces (F, 3) of a non-empty finite mesh, else InputError."""
    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(f"scan: expected a triangle mesh, got {type(mesh).__name__}")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise InputError("scan: the mesh has no faces")
    if not np.all(np.isfinite(vertices)):
        raise InputError("scan: the mesh has NaN or infinite vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"scan: face vertex indices must be in 0..{len(vertices) - 1}")
    return vertices, faces


def _number(value: object, name: str, expected: str, accept: Callable[[float], bool]) -> float:
    """``value`` as a finite float that ``accept`` takes, else InputError naming ``name``."""
    if not (_is_finite(value) and accept(float(value))):
        raise InputError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def _positive(value: object, name: str) -> float:
    return _number(value, name, "a positive distance", lambda x: x > 0)


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)
