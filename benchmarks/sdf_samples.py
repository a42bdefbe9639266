"""Benchmark: DeepSDF SDF samples and occupancy queries, ours against the baselines.

Prints a plain-text table. Every ratio is against a baseline timed in the same run on the same
machine (baseline time / our time: above 1 means we are faster). Baselines that need optional
packages which are not installed are listed as not run, with the reason.

    python benchmarks/sdf_samples.py [--mesh MESH] [-n 500000] [--occupancy-queries 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import igl
import numpy as np
import trimesh

from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.io import read_mesh
from isofield.geometry.samples import DEEPSDF_NEAR_FRACTION, sdf_samples
from isofield.geometry.sampling import sample_surface

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MESH = REPO / ".cache" / "cgal" / "data" / "meshes" / "armadillo.off"
TRIMESH_SUBSET = 2_000

Timing = tuple[float, float]  # wall-clock seconds, CPU seconds
Row = tuple[str, Timing | None, str]  # name, timing (None: not run), note


def _timed(function: Callable[[], object], repeat: int) -> tuple[Timing, object]:
    """Wall and CPU seconds (all threads) of the fastest of ``repeat`` calls, and a result."""
    best, result = (float("inf"), 0.0), None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best, result


def _trimesh_baseline(
    name: str, function: Callable[[np.ndarray], object], points: np.ndarray, total: int
) -> Row:
    """Time ``function`` on a subset and extrapolate linearly to ``total`` points."""
    subset = points[:TRIMESH_SUBSET]
    try:
        (wall, cpu), _ = _timed(lambda: function(subset), 1)
    except ImportError as error:
        return name, None, f"not run: needs {error.name or error}, not installed"
    factor = total / len(subset)
    note = f"extrapolated: timed on {len(subset)} points, x{factor:g}"
    return name, (wall * factor, cpu * factor), note


def _unsorted_signed(distance: MeshDistance, points: np.ndarray) -> np.ndarray:
    """Our distance and sign computations on points (N, 3) float64 in their given order."""
    unsigned = distance.surface.evaluate_chunk(points)[0]
    vertices = distance.surface.vertices
    winding = igl.fast_winding_number(vertices, distance.oriented_faces, points)
    return np.where(np.abs(winding) >= 0.5, -unsigned, unsigned)


def _rows_sdf(mesh: trimesh.Trimesh, n: int, repeat: int) -> list[Row]:
    setup, distance = _timed(lambda: MeshDistance(mesh), repeat)
    total, (samples, frame) = _timed(lambda: sdf_samples(mesh, n=n, seed=0), repeat)
    user_points = frame.to_user(samples.points.astype(np.float64))
    pairs = int(n * DEEPSDF_NEAR_FRACTION) // 2
    sampling, _ = _timed(lambda: sample_surface(distance.oriented_mesh, pairs, 0), repeat)
    unsigned, _ = _timed(lambda: distance.unsigned(user_points), repeat)
    sign, _ = _timed(lambda: distance.occupancy(user_points), repeat)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    fwn = igl.SignedDistanceType.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
    libigl, _ = _timed(lambda: igl.signed_distance(user_points, vertices, faces, fwn), repeat)
    unsorted, _ = _timed(lambda: _unsorted_signed(MeshDistance(mesh), user_points), repeat)
    return [
        ("ours: DeepSDF samples, total", total, f"{n} samples, from the mesh"),
        ("  setup (AABB tree, orientation)", setup, "part of total"),
        ("  surface sampling", sampling, f"{pairs} points, part of total"),
        ("  distance", unsigned, "part of total: libigl AABB, Morton order"),
        ("  sign", sign, "part of total: fast winding number, re-oriented"),
        ("ours without Morton order", unsorted, "setup + distance + sign, points in input order"),
        ("libigl signed_distance(FWN), one call", libigl, "mesh + same points, no re-orienting"),
        _trimesh_baseline(
            "trimesh.proximity.signed_distance",
            lambda p: trimesh.proximity.signed_distance(mesh, p),
            user_points,
            n,
        ),
    ]


def _rows_occupancy(mesh: trimesh.Trimesh, queries: int, repeat: int) -> list[Row]:
    distance = MeshDistance(mesh)
    lo, hi = mesh.bounds
    pad = 0.05 * (hi - lo)
    points = np.random.default_rng(0).uniform(lo - pad, hi + pad, (queries, 3))
    ours, _ = _timed(lambda: distance.occupancy(points), repeat)
    return [
        ("ours: occupancy", ours, f"{queries} uniform points in the padded box"),
        _trimesh_baseline("trimesh contains", mesh.contains, points, queries),
    ]


def _format(title: str, rows: list[Row]) -> str:
    """Table of rows: the first is our total, indented rows are its parts, others compare."""
    reference = rows[0][1][0]
    header = f"{'':40s} {'wall s':>8s} {'cpu s':>8s} {'ratio':>8s}  note"
    lines = [title, header, "-" * 100]
    for index, (name, timing, note) in enumerate(rows):
        wall, cpu = ("-", "-") if timing is None else (f"{timing[0]:.3f}", f"{timing[1]:.3f}")
        baseline = timing is not None and index > 0 and not name.startswith(" ")
        ratio = f"{timing[0] / reference:.1f}x" if baseline else ""
        lines.append(f"{name:40s} {wall:>8s} {cpu:>8s} {ratio:>8s}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH, help="mesh (OFF, PLY, OBJ...)")
    parser.add_argument("-n", type=int, default=500_000, help="number of DeepSDF samples")
    parser.add_argument("--occupancy-queries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    args = parser.parse_args(argv)
    if not args.mesh.exists():
        print(f"{args.mesh}: not found (run `make data` for the CGAL meshes)", file=sys.stderr)
        return 2
    mesh = read_mesh(args.mesh)
    threads = os.environ.get("IGL_NUM_THREADS", "all")
    print(
        f"mesh {args.mesh.name}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces; "
        f"{os.cpu_count()} CPUs, libigl threads: {threads}\n"
        "ratio = other wall time / our total wall time in this run (ours also samples the points);"
        " cpu s counts all threads\n"
    )
    sdf = _rows_sdf(mesh, args.n, args.repeat)
    print(_format(f"SDF samples ({args.n}, DeepSDF protocol)", sdf))
    print()
    occupancy = _rows_occupancy(mesh, args.occupancy_queries, args.repeat)
    print(_format(f"Occupancy queries ({args.occupancy_queries})", occupancy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
