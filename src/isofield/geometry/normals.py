"""Normals for raw point clouds: PCA over k neighbours, then one consistent outward orientation.

1. **Directions** (unoriented): the smallest principal axis of each point's k nearest
   neighbours (scipy ``cKDTree``).
2. **Propagation** (Hoppe et al. 1992): the signs are carried along a minimum spanning tree of
   the graph linking each point to its nearest ``GRAPH_SHARE`` x k neighbours
   (``scipy.sparse.csgraph``). An edge costs 1 - |n_i . n_j| plus how far it leaves the
   tangent planes, so the tree avoids jumps across a thin part. Each connected part is rooted at
   its point farthest from the centroid, facing away from it.
3. **Patches by winding number**: cutting the tree's costly edges (> ``PATCH_CUT``) leaves
   patches whose signs are trusted. Each patch is flipped when, seen from the field of the OTHER
   patches (libigl's fast winding number of the oriented cloud), it faces inward; then the whole
   cloud is flipped if it is inside out. This repairs wrong jumps of the tree that point-wise
   tests cannot see (a flipped patch looks consistent from up close).

Or, with ``toward`` (a camera origin: one depth scan), every normal is turned to face it.
Measurements that chose these steps are in ``docs/architecture.md``.
"""

from __future__ import annotations

import igl
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from scipy.spatial import cKDTree

from isofield.errors import InputError

DEFAULT_NEIGHBOURS = 16
"""Neighbours per point for the PCA plane and the orientation graph."""

MIN_POINTS = 4
"""Fewest points that define a plane with a neighbour to spare."""

PATCH_CUT = 0.2
"""Orientation-tree edges costlier than this start a new patch (see _edge_weights)."""

MIN_PATCH = 20
"""Patches with fewer points stay joined to the patch they hang from."""

STEP = 10.0
"""Winding probes lie this many k-th-neighbour distances off each point."""

GRAPH_SHARE = 0.75
"""The orientation graph links each point to this share of its k neighbours (the nearest)."""

WINDING_POINTS = 10_000
"""Most points (a random subset) whose winding numbers decide the patches' signs."""


def estimate_normals(
    points: np.ndarray,
    neighbours: int = DEFAULT_NEIGHBOURS,
    toward: np.ndarray | None = None,
    winding_rounds: int = 4,
) -> np.ndarray:
    """Unit normals of a point cloud, oriented outward (or toward a viewpoint).

    Args:
        points: (N, 3) finite coordinates, N >= 4.
        neighbours: k, the neighbours of each point used for its plane (at most N - 1 are used).
        toward: optional (3,) viewpoint (a depth camera's origin); every normal then faces it
            instead of being oriented outward.
        winding_rounds: most rounds of patch flips by winding number (0: the tree's signs,
            only the whole cloud's inside-out check).

    Returns:
        (N, 3) float32 unit normals.
    """
    pts = _checked_points(points)
    k = min(int(neighbours), len(pts) - 1)
    if k < 3:
        raise InputError(f"normal estimation needs at least 3 neighbours, got {neighbours}")
    distance, index = cKDTree(pts).query(pts, k=k + 1, workers=-1)
    normals = plane_normals(pts, index)
    if toward is not None:
        view = np.asarray(toward, dtype=np.float64).reshape(-1)
        if view.shape != (3,) or not np.all(np.isfinite(view)):
            raise InputError(f"toward must be a finite point (3,), got {np.asarray(toward)!r}")
        flip = np.einsum("ij,ij->i", normals, view - pts) < 0
        normals[flip] *= -1
        return normals.astype(np.float32)
    graph_k = max(3, round(GRAPH_SHARE * k))
    normals, patch = _propagate_orientation(pts, normals, index[:, : graph_k + 1], PATCH_CUT)
    areas = np.pi * distance[:, -1] ** 2 / k
    normals = _orient_patches(pts, normals, patch, areas, STEP * distance[:, -1], winding_rounds)
    return normals.astype(np.float32)


def _checked_points(points: np.ndarray) -> np.ndarray:
    """(N, 3) float64 C-contiguous copy of ``points``; InputError for bad shapes or values."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"points must have shape (N, 3), got {pts.shape}")
    if len(pts) < MIN_POINTS:
        raise InputError(f"normal estimation needs at least {MIN_POINTS} points, got {len(pts)}")
    pts = np.ascontiguousarray(pts, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
    if len(bad):
        raise InputError(f"{len(bad)} points have NaN or infinite coordinates (first: row {bad[0]})")
    return pts


def plane_normals(points: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(N, D) unit normals, unoriented: the least-variance axis (PCA) of each neighbourhood.

    Args:
        points: (N, D); index: (N, k + 1) neighbour indices (each row starts with the point).
    """
    neighbourhood = points[index]  # (N, k + 1, 3)
    centred = neighbourhood - neighbourhood.mean(axis=1, keepdims=True)
    covariance = np.einsum("nki,nkj->nij", centred, centred)
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    return np.ascontiguousarray(vectors[:, :, 0])


def _propagate_orientation(points: np.ndarray, normals: np.ndarray, index: np.ndarray,
                           cut: float) -> tuple[np.ndarray, np.ndarray]:
    """Signs made consistent along a minimum spanning tree of the neighbour graph.

    Args:
        points: (N, 3); normals: (N, 3) unit, unoriented; index: (N, k + 1) neighbours;
        cut: tree edges heavier than this separate patches.

    Returns:
        (N, 3) normals with flipped rows (the root of each graph component facing away from the
        centroid) and (N,) int patch labels: the parts left when the tree's edges heavier than
        ``cut`` are removed, patches under ``MIN_PATCH`` points joined back to their parent's.
    """
    n = len(points)
    weight = _edge_weights(points, normals, index)
    rows = np.repeat(np.arange(n), index.shape[1] - 1)
    cols = index[:, 1:].reshape(-1)
    keep = rows != cols  # duplicate points can list each other first
    graph = scipy.sparse.csr_matrix((weight.reshape(-1)[keep], (rows[keep], cols[keep])),
                                    shape=(n, n))
    tree = scipy.sparse.csgraph.minimum_spanning_tree(graph.maximum(graph.T))
    _, label = scipy.sparse.csgraph.connected_components(tree, directed=False)
    centroid = points.mean(axis=0)
    order = np.lexsort((np.linalg.norm(points - centroid, axis=1), label))
    roots = order[np.r_[np.flatnonzero(np.diff(label[order])), n - 1]]  # farthest of each part
    outward = np.einsum("ij,ij->i", normals[roots], points[roots] - centroid) >= 0
    normals[roots] *= np.where(outward, 1.0, -1.0)[:, None]
    # One breadth-first search from an extra node n joined to every part's root.
    edges = tree.tocoo()
    forest = scipy.sparse.csr_matrix(
        (np.r_[edges.data, np.ones(len(roots))],
         (np.r_[edges.row, np.full(len(roots), n)], np.r_[edges.col, roots])), shape=(n + 1, n + 1))
    _, predecessors = scipy.sparse.csgraph.breadth_first_order(
        forest, n, directed=False, return_predecessors=True)
    parent = predecessors[:n].astype(np.int64)
    parent[roots] = roots
    tree = (tree + tree.T).tocsr()
    sign = np.where(np.einsum("ij,ij->i", normals, normals[parent]) >= 0, 1.0, -1.0)
    normals = normals * _path_products(sign, parent)[0][:, None]
    heavy = np.asarray(tree[np.arange(n), parent]).reshape(-1) > cut
    patch_parent = np.where(heavy, np.arange(n), parent)
    for _ in range(8):
        _, patch = _path_products(np.ones(n), patch_parent)  # label: the patch's root
        small = heavy & (np.bincount(patch, minlength=n) < MIN_PATCH)
        if not small.any():
            break
        heavy &= ~small
        patch_parent[small] = parent[small]
    return normals, np.unique(patch, return_inverse=True)[1]


def _edge_weights(points: np.ndarray, normals: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(N, k) positive float32 costs of the edges from each point to its neighbours index[:, 1:].

    1 - |n_i . n_j| (Hoppe's) plus the mean |n . e| of the unit edge direction e: an edge that
    leaves the tangent plane (across a thin part, or between two sheets) is expensive.
    """
    own = normals.astype(np.float32)                                     # (N, 3)
    theirs = own[index[:, 1:]]                                           # (N, k, 3)
    offset = (points[index[:, 1:]] - points[:, None, :]).astype(np.float32)
    offset /= np.maximum(np.linalg.norm(offset, axis=2, keepdims=True), 1e-30)
    parallel = np.abs(np.einsum("nj,nkj->nk", own, theirs))
    across = 0.5 * (np.abs(np.einsum("nj,nkj->nk", own, offset))
                    + np.abs(np.einsum("nkj,nkj->nk", theirs, offset)))
    # Zero weights would vanish from a sparse matrix: keep every edge strictly positive.
    return 1.0 - parallel + across + 1e-6


def _path_products(sign: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product of ``sign`` over each node's path to its root, and the root (pointer jumping).

    Args:
        sign: (N,) +-1, each node's sign relative to its parent; roots (their own parent) +1.
        parent: (N,) parent indices.

    Returns:
        (N,) float products and (N,) int roots.
    """
    total = sign.copy()
    hop = parent.copy()
    while not np.array_equal(hop, hop[hop]):
        total = total * total[hop]
        hop = hop[hop]
    return total * total[hop], hop


def _winding(points: np.ndarray, normals: np.ndarray, areas: np.ndarray,
             queries: np.ndarray) -> np.ndarray:
    """(M,) generalised winding number at queries (M, 3) of the oriented cloud (N, 3)."""
    return igl.fast_winding_number(np.ascontiguousarray(points), np.ascontiguousarray(normals),
                                   np.ascontiguousarray(areas), np.ascontiguousarray(queries))


def _orient_patches(points: np.ndarray, normals: np.ndarray, patch: np.ndarray,
                    areas: np.ndarray, step: np.ndarray, rounds: int) -> np.ndarray:
    """Flip whole patches that face into the shape the other patches enclose.

    A patch's vote is the sum over its points of w(x - step n) - w(x + step n), with w the
    winding number of all OTHER patches (its own field jumps by one across it whichever way it
    faces): positive when its normals point down the others' field, i.e. outward. Patches with
    a negative vote are flipped, until none is left (at most ``rounds`` times); then the whole
    cloud is flipped if the winding number next to it is negative on average (an inside-out
    closed surface has w = -1 within). The winding numbers come from at most
    ``WINDING_POINTS`` of the points (a seeded random subset, areas scaled up to match).

    Args:
        points, normals: (N, 3); patch: (N,) labels 0..P-1; areas, step: (N,).
    Returns (N, 3) normals.
    """
    sample = np.arange(len(points))
    if len(points) > WINDING_POINTS:
        sample = np.sort(np.random.default_rng(0).choice(len(points), WINDING_POINTS, replace=False))
    pts, label = points[sample], patch[sample]
    area = areas[sample] * (areas.sum() / areas[sample].sum())
    m = len(sample)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(patch.max() + 2))
    flips = np.ones(patch.max() + 1)
    for _ in range(rounds):
        nrm = normals[sample] * flips[label][:, None]
        shift = nrm * step[sample, None]
        queries = np.concatenate([pts - shift, pts + shift])
        total = _winding(pts, nrm, area, queries)
        vote = np.zeros(bounds.size - 1)
        for p in range(bounds.size - 1):
            own = order[bounds[p]:bounds[p + 1]]
            if len(own) in (0, m):
                continue
            mine = _winding(pts[own], nrm[own], area[own],
                            np.concatenate([queries[own], queries[own + m]]))
            rest = total[np.concatenate([own, own + m])] - mine
            vote[p] = (rest[: len(own)].sum() - rest[len(own):].sum()) / len(own)
        if not (vote < 0).any():
            break
        flips[vote < 0] *= -1
    nrm = normals[sample] * flips[label][:, None]
    shift = nrm * step[sample, None]
    level = _winding(pts, nrm, area, np.concatenate([pts - shift, pts + shift])).mean()
    return normals * (flips[patch] * (-1.0 if level < 0 else 1.0))[:, None]
