"""Random points on a mesh surface and random subsets of point clouds (seeded, vectorised);
neighbour distances, the local scale of Gaussian samples around points."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.geometry.io import PointCloud


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> PointCloud:
    """Draw ``n`` points uniformly (by area) on the triangles of ``mesh``.

    Each triangle receives a multinomial share of the ``n`` samples with probabilities
    proportional to its area (zero-area triangles get none), and the samples are shuffled. A point
    inside a triangle has barycentric weights ``(1 - sqrt(r1), sqrt(r1) (1 - r2), sqrt(r1) r2)``
    with r1, r2 ~ U[0, 1), which is uniform over the triangle. Each point carries its triangle's
    unit normal, oriented by the face winding (counter-clockwise seen from outside -> outward).

    Args:
        mesh: triangle mesh; vertices (V, 3), faces (F, 3).
        n: number of samples, >= 1.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same points.

    Returns:
        PointCloud with points (n, 3) and normals (n, 3), float32.
    """
    n = _positive_count(n, "number of surface samples")
    corners = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]  # (F, 3, 3)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # (F, 3)
    double_areas = np.linalg.norm(cross, axis=1)
    total = double_areas.sum()
    if not total > 0:
        raise InputError("mesh has zero surface area; cannot sample points on it")
    rng = np.random.default_rng(seed)
    samples_per_face = rng.multinomial(n, double_areas / total)
    face = rng.permutation(np.repeat(np.arange(len(double_areas)), samples_per_face))
    root = np.sqrt(rng.random(n))
    second = rng.random(n)
    weights = np.stack([1 - root, root * (1 - second), root * second], axis=1)  # (n, 3)
    points = np.einsum("nc,ncd->nd", weights, corners[face])
    has_area = double_areas[:, None] > 0
    unit_normals = np.divide(cross, double_areas[:, None], out=np.zeros_like(cross), where=has_area)
    return PointCloud(points, unit_normals[face], source="surface samples")


def _positive_count(n: int, what: str) -> int:
    """``n`` as an int, or InputError when it is not a positive integer."""
    if isinstance(n, bool) or not float(n).is_integer() or n < 1:
        raise InputError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def neighbour_distances(tree: cKDTree, k: int) -> np.ndarray:
    """Distances (N, k + 1) of each tree point to itself and its k nearest neighbours (k is
    capped at N − 1); column -1 is IGR's and SAL's local σ of the Gaussians around a point."""
    k = min(k, tree.n - 1)
    distances, _ = tree.query(tree.data, k=k + 1, workers=-1)
    return distances


def sample_points(cloud: PointCloud, n: int, seed: int = 0) -> PointCloud:
    """Pick ``n`` points of ``cloud`` at random: without replacement when ``n <= len(cloud)``,
    with replacement otherwise. Normals follow their points.

    Returns:
        PointCloud with points (n, 3) and normals (n, 3) or ``None``, float32.
    """
    n = _positive_count(n, "number of points to pick")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(cloud), size=n, replace=n > len(cloud))
    normals = None if cloud.normals is None else cloud.normals[chosen]
    return PointCloud(cloud.points[chosen], normals, source=cloud.source)


def sample_polyline(vertices: np.ndarray, n: int, closed: bool = True, seed: int = 0) -> np.ndarray:
    """Draw ``n`` points uniformly (by length) on a polyline: the 2-D analogue of
    :func:`sample_surface`, used to make planar test inputs (curves, polygon outlines).

    Args:
        vertices: (V, D) corners in order, V >= 2.
        n: number of samples, >= 1.
        closed: also use the segment from the last corner back to the first.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        (n, D) float32 points, shuffled.
    """
    n = _positive_count(n, "number of curve samples")
    corners = np.asarray(vertices, dtype=np.float64)
    if corners.ndim != 2 or len(corners) < 2 or not np.all(np.isfinite(corners)):
        raise InputError(f"polyline needs at least 2 finite corners of shape (V, D), got {corners.shape}")
    ends = np.roll(corners, -1, axis=0) if closed else corners[1:]
    starts = corners if closed else corners[:-1]
    lengths = np.linalg.norm(ends - starts, axis=1)
    if lengths.sum() <= 0:
        raise InputError("polyline has zero length")
    rng = np.random.default_rng(seed)
    segment = rng.choice(len(starts), size=n, p=lengths / lengths.sum())
    t = rng.random(n)[:, None]
    return (starts[segment] + t * (ends[segment] - starts[segment])).astype(np.float32)
