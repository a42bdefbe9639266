"""Ground-truth unsigned distance, winding number, occupancy and signed distance.

Distances are exact (libigl's AABB tree over the triangles, in float64). Inside/outside comes
from the generalised winding number (libigl's fast winding number), which stays meaningful on
meshes with holes: a point is inside where ``|w| >= 0.5``.

Plain winding numbers break on inconsistently oriented faces, so :class:`MeshDistance` first
repairs the orientation (see :func:`orient_outward`): duplicate vertices are merged, degenerate
and repeated faces (either winding) are set aside (:mod:`isofield.geometry.cleanup`), faces are
made consistent inside each orientable patch (BFS over manifold edges), and every patch is
turned so that the volume it encloses, measured from its own centroid, is positive.

Where the winding number is still ambiguous at many probe points (internal walls, stray internal
triangles, tangled parts), a flood fill of the voxelised surface (:mod:`isofield.geometry.floodfill`)
decides instead if it encloses a volume without leaking (:class:`MeshDistance`,
:class:`SignEvidence`).

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
from isofield.geometry.cleanup import FaceCleanup, clean_faces, merge_vertices, same_cyclic_order
from isofield.geometry.floodfill import INSIDE, OUTSIDE, SURFACE, UNDECIDED, FloodFill
from isofield.geometry.normalization import Normalization
from isofield.geometry.sampling import sample_surface
from isofield.geometry.surfels import SurfelDistance

DEFAULT_CHUNK_SIZE = 1 << 20
"""Queries per libigl call: about 40 MB of float64 temporaries."""

NO_INSIDE_TOLERANCE = 1e-6
"""A mesh whose enclosed volume is below this fraction of area x diagonal has no inside."""

AMBIGUOUS_WINDING = (0.2, 0.8)
"""A point's sign is ambiguous where its |generalised winding number| lies strictly between
these bounds, i.e. within 0.3 of the inside/outside threshold 0.5 (0 or 1 on closed meshes)."""

SIGN_PROBES = 20_000
"""Probe points (:func:`sign_probes`) at which :class:`MeshDistance` weighs its inside tests."""

PROBE_PADDING = 0.05
"""The uniform probes fill the bounding box grown by this fraction of its size per side."""

PROBE_SIGMA = 0.01
"""Standard deviation of the near-surface probes' offsets, as a fraction of the diagonal."""

TRUSTED_AMBIGUITY = 0.01
"""The winding number decides alone when at most this share of the probes is ambiguous."""

LEAK_TOLERANCE = 0.05
"""A flood fill leaked (and is not used) when it calls outside more than this share of the
probes whose winding number is clearly inside (``|w| >= AMBIGUOUS_WINDING[1]``)."""

FLOOD_CLOSINGS = (0, 2)
"""Flood fills tried in turn: the surface voxels as they are, then grown by 2 voxels to seal
holes up to about 4 voxels wide (:class:`~isofield.geometry.floodfill.FloodFill`)."""

HIGH_AMBIGUITY = 0.05
"""Above this ambiguous share, preprocessing and the CLI warn (:func:`sign_warning`)."""


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

    Uses libigl's fast winding number for point clouds (Barill et al. 2018) with a first-order
    expansion of far clusters; each point's area is ``pi r^2 / k`` with ``r`` the distance to
    its k-th neighbour. Reliable away from the surface (measured on the CGAL armadillo, 100k
    points, 200k uniform queries: 99.999% agreement with the mesh's inside test beyond 1% of
    the radius, 99.99% overall, in 0.55 s; libigl's default second order agrees as well and
    takes 4.2 s).

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
    return igl.fast_winding_number(p, n, areas, q, expansion_order=1) >= 0.5


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


def reference_distance(reference: trimesh.Trimesh | np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Unsigned distance (N,) from points (N, 3) to a reference: a mesh's triangles, or the
    surfels of reference points (M, 3) (so that error colours do not show their sampling)."""
    if isinstance(reference, np.ndarray):
        return SurfelDistance(reference)
    return TriangleDistance(np.asarray(reference.vertices), np.asarray(reference.faces))


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


@dataclass(frozen=True)
class OrientedFaces:
    """Faces re-oriented outward (:func:`orient_outward`).

    Attributes:
        faces: (F, 3) int64 in the input order, two corners swapped where flipped; a repeated
            face is oriented like the copy that is kept.
        kept: (F,) bool, the faces that winding numbers use (no degenerate or repeated faces).
        volume: total volume enclosed by the patches (sum of absolute patch volumes, cubic
            input units).
        cleanup: what the clean-up found (:class:`~isofield.geometry.cleanup.FaceCleanup`).
    """

    faces: np.ndarray
    kept: np.ndarray
    volume: float
    cleanup: FaceCleanup


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> OrientedFaces:
    """Re-orient faces so that winding numbers count every part of the shape as inside.

    Duplicate vertices are merged (:func:`~isofield.geometry.cleanup.merge_vertices`) only to
    find the connectivity, and degenerate faces and repeated faces (same three corners, either
    winding) are set aside (:func:`~isofield.geometry.cleanup.clean_faces`): a triangle stored in
    both windings would cancel in the winding number and make its edges non-manifold. The kept
    faces are oriented consistently within each orientable patch (``igl.bfs_orient``) and each
    patch is flipped where its enclosed volume, measured from the patch's own centroid, is
    negative. A hollow shell whose inner surface is a separate patch is therefore filled: every
    patch is counted as a solid.

    Args:
        vertices: (V, 3) float64.
        faces: (F, 3) int64.
    """
    merged_vertices, merged = merge_vertices(vertices, faces)
    cleanup = clean_faces(merged)
    kept = np.flatnonzero(cleanup.keep)
    if not len(kept):
        return OrientedFaces(faces.copy(), cleanup.keep, 0.0, cleanup)
    consistent, patch = igl.bfs_orient(np.ascontiguousarray(merged[kept]))
    volume = _patch_volumes(merged_vertices, consistent, patch)
    flipped = np.zeros(len(faces), dtype=bool)
    flipped[kept] = ~same_cyclic_order(consistent, merged[kept]) ^ (volume < 0)[patch]
    repeated = np.flatnonzero(~cleanup.keep & (cleanup.twin >= 0))
    twin = cleanup.twin[repeated]
    flipped[repeated] = flipped[twin] ^ ~same_cyclic_order(merged[repeated], merged[twin])
    oriented = faces.copy()
    oriented[flipped] = oriented[flipped][:, [1, 0, 2]]
    return OrientedFaces(oriented, cleanup.keep, float(np.abs(volume).sum()), cleanup)


def _area(corners: np.ndarray) -> float:
    """Total area of triangles (F, 3, 3)."""
    edge_a, edge_b = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    return float(np.linalg.norm(np.cross(edge_a, edge_b), axis=1).sum()) / 2


def _encloses_volume(corners: np.ndarray, volume: float) -> bool:
    """Whether triangles (F, 3, 3) enclosing ``volume`` have an inside.

    Flat sheets enclose exactly zero volume, up to rounding of their vertices; the threshold is
    :data:`NO_INSIDE_TOLERANCE` x surface area x bounding-box diagonal (a box of thickness t and
    side L scores about t / (3 L), so plates down to t = 1e-5 L still count as solids).
    """
    diagonal = float(np.linalg.norm(np.ptp(corners.reshape(-1, 3), axis=0)))
    return volume > NO_INSIDE_TOLERANCE * _area(corners) * diagonal


@dataclass(frozen=True)
class SignEvidence:
    """How :class:`MeshDistance` chose its inside test, measured at :data:`SIGN_PROBES` probe
    points (:func:`sign_probes`).

    Attributes:
        method: ``"winding"`` or ``"flood-fill"``, the test that decides.
        ambiguous_fraction: share of the probes whose sign the chosen test leaves in doubt:
            for the winding number, ``AMBIGUOUS_WINDING[0] < |w| < AMBIGUOUS_WINDING[1]``; for
            the flood fill, probes in a surface voxel whose winding number is ambiguous too.
        winding_ambiguous_fraction: the winding number's share (equal to the former when it
            decides).
        leak_fraction: share of the probes with ``|w| >= AMBIGUOUS_WINDING[1]`` that the flood
            fill calls outside (None where no flood fill was made).
    """

    method: str
    ambiguous_fraction: float
    winding_ambiguous_fraction: float
    leak_fraction: float | None = None


def sign_probes(vertices: np.ndarray, faces: np.ndarray, n: int = SIGN_PROBES,
                seed: int = 0) -> np.ndarray:
    """Probe points (n, 3) of a mesh's inside test, like DeepSDF's samples: half uniform in the
    bounding box grown by :data:`PROBE_PADDING` of its size per side, half area-uniform surface
    points offset by isotropic Gaussian noise of standard deviation :data:`PROBE_SIGMA` x the
    bounding-box diagonal. ``vertices`` (V, 3), ``faces`` (F, 3) with positive total area."""
    rng = np.random.default_rng(seed)
    corners = vertices[faces].reshape(-1, 3)
    lower, upper = corners.min(axis=0), corners.max(axis=0)
    margin = PROBE_PADDING * (upper - lower)
    uniform = rng.uniform(lower - margin, upper + margin, (n - n // 2, 3))
    cloud = sample_surface(trimesh.Trimesh(vertices, faces, process=False), n // 2, seed)
    sigma = PROBE_SIGMA * float(np.linalg.norm(upper - lower))
    near = cloud.points.astype(np.float64) + rng.normal(0.0, sigma, (n // 2, 3))
    return np.concatenate([uniform, near])


def is_ambiguous(winding: np.ndarray) -> np.ndarray:
    """(N,) bool: winding numbers (N,) whose absolute value lies strictly inside
    :data:`AMBIGUOUS_WINDING`."""
    low, high = AMBIGUOUS_WINDING
    magnitude = np.abs(winding)
    return (magnitude > low) & (magnitude < high)


class MeshDistance:
    """Distance, winding number, occupancy and signed distance to one triangle mesh.

    The acceleration structures are built once: an AABB tree over the triangles as given, the
    outward re-orientation (:func:`orient_outward`) and the fast winding number's hierarchy
    over the kept, re-oriented faces (``igl.FastWindingNumberBVH``, about 0.1 s for 50k faces).
    Results are in the units and frame of the mesh.

    Inside/outside is decided per mesh by evidence (:class:`SignEvidence`): the winding number
    of the cleaned, re-oriented faces (``|w| >= 0.5``) when at most :data:`TRUSTED_AMBIGUITY` of
    the probes are ambiguous; otherwise a flood fill of the voxelised surface
    (:class:`~isofield.geometry.floodfill.FloodFill`) if it encloses a volume and does not leak
    (at most :data:`LEAK_TOLERANCE` of the probes the winding number puts clearly inside are
    outside for it); otherwise the winding number, with its high ambiguity reported. Under the
    flood fill, points in a surface voxel keep the winding number's decision unless it is
    ambiguous, and then take the nearest free voxel's label (``docs/architecture.md``).

    Attributes:
        has_inside: whether the surfaces enclose a volume (the cleaned faces' patch volume, or a
            flood fill that encloses one); signed queries refuse a mesh without.
        sign_method, ambiguous_fraction: the evidence's method and its ambiguous share.
        evidence: the whole :class:`SignEvidence`. cleanup: the repeated and degenerate faces
            set aside (:class:`~isofield.geometry.cleanup.FaceCleanup`).
    """

    def __init__(self, mesh: trimesh.Trimesh, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.mesh = mesh
        self.surface = TriangleDistance(mesh.vertices, mesh.faces, chunk_size)
        self._chunk_size = chunk_size
        vertices = self.surface.vertices
        orientation = orient_outward(vertices, self.surface.faces)
        self.oriented_faces, self.enclosed_volume = orientation.faces, orientation.volume
        self.cleanup = orientation.cleanup
        self._winding_faces = np.ascontiguousarray(orientation.faces[orientation.kept])
        self._flood: FloodFill | None = None
        self._winding_tree: igl.FastWindingNumberBVH | None = None
        corners = vertices[self._winding_faces]
        self.has_inside = bool(len(corners)) and _encloses_volume(corners, self.enclosed_volume)
        if not len(corners) or _area(corners) == 0:
            self.evidence = SignEvidence("winding", 1.0, 1.0)
            return
        self._winding_tree = igl.FastWindingNumberBVH()
        self._winding_tree.init(vertices, self._winding_faces)
        probes = sign_probes(vertices, self._winding_faces)
        winding = self.winding_number(probes)
        ambiguous = is_ambiguous(winding)
        share = float(ambiguous.mean())
        self.evidence = SignEvidence("winding", share, share)
        if share > TRUSTED_AMBIGUITY or not self.has_inside:
            for closing in FLOOD_CLOSINGS:
                if self._try_flood_fill(FloodFill(corners, closing=closing), probes, winding,
                                        ambiguous):
                    break

    def _try_flood_fill(self, flood: FloodFill, probes: np.ndarray, winding: np.ndarray,
                        ambiguous: np.ndarray) -> bool:
        """Take the flood fill as the inside test if it encloses a volume and does not leak;
        returns whether it was taken."""
        labels = flood.voxel_labels(probes)
        clearly_inside = np.abs(winding) >= AMBIGUOUS_WINDING[1]
        leaked = labels[clearly_inside] == OUTSIDE
        leak = float(leaked.mean()) if len(leaked) else 0.0
        winding_share = self.evidence.winding_ambiguous_fraction
        if flood.inside_volume > 0 and leak <= LEAK_TOLERANCE:
            self._flood, self.has_inside = flood, True
            doubt = float(np.mean(ambiguous & (labels == SURFACE)))
            self.evidence = SignEvidence("flood-fill", doubt, winding_share, leak)
            return True
        self.evidence = SignEvidence("winding", winding_share, winding_share, leak)
        return False

    @property
    def sign_method(self) -> str:
        """``"winding"`` or ``"flood-fill"``: the inside test that decides (:class:`SignEvidence`)."""
        return self.evidence.method

    @property
    def ambiguous_fraction(self) -> float:
        """Share of the probe points whose sign the deciding test leaves in doubt."""
        return self.evidence.ambiguous_fraction

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
        if self._winding_tree is None:  # no face with area: nothing is inside
            return (np.zeros(len(points)),)
        return (self._winding_tree.winding_number(points),)

    def _inside(self, points: np.ndarray) -> tuple[np.ndarray]:
        """(M,) bool inside test of one chunk (M, 3) float64 by the deciding method."""
        if self._flood is None:
            return (np.abs(self._winding(points)[0]) >= 0.5,)
        labels = self._flood.voxel_labels(points)
        inside = labels == INSIDE
        band = np.flatnonzero(labels == SURFACE)
        if len(band):
            winding = self._winding(np.ascontiguousarray(points[band]))[0]
            decided = np.abs(winding) >= 0.5
            doubt = np.flatnonzero(is_ambiguous(winding))
            nearest = self._flood.nearest_free(points[band[doubt]])
            decided[doubt] = np.where(nearest == UNDECIDED, decided[doubt], nearest == INSIDE)
            inside[band] = decided
        return (inside,)

    def _signed(self, points: np.ndarray) -> tuple[np.ndarray]:
        distance = self.surface.evaluate_chunk(points)[0]
        return (np.where(self._inside(points)[0], -distance, distance),)

    def winding_number(self, points: np.ndarray) -> np.ndarray:
        """Generalised winding number (N,) float32 of the cleaned, re-oriented mesh at points
        (N, 3) (whatever :attr:`sign_method` decides).

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
        """Inside test (N,) bool at points (N, 3) by :attr:`sign_method`."""
        self._require_inside()
        (inside,) = _map_in_spatial_order(self._inside, as_query_points(points), self._chunk_size)
        return inside

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


def inside_test(mesh: trimesh.Trimesh, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Callable[[np.ndarray], np.ndarray]:
    """The inside test of ``mesh``: points (N, 3) -> (N,) bool, the same as
    :meth:`MeshDistance.occupancy`.

    A closed, consistently wound mesh whose connected parts all face the same way (e.g. a
    marching-cubes surface of an object without cavities) has nothing for :class:`MeshDistance`'s
    repair to do: :func:`orient_outward` flips all of its parts or none, which leaves ``|w|``
    of the generalised winding number unchanged. So ``|w| >= 0.5`` alone gives the same answer,
    without the repair, the triangles' distance tree and the probes (a fitted bunny's 224k
    faces, 100k points: 0.44-0.49 s with the checks, against 0.94 s). Any other mesh goes through
    :class:`MeshDistance` (whose repair fills a cavity, a part facing inward); one that encloses
    no volume (an open sheet) has no point inside, where ``MeshDistance.occupancy`` refuses.
    """
    if not (mesh.is_watertight and mesh.is_winding_consistent and _parts_face_one_way(mesh)):
        distance = MeshDistance(mesh, chunk_size)
        if not distance.has_inside:
            return lambda points: np.zeros(len(as_query_points(points)), dtype=bool)
        return distance.occupancy
    tree = igl.FastWindingNumberBVH()
    tree.init(np.ascontiguousarray(mesh.vertices, dtype=np.float64), np.ascontiguousarray(mesh.faces, dtype=np.int64))

    def inside(points: np.ndarray) -> np.ndarray:
        (winding,) = _map_in_spatial_order(lambda chunk: (tree.winding_number(chunk),), as_query_points(points),
                                           chunk_size)
        return np.abs(winding) >= 0.5

    return inside


def _parts_face_one_way(mesh: trimesh.Trimesh) -> bool:
    """Whether the connected parts of a consistently wound mesh all enclose volume of one sign."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    part = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(faces))
    volume = _patch_volumes(np.asarray(mesh.vertices, dtype=np.float64), faces, part)
    return bool(np.all(volume > 0) or np.all(volume < 0))


def sign_warning(name: str, method: str, ambiguous_fraction: float) -> str | None:
    """One warning line naming ``name`` when more than :data:`HIGH_AMBIGUITY` of its probes'
    signs are in doubt (``method`` and ``ambiguous_fraction`` as :class:`SignEvidence`), else
    None."""
    if ambiguous_fraction <= HIGH_AMBIGUITY:
        return None
    return (
        f"isofield: warning: {name}: inside/outside is ambiguous at {100 * ambiguous_fraction:.1f}% of "
        f"probe points ({method}; holes, open or overlapping parts): signs near them are guesses"
    )
