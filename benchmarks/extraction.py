"""Benchmark: sparse (coarse-to-fine) vs dense mesh extraction.

For each field and resolution it prints the points evaluated, the wall time, their ratios, and
the Hausdorff distance between the sparse and the dense mesh in voxels (0 = same vertices).
Fields:

- ``torus``, ``csg``: analytic numpy SDFs from :mod:`isofield.geometry.shapes` (cheap to evaluate,
  so the time shows the extractor's own overhead);
- ``torus+mlp``: the torus SDF plus ``0.02 * tanh(MLP(x))``, a small randomly initialised torch
  MLP (3 -> 64 -> 64 -> 64 -> 1, SiLU), evaluated in torch on the CPU. It costs about what a
  network field costs per point, so its time is dominated by field evaluation, as in practice.

Goal: at 256^3 the sparse method evaluates <= 10% of the dense points.

Usage: ``python benchmarks/extraction.py [--resolutions 128 256] [--fields torus csg torus+mlp]``
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from isofield.extract.api import UNIT_CUBE_BOUNDS, extract_mesh
from isofield.geometry.shapes import get_shape

PERTURBATION_AMPLITUDE = 0.02


def perturbed_torus_field(seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Torus SDF (R = 0.6, r = 0.25, axis z) + 0.02 tanh(MLP(x)), all in torch: (N, 3) -> (N,) float32."""
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(3, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 64),
        torch.nn.SiLU(),
        torch.nn.Linear(64, 1),
    ).eval()

    @torch.no_grad()
    def field(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(points)
        tube = torch.stack([torch.linalg.norm(x[:, :2], dim=1) - 0.6, x[:, 2]], dim=1)
        torus = torch.linalg.norm(tube, dim=1) - 0.25
        return (torus + PERTURBATION_AMPLITUDE * torch.tanh(mlp(x)[:, 0])).numpy()

    return field


FIELDS: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]] = {
    "torus": lambda: get_shape("torus").sdf,
    "csg": lambda: get_shape("csg").sdf,
    "torus+mlp": perturbed_torus_field,
}


def hausdorff_in_voxels(a: np.ndarray, b: np.ndarray, resolution: int) -> float:
    """Symmetric Hausdorff distance between vertex sets (V, 3), in cells of the [-1, 1]^3 grid."""
    distance = max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
    return float(distance / (2.0 / resolution))


def compare(name: str, resolution: int) -> dict:
    """Extract the named field densely and sparsely at ``resolution``; return one table row."""
    field = FIELDS[name]()
    dense, dense_stats = extract_mesh(field, UNIT_CUBE_BOUNDS, resolution, method="dense")
    sparse, sparse_stats = extract_mesh(field, UNIT_CUBE_BOUNDS, resolution, method="sparse")
    identical = np.array_equal(dense.vertices, sparse.vertices) and np.array_equal(dense.faces, sparse.faces)
    return {
        "field": name,
        "grid": f"{resolution}^3",
        "dense points": dense_stats.points_evaluated,
        "sparse points": sparse_stats.points_evaluated,
        "fraction": f"{sparse_stats.fraction:.2%}",
        "dense s": f"{dense_stats.seconds:.2f}",
        "sparse s": f"{sparse_stats.seconds:.2f}",
        "speed-up": f"{dense_stats.seconds / sparse_stats.seconds:.1f}x",
        "Hausdorff (voxels)": f"{hausdorff_in_voxels(dense.vertices, sparse.vertices, resolution):.3g}",
        "identical mesh": "yes" if identical else "no",
    }


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    widths = [max(len(column), *(len(str(row[column])) for row in rows)) for column in columns]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[column]).rjust(width) for column, width in zip(columns, widths)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 256], help="cells per axis")
    parser.add_argument("--fields", nargs="+", choices=sorted(FIELDS), default=list(FIELDS))
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    rows = [compare(name, resolution) for name in args.fields for resolution in args.resolutions]
    print_table(rows)


if __name__ == "__main__":
    main()
