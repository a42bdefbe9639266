"""Benchmark: point-cloud metrics (isofield.metrics.clouds) against baselines timed in the same run.

Clouds are area-weighted surface samples of random star-shaped surfaces of about unit radius:
an icosphere (5,120 faces) displaced radially by six random cosine bumps, then scaled per axis
by factors in [0.5, 1]. Three tables:

- ``chamfer``: the (K, K) CD matrix of K clouds of 2048 points by :func:`pairwise_chamfer` (one
  cKDTree per cloud, every query of a tree at once; within one set each tree answers both
  directions, half the work of ``pairwise_chamfer(clouds, clouds)``, also timed), against a loop
  over the pairs of ``torch.cdist`` (float32, the usual GPU-style code, here on the CPU) and of
  :func:`isofield.metrics.surface.chamfer_deepsdf` (two trees per pair); seconds, ratio to ours,
  and the largest relative difference to ours.
- ``emd``: per point count n, P pairs (half: two samplings of one surface, EMD about 0.07-0.13;
  half: two different surfaces, about 0.2-0.3): the exact EMD (one linear_sum_assignment per
  pair) against :func:`sinkhorn_emd` at its defaults, batched over the P pairs and one pair at
  a time; ms per pair, ratio to exact, and the relative error (mean, min, max) against exact.
- ``generation``: :func:`generation_metrics` with its defaults on G generated vs R reference
  clouds of 2048 points; seconds for CD, for EMD and in total.

Usage::

    python benchmarks/cloud_metrics.py [--quick] [--clouds 20] [--sizes 512 1024 2048]
                                       [--pairs 6] [--generated 100] [--reference 20]

``--quick`` (smoke test, under a minute): 8 clouds, sizes 256 and 512, 2 pairs, 20 vs 8 clouds.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import numpy as np
import torch
import trimesh

from isofield.geometry.sampling import sample_surface
from isofield.metrics.clouds import (
    SINKHORN_EPSILON,
    SINKHORN_ITERATIONS,
    generation_metrics,
    pairwise_chamfer,
    sinkhorn_emd,
)
from isofield.metrics.surface import chamfer_deepsdf, earth_movers_distance

CLOUD_POINTS = 2048
BUMPS = 6


def random_surface(seed: int) -> trimesh.Trimesh:
    """A star-shaped closed surface of about unit radius: vertices (2562, 3), faces (5120, 3)."""
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=4)
    directions = rng.normal(size=(BUMPS, 3)) * rng.uniform(1.0, 4.0, size=(BUMPS, 1))
    phases = rng.uniform(0.0, 2.0 * np.pi, BUMPS)
    weights = rng.uniform(-0.75, 0.75, BUMPS) / BUMPS
    radius = 1.0 + np.cos(sphere.vertices @ directions.T + phases) @ weights
    vertices = sphere.vertices * radius[:, None] * rng.uniform(0.5, 1.0, 3)
    return trimesh.Trimesh(vertices, sphere.faces, process=False)


def cloud(surface_seed: int, n: int, sample_seed: int) -> np.ndarray:
    """n surface samples (n, 3) float32 of ``random_surface(surface_seed)``."""
    return sample_surface(random_surface(surface_seed), n, sample_seed).points.astype(np.float32)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def naive_torch_chamfer(clouds: list[np.ndarray]) -> np.ndarray:
    """(K, K) CD by torch.cdist per pair: the full (N, N) distance matrix each time."""
    tensors = [torch.from_numpy(c) for c in clouds]
    matrix = np.zeros((len(clouds), len(clouds)))
    for i, a in enumerate(tensors):
        for j, b in enumerate(tensors):
            squared = torch.cdist(a, b) ** 2
            one_way, other_way = squared.min(dim=1).values, squared.min(dim=0).values
            matrix[i, j] = float(one_way.mean() + other_way.mean())
    return matrix


def per_pair_chamfer(clouds: list[np.ndarray]) -> np.ndarray:
    return np.array([[chamfer_deepsdf(a, b) for b in clouds] for a in clouds])


def chamfer_rows(count: int) -> list[dict]:
    clouds = [cloud(seed, CLOUD_POINTS, seed) for seed in range(count)]
    ours, ours_s = timed(lambda: pairwise_chamfer(clouds))
    off_diagonal = ~np.eye(count, dtype=bool)
    rows = []
    for name, (matrix, seconds) in (
        ("pairwise_chamfer(clouds) (ours)", (ours, ours_s)),
        ("pairwise_chamfer(clouds, clouds)", timed(lambda: pairwise_chamfer(clouds, clouds))),
        ("torch.cdist per pair", timed(lambda: naive_torch_chamfer(clouds))),
        ("metrics.chamfer_deepsdf per pair", timed(lambda: per_pair_chamfer(clouds))),
    ):
        difference = np.abs(matrix - ours)[off_diagonal] / ours[off_diagonal]
        rows.append({
            "method": name,
            "clouds": f"{count}x{count} of {CLOUD_POINTS}",
            "seconds": f"{seconds:.2f}",
            "vs ours": f"{seconds / ours_s:.1f}x",
            "max rel. diff": f"{difference.max():.1e}",
        })
    return rows


def emd_row(n: int, pairs: int) -> dict:
    """Exact vs Sinkhorn EMD of ``pairs`` pairs of n-point clouds (half resampled, half not)."""
    a = [cloud(k, n, 2 * k) for k in range(pairs)]
    b = [cloud(k + (k % 2) * 1000, n, 2 * k + 1) for k in range(pairs)]
    exact, exact_s = timed(lambda: np.array([earth_movers_distance(x, y) for x, y in zip(a, b)]))
    a_t, b_t = torch.from_numpy(np.stack(a)), torch.from_numpy(np.stack(b))
    batched, batched_s = timed(lambda: sinkhorn_emd(a_t, b_t).numpy())
    _, single_s = timed(
        lambda: [sinkhorn_emd(a_t[k : k + 1], b_t[k : k + 1]) for k in range(pairs)]
    )
    error = batched / exact - 1.0
    return {
        "n": n,
        "pairs": pairs,
        "exact EMD": f"{exact.min():.3f}-{exact.max():.3f}",
        "exact ms/pair": f"{1e3 * exact_s / pairs:.0f}",
        "sinkhorn ms/pair": f"{1e3 * batched_s / pairs:.0f}",
        "1-by-1 ms/pair": f"{1e3 * single_s / pairs:.0f}",
        "sinkhorn/exact time": f"{batched_s / exact_s:.1f}x",
        "rel. error mean": f"{100 * error.mean():+.2f}%",
        "rel. error min..max": f"{100 * error.min():+.2f}..{100 * error.max():+.2f}%",
    }


def generation_row(generated: int, reference: int) -> dict:
    gen = [cloud(seed, CLOUD_POINTS, seed) for seed in range(generated)]
    ref = [cloud(seed, CLOUD_POINTS, seed) for seed in range(10_000, 10_000 + reference)]
    cd, cd_s = timed(lambda: generation_metrics(gen, ref, distances=("cd",)))
    emd, emd_s = timed(lambda: generation_metrics(gen, ref, distances=("emd",)))
    pairs = generated * reference + (generated * (generated - 1) + reference * (reference - 1)) // 2
    return {
        "clouds": f"{generated} vs {reference} of {CLOUD_POINTS}",
        "pairs": pairs,
        "EMD points": emd["emd_points"],
        "CD s": f"{cd_s:.1f}",
        "EMD s": f"{emd_s:.1f}",
        "total s": f"{cd_s + emd_s:.1f}",
        "1-NNA CD / EMD": f"{100 * cd['1nna_cd']:.1f}% / {100 * emd['1nna_emd']:.1f}%",
    }


def print_table(title: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(column), *(len(str(row[column])) for row in rows)) for column in columns]
    print(f"\n{title}")
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[column]).rjust(width) for column, width in zip(columns, widths)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test with small sizes")
    parser.add_argument("--clouds", type=int, default=20, help="clouds in the CD matrix")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--pairs", type=int, default=6, help="cloud pairs per EMD size")
    parser.add_argument("--generated", type=int, default=100)
    parser.add_argument("--reference", type=int, default=20)
    args = parser.parse_args(argv)
    if args.quick:
        args.clouds, args.sizes, args.pairs = 8, [256, 512], 2
        args.generated, args.reference = 20, 8
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print_table("chamfer", chamfer_rows(args.clouds))
    print_table(f"emd (Sinkhorn: epsilon {SINKHORN_EPSILON}, {SINKHORN_ITERATIONS} iterations)",
                [emd_row(n, args.pairs) for n in args.sizes])
    print_table("generation (defaults)", [generation_row(args.generated, args.reference)])


if __name__ == "__main__":
    main()
