"""Random points on a mesh surface and random subsets of point clouds (seeded, vectorised)."""

from __future__ import annotations

import numpy as np
import trimesh

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
