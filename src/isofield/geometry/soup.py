"""Damage a mesh into a triangle soup: the raw input that SAL/SALD/DiGS are made for.

Real CAD exports and scans come as soups: faces in any order, some flipped, some duplicated,
vertices not shared, holes. :func:`make_triangle_soup` produces such an input from a clean mesh
so that the raw-data methods can be tested and benchmarked against the clean reference.
"""

from __future__ import annotations

import numpy as np
import trimesh

from isofield.errors import InputError


def make_triangle_soup(mesh: trimesh.Trimesh, flip_fraction: float = 1 / 3, holes: int = 4,
                       hole_radius: float = 0.03, duplicate_fraction: float = 0.05,
                       seed: int = 0) -> trimesh.Trimesh:
    """A soup made from ``mesh``: every face gets its own three vertices, ``holes`` discs of faces
    are removed, a ``duplicate_fraction`` of the faces is repeated, a ``flip_fraction`` has its
    winding reversed, and the faces are shuffled.

    Args:
        mesh: the clean mesh, vertices (V, 3), faces (F, 3).
        flip_fraction: share of faces whose orientation is reversed, in [0, 1].
        holes: number of holes; each removes the faces whose centroid lies within
            ``hole_radius`` (a fraction of the bounding-box diagonal) of a random face centroid.
        hole_radius: radius of the holes as a fraction of the bounding-box diagonal.
        duplicate_fraction: share of the remaining faces added a second time, in [0, 1].
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        a ``trimesh.Trimesh(process=False)`` with 3 unshared vertices per face.
    """
    for name, value in [("flip_fraction", flip_fraction), ("duplicate_fraction", duplicate_fraction)]:
        if not 0 <= value <= 1:
            raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    if holes < 0 or hole_radius < 0:
        raise InputError(f"holes and hole_radius must be >= 0, got {holes!r}, {hole_radius!r}")
    rng = np.random.default_rng(seed)
    corners = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]  # (F, 3, 3)
    centroids = corners.mean(axis=1)
    diagonal = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    keep = np.ones(len(corners), dtype=bool)
    for centre in centroids[rng.choice(len(corners), size=holes, replace=False)]:
        keep &= np.linalg.norm(centroids - centre, axis=1) > hole_radius * diagonal
    corners = corners[keep]
    duplicates = rng.choice(len(corners), size=int(duplicate_fraction * len(corners)), replace=False)
    corners = np.concatenate([corners, corners[duplicates]])
    flipped = rng.random(len(corners)) < flip_fraction
    corners[flipped] = corners[flipped][:, ::-1]
    corners = corners[rng.permutation(len(corners))]
    faces = np.arange(3 * len(corners)).reshape(-1, 3)
    return trimesh.Trimesh(corners.reshape(-1, 3), faces, process=False)
