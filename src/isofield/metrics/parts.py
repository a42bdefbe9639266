"""Whether a predicted surface kept every part of the reference: pieces and missing regions.

Chamfer and F-score average over the whole surface, so a chair that lost one spindle, or grew a
floating sheet beside its back, can still score well. Two counts say it directly:

- ``components``: connected pieces of a mesh (faces joined through shared edges), for the
  prediction and for the reference; a prediction with more pieces than its reference has torn
  or floating parts, one with fewer has lost a separate part (or bridged a gap).
- ``largest_missing_share``: the reference's surface points (area-weighted samples) farther than
  ``tau`` from the prediction's triangles (exact distance) are grouped into regions (two such points are
  joined when closer than ``LINK_SPACINGS`` times the samples' mean spacing
  ``sqrt(area / n)``); the largest region's share of the reference's area. A lost slat, leg or
  spindle shows as one region of its area share; scattered misses along a blurred edge stay
  small.

:func:`parts_report` returns both; :data:`LOST_PART_SHARE` is the region size this project
calls a lost part.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from isofield.geometry.groundtruth import TriangleDistance
from isofield.geometry.sampling import sample_surface

LINK_SPACINGS = 3.0
"""Missed points closer than this many mean sample spacings belong to one region."""
LOST_PART_SHARE = 0.005
"""A missing region of at least this share of the reference's area (0.5%) counts as a lost
part: about the area of one spindle of a chair."""


def component_count(mesh: trimesh.Trimesh) -> int:
    """Connected pieces of ``mesh``: faces joined through shared edges (0 for no faces)."""
    if len(mesh.faces) == 0:
        return 0
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    return int(labels.max()) + 1


def largest_missing_share(reference: np.ndarray, missed: np.ndarray, reference_area: float) -> float:
    """Share of the reference's area in its largest region of missed points (module notes).

    Args:
        reference: (M, 3) area-weighted samples of the reference surface.
        missed: (M,) bool, the samples the prediction missed.
        reference_area: the reference surface's area (units²).

    Returns:
        The largest region's point count over M, in [0, 1] (0 when nothing is missed).
    """
    missed = reference[missed]
    if len(missed) == 0:
        return 0.0
    link = LINK_SPACINGS * np.sqrt(reference_area / len(reference))
    pairs = cKDTree(missed).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(missed),) * 2)
    _, labels = connected_components(graph, directed=False)
    return float(np.bincount(labels).max() / len(reference))


def parts_report(predicted: trimesh.Trimesh, reference: trimesh.Trimesh, tau: float,
                 n_points: int = 100_000, seed: int = 0) -> dict[str, float | int | bool]:
    """Pieces of both meshes and the prediction's largest missing region (module notes).

    Args:
        predicted, reference: the two meshes, same units.
        tau: distance beyond which the reference counts as missed (e.g. 1% of its diagonal).
        n_points: area-weighted samples of the reference.
        seed: sampling seed.

    Returns:
        ``components``, ``components_reference``, ``largest_missing_share`` (fraction of the
        reference's area) and ``parts_kept`` (the same number of pieces and no missing region
        of :data:`LOST_PART_SHARE` or more).
    """
    points = sample_surface(reference, n_points, seed).points
    pieces, reference_pieces = component_count(predicted), component_count(reference)
    if pieces == 0:
        return {"components": 0, "components_reference": reference_pieces,
                "largest_missing_share": 1.0, "parts_kept": False}
    distance = TriangleDistance(np.asarray(predicted.vertices), np.asarray(predicted.faces))(points)
    missing = largest_missing_share(points, distance > tau, float(reference.area))
    return {"components": pieces, "components_reference": reference_pieces,
            "largest_missing_share": missing,
            "parts_kept": pieces == reference_pieces and missing < LOST_PART_SHARE}
