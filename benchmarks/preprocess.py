"""Benchmark: dataset preprocessing throughput (shapes per minute, DeepSDF's 500k samples each).

Preprocesses the same dataset once per worker count into a fresh folder, then reruns the first
folder (every shape skipped: the cost of resuming a finished run). Prints a plain-text table;
the ratio is the baseline's wall time (the first worker count, default 1) / the row's wall time,
measured in the same run (above 1: faster). ``cpu s`` counts this process and its workers.

The default dataset is ``--shapes`` procedural meshes (icospheres, tori, capsules, cylinders of
4.6k-8.2k faces, each moved and scaled differently) written as PLY; ``--dataset`` takes any
mesh folder instead (flat or ShapeNet layout).

    python benchmarks/preprocess.py [--shapes 8] [--workers 1 2] [-n 500000] [--dataset DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from isofield.data.datasets import discover
from isofield.data.preprocess import Manifest, preprocess
from isofield.geometry.io import read_mesh, write_mesh

PROCEDURAL: list[Callable[[], trimesh.Trimesh]] = [
    lambda: trimesh.creation.icosphere(subdivisions=4),
    lambda: trimesh.creation.torus(1.0, 0.3, major_sections=96, minor_sections=32),
    lambda: trimesh.creation.capsule(height=1.0, radius=0.4, count=[48, 48]),
    lambda: trimesh.creation.cylinder(0.5, 1.5, sections=128).subdivide().subdivide(),
]


def write_procedural(folder: Path, count: int) -> Path:
    """``count`` meshes cycling through :data:`PROCEDURAL`, each with its own scale and offset."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        mesh = PROCEDURAL[index % len(PROCEDURAL)]()
        mesh.apply_scale(rng.uniform(0.5, 3.0))
        mesh.apply_translation(rng.uniform(-5, 5, 3))
        write_mesh(mesh, folder / f"shape{index:03d}.ply")
    return folder


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _timed_run(
    dataset: Path, out_dir: Path, workers: int, samples: int
) -> tuple[float, float, Manifest]:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    manifest = preprocess(dataset, out_dir, workers=workers, samples=samples, progress=False)
    return time.perf_counter() - wall, _cpu_seconds() - cpu, manifest


def _row(name: str, wall: float, cpu: float, manifest: Manifest, baseline: float) -> str:
    run = manifest.run
    per_shape = [rec.seconds for rec in manifest.records.values() if rec.status == "ok"]
    rate = 60.0 * run.ok / wall if run.ok else 0.0
    return (
        f"{name:28s} {run.ok:>4d} {run.skipped:>5d} {run.failed:>5d} {wall:>8.1f} {cpu:>8.1f} "
        f"{rate:>10.1f} {baseline / wall:>7.2f}x  {np.mean(per_shape):>8.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=8, help="procedural shapes (default 8)")
    parser.add_argument("--dataset", type=Path, help="a mesh folder instead of procedural shapes")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("-n", type=int, default=500_000, help="SDF samples per shape")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="isofield-bench-") as scratch:
        dataset = args.dataset or write_procedural(Path(scratch) / "shapes", args.shapes)
        faces = [len(read_mesh(ref.mesh_path).faces) for ref in discover(dataset)]
        print(
            f"{len(faces)} shapes from {dataset if args.dataset else 'procedural meshes'} "
            f"({min(faces)}-{max(faces)} faces), {args.n} SDF + 100000 surface samples each; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
            "ok = preprocessed now; per shape = mean seconds inside one worker; "
            "ratio = baseline wall / row wall\n"
        )
        header = (
            f"{'':28s} {'ok':>4s} {'skip':>5s} {'fail':>5s} {'wall s':>8s} {'cpu s':>8s} "
            f"{'shapes/min':>10s} {'ratio':>8s}  {'per shape':>8s}"
        )
        print(header + "\n" + "-" * len(header))
        baseline = 0.0
        for index, workers in enumerate(args.workers):
            out_dir = Path(scratch) / f"data-{workers}"
            wall, cpu, manifest = _timed_run(dataset, out_dir, workers, args.n)
            baseline = baseline or wall
            name = f"workers={workers}" + (" (baseline)" if index == 0 else "")
            print(_row(name, wall, cpu, manifest, baseline), flush=True)
        first = Path(scratch) / f"data-{args.workers[0]}"
        wall, cpu, manifest = _timed_run(dataset, first, args.workers[0], args.n)
        print(f"{'resume, all done':28s} {manifest.run.ok:>4d} {manifest.run.skipped:>5d} "
              f"{manifest.run.failed:>5d} {wall:>8.2f} {cpu:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
