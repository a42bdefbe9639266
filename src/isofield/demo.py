"""`isofield demo`: fit a built-in shape end to end, with no input and no download.

The shape is analytic (a rounded box with a spherical bite, see
:func:`isofield.geometry.shapes.csg_demo`), so the result is checked against its exact SDF:
oriented points are sampled from a fine mesh of it, IGR's fast preset fits them, and the run's
report compares the extracted mesh with the exact surface.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isofield.fitting import fit
from isofield.fitting.fit import FitResult
from isofield.geometry.io import write_mesh, write_points
from isofield.geometry.sampling import sample_surface
from isofield.extract.api import shape_mesh
from isofield.geometry.shapes import get_shape

DEMO_SHAPE = "csg"
DEMO_POINTS = 100_000
DEMO_BUDGET_SECONDS = 100.0


def free_directory(base: Path) -> Path:
    """``base`` if it does not exist yet, else ``base-2``, ``base-3``, ... (never reuses one)."""
    candidate, index = base, 1
    while candidate.exists():
        index += 1
        candidate = base.with_name(f"{base.name}-{index}")
    return candidate


def run_demo(output: Path, time_budget: float = DEMO_BUDGET_SECONDS, progress: bool = True) -> FitResult:
    """Fit the demo shape into a fresh run directory beside/at ``output``; returns the result.

    Also writes the demo's input (``input/points.ply``, oriented points) and exact reference
    (``input/reference.ply``, marching cubes of the analytic SDF at 256^3) in the run folder.
    """
    run_dir = free_directory(output)
    inputs = run_dir.with_name(run_dir.name + "-input")
    shape = get_shape(DEMO_SHAPE)
    reference = shape_mesh(shape, resolution=256)
    write_mesh(reference, inputs / "reference.ply")
    write_points(sample_surface(reference, DEMO_POINTS, seed=0), inputs / "points.ply")
    result = fit(inputs / "points.ply", method="igr", preset="fast", output=run_dir,
                 time_budget=time_budget, reference=inputs / "reference.ply", progress=progress)
    return result


def exact_sdf_error(result: FitResult, n: int = 20_000, seed: int = 0) -> float:
    """Mean |f − exact SDF| (user units) at points within 0.1 of the demo surface."""
    from isofield.fitting.family import run_field

    field, _, normalization, _ = run_field(result.run_dir)
    shape = get_shape(DEMO_SHAPE)
    rng = np.random.default_rng(seed)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in shape.bounds)
    points = rng.uniform(lo, hi, size=(20 * n, 3)).astype(np.float32)
    exact = shape.sdf(points)
    near = np.abs(exact) < 0.1
    points, exact = points[near][:n], exact[near][:n]
    learned = normalization.distance_to_user(field(normalization.to_canonical(points)))
    return float(np.mean(np.abs(learned - exact)))
