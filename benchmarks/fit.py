"""Benchmark: time-to-quality of fitting one shape (IGR, presets "fast" and "paper") vs Poisson.

Input: ``--points`` oriented points (default 100k) sampled from the CGAL armadillo
(:func:`isofield.geometry.sampling.sample_surface`, seed 0), written once to a PLY that every
method reads. For each preset ONE run is trained and looked at after each wall-clock budget:
``isofield.fitting.fit(..., time_budget=b1)``, then ``isofield.fitting.resume(run, time_budget=b2)``
and so on. The trainer counts training seconds across resumes, so the time spent extracting and
evaluating a mark does not count against the training budget. Each call ends with the run's own
outputs: a mesh (sparse marching cubes at ``config.extract.resolution``, the same for every row)
and ``metrics.json`` against the armadillo mesh (:func:`isofield.metrics.surface.evaluate_meshes`,
protocol isofield-v1: 100k surface samples per mesh, seed 0, F-score tau = 1% of the reference
bbox diagonal); the table shows those metrics.

Classical reference: Screened Poisson (Open3D's ``create_from_point_cloud_poisson``) from the
same oriented points at depth 8 and 9, timed and evaluated with the same protocol, both as it
comes out and trimmed (vertices below the 1% density quantile removed, as in Open3D's tutorial).
Open3D is optional (``pip install open3d-cpu``); without it those rows are skipped with a note.

Usage::

    python benchmarks/fit.py [--presets fast paper] [--budgets 30 60 120 300]
                             [--device auto|cpu|cuda] [--points 100000] [--out DIR] [--quick]

``--quick`` (smoke test): budgets 10 and 20 s, Poisson depth 8 only.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import trimesh

import isofield.fitting.outputs as fit_outputs
from isofield.errors import InputError
from isofield.fitting import fit, resume
from isofield.fitting.rundir import RunDir
from isofield.geometry.io import PointCloud, read_mesh, write_points
from isofield.geometry.sampling import sample_surface
from isofield.metrics.surface import evaluate_meshes
from isofield.train.checkpoint import load_checkpoint
from isofield.train.distributed import resolve_device
from isofield.train.loop import TrainingDivergedError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MESH = REPO / ".cache" / "cgal" / "data" / "meshes" / "armadillo.off"
DEFAULT_BUDGETS = (30.0, 60.0, 120.0, 300.0)
QUICK_BUDGETS = (10.0, 20.0)
POISSON_DEPTHS = (8, 9)
QUICK_POISSON_DEPTHS = (8,)
DENSITY_QUANTILE = 0.01
"""Poisson trimming: vertices whose density is below this quantile are removed."""
QUALITY_NC = 0.97
QUALITY_CD_PERCENT = 0.3
"""The quality target: normal consistency >= QUALITY_NC and Chamfer-L1 <= this % of the diagonal."""


@dataclass
class Row:
    """One line of the table.

    Attributes:
        method: e.g. "igr-fast" or "poisson-d8".
        budget: the training budget of the mark in seconds (None for Poisson).
        seconds: training seconds in total (neural) or reconstruction seconds (Poisson).
        steps: training steps in total (None for Poisson).
        metrics: an :func:`evaluate_meshes` result, or None when the row has no mesh.
        post_seconds: seconds of mesh extraction + evaluation of this mark.
        note: what went wrong, or how the mesh was post-processed.
    """

    method: str
    budget: float | None = None
    seconds: float | None = None
    steps: int | None = None
    metrics: dict[str, Any] | None = None
    post_seconds: float | None = None
    note: str = ""

    def value(self, key: str) -> float | None:
        return None if self.metrics is None else self.metrics.get(key)

    def meets(self, max_cd_percent: float, min_nc: float) -> bool:
        cd, nc = self.value("chamfer_l1_percent_of_diagonal"), self.value("normal_consistency")
        return cd is not None and nc is not None and cd <= max_cd_percent and nc >= min_nc


# ------------------------------------------------------------------------------------------
# Neural fits
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def timed_calls(module: Any, names: Sequence[str]) -> Iterator[dict[str, float]]:
    """Wrap ``module.<name>`` for each name with a timer while the block runs.

    Yields a dict name -> seconds spent in that function (summed over calls); the originals
    are put back on exit. Used to time the extraction and evaluation inside ``fit``/``resume``.
    """
    spent = dict.fromkeys(names, 0.0)
    originals: dict[str, Callable[..., Any]] = {name: getattr(module, name) for name in names}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    for name, function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def fit_preset(preset: str, points_path: Path, reference: Path, budgets: Sequence[float],
               run_dir: Path, device: str) -> list[Row]:
    """Train one IGR run of ``preset``, stopping at each budget mark; one row per mark."""
    method = f"igr-{preset}"
    rows: list[Row] = []
    for index, budget in enumerate(budgets):
        with timed_calls(fit_outputs, ("run_mesh", "evaluate_meshes")) as spent:
            try:
                if RunDir(run_dir).config_path.exists():
                    result = resume(run_dir, time_budget=budget, progress=False)
                else:
                    result = fit(points_path, method="igr", preset=preset, output=run_dir,
                                 reference=reference, time_budget=budget,
                                 overrides={"device": device}, progress=False)
            except TrainingDivergedError as exc:
                rows.append(Row(method, budget, *saved_progress(run_dir), note=f"diverged: {exc}"))
                rows += [Row(method, later, note="not run (diverged earlier)")
                         for later in budgets[index + 1:]]
                break
            except InputError as exc:  # e.g. no zero crossing yet; the checkpoint is kept
                message = str(exc).removeprefix(f"{run_dir}: ")
                rows.append(Row(method, budget, *saved_progress(run_dir), note=f"failed: {message}"))
                print(f"  {method} @ {budget:g} s: {rows[-1].note}", flush=True)
                continue
        rows.append(Row(method, budget, result.elapsed, result.step, result.metrics or None,
                        spent["run_mesh"] + spent["evaluate_meshes"]))
        print(f"  {method} @ {budget:g} s: {result.step} steps, {_metric_summary(rows[-1])}",
              flush=True)
    return rows


def saved_progress(run_dir: Path) -> tuple[float | None, int | None]:
    """(training seconds, steps) of the run's latest checkpoint; (None, None) without one."""
    run = RunDir(run_dir)
    if not run.has_checkpoint():
        return None, None
    checkpoint = load_checkpoint(run.checkpoint_path)
    return checkpoint.elapsed, checkpoint.step


# ------------------------------------------------------------------------------------------
# Poisson
# ------------------------------------------------------------------------------------------


def poisson_rows(cloud: PointCloud, reference: trimesh.Trimesh, depths: Sequence[int]) -> list[Row]:
    """Screened Poisson at each depth, as is and density-trimmed; [] (with a note) without Open3D."""
    try:
        import open3d as o3d
    except ImportError as exc:
        print(f"Poisson skipped: open3d is not importable ({exc}); "
              "install it with `pip install open3d-cpu`", flush=True)
        return []
    points = o3d.geometry.PointCloud()
    points.points = o3d.utility.Vector3dVector(cloud.points.astype(np.float64))
    points.normals = o3d.utility.Vector3dVector(cloud.normals.astype(np.float64))
    rows = []
    for depth in depths:
        start = time.perf_counter()
        mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(points, depth=depth)
        seconds = time.perf_counter() - start
        densities = np.asarray(densities)
        rows.append(_evaluated_row(f"poisson-d{depth}", _to_trimesh(mesh), reference, seconds,
                                   "as is"))
        trimmed = o3d.geometry.TriangleMesh(mesh)
        trimmed.remove_vertices_by_mask(densities < np.quantile(densities, DENSITY_QUANTILE))
        rows.append(_evaluated_row(f"poisson-d{depth}-trim", _to_trimesh(trimmed), reference,
                                   seconds, f"density < {DENSITY_QUANTILE:g} quantile removed"))
        print(f"  poisson depth {depth}: {seconds:.1f} s, {_metric_summary(rows[-2])}", flush=True)
    return rows


def _to_trimesh(mesh: Any) -> trimesh.Trimesh:
    """An Open3D triangle mesh as a trimesh (vertices (V, 3), faces (F, 3)), unprocessed."""
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=False)


def _evaluated_row(method: str, mesh: trimesh.Trimesh, reference: trimesh.Trimesh,
                   seconds: float, note: str) -> Row:
    start = time.perf_counter()
    metrics = evaluate_meshes(mesh, reference)
    return Row(method, None, seconds, None, metrics, time.perf_counter() - start, note)


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------

HEADERS = ("method", "budget s", "trained s", "steps", "Chamfer-L1", "CD % diag", "NC",
           "F-score", "extract+eval s", "note")


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table (numbers right-aligned)."""
    cells = [HEADERS] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = []
    for number, line in enumerate(cells):
        parts = [line[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(line[1:-1], widths[1:-1])]
        parts.append(line[-1])
        lines.append("  ".join(parts).rstrip())
        if number == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.method,
        _number(row.budget, "{:g}"),
        _number(row.seconds, "{:.1f}"),
        _number(row.steps, "{:d}"),
        _number(row.value("chamfer_l1"), "{:.5f}"),
        _number(row.value("chamfer_l1_percent_of_diagonal"), "{:.3f}"),
        _number(row.value("normal_consistency"), "{:.4f}"),
        _number(row.value("f_score"), "{:.4f}"),
        _number(row.post_seconds, "{:.1f}"),
        row.note,
    )


def _number(value: float | int | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _metric_summary(row: Row) -> str:
    if row.metrics is None:
        return row.note
    return (f"CD {row.value('chamfer_l1_percent_of_diagonal'):.3f}% diag, "
            f"NC {row.value('normal_consistency'):.4f}, F {row.value('f_score'):.4f}")


def quality_summary(rows: Sequence[Row], methods: Sequence[str]) -> list[str]:
    """Per method: the first mark that meets the quality target, or "not reached"."""
    target = f"NC >= {QUALITY_NC} and CD <= {QUALITY_CD_PERCENT}% diag"
    lines = []
    for method in methods:
        own = [row for row in rows if row.method == method]
        hit = next((row for row in own if row.meets(QUALITY_CD_PERCENT, QUALITY_NC)), None)
        if hit is None:
            tried = ", ".join(f"{row.budget:g}" for row in own if row.budget is not None)
            lines.append(f"{method}: {target} not reached (budgets tried: {tried} s)")
        elif hit.budget is None:
            lines.append(f"{method}: {target} reached in {hit.seconds:.1f} s")
        else:
            lines.append(f"{method}: {target} first reached at the {hit.budget:g} s budget "
                         f"({hit.seconds:.1f} s trained, {hit.steps} steps)")
    return lines


def speedup_summary(rows: Sequence[Row]) -> list[str]:
    """How much sooner the fast preset reaches the paper preset's best measured quality."""
    definition = (
        "Definition: Q* = the igr-paper row with the lowest CD % diag (its CD and NC); "
        "t_paper = that row's trained seconds; t_fast = trained seconds of the first igr-fast "
        "row with CD <= CD(Q*) and NC >= NC(Q*); ratio = t_paper / t_fast. Both times are "
        "read at the budget marks (upper bounds at the grid's resolution); when the first "
        "igr-fast mark already qualifies, the ratio is a lower bound (\"at least\")."
    )
    fast = [row for row in rows if row.method == "igr-fast" and row.metrics is not None]
    paper = [row for row in rows if row.method == "igr-paper" and row.metrics is not None]
    if not fast or not paper:
        return [definition, "ratio: not computed (needs evaluated rows of both presets)"]
    best = min(paper, key=lambda row: row.value("chamfer_l1_percent_of_diagonal"))
    cd, nc = best.value("chamfer_l1_percent_of_diagonal"), best.value("normal_consistency")
    reached = next((row for row in fast if row.meets(cd, nc)), None)
    quality = f"paper's best quality (CD {cd:.3f}% diag, NC {nc:.4f}, at {best.seconds:.1f} s)"
    if reached is None:
        longest = max(row.seconds for row in fast)
        return [definition, f"fast does not reach {quality} within {longest:.1f} s of training "
                            f"(ratio < {best.seconds / longest:.2f})"]
    # Reached at the first mark: fast may have got there earlier, so the ratio is a lower bound.
    bound = "at least " if reached is fast[0] else ""
    return [definition, f"fast reaches {quality} {bound}{best.seconds / reached.seconds:.2f} times "
                        f"sooner ({reached.seconds:.1f} s trained vs {best.seconds:.1f} s)"]


def machine_lines(device: str) -> list[str]:
    """Device, threads, CPU count and load: the context every timing needs."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"device: {resolve_device(device)} (--device {device}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; CPUs: {os.cpu_count()} ({affinity} usable); "
        f"python {platform.python_version()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"cuda: {torch.cuda.get_device_name(0)}")
    return lines


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH, help="reference mesh")
    parser.add_argument("--presets", nargs="+", default=["fast", "paper"], help="IGR presets")
    parser.add_argument("--budgets", nargs="+", type=float, default=None,
                        help="training seconds at which to evaluate (increasing)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--points", type=int, default=100_000, help="oriented points sampled")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the point file and the runs (default: a new temp dir)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: budgets 10 20, Poisson depth 8 only")
    args = parser.parse_args(argv)
    if args.budgets is None:
        args.budgets = list(QUICK_BUDGETS if args.quick else DEFAULT_BUDGETS)
    if any(b <= 0 for b in args.budgets) or list(args.budgets) != sorted(set(args.budgets)):
        parser.error("--budgets must be positive and strictly increasing")
    if args.points < 1:
        parser.error("--points must be positive")
    return args


def output_folder(out: Path | None, prefix: str) -> Path:
    """The folder a benchmark writes its inputs and runs into: a new temp dir (``prefix``), or
    ``out``, created if needed; one that already holds anything is refused (InputError), so
    that nothing of the user's is overwritten."""
    if out is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: not an empty folder; give a new or empty --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.mesh.exists():
        print(f"{args.mesh}: not found (run `make data` for the CGAL meshes)", file=sys.stderr)
        return 2
    try:
        resolve_device(args.device)  # fail early on an unknown or unavailable device
        out = output_folder(args.out, "isofield-fit-bench-")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    depths = QUICK_POISSON_DEPTHS if args.quick else POISSON_DEPTHS
    reference = read_mesh(args.mesh)
    cloud = sample_surface(reference, args.points, seed=0)
    points_path = out / f"{args.mesh.stem}-{args.points}.ply"
    write_points(cloud, points_path)

    started = time.perf_counter()
    print("\n".join(machine_lines(args.device)))
    print(f"load average at start: {load_average()}")
    print(f"input: {len(cloud)} oriented points from {args.mesh.name} (seed 0) -> {points_path}")
    print(f"runs in: {out}", flush=True)

    rows: list[Row] = []
    for preset in args.presets:
        rows += fit_preset(preset, points_path, args.mesh, args.budgets, out / f"igr-{preset}",
                           args.device)
    rows += poisson_rows(cloud, reference, depths)

    resolutions = sorted({RunDir(out / f"igr-{p}").load_config().extract.resolution
                          for p in args.presets if RunDir(out / f"igr-{p}").config_path.exists()})
    print()
    print(f"Fit one shape: {args.mesh.name}, {len(cloud)} oriented points. Neural rows: IGR, one run "
          f"per preset, evaluated at each training budget (training time accumulates across "
          f"resumes; sparse marching cubes at {'/'.join(map(str, resolutions)) or '-'}^3).")
    print("Metrics: isofield-v1 (evaluate_meshes: 100k area-weighted samples per mesh, seed 0); "
          "Chamfer-L1 in mesh units, CD % diag = Chamfer-L1 / reference bbox diagonal, NC = normal "
          "consistency, F-score at tau = 1% of the diagonal. trained s: training seconds in total "
          "(Poisson: reconstruction seconds). extract+eval s: mesh extraction + evaluate_meshes "
          "(incl. volumetric IoU) of that mark.")
    print()
    print(format_table(rows))
    print()
    methods = [f"igr-{p}" for p in args.presets] + sorted({r.method for r in rows
                                                            if r.method.startswith("poisson")})
    print("\n".join(quality_summary(rows, methods)))
    print("\n".join(speedup_summary(rows)))
    print()
    print(f"load average at end: {load_average()}; benchmark wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
