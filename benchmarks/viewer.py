"""Benchmark: the interactive 3-D view (viz/viewer.py) on a ~300k-face mesh.

The mesh is the CGAL armadillo's signed distance meshed by sparse marching cubes (resolution
``--resolution``, 320 by default: ~300k faces), coloured by its distance to the armadillo
itself. Candidates, each written into a folder of its own:

- ``plotly-embedded``: plotly ``Mesh3d``, every face, plotly.js inside the page
  (``include_plotlyjs=True``);
- ``plotly-beside``: the same page with plotly.js as a file beside it (one copy per folder);
- ``trimesh``: trimesh's ``scene_to_html`` (three.js inside the page, the mesh as base64 GLB with
  vertex colours; no colour bar or legend);
- ``isofield``: :func:`isofield.viz.viewer.write_view` (plotly.js beside, the mesh decimated to
  ``MAX_FACES``).

Per candidate: the time to write the page, the page's size, the folder's size (page + library),
and the wall time of a headless Chromium screenshot of the page (software WebGL; the median of
``--repeats``, minus that of an empty page, i.e. the time to load and draw it).

Usage: ``python benchmarks/viewer.py [--resolution 320] [--repeats 3]`` (needs ``make data`` and
Debian's chromium).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import trimesh
from matplotlib import colormaps
from trimesh.viewer.notebook import scene_to_html

from isofield.extract.api import extract_mesh
from isofield.geometry.groundtruth import MeshDistance, TriangleDistance
from isofield.geometry.io import read_mesh
from isofield.geometry.normalization import Normalization
from isofield.viz.error_map import error_range, error_values
from isofield.viz.viewer import MAX_FACES, write_view

ARMADILLO = Path(__file__).resolve().parents[1] / ".cache" / "cgal" / "data" / "meshes" / "armadillo.off"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1000,750"]


def screenshot_seconds(page: Path, scratch: Path, repeats: int) -> float:
    """Median wall time of a headless Chromium screenshot of ``page`` (fresh profile each time)."""
    times = []
    for attempt in range(repeats):
        profile = scratch / f"profile-{page.stem}-{attempt}"
        start = time.perf_counter()
        subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                        f"--screenshot={scratch / (page.stem + '.png')}", page.as_uri()],
                       capture_output=True, timeout=300, check=True)
        times.append(time.perf_counter() - start)
        shutil.rmtree(profile, ignore_errors=True)
    return float(np.median(times))


def plotly_page(mesh: trimesh.Trimesh, values: np.ndarray, path: Path, library: bool | str) -> None:
    vertices, faces = np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)
    figure = go.Figure(go.Mesh3d(x=vertices[:, 0], y=vertices[:, 1], z=vertices[:, 2],
                                 i=faces[:, 0], j=faces[:, 1], k=faces[:, 2], intensity=values.astype(np.float32),
                                 colorscale="Viridis", cmin=0.0, cmax=error_range(values)))
    figure.write_html(path, include_plotlyjs=library, include_mathjax=False)


def trimesh_page(mesh: trimesh.Trimesh, values: np.ndarray, path: Path) -> None:
    coloured = mesh.copy()
    coloured.visual.vertex_colors = (colormaps["viridis"](values / error_range(values)) * 255).astype(np.uint8)
    path.write_text(scene_to_html(trimesh.Scene(coloured)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    armadillo = read_mesh(ARMADILLO)
    frame = Normalization.fit(np.asarray(armadillo.vertices))
    start = time.perf_counter()
    mesh, _ = extract_mesh(MeshDistance(armadillo).signed_in(frame), resolution=args.resolution,
                           bounds=((-1.05,) * 3, (1.05,) * 3), normalization=frame)
    print(f"mesh: {len(mesh.faces):,} faces, {len(mesh.vertices):,} vertices "
          f"(marching cubes at {args.resolution}, {time.perf_counter() - start:.1f} s)")
    distance = TriangleDistance(np.asarray(armadillo.vertices), np.asarray(armadillo.faces))
    diagonal = float(np.linalg.norm(armadillo.extents))
    values = error_values(distance(np.asarray(mesh.vertices)), diagonal)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "empty.html").write_text("<html><body></body></html>")
        baseline = screenshot_seconds(scratch / "empty.html", scratch, args.repeats)
        print(f"empty page: {baseline:.2f} s (subtracted below)")
        writers = {
            "plotly-embedded": lambda path: plotly_page(mesh, values, path, True),
            "plotly-beside": lambda path: plotly_page(mesh, values, path, "directory"),
            "trimesh": lambda path: trimesh_page(mesh, values, path),
            "isofield": lambda path: write_view(path, mesh, "armadillo", distance, diagonal, reference=None),
        }
        print(f"{'candidate':<16} {'write s':>8} {'page MB':>8} {'folder MB':>10} {'load+draw s':>12}")
        for name, write in writers.items():
            folder = scratch / name
            folder.mkdir()
            page = folder / f"{name}.html"
            start = time.perf_counter()
            write(page)
            written = time.perf_counter() - start
            folder_size = sum(path.stat().st_size for path in folder.iterdir())
            shown = screenshot_seconds(page, scratch, args.repeats) - baseline
            print(f"{name:<16} {written:8.2f} {page.stat().st_size / 1e6:8.2f} {folder_size / 1e6:10.2f} {shown:12.2f}")
    print(f"(isofield decimates to at most {MAX_FACES:,} faces)")


if __name__ == "__main__":
    main()
