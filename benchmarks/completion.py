"""Benchmark: time per shape of inference in a trained shape space, against the goal of 10 s.

For each test shape (by default the shapes of the run's data directory it was not trained on,
at most ``--shapes``), on the CPU:

- ``reconstruct``: DeepSDF's protocol from the shape's SDF samples (``--steps`` steps of
  ``--samples-per-step`` samples, one code) + its mesh at the run's extraction resolution;
- ``complete``: a depth scan of the shape's source mesh from the default camera (azimuth 30°,
  elevation 20°, 256x256 pixels), ``--restarts`` restarts screened after ``steps // 8`` steps,
  the best continued to ``--steps`` (``--points-per-step`` observed points per step, half as
  many eikonal points, no free space) + its mesh.

Each row gives the optimisation and extraction seconds, their sum, its ratio to the goal
(<= 1 meets it) and, for orientation, Chamfer-L1 against the source mesh in % of its
bounding-box diagonal (ONet protocol, 30,000 points per mesh here to keep it quick).

Without ``--run`` a tiny space is trained first in a temporary folder (8 procedural chairs at
resolution 48, 6 trained for 300 steps with a 3x64 decoder and codes of 16, as in
``tests/test_inference.py``); its two held-out chairs are timed. That decoder is far smaller
than the ``cpu`` preset's 4x128 with codes of 64, so give ``--run`` for realistic numbers.

Usage::

    python benchmarks/completion.py [--run RUN] [--shapes 3] [--steps 800] [--restarts 4]
                                    [--samples-per-step 8000] [--points-per-step 256]
                                    [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from isofield.data.datasets import DeepSDFDataDir, ShapeRef, write_split
from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.errors import InputError
from isofield.geometry.io import read_mesh
from isofield.geometry.normalization import Normalization
from isofield.geometry.sampling import sample_surface
from isofield.geometry.scan import depth_scan
from isofield.metrics.surface import chamfer_l1
from isofield.deepsdf import load_shape_space, train_shape_space
from isofield.deepsdf.inference import FittedCode, complete_code, mesh_fit, reconstruct_code
from isofield.deepsdf.outputs import source_meshes
from isofield.deepsdf.space import ShapeSpace

GOAL_SECONDS = 10.0
EVALUATION_POINTS = 30_000


@dataclass
class Row:
    shape: str
    task: str
    optimisation: float
    mesh: float
    chamfer_percent: float | None

    @property
    def total(self) -> float:
        return self.optimisation + self.mesh

    def line(self) -> str:
        error = "no surface" if self.chamfer_percent is None else f"{self.chamfer_percent:.2f}"
        return (f"{self.shape:<16s} {self.task:<12s} {self.optimisation:>9.2f} {self.mesh:>7.2f} "
                f"{self.total:>8.2f} {self.total / GOAL_SECONDS:>7.2f} {error:>10s}")


HEADER = (f"{'shape':<16s} {'task':<12s} {'optimise s':>9s} {'mesh s':>7s} {'total s':>8s} "
          f"{'/ goal':>7s} {'CD-L1 %':>10s}")


def tiny_run(folder: Path) -> Path:
    """Train the tiny space of the module notes into ``folder / "run"``; returns the run."""
    write_family("chairs", 8, folder / "meshes", resolution=48)
    preprocess(folder / "meshes", folder / "data", samples=20_000, surface_points=2_000, progress=False)
    refs = DeepSDFDataDir(folder / "data").shapes()
    write_split(folder / "train.json", refs[:6])
    config = {
        "data": str(folder / "data"), "split": str(folder / "train.json"), "preset": "cpu",
        "latent_dim": 16, "shapes_per_batch": 6, "samples_per_shape": 512,
        "max_samples_per_shape": 4000, "reconstruction_every": None, "reconstruction_shapes": 0,
        "decoder": {"depth": 3, "hidden": 64, "skip": [1]},
        "train": {"steps": 300, "lr_decoder": 3e-3, "lr_codes": 6e-3, "log_every": 50,
                  "checkpoint_every": 1000, "schedule_decoder": {"name": "constant"},
                  "schedule_codes": {"name": "constant"}},
        "extract": {"resolution": 64},
    }
    train_shape_space(config, folder / "run", progress=False)
    return folder / "run"


def time_shape(space: ShapeSpace, data: DeepSDFDataDir, ref: ShapeRef, args: argparse.Namespace) -> list[Row]:
    """The reconstruct and complete rows of one test shape."""
    samples, frame = data.load_sdf(ref)
    source = source_meshes(data.root, [ref])[0]
    truth = None if source is None else read_mesh(source)
    fit = reconstruct_code(space, samples, steps=args.steps, samples_per_step=args.samples_per_step)
    rows = [_row(space, ref.shape_id, "reconstruct", fit, frame, truth)]
    if truth is not None:
        scan = depth_scan(truth)
        fit = complete_code(space, frame.to_canonical(scan.points), scan.normals, restarts=args.restarts,
                            steps=args.steps, points_per_step=args.points_per_step)
        rows.append(_row(space, ref.shape_id, f"complete x{args.restarts}", fit, frame, truth))
    return rows


def _row(space: ShapeSpace, name: str, task: str, fit: FittedCode, frame: Normalization,
         truth: trimesh.Trimesh | None) -> Row:
    started = time.perf_counter()
    try:
        mesh = mesh_fit(space, fit, frame).mesh
    except InputError:  # the code's field has no surface: a row, not a crash
        return Row(name, task, fit.seconds, time.perf_counter() - started, None)
    seconds = time.perf_counter() - started
    error = None
    if truth is not None:
        distance = chamfer_l1(sample_surface(mesh, EVALUATION_POINTS, 1).points,
                              sample_surface(truth, EVALUATION_POINTS, 0).points)
        error = 100 * distance / float(np.linalg.norm(truth.extents))
    return Row(name, task, fit.seconds, seconds, error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained shape-space run (default: train a tiny one)")
    parser.add_argument("--shapes", type=int, default=3, help="test shapes to time")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--samples-per-step", type=int, default=8000)
    parser.add_argument("--points-per-step", type=int, default=256)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="isofield-bench-") as scratch:
        run = args.run or tiny_run(Path(scratch))
        space = load_shape_space(run)
        data = DeepSDFDataDir(space.data_dir)
        training = {shape.ref for shape in space.shapes}
        refs = [ref for ref in data.shapes() if ref not in training][: args.shapes]
        decoder = space.config.decoder
        print(f"run {run if args.run else '(tiny, trained here)'}: {decoder['depth']}x{decoder['hidden']} "
              f"{decoder['activation']} decoder, codes of {space.config.latent_dim}, mesh at "
              f"{space.config.extract.resolution} cells; {len(refs)} held-out shapes\n"
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
              f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; goal {GOAL_SECONDS:g} s "
              f"per shape; reconstruct: {args.steps} steps x {args.samples_per_step} samples; complete: "
              f"{args.restarts} restarts, {args.steps} steps x {args.points_per_step} points\n")
        print(HEADER + "\n" + "-" * len(HEADER))
        rows = []
        for ref in refs:
            for row in time_shape(space, data, ref, args):
                rows.append(row)
                print(row.line(), flush=True)
        for task in sorted({row.task for row in rows}):
            chosen = [row for row in rows if row.task == task]
            errors = [row.chamfer_percent for row in chosen if row.chamfer_percent is not None]
            mean = Row("mean", task, float(np.mean([r.optimisation for r in chosen])),
                       float(np.mean([r.mesh for r in chosen])), float(np.mean(errors)) if errors else None)
            print(mean.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
