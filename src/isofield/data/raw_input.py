"""Raw data for the sign-agnostic and divergence-guided methods (SAL, SALD, DiGS, sald-vae).

Raw data is what scanners and modelling tools give: points without (reliable) normals, or a
triangle soup — faces in any order, some flipped or duplicated, with holes. Nothing here uses
normals, orientation or connectivity:

- :class:`RawInput` holds points ``(N, D)`` (D = 3, or 2 for planar problems) and, for a soup,
  its triangles ``(T, 3, 3)``, both in the canonical frame;
- :func:`unsigned_distance_pool` draws the training samples of SAL/SALD once: Gaussians around
  the input points at a local scale (distance to the k-th neighbour) and at a global scale, plus
  uniform samples, each with its unsigned distance ``h`` to the input and the direction ``∇h``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.geometry.groundtruth import TriangleDistance
from isofield.geometry.io import PointCloud, read_geometry
from isofield.geometry.nearest import nearest_points
from isofield.geometry.normalization import Normalization
from isofield.geometry.surfels import SurfelDistance
from isofield.geometry.sampling import neighbour_distances, sample_surface

MIN_POINTS = 16
"""fewer distinct input points cannot describe a surface"""


@dataclass(frozen=True)
class RawInput:
    """Unoriented input in the canonical frame.

    Attributes:
        points: (N, D) float32, input points (sampled from the triangles for a soup).
        triangles: (T, 3, 3) float32 corners of a triangle soup, or None for a point cloud.
        normalization: the canonical frame (``x_user = x * scale + center``).
        description: one line about what was read.
        notes: one-line notes for the user about the input.
    """

    points: np.ndarray
    triangles: np.ndarray | None
    normalization: Normalization
    description: str
    notes: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        return self.points.shape[1]


def read_raw_input(path: Path, surface_points: int, seed: int) -> RawInput:
    """Points (normals ignored) from a point file, or a mesh file read as a triangle soup."""
    geometry = read_geometry(path)
    if isinstance(geometry, PointCloud):
        ignored = " (normals ignored)" if geometry.normals is not None else ""
        raw = raw_input_from_arrays(geometry.points, source=path.name,
                                    description=f"{len(geometry.points)} points{ignored} from {path.name}")
        return dataclasses.replace(raw, notes=(geometry.note,) if geometry.note else ())
    triangles = np.asarray(geometry.vertices, dtype=np.float64)[np.asarray(geometry.faces)]
    points = sample_surface(geometry, surface_points, seed=seed).points
    return raw_input_from_arrays(
        points, triangles, source=path.name,
        description=f"triangle soup of {len(triangles)} faces from {path.name} "
                    f"({surface_points} points sampled, orientation ignored)")


def raw_input_from_arrays(points: np.ndarray, triangles: np.ndarray | None = None,
                          source: str = "points", description: str | None = None) -> RawInput:
    """Check user points ``(N, D)`` (and soup triangles ``(T, 3, 3)``) and normalise them.

    Raises InputError for NaN/Inf, fewer than :data:`MIN_POINTS` distinct points, or points
    that all lie on one plane (on one line in 2-D): such inputs enclose nothing.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise InputError(f"{source}: points must have shape (N, 3) or (N, 2), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"{source}: points contain NaN or Inf")
    distinct = len(np.unique(points, axis=0))
    if distinct < MIN_POINTS:
        raise InputError(f"{source}: only {distinct} distinct points; at least {MIN_POINTS} "
                         f"are needed to describe a surface")
    _require_full_dimension(points, source)
    normalization = Normalization.fit(points, "sphere")
    canonical_triangles = None
    if triangles is not None:
        canonical_triangles = normalization.to_canonical(np.asarray(triangles, np.float64)).astype(np.float32)
    return RawInput(normalization.to_canonical(points).astype(np.float32), canonical_triangles,
                    normalization, description or f"{len(points)} points from {source}")


def _require_full_dimension(points: np.ndarray, source: str) -> None:
    """InputError when the points span less than D dimensions (a plane in 3-D, a line in 2-D)."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[-1] <= 1e-6 * singular[0]:
        flat = "a line" if points.shape[1] == 2 else "a plane"
        raise InputError(f"{source}: all points lie on {flat}, which encloses nothing; "
                         f"sign-agnostic methods need samples of a closed surface")


@dataclass(frozen=True)
class PoolSpec:
    """How the sample pool of SAL/SALD is drawn.

    Attributes:
        size: number of samples.
        neighbour_k: local σ of a point = distance to its k-th neighbour.
        global_sigma: σ of the global Gaussians (canonical units).
        global_fraction: share of samples from the global Gaussians.
        uniform_fraction: share of samples uniform in ``[-bounds, bounds]^D``.
        bounds: half-width of the uniform box.
        surfel_k: a point cloud's unsigned distance is taken to discs (surfels) at its points
            rather than to the bare points: each disc lies in the plane fitted to the point's
            ``surfel_k`` nearest neighbours (PCA, unoriented) with the distance to the
            ``surfel_k``-th one as its radius. 0: bare points.
    """

    size: int
    neighbour_k: int
    global_sigma: float
    global_fraction: float
    uniform_fraction: float
    bounds: float
    surfel_k: int = 0


def unsigned_distance_pool(raw: RawInput, spec: PoolSpec, seed: int) -> dict[str, torch.Tensor]:
    """Samples around the input with their unsigned distance and its gradient.

    Returns tensors ``pool (P, D)``, ``pool_distance (P,)``: the distance ``h`` to the input
    (exact distance to the triangles of a soup, to the nearest point of a point cloud) and
    ``pool_direction (P, D)``: ``∇h = (x - nearest(x)) / h`` (zero where ``h = 0``), all
    float32. Both distances use libigl's AABB tree, over the points
    (:func:`~isofield.geometry.nearest.nearest_points`) or the triangles; neither loops over
    points in Python.
    """
    if not 0 <= spec.global_fraction + spec.uniform_fraction <= 1:
        raise InputError("global_fraction + uniform_fraction must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    points = raw.points.astype(np.float64)
    tree = cKDTree(points)
    local_sigma = neighbour_distances(tree, spec.neighbour_k)[:, -1]
    n_uniform = int(round(spec.uniform_fraction * spec.size))
    n_global = int(round(spec.global_fraction * spec.size))
    n_local = spec.size - n_uniform - n_global
    centres = rng.integers(len(points), size=n_local + n_global)
    sigmas = np.concatenate([local_sigma[centres[:n_local]], np.full(n_global, spec.global_sigma)])
    gaussian = points[centres] + rng.standard_normal((len(centres), raw.dim)) * sigmas[:, None]
    uniform = rng.uniform(-spec.bounds, spec.bounds, (n_uniform, raw.dim))
    samples = np.concatenate([gaussian, uniform])
    distance, nearest = _nearest_on_input(raw, points, samples, spec.surfel_k)
    offset = samples - nearest
    direction = np.divide(offset, distance[:, None], out=np.zeros_like(offset),
                          where=distance[:, None] > 0)
    return {
        "pool": torch.from_numpy(samples.astype(np.float32)),
        "pool_distance": torch.from_numpy(distance.astype(np.float32)),
        "pool_direction": torch.from_numpy(direction.astype(np.float32)),
    }


def _nearest_on_input(raw: RawInput, points: np.ndarray, samples: np.ndarray,
                      surfel_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance (P,) and nearest input point (P, D) of each sample (P, D), float64: on the
    triangles of a soup, else on the surfel of the nearest of the input ``points`` (N, D)
    float64 (``surfel_k`` > 0, see :class:`PoolSpec`) or at that point itself."""
    if raw.triangles is not None:
        closest = TriangleDistance.from_triangles(raw.triangles).closest(samples)
        return closest.distance.astype(np.float64), closest.points.astype(np.float64)
    if surfel_k <= 0:
        distance, index = nearest_points(points, samples)
        return distance, points[index]
    return SurfelDistance(points, surfel_k).closest(samples)
