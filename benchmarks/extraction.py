"""Benchmark: sparse (coarse-to-fine), MISE and dense mesh extraction.

For each field and resolution it extracts the mesh densely, then with every applicable
coarse-to-fine method, and prints per method the points evaluated, their fraction of the dense
grid, the wall time, the speed-up against the dense extraction of the same run, the Hausdorff
distance to the dense mesh in voxels (0 = same vertices) and whether the mesh is the dense one
(same vertex and face arrays). Methods:

- ``sparse``: the distance criterion (SDFs only: it needs a Lipschitz bound, 1 here);
- ``mise``: the sign criterion, Occupancy Networks' MISE (SDFs and occupancy alike).

Fields (all on [-1, 1]^3, the coarse grid 32^3):

- ``torus``, ``csg``: analytic numpy SDFs from :mod:`isofield.geometry.shapes` (cheap to evaluate,
  so the time shows the extractor's own overhead);
- ``torus+mlp``: the torus SDF plus ``0.02 * tanh(MLP(x))``, a small randomly initialised torch
  MLP (3 -> 64 -> 64 -> 64 -> 1, SiLU), evaluated in torch on the CPU. It costs about what a
  network field costs per point, so its time is dominated by field evaluation, as in practice;
- ``torus-occ``, ``torus+mlp-occ``: occupancy probabilities ``sigmoid(-sdf / 0.02)`` of those two
  SDFs (inside positive, level 0.5), the kind of field an occupancy network returns.

Goal: at 256^3 the sparse method evaluates <= 10% of the dense points.

Usage: ``python benchmarks/extraction.py [--resolutions 128 256] [--fields torus csg torus+mlp ...]``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import expit

from isofield.extract.api import UNIT_CUBE_BOUNDS, extract_mesh
from isofield.geometry.shapes import get_shape

PERTURBATION_AMPLITUDE = 0.02
OCCUPANCY_WIDTH = 0.02  # probability sigmoid(-sdf / OCCUPANCY_WIDTH)

Field = Callable[[np.ndarray], np.ndarray]


def perturbed_torus_field(seed: int = 0) -> Field:
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


def occupancy_of(sdf: Field) -> Field:
    """Occupancy probabilities of an SDF: points (N, 3) -> sigmoid(-sdf / OCCUPANCY_WIDTH) (N,) float32."""

    def field(points: np.ndarray) -> np.ndarray:
        return expit(-sdf(points) / OCCUPANCY_WIDTH).astype(np.float32)

    return field


@dataclass(frozen=True)
class FieldSpec:
    """A benchmark field: its factory, iso-level, inside convention and coarse-to-fine methods."""

    make: Callable[[], Field]
    level: float = 0.0
    inside: str = "negative"
    methods: tuple[str, ...] = ("sparse", "mise")


OCCUPANCY = {"level": 0.5, "inside": "positive", "methods": ("mise",)}
FIELDS: dict[str, FieldSpec] = {
    "torus": FieldSpec(lambda: get_shape("torus").sdf),
    "csg": FieldSpec(lambda: get_shape("csg").sdf),
    "torus+mlp": FieldSpec(perturbed_torus_field),
    "torus-occ": FieldSpec(lambda: occupancy_of(get_shape("torus").sdf), **OCCUPANCY),
    "torus+mlp-occ": FieldSpec(lambda: occupancy_of(perturbed_torus_field()), **OCCUPANCY),
}


def hausdorff_in_voxels(a: np.ndarray, b: np.ndarray, resolution: int) -> float:
    """Symmetric Hausdorff distance between vertex sets (V, 3), in cells of the [-1, 1]^3 grid."""
    distance = max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
    return float(distance / (2.0 / resolution))


def compare(name: str, resolution: int) -> list[dict]:
    """Extract the named field densely and by each of its methods at ``resolution``; one row each."""
    spec = FIELDS[name]
    field = spec.make()

    def extract(method: str):
        return extract_mesh(field, UNIT_CUBE_BOUNDS, resolution, spec.level, spec.inside, method)

    dense, dense_stats = extract("dense")
    rows = []
    for method in ("dense", *spec.methods):
        mesh, stats = (dense, dense_stats) if method == "dense" else extract(method)
        identical = np.array_equal(dense.vertices, mesh.vertices) and np.array_equal(dense.faces, mesh.faces)
        rows.append({
            "field": name,
            "grid": f"{resolution}^3",
            "method": method,
            "points": stats.points_evaluated,
            "fraction": f"{stats.fraction:.2%}",
            "seconds": f"{stats.seconds:.2f}",
            "speed-up": f"{dense_stats.seconds / stats.seconds:.1f}x",
            "Hausdorff (voxels)": f"{hausdorff_in_voxels(dense.vertices, mesh.vertices, resolution):.3g}",
            "same mesh as dense": "yes" if identical else "no",
        })
    return rows


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
    extract_mesh(get_shape("sphere").sdf, UNIT_CUBE_BOUNDS, 32)  # warm-up: one-time costs out of the first row
    rows = [row for name in args.fields for resolution in args.resolutions for row in compare(name, resolution)]
    print_table(rows)


if __name__ == "__main__":
    main()
