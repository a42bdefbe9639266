"""Benchmark: normal estimation and outward orientation of raw point clouds.

Each input is an oriented point set whose true normals are hidden from the estimator:

- CGAL point sets with normals: ``kitten`` (5210 points), ``oni`` (1435, sparse, thin parts),
  ``sphere926`` (926), ``hippo1`` (6104, an open scan), ``ball`` (31374). Not ``cube.pwn``:
  its own normals face in or out at random (50.2% away from the centroid on every face);
- mesh vertices with their area-weighted vertex normals, the positions moved by Gaussian noise
  of 0.2% of the bounding-box diagonal: ``bunny00-noisy``, ``armadillo-noisy``;
- ``armadillo-400k``: 400,000 points sampled uniformly on the CGAL armadillo (face normals),
  for the cost at the size of a real scan.

Per input and estimator: oriented agreement (share of points with n_est . n_true > 0), the mean
unoriented angle error in degrees (angle between the lines, so a flip costs nothing), and the
seconds taken. The baseline in the same run is Open3D's ``estimate_normals`` (kNN, same k) plus
``orient_normals_consistent_tangent_plane`` (same k) when ``open3d`` imports (the ``bench``
extra); Open3D does not decide outward or inward, so its agreement is taken as it comes.

Usage::

    python benchmarks/normals.py [--inputs kitten oni ...] [--neighbours 16] [--no-open3d]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from isofield.geometry.io import read_mesh, read_points
from isofield.geometry.normals import DEFAULT_NEIGHBOURS, estimate_normals
from isofield.geometry.sampling import sample_surface

REPO = Path(__file__).resolve().parents[1]
CGAL = REPO / ".cache" / "cgal" / "data"
POINT_SETS = {"kitten": "kitten.xyz", "oni": "oni.pwn", "sphere926": "sphere926.pwn",
              "hippo1": "hippo1.ply", "ball": "ball.ply"}
NOISY_MESHES = {"bunny00-noisy": "bunny00.off", "armadillo-noisy": "armadillo.off"}
SAMPLED_MESHES = {"armadillo-400k": ("armadillo.off", 400_000)}
NOISE = 0.002
"""Gaussian noise on mesh vertices, as a fraction of the bounding-box diagonal."""


def load_input(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3), true unit normals (N, 3)) of a named input."""
    if name in POINT_SETS:
        cloud = read_points(CGAL / "points_3" / POINT_SETS[name])
        return cloud.points, cloud.normals
    rng = np.random.default_rng(0)
    if name in NOISY_MESHES:
        mesh = read_mesh(CGAL / "meshes" / NOISY_MESHES[name])
        diagonal = np.linalg.norm(np.ptp(mesh.vertices, axis=0))
        points = mesh.vertices + rng.normal(scale=NOISE * diagonal, size=mesh.vertices.shape)
        return points, np.asarray(mesh.vertex_normals)
    file, count = SAMPLED_MESHES[name]
    cloud = sample_surface(read_mesh(CGAL / "meshes" / file), count, seed=0)
    return cloud.points, cloud.normals


def open3d_normals(points: np.ndarray, neighbours: int) -> np.ndarray:
    """(N, 3) normals from Open3D: kNN PCA, then its consistent tangent-plane orientation."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(neighbours))
    cloud.orient_normals_consistent_tangent_plane(neighbours)
    return np.asarray(cloud.normals)


def scores(estimated: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(oriented agreement in [0, 1], mean unoriented angle error in degrees)."""
    true = true / np.linalg.norm(true, axis=1, keepdims=True)
    cosine = np.einsum("ij,ij->i", estimated, true)
    angle = np.degrees(np.arccos(np.clip(np.abs(cosine), 0.0, 1.0)))
    return float(np.mean(cosine > 0)), float(angle.mean())


def timed(estimate: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    normals = estimate()
    return normals, time.perf_counter() - start


def main() -> None:
    names = [*POINT_SETS, *NOISY_MESHES, *SAMPLED_MESHES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="+", default=names, choices=names)
    parser.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS)
    parser.add_argument("--no-open3d", action="store_true", help="skip the Open3D baseline")
    args = parser.parse_args()
    try:
        if args.no_open3d:
            raise ImportError
        import open3d  # noqa: F401
        baseline = True
    except ImportError:
        baseline = False
        if not args.no_open3d:
            print("open3d does not import: the Open3D columns are skipped (pip install -e '.[bench]')")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, k={args.neighbours}")
    header = f"{'input':<16}{'points':>8} | {'isofield agree':>14}{'angle':>7}{'s':>7}"
    if baseline:
        header += f" | {'open3d agree':>12}{'angle':>7}{'s':>7}"
    print(header)
    for name in args.inputs:
        points, true = load_input(name)
        normals, seconds = timed(lambda: estimate_normals(points, args.neighbours))
        agree, angle = scores(normals, true)
        line = f"{name:<16}{len(points):>8} | {agree:>14.4f}{angle:>7.2f}{seconds:>7.2f}"
        if baseline:
            normals, seconds = timed(lambda: open3d_normals(points, args.neighbours))
            agree, angle = scores(normals, true)
            line += f" | {agree:>12.4f}{angle:>7.2f}{seconds:>7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
