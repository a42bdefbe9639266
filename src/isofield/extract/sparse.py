"""Coarse-to-fine sampling: evaluate a field only in cells that can hold the surface.

The grid convention is that of :mod:`isofield.extract.grid` (``resolution`` = cells per axis,
``R + 1`` samples per axis). Sampling starts on a coarse grid of ``R / 2**d`` cells (the smallest
such exact halving of ``R`` that is still >= ``coarse_resolution``) and refines ``d`` times:

1. For every *active* cell of the current depth (all cells of the coarse grid at first), decide
   whether it may contain the surface:
   - ``criterion="distance"`` (signed distance fields): keep the cell if its corners straddle
     ``level`` or if every corner satisfies ``|f - level| <= lipschitz * cell diagonal``. For a
     field whose gradient norm is at most ``lipschitz`` this is exact: a cell holding a surface
     point is never dropped, and a dropped cell lies entirely on one side of the surface.
   - ``criterion="sign"`` (occupancy, no distance information): keep cells whose corners straddle
     ``level``, dilated by one cell in all 26 directions: Occupancy Networks' multiresolution
     iso-surface extraction (MISE; ``extract_mesh(method="mise")``). It works on any field, SDF
     or occupancy, but misses the surface inside a cell of some depth whose corners, and those
     of its 26 neighbours, are all on one side of ``level`` (e.g. a pocket smaller than a cell,
     away from the rest of the surface), as does any sign test.
2. Split each kept cell into 8 children and evaluate only the samples of their corners that were
   never evaluated (a cache over the final grid: no point is evaluated twice). With the
   distance test, the kept cell's centre is evaluated first: each child spans from one corner
   of its parent to that centre, and a child that the distance test drops on these two values
   alone is not split further (its other corners are never evaluated). On the fields we fit
   this saves 9-26% of the evaluations (docs/architecture.md).
3. At the final depth every active cell has all 8 corners evaluated. Each sample never evaluated
   lies in a dropped cell, and gets a stand-in value of that cell's side
   (``level +- max(1, |level|)``), so marching cubes on the full array produces exactly the
   triangles of the dense grid wherever the active cells include every cell whose corners
   straddle ``level``: always for ``criterion="distance"`` with a correct Lipschitz bound (the
   same vertices and faces, in the same order), and for ``criterion="sign"`` unless a part of
   the surface was missed as described above.

Memory: the values and a flag per final sample, ``5 (R+1)**3`` bytes (85 MB at R = 256), with a
scratch flag and, while the stand-ins are filled, int8 side grids (a few more bytes per sample).
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import numpy as np

from isofield.errors import InputError
from isofield.extract.grid import (
    BoundsLike,
    Field,
    evaluate_points,
    grid_coordinates,
    grid_spacing,
    validate_chunk_size,
    validate_positive_integer,
    validate_resolution,
)

CRITERIA = ("distance", "sign")

_CORNER_OFFSETS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=np.int64)  # (8, 3)
_CHILD_LATTICE = np.array(list(itertools.product((0, 1, 2), repeat=3)), dtype=np.int64)  # (27, 3)
_NEIGHBOUR_OFFSETS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.int64)  # (27, 3)


@dataclass(frozen=True)
class SparseVolume:
    """Result of :func:`sparse_evaluate_grid`.

    Attributes:
        values: (R+1, R+1, R+1) float32; field values where ``evaluated``, elsewhere a stand-in
            value on the correct side of ``level`` (not a field value).
        evaluated: (R+1, R+1, R+1) bool, the samples at which the field was called.
    """

    values: np.ndarray
    evaluated: np.ndarray

    @property
    def points_evaluated(self) -> int:
        return int(np.count_nonzero(self.evaluated))


def refinement_depth(resolution: int, coarse_resolution: int) -> int:
    """Number of x2 refinements from the coarse grid to ``resolution`` cells.

    The coarse grid has ``resolution / 2**depth`` cells, the smallest exact halving of
    ``resolution`` that stays >= ``coarse_resolution`` (depth 0: ``resolution`` is odd or small).
    """
    depth = 0
    while resolution % 2 == 0 and resolution // 2 >= coarse_resolution:
        resolution //= 2
        depth += 1
    return depth


def sparse_evaluate_grid(
    field: Field,
    bounds: BoundsLike,
    resolution: int,
    level: float = 0.0,
    criterion: str = "distance",
    lipschitz: float = 1.0,
    coarse_resolution: int = 32,
    chunk_size: int = 65536,
) -> SparseVolume:
    """Sample ``field`` on the ``resolution`` grid only where the ``level`` surface can be.

    Args:
        field: f(points (N, 3) float32) -> (N,) float32, called with at most ``chunk_size`` points.
        bounds: ((xmin, ymin, zmin), (xmax, ymax, zmax)).
        resolution: cells per axis of the final grid.
        level: iso-value of the surface.
        criterion: "distance" (SDF, uses ``lipschitz``) or "sign" (occupancy); see module doc.
        lipschitz: assumed bound on ``|grad f|``; 1 for an exact SDF, larger for a network
            that over-estimates distances (more points evaluated, same mesh).
        coarse_resolution: minimum cells per axis of the first grid.
        chunk_size: maximum points per field call.
    """
    resolution = validate_resolution(resolution)
    chunk_size = validate_chunk_size(chunk_size)
    _validate_refinement(criterion, lipschitz, coarse_resolution)
    depth_count = refinement_depth(resolution, coarse_resolution)
    coarse = resolution >> depth_count
    cache = _SampleCache(field, bounds, resolution, chunk_size)
    cache.evaluate(_all_indices(coarse + 1) << depth_count)
    cells = _all_indices(coarse)
    cell_diagonal = float(np.linalg.norm(grid_spacing(bounds, resolution)))
    sides_per_depth = []
    for depth in range(depth_count):
        stride = 1 << (depth_count - depth)  # final-grid samples per cell edge at this depth
        count = coarse << depth
        corner_values = cache.values_at((cells[:, None, :] + _CORNER_OFFSETS) * stride)
        reach = lipschitz * cell_diagonal * stride if criterion == "distance" else None
        kept, dropped = _split_cells(cells, corner_values, level, reach, count)
        sides_per_depth.append(_side_grid(cells[dropped], corner_values[dropped], level, count))
        if reach is None:
            cache.evaluate(((kept[:, None, :] * 2 + _CHILD_LATTICE) * (stride // 2)).reshape(-1, 3))
            cells = (kept[:, None, :] * 2 + _CORNER_OFFSETS).reshape(-1, 3)
            continue
        cells, probed_sides = _probe_centres(cache, kept, corner_values[~dropped], count, stride, level, reach / 2)
        sides_per_depth.append(probed_sides)
        cache.evaluate(((cells[:, None, :] + _CORNER_OFFSETS) * (stride // 2)).reshape(-1, 3))
    values, evaluated = cache.volumes()
    _fill_unevaluated(values, evaluated, sides_per_depth, level)
    return SparseVolume(values, evaluated)


def _validate_refinement(criterion: str, lipschitz: float, coarse_resolution: int) -> None:
    if criterion not in CRITERIA:
        raise InputError(f"refinement criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if not (isinstance(lipschitz, numbers.Real) and np.isfinite(lipschitz) and lipschitz > 0):
        raise InputError(f"lipschitz must be a positive number, got {lipschitz!r}")
    validate_positive_integer(coarse_resolution, "coarse_resolution", "cells per axis of the first grid")


class _SampleCache:
    """Field values on the final grid, filled on demand; a sample is never evaluated twice."""

    def __init__(self, field: Field, bounds: BoundsLike, resolution: int, chunk_size: int) -> None:
        self._field = field
        self._bounds = bounds
        self._resolution = resolution
        self._chunk_size = chunk_size
        self._shape = (resolution + 1,) * 3
        self._values = np.zeros(np.prod(self._shape), dtype=np.float32)
        self._evaluated = np.zeros(np.prod(self._shape), dtype=bool)
        self._requested = np.zeros(np.prod(self._shape), dtype=bool)  # scratch, all False between calls

    def evaluate(self, indices: np.ndarray) -> None:
        """Evaluate the field at the samples with indices (N, 3) (repeats allowed) not yet known."""
        flat = np.ravel_multi_index(tuple(indices.T), self._shape)
        self._requested[flat[~self._evaluated[flat]]] = True
        flat = np.flatnonzero(self._requested)  # new samples, each once, in grid order
        self._requested[flat] = False
        indices = np.stack(np.unravel_index(flat, self._shape), axis=1)
        points = grid_coordinates(self._bounds, self._resolution, indices)
        self._values[flat] = evaluate_points(self._field, points, self._chunk_size)
        self._evaluated[flat] = True

    def values_at(self, indices: np.ndarray) -> np.ndarray:
        """Known values at sample indices (..., 3) -> (...) float32."""
        return self._values.reshape(self._shape)[indices[..., 0], indices[..., 1], indices[..., 2]]

    def volumes(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, evaluated) reshaped to (R+1, R+1, R+1)."""
        return self._values.reshape(self._shape), self._evaluated.reshape(self._shape)


def _all_indices(count: int) -> np.ndarray:
    """All integer triples in [0, count)^3, shape (count**3, 3) int64, C order."""
    return np.stack(np.unravel_index(np.arange(count**3), (count,) * 3), axis=1).astype(np.int64)


def _linear(cells: np.ndarray, count: int) -> np.ndarray:
    """Cell triples (M, 3) in [0, count)^3 -> linear ids (M,) int64."""
    return np.ravel_multi_index(tuple(cells.T), (count,) * 3)


def _split_cells(
    cells: np.ndarray, corner_values: np.ndarray, level: float, reach: float | None, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decide which active cells (M, 3) of a ``count``-cell grid to refine.

    ``reach`` (Lipschitz bound x cell diagonal) selects the distance test; ``None`` the sign
    test with one-cell dilation. Returns the cells to refine (K, 3), which for the sign test may
    include inactive neighbours, and a mask (M,) of the active cells dropped.
    """
    if reach is not None:
        keep = _may_hold_surface(corner_values, level, reach)
        return cells[keep], ~keep
    kept = _dilate(cells[_straddles(corner_values, level)], count)
    return kept, ~np.isin(_linear(cells, count), _linear(kept, count))


def _probe_centres(cache: "_SampleCache", parents: np.ndarray, parent_values: np.ndarray, count: int,
                   stride: int, level: float, child_reach: float) -> tuple[np.ndarray, np.ndarray]:
    """The distance test on the children of ``parents`` (K, 3), cells of a ``count``-cell grid
    (``stride`` final-grid samples per edge) about to be split, from two corners each: each
    parent's centre is evaluated first (one sample per parent), and child ``k`` spans from the
    parent's corner ``k`` (values ``parent_values`` (K, 8)) to that centre, so these two values
    alone can show it to lie on one side (``child_reach``: Lipschitz bound x the child's
    diagonal). Returns the children still to refine (C, 3), on the grid of twice the parents'
    count, and the side grid of those dropped (see :func:`_side_grid`).
    """
    centres = (parents * 2 + 1) * (stride // 2)
    cache.evaluate(centres)
    centre_values = np.broadcast_to(cache.values_at(centres)[:, None], parent_values.shape)
    ends = np.stack([parent_values, centre_values], axis=-1).reshape(-1, 2)  # (K * 8, 2)
    children = (parents[:, None, :] * 2 + _CORNER_OFFSETS).reshape(-1, 3)  # child k touches corner k
    keep = _may_hold_surface(ends, level, child_reach)
    return children[keep], _side_grid(children[~keep], ends[~keep], level, 2 * count)


def _straddles(corner_values: np.ndarray, level: float) -> np.ndarray:
    """(M, C) corner values -> (M,) bool: some corner <= level and some corner >= level."""
    return (corner_values.min(axis=1) <= level) & (corner_values.max(axis=1) >= level)


def _may_hold_surface(corner_values: np.ndarray, level: float, reach: float) -> np.ndarray:
    """Distance test on (M, C) values at C of each cell's corners (all 8, or fewer): a cell can
    hold a surface point only if every corner is within ``reach``.

    ``reach`` = Lipschitz bound x cell diagonal, the largest distance from a corner to a point
    of the cell. Cells that straddle ``level`` are always kept (robust to a wrong bound).
    """
    near = np.abs(corner_values - level).max(axis=1) <= reach
    return near | _straddles(corner_values, level)


def _dilate(cells: np.ndarray, count: int) -> np.ndarray:
    """Cells (M, 3) and their 26 neighbours inside [0, count)^3, without repeats."""
    candidates = (cells[:, None, :] + _NEIGHBOUR_OFFSETS).reshape(-1, 3)
    candidates = candidates[np.all((candidates >= 0) & (candidates < count), axis=1)]
    return np.stack(np.unravel_index(np.unique(_linear(candidates, count)), (count,) * 3), axis=1)


def _side_grid(cells: np.ndarray, corner_values: np.ndarray, level: float, count: int) -> np.ndarray:
    """(count,)*3 int8: +1 / -1 for the given dropped cells above / below ``level``, 0 elsewhere.

    A dropped cell does not straddle ``level``, so all its corners are on one side.
    """
    sides = np.zeros((count,) * 3, dtype=np.int8)
    sides[cells[:, 0], cells[:, 1], cells[:, 2]] = np.where(corner_values[:, 0] > level, 1, -1)
    return sides


def _fill_unevaluated(
    values: np.ndarray, evaluated: np.ndarray, sides_per_depth: list[np.ndarray], level: float
) -> None:
    """Give every never-evaluated sample (in place) a value on the side of the dropped cell holding it.

    ``sides_per_depth``: the side grids of the dropped cells, coarse to fine (several may share
    a count). A dropped cell is never refined, so the grids do not overlap: each coarser grid,
    repeated 2x per axis, is added to the next one. The last sample of an axis (index R) has
    the same cells as the one before it, so it copies that sample's side.
    """
    if not sides_per_depth:  # no refinement: every sample was evaluated
        return
    cells = values.shape[0] - 1
    side = sides_per_depth[0]
    for sides in sides_per_depth[1:]:
        side = _refined(side, sides.shape[0]) + sides
    side = np.pad(_refined(side, cells), ((0, 1),) * 3, mode="edge")
    missing = ~evaluated
    assert not np.any(missing & (side == 0)), "sparse refinement left a sample outside every dropped cell"
    offset = max(1.0, abs(level))
    np.copyto(values, np.float32(level + offset), where=missing & (side > 0))
    np.copyto(values, np.float32(level - offset), where=missing & (side < 0))


def _refined(side: np.ndarray, count: int) -> np.ndarray:
    """A (c,)*3 side grid on the finer (count,)*3 grid (count = c * 2**k): each cell's side
    repeated in its children."""
    while side.shape[0] < count:
        side = side.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    return side
