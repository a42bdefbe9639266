"""Benchmark: ShapeGF training throughput and Langevin sampling time.

Training, in noisy points per second, for each preset (``cpu``, ``paper``) and device:

- ``isofield``: the real step, the :class:`~isofield.train.loop.Trainer` running a
  :class:`~isofield.shapegf.task.GradientFieldTask` (draw B shapes, input and target points of
  each from the in-memory clouds, a noise level per shape, encode, score, σ²-weighted denoising
  score matching, backward, Adam, logging every 10 steps);
- ``compute only``, the baseline measured in the same run: the same networks' forward, backward
  and Adam step on one fixed batch already on the device.

Sampling: annealed Langevin dynamics of one shape (the preset's levels and steps per level, plus
the denoising step) for 2,048 and 10,000 points, against the bare score-network evaluations it
makes (the same number of forward passes on the same points, no noise, no updates).

The clouds are synthetic (``--shapes`` spheres of random radii), so no dataset is needed; the
speed does not depend on the values.

Usage::

    python benchmarks/shapegf.py [--presets cpu paper] [--seconds 20] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from isofield.losses import score_matching_errors
from isofield.shapegf.config import resolve_config, sigma_levels
from isofield.shapegf.model import GradientFieldModel, build_networks
from isofield.shapegf.task import GradientFieldTask
from isofield.train.loop import Trainer
from shapespace_training import devices, synchronise  # benchmarks/ is on the path of a script

WARMUP_STEPS = 3
SAMPLED_POINTS = (2048, 10_000)


def synthetic_clouds(shapes: int, points: int, seed: int = 0) -> torch.Tensor:
    """(shapes, points, 3) points on spheres of radius 0.3-0.8."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(shapes, points, 3))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    return torch.from_numpy((directions * rng.uniform(0.3, 0.8, (shapes, 1, 1))).astype(np.float32))


def training_rate(config, clouds: torch.Tensor, device: torch.device, seconds: float) -> float:
    """Noisy points per second of the trainer's steps (after a warm-up)."""
    torch.manual_seed(0)
    encoder, score = (network.to(device) for network in build_networks(config))
    task = GradientFieldTask(encoder, score, clouds.to(device), sigma_levels(config.noise),
                             shapes_per_batch=config.shapes_per_batch,
                             input_points=config.input_points, target_points=config.target_points,
                             lr=config.train.lr)
    with tempfile.TemporaryDirectory() as folder:
        def run(**limit) -> tuple[int, float]:
            result = Trainer(task, folder, checkpoint_every=10**9, checkpoint_every_seconds=None,
                             log_every=10, progress=False, **limit).run()
            return result.step, result.elapsed

        warm_steps, warm_seconds = run(steps=WARMUP_STEPS)
        steps, elapsed = run(time_budget=warm_seconds + seconds)
    return (steps - warm_steps) * task.shapes_per_batch * task.target_points / (elapsed - warm_seconds)


def compute_only_rate(config, device: torch.device, seconds: float) -> float:
    """Noisy points per second of forward + backward + Adam on one fixed batch."""
    torch.manual_seed(0)
    encoder, score = (network.to(device) for network in build_networks(config))
    batch = config.shapes_per_batch
    inputs = torch.randn(batch, config.input_points, 3, device=device)
    targets = torch.randn(batch, config.target_points, 3, device=device)
    noise = torch.randn_like(targets)
    sigma = torch.full((batch,), 0.1, device=device)
    optimizer = torch.optim.Adam([*encoder.parameters(), *score.parameters()], lr=config.train.lr)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        scores = score(targets + 0.1 * noise, sigma, encoder(inputs))
        score_matching_errors(scores, noise, sigma).mean().backward()
        optimizer.step()

    return batch * config.target_points / _seconds_per_call(step, device, seconds)


def sampling_times(config, device: torch.device, points: int, seconds: float) -> tuple[float, float]:
    """(seconds of one Langevin run, seconds of its bare network evaluations) for one shape."""
    torch.manual_seed(0)
    encoder, score = (network.to(device).eval() for network in build_networks(config))
    model = GradientFieldModel(encoder, score, config, [], Path("."), 0)
    code = torch.randn(1, config.latent_dim, device=device)
    langevin = _seconds_per_call(lambda: model.sample(code, points, seed=0), device, seconds)
    calls = len(model.sigmas) * config.langevin.steps_per_level + int(config.langevin.denoise)
    x = torch.randn(1, points, 3, device=device)
    sigma = torch.full((1,), 0.1, device=device)

    @torch.no_grad()
    def evaluations() -> None:
        for _ in range(calls):
            score(x, sigma, code)
    return langevin, _seconds_per_call(evaluations, device, seconds)


def _seconds_per_call(action, device: torch.device, seconds: float) -> float:
    for _ in range(WARMUP_STEPS):
        action()
    synchronise(device)
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds or calls == 0:
        action()
        calls += 1
        synchronise(device)
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper"])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement")
    parser.add_argument("--shapes", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto (CPU, and CUDA where available), cpu, cuda")
    args = parser.parse_args(argv)

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), CUDA: {gpu}")
    configs = {preset: resolve_config([{"preset": preset, "data": ".", "points_per_shape": 4096}])
               for preset in args.presets}
    clouds = synthetic_clouds(args.shapes, 4096)
    print("\ntraining (noisy points per second)")
    print(f"{'preset':<8s}{'device':<8s}{'points/step':>12s}{'isofield':>12s}{'compute only':>14s}{'ratio':>7s}")
    for device in devices(args.device):
        for preset, config in configs.items():
            ours = training_rate(config, clouds, device, args.seconds)
            baseline = compute_only_rate(config, device, args.seconds)
            print(f"{preset:<8s}{device.type:<8s}{config.shapes_per_batch * config.target_points:>12d}"
                  f"{ours:>12,.0f}{baseline:>14,.0f}{ours / baseline:>7.2f}")
    print("\nLangevin sampling of one shape (seconds)")
    print(f"{'preset':<8s}{'device':<8s}{'points':>8s}{'langevin':>10s}{'network only':>14s}{'ratio':>7s}")
    for device in devices(args.device):
        for preset, config in configs.items():
            for points in SAMPLED_POINTS:
                ours, baseline = sampling_times(config, device, points, args.seconds / 4)
                print(f"{preset:<8s}{device.type:<8s}{points:>8d}{ours:>10.3f}{baseline:>14.3f}"
                      f"{baseline / ours:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
