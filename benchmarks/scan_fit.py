"""Benchmark: `isofield fit` given 10x Screened Poisson's wall time, in total, on scans.

Each input is a point set and what it is scored against:

- ``armadillo-noisy``: 100,000 points sampled on the CGAL armadillo (face normals, seed 0),
  moved by Gaussian noise of 0.1% of the bounding-box diagonal; scored against the mesh;
- ``bunny-noisy``: the CGAL bunny00's 35,947 vertices with their area-weighted normals, moved
  by Gaussian noise of 0.1% of the diagonal; scored against the mesh;
- ``kitten``: CGAL's oriented kitten scan (5,210 points); no mesh exists, so every method is
  scored against the points and their normals.

Two tables, each in one run beside its baseline:

- **oriented**: Open3D's Screened Poisson (depth 8) on the file's normals, then the default
  ``isofield fit`` (igr, preset fast) on the same file;
- **no normals**: the same points without normals. Baseline: Open3D's ``estimate_normals``
  (30 neighbours) + ``orient_normals_consistent_tangent_plane`` (30), then Poisson (depth 8),
  timed together; isofield: ``fit --method sald``.

isofield runs in two ways, each given ``factor x Poisson's seconds`` in total:

- **command**: as a user runs it, one ``isofield fit`` process, timed from the command's start
  to its report (Python start-up and imports, preparation, training, meshing, metrics, pictures);
- **in-process**: ``isofield.fit(...)`` called in this process, timed from the call to its
  report (preparation to report), as Poisson is timed inside a process that has imported
  Open3D. The process has imported isofield and made one torch optimiser before (the first
  one imports ``torch._dynamo``, 1-2 s once per process), as a script that fits many scans
  pays once.

Poisson's time is the median of three runs. Each isofield run gets a training budget of its
total minus its own fixed cost (wall time less training time), measured just before in the same
way: the larger of a run with 1 s of training and one with half the budget that the first
leaves. A row meets the target with a watertight mesh, Poisson's quality (below) and a total
within the factor. The fits are given the reference (``--reference``), so their own metrics
are inside the timed part. Metrics: :func:`isofield.fitting.outputs.evaluate_against`, the
fit's own (isofield-v1: 100k area-weighted samples, F-score at 1% of the diagonal), computed
again from each mesh after the timed part; against a mesh also the surface Chamfer-L1 (each
mesh's samples to the other's triangles, ``evaluate_meshes(surface=True)``). The sampled
Chamfer-L1 has a floor from the sampling, printed under the tables (the reference mesh against
itself): the surface one has none. Needs Open3D (the ``bench`` extra).

Usage::

    python benchmarks/scan_fit.py [--inputs armadillo-noisy bunny-noisy kitten] [--factor 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

import isofield
from fit import output_folder
from isofield.errors import InputError
from isofield.fitting.outputs import evaluate_against
from isofield.fitting.rundir import RunDir
from isofield.geometry.io import PointCloud, read_mesh, read_points, write_points
from isofield.geometry.sampling import sample_surface
from isofield.metrics.surface import evaluate_meshes
from isofield.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
CGAL = REPO / ".cache" / "cgal" / "data"
INPUTS = ("armadillo-noisy", "bunny-noisy", "kitten")
NOISE = 0.001
"""Gaussian noise on the noisy inputs, as a fraction of the bounding-box diagonal."""
POISSON_DEPTH = 8
POISSON_RUNS = 3
OPEN3D_NEIGHBOURS = 30
NC_MARGIN = 0.005
CD_RATIO = 1.1
"""The target: NC >= Poisson's - NC_MARGIN and Chamfer-L1 <= CD_RATIO x Poisson's, a watertight
mesh, and a wall time within the factor (--factor) x Poisson's."""
CALIBRATION_SECONDS = 1.0
"""Training budget of the first run that measures a fit's fixed cost: long enough for a mesh
like a real run's (a one-step blob meshes and draws faster). The second gets half the training
budget that the first leaves: a longer-trained field meshes finer, and its outputs take longer
(docs/fit-ablations.md)."""
PLANNING_MARGIN = 0.05
"""Share of the total kept free when the training budget is planned: a run's fixed cost varies
by a few tenths of a second around its calibration's."""


@dataclass
class Row:
    """One line of a table: a method's mesh on one input, its wall seconds and metrics."""

    input: str
    method: str
    seconds: float
    metrics: dict
    watertight: bool
    steps: int | None = None
    budget: float | None = None


@dataclass
class ScanInput:
    """A named input: its oriented cloud, the file ``isofield fit`` reads, and what it is
    scored against (a mesh, or the cloud itself) with that file's path."""

    name: str
    cloud: PointCloud
    points: Path
    reference: Path
    truth: trimesh.Trimesh | PointCloud


def load_input(name: str, folder: Path) -> ScanInput:
    """The named input; a noisy one is written under ``folder``."""
    if name == "kitten":
        path = CGAL / "points_3" / "kitten.xyz"
        cloud = read_points(path)
        return ScanInput(name, cloud, path, path, cloud)
    rng = np.random.default_rng(0)
    if name == "armadillo-noisy":
        reference = CGAL / "meshes" / "armadillo.off"
        mesh = read_mesh(reference)
        cloud = sample_surface(mesh, 100_000, seed=0)
        points, normals = cloud.points, cloud.normals
    else:
        reference = CGAL / "meshes" / "bunny00.off"
        mesh = read_mesh(reference)
        points, normals = np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals)
    diagonal = np.linalg.norm(np.ptp(points, axis=0))
    noisy = points + rng.normal(scale=NOISE * diagonal, size=points.shape)
    cloud = PointCloud(noisy.astype(np.float32), np.asarray(normals, dtype=np.float32))
    path = folder / f"{name}.ply"
    write_points(cloud, path)
    return ScanInput(name, cloud, path, reference, mesh)


def poisson(cloud: PointCloud, estimate: bool) -> tuple[trimesh.Trimesh, float]:
    """Screened Poisson's mesh and seconds (normal estimation included when ``estimate``)."""
    import open3d as o3d

    start = time.perf_counter()
    points = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.points.astype(np.float64)))
    if estimate:
        points.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(OPEN3D_NEIGHBOURS))
        points.orient_normals_consistent_tangent_plane(OPEN3D_NEIGHBOURS)
    else:
        points.normals = o3d.utility.Vector3dVector(cloud.normals.astype(np.float64))
    mesh, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(points, depth=POISSON_DEPTH)
    seconds = time.perf_counter() - start
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=False), seconds


def run_command(points: Path, reference: Path, method: str, limit: dict[str, float], out: Path) -> float:
    """Wall seconds of one ``isofield fit`` command writing the run ``out``; ``limit``:
    ``{"steps": n}`` or ``{"time_budget": s}``."""
    flags = [item for key, value in limit.items() for item in (f"--{key.replace('_', '-')}", f"{value:g}")]
    command = [sys.executable, "-m", "isofield.cli", "fit", str(points), "--method", method,
               "--reference", str(reference), "-o", str(out), "-q", *flags]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_in_process(points: Path, reference: Path, method: str, limit: dict[str, float], out: Path) -> float:
    """Wall seconds of ``isofield.fit(...)`` in this process (preparation to report)."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        isofield.fit(points, method=method, reference=reference, output=out, progress=False, **limit)
    return time.perf_counter() - start


RUNNERS = {"command": run_command, "in-process": run_in_process}


def fit_row(scan: ScanInput, points: Path, method: str, target_seconds: float, folder: Path,
            mode: str) -> Row:
    """The fit of ``points`` given ``target_seconds`` in total, run as ``mode`` (a key of
    RUNNERS): two shorter runs for the fixed cost (wall time less training time; the larger
    counts, see CALIBRATION_SECONDS), then the run, planned to end PLANNING_MARGIN of the total
    early."""
    runner, name = RUNNERS[mode], f"{scan.name}-{method}-{mode}"
    fixed, training = 0.0, CALIBRATION_SECONDS
    for index in range(2):
        calibration = folder / f"{name}-calibration-{index}"
        wall = runner(points, scan.reference, method, {"time_budget": training}, calibration)
        fixed = max(fixed, wall - load_checkpoint(RunDir(calibration).checkpoint_path).elapsed)
        training = round(max(CALIBRATION_SECONDS, (target_seconds - fixed) / 2), 2)
    budget = round(max(1.0, (1.0 - PLANNING_MARGIN) * target_seconds - fixed), 2)
    run = folder / name
    seconds = runner(points, scan.reference, method, {"time_budget": budget}, run)
    steps = load_checkpoint(RunDir(run).checkpoint_path).step
    mesh = trimesh.load(run / "mesh.ply", process=False)
    return Row(scan.name, f"isofield {method} ({mode})", seconds, measures(mesh, scan.truth),
               bool(mesh.is_watertight), steps, budget)


def measures(mesh: trimesh.Trimesh, truth: trimesh.Trimesh | PointCloud) -> dict:
    """The fit's own metrics of ``mesh``; against a mesh also the surface Chamfer-L1."""
    if isinstance(truth, PointCloud):
        return evaluate_against(mesh, truth)
    return evaluate_meshes(mesh, truth, surface=True)


def warm_up_torch() -> None:
    """What a process pays once before its first fit: the first torch optimiser imports
    ``torch._dynamo``."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def poisson_row(scan: ScanInput, estimate: bool) -> Row:
    """Poisson's row: the run of median time of POISSON_RUNS (its time varies by ~20% from
    run to run, and sets every isofield budget)."""
    runs = sorted((poisson(scan.cloud, estimate) for _ in range(POISSON_RUNS)), key=lambda run: run[1])
    mesh, seconds = runs[len(runs) // 2]
    label = "poisson (open3d normals)" if estimate else "poisson"
    return Row(scan.name, label, seconds, measures(mesh, scan.truth), bool(mesh.is_watertight))


def table(groups: list[tuple[Row, list[Row]]], factor: float) -> str:
    """One line per row; each group is a baseline and the rows compared with it, each given
    ``factor`` x the baseline's seconds."""
    head = ("input", "method", "wall s", "x poisson", "train s", "steps", "CD % diag",
            "surface CD %", "NC", "F-score", "watertight", "target")
    lines = [head]
    for baseline, rows in groups:
        for current in (baseline, *rows):
            lines.append(_cells(current, baseline, factor))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join([text[0], "-" * len(text[0]), *text[1:]])


def _cells(row: Row, baseline: Row, factor: float) -> tuple[str, ...]:
    cd, nc = row.metrics["chamfer_l1_percent_of_diagonal"], row.metrics.get("normal_consistency")
    base_cd, base_nc = (baseline.metrics["chamfer_l1_percent_of_diagonal"],
                        baseline.metrics.get("normal_consistency"))
    surface = row.metrics.get("surface_chamfer_l1_percent_of_diagonal")
    ratio, target = row.seconds / baseline.seconds, "-"
    if row is not baseline:
        met = (cd <= CD_RATIO * base_cd and nc is not None and nc >= base_nc - NC_MARGIN
               and row.watertight and ratio <= factor)
        late = f", {ratio:.2f}x > {factor:g}x" if ratio > factor else ""
        exact = ("" if surface is None else
                 f", surface CD x{surface / baseline.metrics['surface_chamfer_l1_percent_of_diagonal']:.2f}")
        target = f"{'met' if met else 'missed'} (CD x{cd / base_cd:.2f}{exact}, NC {nc - base_nc:+.4f}{late})"
    return (row.input, row.method, f"{row.seconds:.1f}", f"{ratio:.1f}",
            "-" if row.budget is None else f"{row.budget:.1f}",
            "-" if row.steps is None else str(row.steps), f"{cd:.3f}",
            "-" if surface is None else f"{surface:.4f}", "-" if nc is None else f"{nc:.4f}",
            f"{row.metrics['f_score']:.4f}", "yes" if row.watertight else "no", target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    parser.add_argument("--factor", type=float, default=10.0,
                        help="isofield's total wall time, in multiples of Poisson's")
    parser.add_argument("--modes", nargs="+", choices=list(RUNNERS), default=list(RUNNERS),
                        help="how isofield runs: the command, and/or isofield.fit in this process")
    parser.add_argument("--out", type=Path, default=None, help="a new or empty folder for the inputs and runs")
    args = parser.parse_args(argv)
    if not (CGAL / "meshes").is_dir():
        print(f"{CGAL}: not found (run `make data`)", file=sys.stderr)
        return 2
    try:
        folder = output_folder(args.out, "isofield-scan-fit-")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; runs in {folder}",
          flush=True)
    warm_up_torch()
    oriented, raw, floors = [], [], []
    for name in args.inputs:
        scan = load_input(name, folder)
        if isinstance(scan.truth, trimesh.Trimesh):
            itself = evaluate_meshes(scan.truth, scan.truth)
            floors.append(f"  {name}: CD {itself['chamfer_l1_percent_of_diagonal']:.3f}, "
                          f"NC {itself['normal_consistency']:.4f}")
        bare = folder / f"{name}-raw.xyz"
        write_points(PointCloud(scan.cloud.points, None), bare)
        for groups, points, method, estimate in ((oriented, scan.points, "igr", False), (raw, bare, "sald", True)):
            baseline = poisson_row(scan, estimate)
            groups.append((baseline, [fit_row(scan, points, method, args.factor * baseline.seconds, folder, mode)
                                      for mode in args.modes]))
        print(f"  {name} done", flush=True)
    target = (f"target: NC >= Poisson's - {NC_MARGIN} and CD <= {CD_RATIO} x Poisson's, watertight, "
              f"in {args.factor:g}x Poisson's wall time")
    print(f"\nOriented points (Poisson depth {POISSON_DEPTH} on the file's normals); {target}")
    print(table(oriented, args.factor))
    print(f"\nThe same points without normals (Poisson on Open3D's normals, "
          f"{OPEN3D_NEIGHBOURS} neighbours, estimation timed with it)")
    print(table(raw, args.factor))
    if floors:
        print("\nThe reference mesh against itself (the sampled metrics' floor; surface CD 0):")
        print("\n".join(floors))
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
