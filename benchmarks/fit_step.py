"""Benchmark: the cost of one training step of a fit, against the bare field step.

Input: ``--points`` oriented points (default 100k) sampled from the CGAL armadillo (seed 0),
prepared by the method exactly as ``isofield fit`` prepares them (``--method``, ``--preset``;
default igr / fast). Every row trains the same field (``build_field`` of the resolved config, same
seed, every grid level on from the first step) on batches of the same size as the method's step,
for ``--steps`` timed steps after ``--warmup`` untimed ones, single-threaded unless ``--threads``
says otherwise:

- ``bare, value only``: field values of a fixed batch, an L1 loss, backward, Adam;
- ``bare, + eikonal``: the same with the input gradient (``create_graph``) and an eikonal
  term, so the backward pass is a double backward: the floor of any SDF fit's step;
- ``task step``: the method's own ``loss`` (sampling, every term) + backward + Adam, no trainer;
- ``trainer step``: :class:`isofield.train.loop.Trainer` as a fit builds it (learning-rate
  schedule, logging, checkpoints at the config's interval) over ``--warmup + --steps`` steps,
  from its own count of training seconds.

The table prints ms/step, steps/s, points/s and each row's ratio to ``bare, + eikonal``; the
trainer's overhead over the task step is the share the issue asks to keep under 20%.

Usage::

    python benchmarks/fit_step.py [--method igr] [--preset fast] [--points 100000]
                                  [--steps 60] [--warmup 5] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from isofield.config import from_dict
from isofield.diff import gradient
from isofield.fitting.config import resolve_config
from isofield.geometry.io import read_mesh, write_points
from isofield.geometry.sampling import sample_surface
from isofield.methods import get_method
from isofield.methods.base import LevelSchedule
from isofield.nn import build_field
from isofield.train.distributed import resolve_device
from isofield.train.settings import build_trainer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MESH = REPO / ".cache" / "cgal" / "data" / "meshes" / "armadillo.off"


def _timed(step: Callable[[int], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of ``step(i)`` over ``steps`` calls after ``warmup`` untimed ones."""
    for index in range(warmup):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(steps):
        step(warmup + index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _bare_step(field: torch.nn.Module, batch: torch.Tensor, eikonal: bool) -> Callable[[int], None]:
    """One optimisation step of ``field`` on the fixed ``batch`` (B, 3): |f| (+ eikonal)."""
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)

    def step(_: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        points = batch.detach().requires_grad_(eikonal)
        values = field(points)
        loss = values.abs().mean()
        if eikonal:
            loss = loss + ((gradient(values, points).norm(dim=-1) - 1) ** 2).mean()
        loss.backward()
        optimizer.step()

    return step


def _task_step(task) -> Callable[[int], None]:
    """The method's own step: its loss (sampling included) + backward + Adam, no trainer."""
    groups = task.param_groups()
    optimizer = torch.optim.Adam([{"params": group.params, "lr": group.lr} for group in groups])
    generator = torch.Generator().manual_seed(0)

    def step(index: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        task.loss(index, generator)["total"].backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="igr")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        mesh = read_mesh(args.mesh)
        cloud = Path(tmp) / "points.ply"
        write_points(sample_surface(mesh, args.points, seed=0), cloud)
        config = resolve_config(get_method(args.method).presets,
                                [{"method": args.method, "preset": args.preset, "input": str(cloud),
                                  "device": str(device), "train": {"steps": args.steps + args.warmup}}])
        method = get_method(config.method)
        options = from_dict(method.options_type, config.options, "config.options")
        data = method.prepare(cloud, options, config.seed)

        def fresh_field() -> torch.nn.Module:
            torch.manual_seed(config.seed)
            return build_field(config.field).to(device)

        def task_of(field: torch.nn.Module):
            return method.task(field, data, options, device, config.train.lr, LevelSchedule())

        probe = task_of(fresh_field())
        sizes: list[int] = []
        hook = probe.field.register_forward_pre_hook(lambda module, inputs: sizes.append(len(inputs[0])))
        generator = torch.Generator().manual_seed(0)
        probe.loss(0, generator)  # one loss call: the points the field sees per step
        hook.remove()
        batch_size = sum(sizes)
        batch = (torch.rand((batch_size, 3), generator=generator) * 2 - 1).to(device)

        rows: list[tuple[str, float]] = []
        for name, eikonal in (("bare, value only", False), ("bare, + eikonal", True)):
            field = fresh_field()
            rows.append((name, _timed(_bare_step(field, batch, eikonal), args.steps, args.warmup, device)))
        task = task_of(fresh_field())
        rows.append(("task step", _timed(_task_step(task), args.steps, args.warmup, device)))
        trainer = build_trainer(task_of(fresh_field()), Path(tmp) / "run", config.train, config.seed,
                                progress=False, exit_after=None)
        result = trainer.run()
        rows.append(("trainer step", result.elapsed / result.step))

    floor = dict(rows)["bare, + eikonal"]
    print(f"# fit step: {args.method} / {args.preset}, {args.points} points of {args.mesh.name}, "
          f"{batch_size} points per step, {args.steps} timed steps after {args.warmup}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, device {device}, load average {os.getloadavg()[0]:.2f}")
    print("# every row trains every grid level from the first step (no coarse-to-fine schedule)")
    print(f"{'variant':<18} {'ms/step':>9} {'steps/s':>9} {'points/s':>11} {'vs bare+eik':>12}")
    for name, seconds in rows:
        print(f"{name:<18} {1000 * seconds:9.1f} {1 / seconds:9.2f} {batch_size / seconds:11.0f} "
              f"{seconds / floor:12.2f}")
    task_seconds, trainer_seconds = dict(rows)["task step"], dict(rows)["trainer step"]
    print(f"trainer overhead over the task step: {100 * (trainer_seconds / task_seconds - 1):+.1f}%")


if __name__ == "__main__":
    main()
