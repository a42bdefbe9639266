"""Ground-truth unsigned distance, winding number, occupancy and signed distance.

Distances are exact (libigl's AABB tree over the triangles, in float64). Inside/outside comes
from the generalised winding number (libigl's fast winding number), which stays meaningful on
meshes with holes: a point is inside where ``|w| >= 0.5``.

Plain winding numbers break on inconsistently oriented faces, so :class:`MeshDistance` first
repairs the orientation (see :func:`orient_outward`): duplicate vertices are merged, faces are
made consistent inside each orientable patch (BFS over manifold edges), and every patch is
turned so that the volume it encloses, measured from its own centroid, is positive.

All queries are evaluated in Morton (Z-curve) order and in chunks: spatially coherent queries
make the tree traversals 1.4-2.6x faster, and chunking bounds the temporary memory.
libigl runs each call on all cores itself (``IGL_NUM_THREADS`` limits it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import igl
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.geometry.normalization import Normalization

DEFAULT_CHUNK_SIZE = 1 << 20
"""Queries per libigl call: about 40 MB of float64 temporaries."""

MERGE_TOLERANCE = 1e-9
"""Vertices closer than this fraction of the bounding-box diagonal are merged for orientation."""

NO_INSIDE_TOLERANCE = 1e-6
"""A mesh whose enclosed volume is below this fraction of area x diagonal has no inside."""


@dataclass(frozen=True)
class ClosestPoints:
    """Nearest surface points of N queries.

    Attributes:
        distance: (N,) float32, Euclidean distance in the units of the input.
        points: (N, 3) float32, the nearest point on the surface.
        index: (N,) int64, the nearest triangle (meshes, soups) or reference point (point sets).
    """

    distance: np.ndarray
    points: np.ndarray
    index: np.ndarray


def as_query_points(points: np.ndarray, name: str = "query points") -> np.ndarray:
    """Validate points (N, 3) and return them as C-contiguous float64 (what libigl takes)."""
    pts = np.ascontiguousarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"{name} must have shape (N, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise InputError(f"{name} contain NaN or Inf")
    return pts


def _interleave_table(bits: int = 10) -> np.ndarray:
    """(2^bits,) uint32: each value with two zero bits inserted after each of its bits."""
    values = np.arange(1 << bits, dtype=np.uint32)
    table = np.zeros_like(values)
    for bit in range(bits):
        table |= ((values >> bit) & 1) << (3 * bit)
    return table


_MORTON_TABLE = _interleave_table()


def spatial_order(points: np.ndarray) -> np.ndarray:
    """Permutation (N,) that sorts points (N, 3) along a Morton curve on a 1024^3 grid."""
    lo = points.min(axis=0)
    extent = max(float(np.ptp(points, axis=0).max()), 1e-300)
    cells = ((points - lo) * (1023.0 / extent)).astype(np.intp)
    table = _MORTON_TABLE
    code = table[cells[:, 0]] | (table[cells[:, 1]] << 1) | (table[cells[:, 2]] << 2)
    return np.argsort(code)


def _map_in_spatial_order(
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, ...]],
    points: np.ndarray,
    chunk_size: int,
) -> tuple[np.ndarray, ...]:
    """Apply ``evaluate`` to Morton-sorted chunks of points (N, 3) float64.

    ``evaluate`` maps (M, 3) float64 to a tuple of arrays with M rows; the concatenated
    results are returned in the input order.
    """
    if len(points) == 0:
        return tuple(out[:0] for out in evaluate(np.zeros((1, 3))))
    order = spatial_order(points)
    ordered = points[order]
    parts = [
        evaluate(np.ascontiguousarray(ordered[start : start + chunk_size]))
        for start in range(0, len(points), chunk_size)
    ]
    results = []
    for k in range(len(parts[0])):
        merged = np.concatenate([part[k] for part in parts])
        unsorted = np.empty_like(merged)
        unsorted[order] = merged
        results.append(unsorted)
    return tuple(results)


def oriented_points_inside(points: np.ndarray, normals: np.ndarray, queries: np.ndarray,
                           neighbours: int = 8) -> np.ndarray:
    """Inside test from an oriented point cloud: generalised winding number >= 0.5.

    Uses libigl's fast winding number for point clouds (Barill et al. 2018); each point's
    area is ``pi r^2 / k`` with ``r`` the distance to its k-th neighbour. Reliable away from
    the surface (measured on the CGAL armadillo, 100k points: 100% agreement with the mesh's
    inside test beyond 1% of the radius, 99.99% overall).

    Args:
        points: (N, 3) surface points; normals: (N, 3) outward unit normals;
        queries: (M, 3). Returns (M,) bool.
    """
    p = np.ascontiguousarray(points, dtype=np.float64)
    n = np.ascontiguousarray(normals, dtype=np.float64)
    k = min(neighbours, len(p) - 1)
    if k < 1:
        raise InputError("an inside test from points needs at least 2 points")
    distance, _ = cKDTree(p).query(p, k=k + 1, workers=-1)
    areas = np.pi * distance[:, -1] ** 2 / k
    q = np.ascontiguousarray(queries, dtype=np.float64)
    return igl.fast_winding_number(p, n, areas, q) >= 0.5


class PointSetDistance:
    """Unsigned distance to a finite point set (scipy cKDTree, all cores)."""

    def __init__(self, reference: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        """``reference``: points (M, 3), M >= 1."""
        ref = as_query_points(reference, name="reference points")
        if len(ref) == 0:
            raise InputError("reference points are empty")
        self.reference = ref
        self._tree = cKDTree(ref)
        self._chunk_size = chunk_size

    def evaluate_chunk(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (M,) and nearest reference index (M,) for one chunk (M, 3) float64."""
        distance, index = self._tree.query(points, k=1, workers=-1)
        return distance, index.astype(np.int64)

    def closest(self, points: np.ndarray) -> ClosestPoints:
        """Nearest reference point of each query point (N, 3)."""
        distance, index = _map_in_spatial_order(
            self.evaluate_chunk, as_query_points(points), self._chunk_size
        )
        return ClosestPoints(
            distance.astype(np.float32), self.reference[index].astype(np.float32), index
        )

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from each query point (N, 3) to the set."""
        return self.closest(points).distance


class TriangleDistance:
    """Exact unsigned distance to triangles (a mesh or a soup: connectivity is not used)."""

    def __init__(
        self, vertices: np.ndarray, faces: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        """``vertices`` (V, 3) float, ``faces`` (F, 3) int indices into ``vertices``, F >= 1."""
        self.vertices, self.faces = _validated_triangles(vertices, faces)
        self._tree = igl.AABB()
        self._tree.init(self.vertices, self.faces)
        self._chunk_size = chunk_size

    @classmethod
    def from_triangles(
        cls, triangles: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> "TriangleDistance":
        """Build from a triangle soup (T, 3, 3): corner coordinates, no shared vertices."""
        tris = np.asarray(triangles, dtype=np.float64)
        if tris.ndim != 3 or tris.shape[1:] != (3, 3):
            raise InputError(f"triangle soup must have shape (T, 3, 3), got {tris.shape}")
        faces = np.arange(3 * len(tris), dtype=np.int64).reshape(-1, 3)
        return cls(tris.reshape(-1, 3), faces, chunk_size)

    def evaluate_chunk(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance (M,), closest point (M, 3) and triangle (M,) for one chunk (M, 3) float64.

        No validation, sorting or chunking: use :meth:`closest` for arbitrary input.
        """
        squared, index, closest = self._tree.squared_distance(self.vertices, self.faces, points)
        return np.sqrt(squared), closest, index.astype(np.int64)

    def closest(self, points: np.ndarray) -> ClosestPoints:
        """Nearest surface point of each query point (N, 3)."""
        distance, closest, index = _map_in_spatial_order(
            self.evaluate_chunk, as_query_points(points), self._chunk_size
        )
        return ClosestPoints(distance.astype(np.float32), closest.astype(np.float32), index)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from each query point (N, 3) to the triangles."""
        return self.closest(points).distance


def _validated_triangles(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a triangle mesh and return (V, 3) float64 and (F, 3) int64, both C-contiguous."""
    verts = np.ascontiguousarray(vertices, dtype=np.float64)
    tris = np.ascontiguousarray(faces, dtype=np.int64)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise InputError(f"mesh vertices must have shape (V, 3), got {verts.shape}")
    if tris.ndim != 2 or tris.shape[1] != 3 or len(tris) == 0:
        raise InputError(f"mesh must have triangle faces (F, 3) with F >= 1, got {tris.shape}")
    if tris.min() < 0 or tris.max() >= len(verts):
        raise InputError(f"mesh faces index vertices outside 0..{len(verts) - 1}")
    if not np.all(np.isfinite(verts[tris])):
        raise InputError("mesh vertices contain NaN or Inf")
    return verts, tris


def _same_cyclic_order(faces_a: np.ndarray, faces_b: np.ndarray) -> np.ndarray:
    """(F,) bool: row i of ``faces_a`` is a rotation (not a reflection) of row i of ``faces_b``."""
    return np.any(
        [np.all(faces_a == np.roll(faces_b, shift, axis=1), axis=1) for shift in range(3)],
        axis=0,
    )


def _patch_volumes(vertices: np.ndarray, faces: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """Signed volume (P,) of each patch: cones to its faces from the mean of its face centroids.

    For a closed patch this is its enclosed volume whatever the apex; for an open one (holes)
    the apex inside the patch keeps the sign right as long as the holes are small.
    """
    corners = vertices[faces]
    count = np.bincount(patch)
    centroid = np.stack(
        [np.bincount(patch, corners[:, :, k].mean(axis=1)) / count for k in range(3)], axis=1
    )
    a, b, c = (corners[:, k] - centroid[patch] for k in range(3))
    cone = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return np.bincount(patch, cone, minlength=len(count))


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, float]:
    """Re-orient faces so that winding numbers count every part of the shape as inside.

    Duplicate vertices are merged (tolerance :data:`MERGE_TOLERANCE` x bounding-box diagonal)
    only to find the connectivity; faces are then oriented consistently within each orientable
    patch (``igl.bfs_orient``) and each patch is flipped where its enclosed volume, measured
    from the patch's own centroid, is negative. Faces with a repeated (merged) corner have no
    area and are left as they are. A hollow shell whose inner surface is a separate patch is
    therefore filled: every patch is counted as a solid.

    Args:
        vertices: (V, 3) float64.
        faces: (F, 3) int64.

    Returns:
        faces (F, 3) int64 in the input order, with two corners swapped where flipped, and the
        total volume enclosed by the patches (sum of absolute patch volumes, cubic input units).
    """
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0)))
    merged_vertices, _, _, merged_faces = igl.remove_duplicate_vertices(
        vertices, faces, MERGE_TOLERANCE * diagonal
    )
    proper = (
        (merged_faces[:, 0] != merged_faces[:, 1])
        & (merged_faces[:, 1] != merged_faces[:, 2])
        & (merged_faces[:, 2] != merged_faces[:, 0])
    )
    if not proper.any():
        return faces.copy(), 0.0
    consistent, patch = igl.bfs_orient(np.ascontiguousarray(merged_faces[proper]))
    volume = _patch_volumes(merged_vertices, consistent, patch)
    flipped = np.zeros(len(faces), dtype=bool)
    flipped[proper] = ~_same_cyclic_order(consistent, merged_faces[proper]) ^ (volume < 0)[patch]
    oriented = faces.copy()
    oriented[flipped] = oriented[flipped][:, [1, 0, 2]]
    return oriented, float(np.abs(volume).sum())


def _encloses_volume(corners: np.ndarray, volume: float) -> bool:
    """Whether triangles (F, 3, 3) enclosing ``volume`` have an inside.

    Flat sheets enclose exactly zero volume, up to rounding of their vertices; the threshold is
    :data:`NO_INSIDE_TOLERANCE` x surface area x bounding-box diagonal (a box of thickness t and
    side L scores about t / (3 L), so plates down to t = 1e-5 L still count as solids).
    """
    edge_a, edge_b = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = float(np.linalg.norm(np.cross(edge_a, edge_b), axis=1).sum()) / 2
    diagonal = float(np.linalg.norm(np.ptp(corners.reshape(-1, 3), axis=0)))
    return volume > NO_INSIDE_TOLERANCE * area * diagonal


class MeshDistance:
    """Distance, winding number, occupancy and signed distance to one triangle mesh.

    The acceleration structures are built once: an AABB tree over the triangles as given, and
    the outward re-orientation used for winding numbers (:func:`orient_outward`). libigl's fast
    winding number rebuilds its own hierarchy on every call (about 50 ms for 50k faces), so
    query in large batches. Results are in the units and frame of the mesh.
    """

    def __init__(self, mesh: trimesh.Trimesh, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.mesh = mesh
        self.surface = TriangleDistance(mesh.vertices, mesh.faces, chunk_size)
        vertices, faces = self.surface.vertices, self.surface.faces
        self.oriented_faces, self.enclosed_volume = orient_outward(vertices, faces)
        self.has_inside = _encloses_volume(vertices[faces], self.enclosed_volume)
        self._chunk_size = chunk_size

    @functools.cached_property
    def oriented_mesh(self) -> trimesh.Trimesh:
        """The mesh with its faces re-oriented outward (same vertices, faces and face order)."""
        return trimesh.Trimesh(self.surface.vertices, self.oriented_faces, process=False)

    def closest(self, points: np.ndarray) -> ClosestPoints:
        """Nearest surface point of each query point (N, 3); see :class:`TriangleDistance`."""
        return self.surface.closest(points)

    def unsigned(self, points: np.ndarray) -> np.ndarray:
        """Exact distance (N,) float32 from points (N, 3) to the triangles."""
        return self.surface(points)

    def _winding(self, points: np.ndarray) -> tuple[np.ndarray]:
        return (igl.fast_winding_number(self.surface.vertices, self.oriented_faces, points),)

    def _signed(self, points: np.ndarray) -> tuple[np.ndarray]:
        distance = self.surface.evaluate_chunk(points)[0]
        inside = np.abs(self._winding(points)[0]) >= 0.5
        return (np.where(inside, -distance, distance),)

    def winding_number(self, points: np.ndarray) -> np.ndarray:
        """Generalised winding number (N,) float32 of the re-oriented mesh at points (N, 3).

        About 1 inside, 0 outside, fractional near holes; accurate to ~3e-3 near the surface.
        """
        pts = as_query_points(points)
        (winding,) = _map_in_spatial_order(self._winding, pts, self._chunk_size)
        return winding.astype(np.float32)

    def _require_inside(self) -> None:
        if not self.has_inside:
            raise InputError(
                "mesh has no inside (its surfaces enclose no volume, e.g. an open flat sheet): "
                "signed distance and occupancy are undefined; use the unsigned distance"
            )

    def occupancy(self, points: np.ndarray) -> np.ndarray:
        """Inside test (N,) bool at points (N, 3): ``|winding number| >= 0.5``."""
        self._require_inside()
        return np.abs(self.winding_number(points)) >= 0.5

    def signed_in(self, frame: Normalization) -> Callable[[np.ndarray], np.ndarray]:
        """The signed distance as a field of ``frame``'s canonical coordinates and units:
        points (N, 3) canonical -> (N,) float32. The mesh stays in its own coordinates."""
        self._require_inside()

        def field(points: np.ndarray) -> np.ndarray:
            user = frame.to_user(np.asarray(points, dtype=np.float64))
            return (self.signed(user) / frame.scale).astype(np.float32)

        return field

    def signed(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (N,) float32 at points (N, 3): exact distance, negative inside."""
        self._require_inside()
        (signed,) = _map_in_spatial_order(self._signed, as_query_points(points), self._chunk_size)
        return signed.astype(np.float32)
