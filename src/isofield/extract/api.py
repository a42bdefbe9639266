"""The one entry point from a field to a mesh: :func:`extract_mesh`."""

from __future__ import annotations

import numbers
import time
from dataclasses import asdict, dataclass

import numpy as np
import trimesh

from isofield.errors import InputError
from isofield.extract.grid import (
    BoundsLike,
    Field,
    evaluate_grid,
    validate_bounds,
    validate_chunk_size,
    validate_resolution,
)
from isofield.extract.marching import crosses_level, marching_cubes, validate_inside
from isofield.extract.sparse import sparse_evaluate_grid
from isofield.geometry.normalization import Normalization
from isofield.geometry.shapes import Shape, padded_bounds

METHODS = ("sparse", "mise", "dense")
UNIT_CUBE_BOUNDS = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


@dataclass(frozen=True)
class ExtractionStats:
    """What an extraction cost.

    Attributes:
        method: "sparse", "mise" or "dense" (as passed to :func:`extract_mesh`).
        resolution: cells per axis of the final grid.
        points_evaluated: samples at which the field was called.
        dense_points: samples of the full grid, ``(resolution + 1)**3``.
        seconds: wall-clock time of evaluation and meshing.
    """

    method: str
    resolution: int
    points_evaluated: int
    dense_points: int
    seconds: float

    @property
    def fraction(self) -> float:
        """``points_evaluated / dense_points`` (1.0 for the dense method)."""
        return self.points_evaluated / self.dense_points

    def to_dict(self) -> dict:
        return {**asdict(self), "fraction": self.fraction}


def extract_mesh(
    field: Field,
    bounds: BoundsLike = UNIT_CUBE_BOUNDS,
    resolution: int = 256,
    level: float = 0.0,
    inside: str = "negative",
    method: str = "sparse",
    normalization: Normalization | None = None,
    chunk_size: int = 65536,
    *,
    criterion: str | None = None,
    lipschitz: float = 1.0,
    coarse_resolution: int = 32,
) -> tuple[trimesh.Trimesh, ExtractionStats]:
    """Mesh the ``level`` iso-surface of ``field`` inside ``bounds``.

    Args:
        field: f(points (N, 3) float32, canonical frame) -> (N,) float32; called with at most
            ``chunk_size`` points at a time.
        bounds: ((xmin, ymin, zmin), (xmax, ymax, zmax)) in the field's frame.
        resolution: cells per axis (``resolution + 1`` samples per axis, see
            :mod:`isofield.extract.grid`).
        level: iso-value: 0 for SDF and occupancy logits, 0.5 for occupancy probabilities.
        inside: "negative" (SDF: inside below ``level``) or "positive" (occupancy).
        method: "sparse" (coarse-to-fine by ``criterion``: far fewer field calls, and with
            "distance" the dense mesh), "mise" (sparse with the "sign" criterion: Occupancy
            Networks' multiresolution iso-surface extraction, for occupancy and SDF fields
            alike; it misses surface parts that no sample of a coarse cell or of its neighbours
            sees, such as a ball or a fin thinner than a coarse cell between its samples, see
            :mod:`isofield.extract.sparse`) or "dense" (every grid sample).
        normalization: if given, mesh vertices are returned in the user's frame
            (``normalization.to_user``).
        chunk_size: maximum number of points per field call.
        criterion: sparse refinement test, "distance" or "sign"; default "distance" for
            ``inside="negative"`` (SDF) and "sign" for ``inside="positive"`` (occupancy), so
            "sparse" on an occupancy field is "mise". Method "mise" accepts only "sign".
        lipschitz: bound on ``|grad f|`` assumed by the "distance" test (1 for an exact SDF;
            raise it for a network that grows faster than distance).
        coarse_resolution: minimum cells per axis of the sparse method's first grid.

    Returns:
        (mesh with outward normals, :class:`ExtractionStats`).

    Raises:
        InputError: a bad argument, a field returning NaN/Inf or the wrong shape, or a field
            that never crosses ``level`` inside ``bounds``.
    """
    started = time.perf_counter()
    box = validate_bounds(bounds)
    resolution = validate_resolution(resolution)
    chunk_size = validate_chunk_size(chunk_size)
    inside = validate_inside(inside)
    if not (isinstance(level, numbers.Real) and np.isfinite(level)):
        raise InputError(f"level must be a finite number, got {level!r}")
    if method == "dense":
        volume = evaluate_grid(field, box, resolution, chunk_size)
        points_evaluated = volume.size
    elif method in ("sparse", "mise"):
        if method == "mise":
            if criterion not in (None, "sign"):
                raise InputError(f"extraction method 'mise' needs criterion 'sign', got {criterion!r}")
            criterion = "sign"
        sparse = sparse_evaluate_grid(
            field,
            box,
            resolution,
            level=level,
            criterion=criterion or ("distance" if inside == "negative" else "sign"),
            lipschitz=lipschitz,
            coarse_resolution=coarse_resolution,
            chunk_size=chunk_size,
        )
        volume, points_evaluated = sparse.values, sparse.points_evaluated
    else:
        raise InputError(f"extraction method must be one of {', '.join(METHODS)}, got {method!r}")
    if not crosses_level(volume, level):
        raise InputError(
            f"field has no zero crossing (level {level:g}) in the bounds {box.tolist()} at resolution "
            f"{resolution} (the surface is outside the bounds, or thinner than a cell)"
        )
    mesh = marching_cubes(volume, box, level=level, inside=inside, normalization=normalization)
    stats = ExtractionStats(method, resolution, points_evaluated, volume.size, time.perf_counter() - started)
    return mesh, stats


def shape_mesh(shape: Shape, resolution: int = 128) -> trimesh.Trimesh:
    """Mesh of an analytic 3-D shape's surface by sparse extraction on its padded bounds."""
    if shape.dim != 3:
        raise InputError(f"shape {shape.name!r} is {shape.dim}-D; only 3-D shapes can be meshed")
    mesh, _ = extract_mesh(shape.sdf, padded_bounds(shape), resolution)
    return mesh
