"""Unsigned distance to a point cloud read as small discs (surfels), in 2-D or 3-D.

Each point carries a disc in the plane (a segment on the line, in 2-D) fitted to its k nearest
neighbours, itself included (:func:`~isofield.geometry.normals.plane_normals`), with the distance
to the k-th neighbour as radius. A query's distance is to the disc of its nearest point. Unlike
the bare distance to the points, it is about 0 everywhere on a densely sampled surface, not only
at the samples, so it does not print the sampling pattern into distances (SAL's unsigned
distance and the error pictures of fits against a point cloud use it).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from isofield.geometry.nearest import nearest_points
from isofield.geometry.normals import plane_normals


class SurfelDistance:
    """Distance to the surfels of points (N, D), N >= 2: see the module notes."""

    def __init__(self, points: np.ndarray, neighbours: int = 10) -> None:
        self.tree = cKDTree(np.asarray(points, dtype=np.float64))
        k = max(min(neighbours, self.tree.n - 1), self.tree.m)
        distances, index = self.tree.query(self.tree.data, k=k + 1, workers=-1)
        self.normals = plane_normals(self.tree.data, index)  # (N, D), unoriented
        self.radii = distances[:, -1]  # (N,)

    def closest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (M,) and nearest surfel point (M, D), float64, of queries (M, D)."""
        queries = np.asarray(queries, dtype=np.float64)
        _, index = nearest_points(self.tree.data, queries)
        centre, normal = self.tree.data[index], self.normals[index]
        offset = queries - centre
        tangential = offset - np.sum(offset * normal, axis=1, keepdims=True) * normal
        length = np.linalg.norm(tangential, axis=1, keepdims=True)
        shrink = np.minimum(1.0, np.divide(self.radii[index, None], length,
                                           out=np.ones_like(length), where=length > 0))
        nearest = centre + tangential * shrink  # clipped to the disc
        return np.linalg.norm(queries - nearest, axis=1), nearest

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        """Distance (M,) float32 from queries (M, D) to the surfels."""
        return self.closest(queries)[0].astype(np.float32)
