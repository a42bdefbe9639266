"""Face clean-up before orientation and inside tests: merged vertices, degenerate and repeated faces.

Real meshes (ShapeNet, PartNet) store many triangles twice, often once in each winding so that
renderers without back faces show both sides. A face stored in both windings cancels in winding
numbers and makes every edge non-manifold (4 faces), which breaks orientation by propagation.
:func:`clean_faces` finds such repeats so that one copy of each triangle is kept; the counts also
describe the mesh for ``isofield info``.
"""

from __future__ import annotations

from dataclasses import dataclass

import igl
import numpy as np

MERGE_TOLERANCE = 1e-9
"""Vertices closer than this fraction of the bounding-box diagonal are merged."""


def merge_vertices(
    vertices: np.ndarray, faces: np.ndarray, tolerance: float = MERGE_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tolerance`` x bounding-box diagonal (libigl).

    Args:
        vertices: (V, 3) float64; faces: (F, 3) int64.

    Returns:
        merged vertices (V', 3) float64 and the faces (F, 3) int64 re-indexed into them, in the
        input order (a face may get a repeated corner).
    """
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0))) if len(vertices) else 0.0
    merged_vertices, _, _, merged_faces = igl.remove_duplicate_vertices(
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
        tolerance * diagonal,
    )
    return merged_vertices, np.asarray(merged_faces, dtype=np.int64)


def same_cyclic_order(faces_a: np.ndarray, faces_b: np.ndarray) -> np.ndarray:
    """(F,) bool: row i of ``faces_a`` (F, 3) is a rotation (not a reflection) of row i of
    ``faces_b`` (F, 3)."""
    return np.any(
        [np.all(faces_a == np.roll(faces_b, shift, axis=1), axis=1) for shift in range(3)],
        axis=0,
    )


@dataclass(frozen=True)
class FaceCleanup:
    """Which faces of an (F, 3) face array to keep, and why the others go.

    Attributes:
        keep: (F,) bool, faces with three distinct corners that are the first of their vertex set.
        twin: (F,) int64, the kept face with the same three corners (a kept face is its own twin;
            -1 for degenerate faces).
        degenerate: faces with a repeated corner (no area once vertices are merged).
        duplicate: repeats of a kept face in the same winding.
        reverse_duplicate: repeats of a kept face in the opposite winding.
    """

    keep: np.ndarray
    twin: np.ndarray
    degenerate: int
    duplicate: int
    reverse_duplicate: int

    @property
    def dropped(self) -> int:
        """Faces not kept."""
        return self.degenerate + self.duplicate + self.reverse_duplicate


def clean_faces(faces: np.ndarray) -> FaceCleanup:
    """Find degenerate faces and repeated faces (either winding) of faces (F, 3) int64, whose
    vertices are already merged (:func:`merge_vertices`); the first face of each vertex set is
    kept."""
    faces = np.asarray(faces, dtype=np.int64)
    proper = np.all(faces != np.roll(faces, 1, axis=1), axis=1)
    twin = np.full(len(faces), -1, dtype=np.int64)
    rows = np.flatnonzero(proper)
    corners = np.sort(faces[rows], axis=1)
    order = np.lexsort(corners.T[::-1])  # stable: the first face of each vertex set leads
    ordered = corners[order]
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    leader = order[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    twin[rows[order]] = rows[leader]
    keep = proper & (twin == np.arange(len(faces)))
    repeated = proper & ~keep
    same = same_cyclic_order(faces[repeated], faces[twin[repeated]])
    return FaceCleanup(
        keep=keep,
        twin=twin,
        degenerate=int(np.count_nonzero(~proper)),
        duplicate=int(np.count_nonzero(same)),
        reverse_duplicate=int(np.count_nonzero(~same)),
    )
