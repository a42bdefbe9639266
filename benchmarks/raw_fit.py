"""Benchmark: time-to-quality of the raw-data methods (SALD, DiGS, SAL) against IGR without normals.

Inputs (issue "Learn surfaces from raw data"):

- ``kitten``: the CGAL kitten point set (5210 points), its normals thrown away;
- ``oni``: the CGAL oni point set (1435 points), its normals thrown away;
- ``armadillo-soup``: the CGAL armadillo made a triangle soup
  (:func:`isofield.geometry.soup.make_triangle_soup`, seed 0: faces shuffled, a third flipped,
  5% duplicated, 4 holes of radius 3% of the diagonal).

Each (method, input) is ONE run, resumed from budget to budget as in ``fit.py`` (training seconds
accumulate across resumes). The reference is the clean surface: the oriented point set itself
for kitten and oni (metrics against points:
:func:`isofield.metrics.surface.evaluate_mesh_against_points`, normal consistency from the file's
normals), the armadillo mesh for the soup (:func:`isofield.metrics.surface.evaluate_meshes`). The
baseline in the same run is ``igr-no-normals``: IGR's fast preset on the same points with the terms that need normals switched off
(``normal_weight: 0, far_weight: 0``), which is what IGR can do with raw data. ``digs-near``
(not run by default) is DiGS with half its off-surface samples near the input (σ = 0.1) and
lr 2e-4, the best DiGS variant measured on the armadillo soup at 1500 s (NC 0.920); ``digs-guard``
(not run by default) adds MFGI's high-frequency share 0.5 and the loss-spike rollback, which let
it train longer without collapsing, and holds the lr at 1.25e-5 from step 8000 with the outputs
made by a weight average (EMA 0.999): NC 0.9306 at 5700 s on the armadillo soup (meshed at 512³).

Usage::

    python benchmarks/raw_fit.py [--inputs kitten oni armadillo-soup] [--methods sald digs igr-no-normals]
                                 [--budgets 100 300] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import trimesh

import isofield.fitting.outputs as fit_outputs
from fit import Row, format_table, load_average, machine_lines, output_folder, saved_progress, timed_calls
from isofield.errors import InputError
from isofield.fitting import fit, resume
from isofield.fitting.rundir import RunDir
from isofield.geometry.io import read_mesh, write_mesh
from isofield.geometry.soup import make_triangle_soup
from isofield.train.loop import TrainingDivergedError

REPO = Path(__file__).resolve().parents[1]
CGAL = REPO / ".cache" / "cgal" / "data"
POINT_SETS = {"kitten": CGAL / "points_3" / "kitten.xyz", "oni": CGAL / "points_3" / "oni.pwn"}
ARMADILLO = CGAL / "meshes" / "armadillo.off"
METHODS = {
    "sald": ("sald", {}),
    "digs": ("digs", {}),
    "digs-near": ("digs", {"options": {"near_fraction": 0.5, "near_sigma": 0.1},
                           "train": {"lr": 2e-4, "schedule": {"name": "step", "every": 2000, "factor": 0.5}}}),
    "digs-guard": ("digs", {"field": {"high_frequency_fraction": 0.5},
                            "options": {"near_fraction": 0.5, "near_sigma": 0.1, "divergence_samples": 256,
                                        "divergence_schedule": {"name": "anneal", "start": 100, "end": 500}},
                            "train": {"lr": 2e-4, "schedule": {"name": "step", "every": 2000, "factor": 0.5,
                                                               "min_factor": 0.0625},
                                      "spike_factor": 3.0, "ema_decay": 0.999},
                            "extract": {"resolution": 512}}),
    "sal": ("sal", {}),
    "igr-no-normals": ("igr", {"options": {"normal_weight": 0.0, "far_weight": 0.0}}),
}
QUALITY_NC = 0.93


def prepare_inputs(names: list[str], out: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (input file, reference file); writes the armadillo soup into ``out``."""
    inputs = {}
    for name in names:
        if name == "armadillo-soup":
            soup = out / "armadillo-soup.obj"
            write_mesh(make_triangle_soup(read_mesh(ARMADILLO), seed=0), soup)
            inputs[name] = (soup, ARMADILLO)
        else:
            inputs[name] = (POINT_SETS[name], POINT_SETS[name])
    return inputs


def run_marks(label: str, method: str, overrides: dict, source: Path, reference: Path,
              budgets: list[float], run_dir: Path) -> list[Row]:
    """Train one run, stopping at each budget; one row per mark (metrics + watertightness)."""
    rows = []
    for budget in budgets:
        with timed_calls(fit_outputs, ("run_mesh", "evaluate_against")) as spent:
            try:
                if RunDir(run_dir).config_path.exists():
                    result = resume(run_dir, time_budget=budget, progress=False)
                else:
                    result = fit(source, method=method, output=run_dir, reference=reference,
                                 time_budget=budget, overrides=overrides, progress=False)
            except (TrainingDivergedError, InputError) as exc:
                rows.append(Row(label, budget, *saved_progress(run_dir), note=f"failed: {exc}"))
                print(f"  {label} @ {budget:g} s: {rows[-1].note}", flush=True)
                continue
        rows.append(Row(label, budget, result.elapsed, result.step, result.metrics or None,
                        spent["run_mesh"] + spent["evaluate_against"], mesh_note(result.mesh_path)))
        nc = rows[-1].value("normal_consistency")
        print(f"  {label} @ {budget:g} s: {result.step} steps, CD "
              f"{rows[-1].value('chamfer_l1_percent_of_diagonal'):.3f}% diag, NC {nc:.4f}, "
              f"{rows[-1].note}", flush=True)
    return rows


def mesh_note(path: Path) -> str:
    """'watertight, 1 component' or what differs."""
    mesh = trimesh.load(path, process=True)
    components = len(mesh.split(only_watertight=False))
    closed = "watertight" if mesh.is_watertight else "NOT watertight"
    return f"{closed}, {components} component{'s' if components != 1 else ''}"


def summary(rows: list[Row]) -> list[str]:
    """Per run: the first mark with a watertight mesh and NC >= QUALITY_NC."""
    lines = []
    for label in dict.fromkeys(row.method for row in rows):
        own = [row for row in rows if row.method == label]
        hit = next((row for row in own if row.metrics is not None and row.note.startswith("watertight")
                    and row.value("normal_consistency") >= QUALITY_NC), None)
        if hit is None:
            lines.append(f"{label}: watertight with NC >= {QUALITY_NC} not reached")
        else:
            lines.append(f"{label}: watertight with NC >= {QUALITY_NC} at the {hit.budget:g} s mark "
                         f"({hit.steps} steps)")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="+", default=["kitten", "oni", "armadillo-soup"],
                        choices=[*POINT_SETS, "armadillo-soup"])
    parser.add_argument("--methods", nargs="+", default=["sald", "digs", "igr-no-normals"],
                        choices=list(METHODS))
    parser.add_argument("--budgets", nargs="+", type=float, default=None,
                        help="training seconds at which to evaluate (increasing; default 100 300)")
    parser.add_argument("--out", type=Path, default=None, help="a new or empty folder for the runs (default: temp)")
    parser.add_argument("--quick", action="store_true", help="smoke test: budget 10 s, kitten only")
    args = parser.parse_args(argv)
    if args.quick:
        args.inputs, args.budgets = ["kitten"], args.budgets or [10.0]
    args.budgets = args.budgets or [100.0, 300.0]
    if any(b <= 0 for b in args.budgets) or list(args.budgets) != sorted(set(args.budgets)):
        parser.error("--budgets must be positive and strictly increasing")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not ARMADILLO.exists():
        print(f"{CGAL}: CGAL data not found (run `make data`)", file=sys.stderr)
        return 2
    try:
        out = output_folder(args.out, "isofield-raw-bench-")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print("\n".join(machine_lines("auto")))
    print(f"load average at start: {load_average()}; runs in: {out}", flush=True)
    rows: list[Row] = []
    for name, (source, reference) in prepare_inputs(args.inputs, out).items():
        for label in args.methods:
            method, overrides = METHODS[label]
            run_dir = out / f"{name}-{label}"
            if run_dir.exists():
                print(f"{run_dir}: exists, skipped (choose another --out)", file=sys.stderr)
                continue
            rows += run_marks(f"{name}/{label}", method, overrides, source, reference,
                              args.budgets, run_dir)
    print()
    print("Raw data: points without normals (kitten, oni) and a triangle soup (armadillo). Metrics "
          "isofield-v1 against the clean surface (the oriented points / the armadillo mesh); "
          "CD % diag = Chamfer-L1 / reference bbox diagonal; NC = normal consistency.")
    print()
    print(format_table(rows))
    print()
    print("\n".join(summary(rows)))
    print(f"load average at end: {load_average()}; wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
