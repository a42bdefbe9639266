"""Regular sampling grids over an axis-aligned box, and memory-bounded field evaluation on them.

Convention used by the whole ``isofield.extract`` package: ``resolution`` is the number of
**cells** per axis. A grid of resolution ``R`` has ``R + 1`` samples per axis, the first at the
box's lower corner and the last at its upper corner, so sample ``i`` sits at
``lo + (hi - lo) * i / R``. ``resolution=256`` therefore evaluates ``257**3`` points densely;
making ``R`` the cell count lets the sparse extractor refine a coarse grid by exact halvings
(32 -> 64 -> 128 -> 256) with every coarse sample reused as a fine one.

Bounds are ``((xmin, ymin, zmin), (xmax, ymax, zmax))`` in the field's own (canonical) frame.
A *field* is any callable ``f(points: (N, 3) float32) -> (N,) float32``.
"""

from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

from isofield.errors import InputError

Field = Callable[[np.ndarray], np.ndarray]
BoundsLike = Sequence[Sequence[float]]


def validate_bounds(bounds: BoundsLike) -> np.ndarray:
    """Check ``bounds`` and return them as a (2, 3) float64 array ``[lo, hi]``.

    Raises:
        InputError: not 2 x 3 finite numbers, or some ``hi <= lo``.
    """
    try:
        box = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)), got {bounds!r}") from None
    if box.shape != (2, 3) or not np.all(np.isfinite(box)):
        raise InputError(f"bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)), finite, got {bounds!r}")
    if np.any(box[1] <= box[0]):
        raise InputError(f"bounds must have max > min on every axis, got {box.tolist()}")
    return box


def validate_positive_integer(value: int, argument: str, meaning: str) -> int:
    """Check that ``value`` is an integer >= 1 (not a bool or float) and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{argument} must be a positive integer ({meaning}), got {value!r}")
    return int(value)


def validate_resolution(resolution: int) -> int:
    """Check ``resolution`` (cells per axis, >= 1) and return it as ``int``."""
    return validate_positive_integer(resolution, "resolution", "cells per axis")


def validate_chunk_size(chunk_size: int) -> int:
    """Check ``chunk_size`` (points per field call, >= 1) and return it as ``int``."""
    return validate_positive_integer(chunk_size, "chunk_size", "points per field call")


def grid_spacing(bounds: BoundsLike, resolution: int) -> np.ndarray:
    """Cell edge lengths (3,) float64 of a grid with ``resolution`` cells per axis."""
    box = validate_bounds(bounds)
    return (box[1] - box[0]) / validate_resolution(resolution)


def grid_coordinates(bounds: BoundsLike, resolution: int, indices: np.ndarray) -> np.ndarray:
    """Positions (N, 3) float32 of the grid samples with integer indices (N, 3) in ``[0, R]``.

    This is the only place where sample positions are computed, so the dense and the sparse
    extractor evaluate bit-identical points.
    """
    box = validate_bounds(bounds)
    fraction = np.asarray(indices, dtype=np.float64) / validate_resolution(resolution)
    return (box[0] + (box[1] - box[0]) * fraction).astype(np.float32)


def grid_points(bounds: BoundsLike, resolution: int) -> np.ndarray:
    """All ``(R + 1)**3`` sample positions, shape ((R+1)**3, 3) float32, C order (x slowest).

    Row ``(i * (R + 1) + j) * (R + 1) + k`` is the sample with indices ``(i, j, k)``.
    Materialises every point: meant for small grids; :func:`evaluate_grid` never does this.
    """
    samples = validate_resolution(resolution) + 1
    indices = np.stack(np.unravel_index(np.arange(samples**3), (samples,) * 3), axis=1)
    return grid_coordinates(bounds, resolution, indices)


def evaluate_points(field: Field, points: np.ndarray, chunk_size: int = 65536) -> np.ndarray:
    """Evaluate ``field`` on points (N, 3) float32 in calls of at most ``chunk_size`` points.

    Returns (N,) float32. Raises InputError if the field returns the wrong shape or a value
    that is NaN or infinite (the message says how many).
    """
    chunk_size = validate_chunk_size(chunk_size)
    values = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), chunk_size):
        chunk = points[start : start + chunk_size]
        values[start : start + len(chunk)] = _checked_call(field, chunk)
    return values


def evaluate_grid(field: Field, bounds: BoundsLike, resolution: int, chunk_size: int = 65536) -> np.ndarray:
    """Sample ``field`` on the full grid: returns (R+1, R+1, R+1) float32, indexed [i, j, k] = (x, y, z).

    Points are generated chunk by chunk, so at most ``chunk_size`` positions exist at a time
    besides the output volume itself.
    """
    resolution = validate_resolution(resolution)
    chunk_size = validate_chunk_size(chunk_size)
    samples = resolution + 1
    shape = (samples,) * 3
    volume = np.empty(samples**3, dtype=np.float32)
    for start in range(0, volume.size, chunk_size):
        flat = np.arange(start, min(start + chunk_size, volume.size))
        indices = np.stack(np.unravel_index(flat, shape), axis=1)
        volume[flat] = _checked_call(field, grid_coordinates(bounds, resolution, indices))
    return volume.reshape(shape)


def _checked_call(field: Field, points: np.ndarray) -> np.ndarray:
    """One field call on (n, 3) float32 points, validated: (n,) finite float32."""
    values = np.asarray(field(points), dtype=np.float32).reshape(-1)
    if values.shape != (len(points),):
        raise InputError(f"field returned {values.size} values for {len(points)} points (expected one per point)")
    bad = np.count_nonzero(~np.isfinite(values))
    if bad:
        raise InputError(f"field returned NaN or Inf at {bad} of {len(points)} points")
    return values
