"""The interactive 3-D view (viz/viewer.py) and the error colours it shares with the still
picture (viz/error_map.py); the slow test opens a fit's view in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from isofield.errors import InputError
from isofield.viz.error_map import error_colors, error_range, error_values, render_error
from isofield.viz.render import light_views
from isofield.viz.viewer import PLOTLY_JS, decimated, subsampled, write_view

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def script_sources(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]*)"', html)


def test_view_is_self_contained_and_shows_the_mesh_and_its_colour_range(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=3)               # 642 vertices, 1280 faces
    diagonal = 8.0
    page = write_view(tmp_path / "view" / "mesh.html", mesh, "unit sphere",
                      distance=lambda p: np.abs(p[:, 2]), diagonal=diagonal)
    html = page.path.read_text()
    # One local script: plotly.js beside the page, never a URL.
    assert script_sources(html) == [PLOTLY_JS]
    assert (tmp_path / "view" / PLOTLY_JS).stat().st_size > 3_000_000
    assert (page.vertices, page.faces, page.source_faces, page.points) == (642, 1280, 1280, 0)
    assert "1,280 faces, 642 vertices" in html and "decimated" not in html
    # Colour: |z| in % of the diagonal, scale from 0 to the 99th percentile.
    values = 100.0 * np.abs(mesh.vertices[:, 2]) / diagonal
    assert page.error_top == pytest.approx(np.percentile(values, 99.0), rel=1e-6)
    assert page.error_top < values.max() == pytest.approx(12.5)
    cmax = float(re.search(r'"cmax":([0-9.e+-]+)', html).group(1))
    assert cmax == pytest.approx(page.error_top, rel=1e-6) and '"cmin":0.0' in html
    assert f"0 to {page.error_top:.3g} % of its bbox diagonal (max 12.5 %)" in html


def test_view_without_reference_is_plain_and_shares_the_library(tmp_path):
    first = write_view(tmp_path / "a.html", trimesh.creation.box(), "box <b>")
    library = tmp_path / PLOTLY_JS
    stamp = library.stat().st_mtime_ns
    second = write_view(tmp_path / "b.html", trimesh.creation.box(), "box",
                        reference=trimesh.creation.icosphere(1), points=np.zeros((5, 3)))
    assert library.stat().st_mtime_ns == stamp                        # written once per folder
    assert first.error_top is None and "intensity" not in first.path.read_text()
    assert "box &lt;b&gt;\\u003cbr" in first.path.read_text()          # the title is text, not markup
    html = second.path.read_text()
    assert second.points == 5 and '"name":"points (5)"' in html and '"name":"reference"' in html
    assert html.count('"visible":"legendonly"') == 2                  # the mesh shows, the rest on click


def test_decimation_caps_faces_and_keeps_the_surface():
    sphere = trimesh.creation.icosphere(subdivisions=4)               # 5120 faces on the unit sphere
    vertices, faces = decimated(sphere, 1000)
    assert 900 <= len(faces) <= 1000 and vertices.dtype == np.float32 and faces.dtype == np.int32
    assert np.abs(np.linalg.norm(vertices, axis=1) - 1.0).max() < 0.02
    # An open, non-manifold mesh (half a sphere plus a duplicated face) decimates too.
    half = sphere.faces[sphere.triangles_center[:, 2] > 0]
    _, open_faces = decimated(trimesh.Trimesh(sphere.vertices, np.vstack([half, half[:1]])), 500)
    assert 400 <= len(open_faces) <= 500
    # Small meshes are embedded as they are.
    vertices, faces = decimated(sphere, 10_000)
    np.testing.assert_array_equal(faces, sphere.faces)


def test_points_are_subsampled_deterministically():
    points = np.random.default_rng(1).normal(size=(500, 3))
    chosen = subsampled(points, 100)
    assert chosen.shape == (100, 3)
    np.testing.assert_array_equal(chosen, subsampled(points, 100))
    assert set(map(tuple, chosen)) <= set(map(tuple, points.astype(np.float32)))
    assert len(subsampled(points, 1000)) == 500


def test_view_rejects_bad_input(tmp_path):
    mesh = trimesh.creation.box()
    with pytest.raises(InputError, match="give a .html file name"):
        write_view(tmp_path / "view.png", mesh, "box")
    with pytest.raises(InputError, match="both distance and diagonal"):
        write_view(tmp_path / "view.html", mesh, "box", distance=lambda p: np.zeros(len(p)))
    with pytest.raises(InputError, match=r"points must have shape \(N, 3\)"):
        write_view(tmp_path / "view.html", mesh, "box", points=np.zeros((4, 2)))
    with pytest.raises(InputError, match="diagonal must be > 0"):
        write_view(tmp_path / "view.html", mesh, "box", distance=lambda p: np.zeros(len(p)), diagonal=0.0)


def test_error_scale_and_colours():
    assert error_values(np.array([0.0, 0.5, 2.0]), 4.0).tolist() == [0.0, 12.5, 50.0]
    assert error_range(np.arange(101.0)) == pytest.approx(99.0)
    assert error_range(np.r_[np.zeros(200), 3.0]) == 3.0                 # percentile 0: the maximum
    assert error_range(np.zeros(10)) == 1.0
    colors = error_colors(np.array([0.0, 5.0, 10.0, 50.0]), 10.0)
    np.testing.assert_allclose(colors[0], [0.267004, 0.004874, 0.329415], atol=1e-6)   # viridis(0)
    np.testing.assert_allclose(colors[2], [0.993248, 0.906157, 0.143936], atol=1e-6)   # viridis(1)
    np.testing.assert_array_equal(colors[3], colors[2])                  # clipped at the top


def test_error_picture_colours_the_mesh_by_its_values(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=3)
    values = 10.0 * (sphere.vertices[:, 1] > 0)                          # top half 10 %, bottom 0
    top = render_error(sphere, values, tmp_path / "error.png", views=((0.0, 0.0),), resolution=(96, 96))
    assert top == 10.0
    image = np.asarray(Image.open(tmp_path / "error.png").convert("RGB")).astype(int)
    yellow = (image[..., 0] > 120) & (image[..., 1] > 120) & (image[..., 2] < 60)
    purple = (image[..., 0] > 30) & (image[..., 1] < 20) & (image[..., 2] > 40)
    rows_yellow, rows_purple = np.nonzero(yellow)[0], np.nonzero(purple)[0]
    assert len(rows_yellow) > 500 and len(rows_purple) > 500
    assert np.median(rows_yellow) < np.median(rows_purple)              # the top half is the yellow one
    lit = light_views(sphere, ((0.0, 0.0),), (96, 96))                  # a render's views, lit once
    render_error(sphere, values, tmp_path / "shared.png", lit=lit)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "shared.png")), np.asarray(Image.open(tmp_path / "error.png")))
    with pytest.raises(InputError, match="one value per vertex"):
        render_error(sphere, values[:-1], tmp_path / "bad.png")


# --- a real browser ------------------------------------------------------------------------


def chromium_screenshot(url: str, png: Path, profile: Path) -> list[str]:
    """Load ``url`` in headless Chromium, write a 1000x750 screenshot to ``png``; returns the
    page's console lines that report errors."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
               "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", "--window-size=1000,750", f"--screenshot={png}", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return [line for line in console if re.search(r"Uncaught|Error|Failed to load", line)]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_fit_report_view_draws_in_headless_chromium(tmp_path):
    from isofield.data.formats import write_sdf_samples
    from isofield.fitting import fit
    from isofield.geometry.samples import sdf_samples

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=3.0)
    sphere.apply_translation((5.0, -2.0, 1.0))
    sphere.export(tmp_path / "sphere.ply")
    samples, normalization = sdf_samples(sphere, n=4000, seed=0)
    write_sdf_samples(samples, normalization, tmp_path / "sphere.npz")
    (tmp_path / "short.yaml").write_text(yaml.safe_dump({
        "extract": {"resolution": 64}, "options": {"batch": 256}, "train": {"lr": 1e-4}}))
    result = fit(tmp_path / "sphere.npz", method="sdf", config_file=tmp_path / "short.yaml", steps=20,
                 reference=tmp_path / "sphere.ply", output=tmp_path / "run", progress=False)
    run = result.run_dir
    assert '<a href="view/mesh.html">' in (run / "report.html").read_text()
    assert (run / "error.png").is_file()

    errors = chromium_screenshot((run / "view" / "mesh.html").as_uri(), tmp_path / "view.png", tmp_path / "profile")
    assert errors == []
    image = np.asarray(Image.open(tmp_path / "view.png").convert("RGB")).astype(int)
    assert image.shape == (750, 1000, 3)
    # The mesh is drawn in viridis colours; the page's background and grid are white and grey-blue.
    # Columns from 850 on hold the colour bar (drawn without WebGL), so they are left out.
    saturated = image[:, :850].max(axis=2) - image[:, :850].min(axis=2) > 60
    assert saturated.mean() > 0.03, f"only {saturated.mean():.4f} of the WebGL scene is coloured"

    # The check can fail: a page that throws is reported.
    (tmp_path / "bad.html").write_text("<html><body><script>undefinedFunction();</script></body></html>")
    errors = chromium_screenshot((tmp_path / "bad.html").as_uri(), tmp_path / "bad.png", tmp_path / "profile2")
    assert len(errors) == 1 and "undefinedFunction is not defined" in errors[0]
