"""Benchmark: shape-space (DeepSDF auto-decoder) training throughput, in SDF samples per second.

For each decoder preset (``cpu``: 4x128 ReLU on 6 octaves of Fourier features, codes of 64;
``paper``: DeepSDF's 8x512 with codes of 256) and device (the CPU, and CUDA where available), two numbers:

- ``isofield``: the real training step, the :class:`~isofield.train.loop.Trainer` running an
  :class:`~isofield.deepsdf.autodecoder.AutoDecoderTask` (draw B shapes and S samples of each
  from the in-memory samples, look up the codes, forward, clamped L1 + code prior, backward, Adam
  on both parameter groups, loss logging every 10 steps);
- ``compute only``, the baseline measured in the same run: the same decoder's forward, backward
  and Adam step on one fixed batch already on the device (no sampling, no code lookup, no
  logging): the cost of the arithmetic alone.

The ratio ``isofield / compute only`` is the share of the pure compute rate that the whole step
keeps (1.00: no overhead). Each measurement runs for about ``--seconds`` after a warm-up. On the
CPU a step is capped at ``--cpu-batch`` samples (fewer shapes per step: DeepSDF's 64 x 16384
samples through 8x512 would take over a minute a step on 2 cores); the rate hardly depends on the
batch once it is this large. The samples are synthetic (``--shapes`` spheres of random radii,
``--samples`` samples each, sdf = |x| − r), so no dataset is needed; the speed does not depend on
the values.

Usage::

    python benchmarks/shapespace_training.py [--presets cpu paper] [--seconds 20]
                                             [--cpu-batch 65536] [--shapes 180] [--samples 50000]
                                             [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from isofield.losses import clamped_l1
from isofield.nn import build_field
from isofield.deepsdf.autodecoder import AutoDecoderTask, make_codes
from isofield.deepsdf.config import resolve_config
from isofield.deepsdf.samples import ShapeSamples
from isofield.train.loop import Trainer

WARMUP_STEPS = 5


def synthetic_samples(shapes: int, samples: int, seed: int = 0) -> ShapeSamples:
    """``shapes`` spheres, radius 0.3-0.8, with ``samples`` uniform samples in [-1, 1]^3 each."""
    rng = np.random.default_rng(seed)
    arrays = []
    for radius in rng.uniform(0.3, 0.8, shapes):
        points = rng.uniform(-1.0, 1.0, (samples, 3)).astype(np.float32)
        arrays.append((points, np.linalg.norm(points, axis=1) - radius))
    return ShapeSamples.from_arrays(arrays)


def preset_config(preset: str, device: torch.device, cpu_batch: int, shapes: int):
    """The preset's resolved config, with fewer shapes per step on the CPU (module notes)."""
    config = resolve_config([{"preset": preset, "data": "."}])
    per_step = min(config.shapes_per_batch, shapes)
    if device.type == "cpu":
        per_step = max(1, min(per_step, cpu_batch // config.samples_per_shape))
    config.shapes_per_batch = per_step
    return config


def isofield_rate(config, samples: ShapeSamples, device: torch.device, seconds: float) -> float:
    """SDF samples per second of the trainer's steps (after a warm-up)."""
    torch.manual_seed(0)
    decoder = build_field(config.decoder).to(device)
    codes = make_codes(samples.num_shapes, config.latent_dim, config.code_init_std,
                       config.code_bound).to(device)
    task = AutoDecoderTask(decoder, codes, samples.to(device), clamp=config.clamp,
                           prior_weight=1.0 / config.code_prior_sigma ** 2,
                           shapes_per_batch=config.shapes_per_batch,
                           samples_per_shape=config.samples_per_shape,
                           lr_decoder=config.train.lr_decoder, lr_codes=config.train.lr_codes)
    with tempfile.TemporaryDirectory() as folder:
        def run(**limit) -> tuple[int, float]:
            trainer = Trainer(task, folder, checkpoint_every=10**9, checkpoint_every_seconds=None,
                              log_every=10, progress=False, **limit)
            result = trainer.run()
            return result.step, result.elapsed

        warm_steps, warm_seconds = run(steps=WARMUP_STEPS)
        total_steps, total_seconds = run(time_budget=warm_seconds + seconds)
    return ((total_steps - warm_steps) * task.shapes_per_batch * task.samples_per_shape
            / (total_seconds - warm_seconds))


def compute_only_rate(config, device: torch.device, seconds: float) -> float:
    """SDF samples per second of forward + backward + Adam on one fixed batch."""
    torch.manual_seed(0)
    decoder = build_field(config.decoder).to(device)
    count = config.shapes_per_batch * config.samples_per_shape
    points = torch.rand(count, 3, device=device) * 2 - 1
    latent = torch.randn(count, config.latent_dim, device=device) * 0.1
    target = points.norm(dim=1) - 0.5
    optimizer = torch.optim.Adam(decoder.parameters(), lr=config.train.lr_decoder)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        clamped_l1(decoder(points, latent), target, config.clamp).backward()
        optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
    synchronise(device)
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
        synchronise(device)
    return steps * count / (time.perf_counter() - started)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def devices(choice: str) -> list[torch.device]:
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch.device(choice)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper"])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measurement")
    parser.add_argument("--cpu-batch", type=int, default=65_536, help="most samples per step on the CPU")
    parser.add_argument("--shapes", type=int, default=180)
    parser.add_argument("--samples", type=int, default=50_000, help="in-memory samples per shape")
    parser.add_argument("--device", default="auto", help="auto (CPU, and CUDA where available), cpu, cuda")
    args = parser.parse_args(argv)

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), CUDA: {gpu}")
    print(f"# {args.shapes} synthetic shapes x {args.samples} samples; about {args.seconds:g} s per number")
    samples = synthetic_samples(args.shapes, args.samples)
    print(f"{'preset':<8s}{'device':<8s}{'batch':>10s}{'isofield samples/s':>21s}"
          f"{'compute only':>15s}{'ratio':>8s}")
    for device in devices(args.device):
        for preset in args.presets:
            config = preset_config(preset, device, args.cpu_batch, args.shapes)
            batch = config.shapes_per_batch * config.samples_per_shape
            ours = isofield_rate(config, samples, device, args.seconds)
            baseline = compute_only_rate(config, device, args.seconds)
            print(f"{preset:<8s}{device.type:<8s}{batch:>10d}{ours:>21,.0f}{baseline:>15,.0f}"
                  f"{ours / baseline:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
