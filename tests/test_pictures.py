"""Pictures users expect (issue 24, part 7): ``render`` of point clouds and run folders, ``eval``
of a cloud against a cloud, input points on the slices of point-cloud fits, no flat
learning-rate panel, and the error picture of a point-cloud fit without a reference.

Commands run in-process through :func:`isofield.cli.main`, from ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from test_cli import _in_tmp_path, run_cli  # noqa: F401 (an autouse fixture)
from isofield.geometry.io import PointCloud, write_points
from isofield.viz.curves import loss_curves_figure, plot_loss_curves
from isofield.viz.points import (NEAR_COLOR, camera_for, cloud_picture, normal_colors, render_points,
                                  splat_radius)
from isofield.viz.slices import MAX_SLAB_POINTS, plot_sdf_slices, slab_points

WHITE = (255, 255, 255)


def assert_refused(capsys, tmp_path: Path, args: list[object], *names: str) -> str:
    """Exit code 2, one stderr line naming ``names``, and no file written or changed."""
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("isofield: error: "), err
    for name in names:
        assert name in err, f"{name!r} not in {err!r}"
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    return err


def sphere_points(count: int, seed: int, radius: float = 1.0) -> np.ndarray:
    """``count`` uniform random points (count, 3) float64 on the sphere of ``radius``."""
    points = np.random.default_rng(seed).normal(size=(count, 3))
    return radius * points / np.linalg.norm(points, axis=1, keepdims=True)


def picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def drawn(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that are not the white background."""
    return (image != WHITE).any(axis=2)


# --------------------------------------------------------------------------------------------
# render: point clouds and run folders
# --------------------------------------------------------------------------------------------


def test_render_of_a_cloud_with_normals_colours_them_and_hides_the_far_side(capsys, tmp_path):
    points = sphere_points(20_000, seed=0)
    write_points(PointCloud(points, points), tmp_path / "sphere.ply")      # outward normals
    code, out, _ = run_cli(capsys, "render", "sphere.ply", "-o", "sphere.png", "--size", 256, "--view", 0, 0)
    assert code == 0 and "20000 points, coloured by normal" in out
    image = picture(tmp_path / "sphere.png")
    assert image.shape == (256, 256, 3)
    # The camera looks from +z: the centre shows normal (0, 0, 1) as RGB (0.5, 0.5, 1).
    assert np.abs(image[128, 128] - (128, 128, 255)).max() <= 12
    # Near the right rim the normal points to +x: red.
    right = np.flatnonzero(drawn(image)[128]).max()
    assert image[128, right - 4, 0] > 230
    # No point of the far half (normals pointing away, blue below 128) shows through the front.
    assert image[drawn(image)][:, 2].min() >= 100
    # The surface is closed: inside 90% of the disc every pixel is drawn.
    rows, columns = np.nonzero(drawn(image))
    centre, radius = (rows.mean(), columns.mean()), 0.5 * (columns.max() - columns.min())
    yy, xx = np.mgrid[:256, :256]
    inner = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < (0.9 * radius) ** 2
    assert drawn(image)[inner].all()


def test_without_occlusion_the_far_side_shows_through(tmp_path):
    """The check above can fail: plain small splats let far points (blue < 60) through."""
    points = sphere_points(20_000, seed=0)
    camera = camera_for([points], (256, 256), (0.0, 0.0))
    image = render_points(points, camera, 1.0, colors=normal_colors(points)).astype(int)
    assert image[drawn(image)][:, 2].min() < 60
    covered = render_points(points, camera, splat_radius(points, camera), colors=normal_colors(points),
                            occlusion=True).astype(int)
    assert covered[drawn(covered)][:, 2].min() >= 100


def test_render_of_a_cloud_without_normals_colours_by_depth(capsys, tmp_path):
    np.savetxt(tmp_path / "sphere.xyz", sphere_points(5000, seed=1))
    np.save(tmp_path / "sphere.npy", sphere_points(5000, seed=1))
    code, out, _ = run_cli(capsys, "render", "sphere.xyz", "-o", "xyz.png", "--size", 200, "--view", 0, 0)
    assert code == 0 and "5000 points, no normals: coloured by depth" in out
    image = picture(tmp_path / "xyz.png")
    near = np.round(255 * np.array(NEAR_COLOR))
    assert np.abs(image[100, 100] - near).max() <= 20          # the nearest point faces the camera
    right = np.flatnonzero(drawn(image)[100]).max()
    assert image[100, right - 2].sum() > image[100, 100].sum() + 150   # the rim is farther: lighter
    code, _, _ = run_cli(capsys, "render", "sphere.npy", "-o", "npy.png", "--size", 200, "--view", 0, 0)
    assert code == 0 and np.array_equal(picture(tmp_path / "npy.png"), image)


def test_cloud_picture_keeps_the_splats_inside_the_frame():
    points = sphere_points(500, seed=2)             # sparse: large splats
    image = cloud_picture(points, (160, 160), (30.0, 20.0)).astype(int)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert (border == WHITE).all()
    assert drawn(image).mean() > 0.3


def test_render_of_a_fit_run_draws_its_mesh(capsys, tmp_path, sphere_ply):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"method": "igr", "input": "points.xyz"}))
    (run / "mesh.ply").write_bytes(sphere_ply.read_bytes())
    assert run_cli(capsys, "render", run, "-o", "run.png", "--size", 96)[0] == 0
    assert run_cli(capsys, "render", sphere_ply, "-o", "mesh.png", "--size", 96)[0] == 0
    image = picture(tmp_path / "run.png")
    assert np.array_equal(image, picture(tmp_path / "mesh.png"))
    assert 0.2 < drawn(image).mean() < 0.9


def test_render_of_a_run_without_one_mesh_says_what_to_render(capsys, tmp_path):
    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "config.yaml").write_text(yaml.safe_dump({"method": "igr", "input": "points.xyz"}))
    assert_refused(capsys, tmp_path, ["render", fit, "-o", "x.png"], "no mesh.ply yet",
                   f"isofield fit --resume {fit}", f"isofield mesh {fit}")
    space = tmp_path / "space"
    space.mkdir()
    (space / "shapes.json").write_text("[]")
    for method, family, hint in (("deepsdf", "a deepsdf run", "isofield reconstruct"),
                                 ("shapegf", "a shapegf run", "isofield generate"),
                                 ("onet", "an occupancy run", "isofield complete")):
        (space / "config.yaml").write_text(f"method: {method}\n")
        assert_refused(capsys, tmp_path, ["render", space, "-o", "x.png"], f"{family} holds a space of shapes",
                       hint)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(capsys, tmp_path, ["render", empty, "-o", "x.png"], "not a run")


def test_render_of_a_cloud_refuses_bad_outputs_before_work(capsys, tmp_path):
    np.savetxt(tmp_path / "points.xyz", sphere_points(300, seed=3))
    assert_refused(capsys, tmp_path, ["render", "points.xyz", "-o", "points.jpg"], "points.jpg", ".png")
    (tmp_path / "taken.png").write_bytes(b"mine")
    assert_refused(capsys, tmp_path, ["render", "points.xyz", "-o", "taken.png"], "taken.png", "--overwrite")
    assert (tmp_path / "taken.png").read_bytes() == b"mine"
    assert run_cli(capsys, "render", "points.xyz", "-o", "taken.png", "--overwrite", "--size", 64)[0] == 0
    assert picture(tmp_path / "taken.png").shape == (64, 64, 3)
    (tmp_path / "bad.xyz").write_text("1 2 3\n4 5\n")
    assert_refused(capsys, tmp_path, ["render", "bad.xyz", "-o", "bad.png"], "bad.xyz")
    assert_refused(capsys, tmp_path, ["render", "points.xyz", "-o", "points.xyz"], "same as an input")


@pytest.fixture
def sphere_ply(tmp_path) -> Path:
    path = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=3).export(path)
    return path


# --------------------------------------------------------------------------------------------
# eval: a cloud against a cloud
# --------------------------------------------------------------------------------------------


def test_eval_of_two_samplings_of_a_sphere_gives_the_sampling_spacing(capsys, tmp_path):
    count = 20_000
    a, b = sphere_points(count, seed=10), sphere_points(count, seed=11)
    write_points(PointCloud(a, a), tmp_path / "a.ply")
    write_points(PointCloud(b, b), tmp_path / "b.ply")
    code, out, _ = run_cli(capsys, "eval", "a.ply", "b.ply", "--json")
    assert code == 0
    result = json.loads(out)
    # Nearest neighbours among uniform points of density rho on a surface: mean distance
    # 1 / (2 sqrt(rho)), mean squared distance 1 / (pi rho); within 3 sigma of 20,000 samples.
    rho = count / (4 * math.pi)
    assert result["chamfer_l1"] == pytest.approx(0.5 / math.sqrt(rho), rel=0.03)
    assert result["chamfer_l2"] == pytest.approx(1 / (math.pi * rho), rel=0.05)
    tau = result["protocol"]["tau"]
    assert tau == pytest.approx(0.01 * 2 * math.sqrt(3), rel=0.01)     # 1% of the bbox diagonal
    assert result["precision"] == pytest.approx(1 - math.exp(-rho * math.pi * tau ** 2), abs=0.0015)
    assert result["normal_consistency"] > 0.9995
    assert result["protocol"]["input"] == "point clouds" and result["iou"] is None
    code, text, _ = run_cli(capsys, "eval", "a.ply", "b.ply")
    assert text.startswith("protocol  isofield-v1 (point clouds: 20000 predicted, 20000 reference points)")
    assert f"{result['chamfer_l1']:.6g}" in text


def test_eval_of_an_offset_copy_gives_the_offset(capsys, tmp_path):
    offset = 0.05
    a = sphere_points(4000, seed=12)
    np.savetxt(tmp_path / "a.xyz", a)
    write_points(PointCloud((1 + offset) * a, a), tmp_path / "far.ply")   # moved out along the normals
    code, out, _ = run_cli(capsys, "eval", "a.xyz", "far.ply", "--json", "--emd")
    result = json.loads(out)
    # Every point's nearest neighbour is its own copy, exactly `offset` away.
    for key, value in (("chamfer_l1", offset), ("hausdorff", offset), ("chamfer_l2", offset ** 2)):
        assert result[key] == pytest.approx(value, rel=1e-4), key
    assert result["emd"] >= offset * (1 - 1e-4)        # no matching between the shells is shorter
    assert result["normal_consistency"] is None
    assert result["skipped"]["normal_consistency"] == "no normals in a.xyz"
    for tau, expected in ((offset / 2, 0.0), (0.99 * offset, 0.0), (1.01 * offset, 1.0)):
        result = json.loads(run_cli(capsys, "eval", "a.xyz", "far.ply", "--json", "--tau", tau)[1])
        assert result["f_score"] == expected, tau
    text = run_cli(capsys, "eval", "a.xyz", "far.ply")[1]
    assert re.search(r"normal_consistency\s+n/a\s+no normals in a.xyz", text)


def test_eval_of_a_cloud_against_a_mesh_matches_the_swapped_order(capsys, tmp_path, sphere_ply):
    np.savetxt(tmp_path / "a.xyz", sphere_points(300, seed=13))
    cloud = json.loads(run_cli(capsys, "eval", "a.xyz", sphere_ply, "--json", "-n", 20_000)[1])
    mesh = json.loads(run_cli(capsys, "eval", sphere_ply, "a.xyz", "--json", "-n", 20_000)[1])
    assert cloud["protocol"]["input"] == "points against mesh"
    assert mesh["protocol"]["input"] == "mesh against points"
    # the same two sets (20,000 samples of the mesh, the 300 points) in the other roles: Chamfer
    # is symmetric, and one order's precision is the other's recall (up to the mesh's sampling)
    assert cloud["chamfer_l1"] == pytest.approx(mesh["chamfer_l1"], rel=0.02)
    assert cloud["precision"] == pytest.approx(mesh["recall"], abs=0.02)
    assert cloud["recall"] == pytest.approx(mesh["precision"], abs=0.02)
    assert cloud["normal_consistency"] is None
    assert cloud["skipped"]["normal_consistency"] == "no normals in a.xyz"


# --------------------------------------------------------------------------------------------
# slices with the input points
# --------------------------------------------------------------------------------------------


def test_slab_points_keeps_the_points_near_the_plane_in_plane_coordinates():
    points = np.array([[0.1, 0.2, 0.30], [0.4, 0.5, 0.33], [0.7, 0.8, 0.36], [1.0, 1.1, 0.29]])
    np.testing.assert_array_equal(slab_points(points, "z", 0.3, 0.031), [[0.1, 0.2], [0.4, 0.5], [1.0, 1.1]])
    np.testing.assert_array_equal(slab_points(points, "y", 0.5, 0.01), [[0.4, 0.33]])
    np.testing.assert_array_equal(slab_points(points, "x", 0.7, 0.01), [[0.8, 0.36]])
    many = np.zeros((3 * MAX_SLAB_POINTS + 5, 3))
    assert len(slab_points(many, "z", 0.0, 0.01)) <= MAX_SLAB_POINTS


def magenta_pixels(path: Path) -> int:
    image = picture(path)
    return int(((image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] > 150)).sum())


def test_slices_draw_the_points_within_the_slab(tmp_path):
    def sphere_sdf(points):
        return np.linalg.norm(points, axis=1) - 0.6

    on_planes = sphere_points(20_000, seed=4, radius=0.6)
    off_planes = on_planes[np.abs(on_planes).min(axis=1) > 0.1]       # none within 0.1 of a plane
    for name, points in (("none", np.zeros((0, 3))), ("off", off_planes), ("on", on_planes)):
        plot_sdf_slices(sphere_sdf, tmp_path / f"{name}.png", bounds=1.0, resolution=64, points=points)
    legend_only = magenta_pixels(tmp_path / "none.png")      # the legend's marker
    assert magenta_pixels(tmp_path / "off.png") == legend_only
    assert magenta_pixels(tmp_path / "on.png") > legend_only + 300
    plot_sdf_slices(sphere_sdf, tmp_path / "plain.png", bounds=1.0, resolution=64)
    assert magenta_pixels(tmp_path / "plain.png") == 0


# --------------------------------------------------------------------------------------------
# the learning-rate panel
# --------------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_a_learning_rate_that_never_changes_gets_no_panel(tmp_path):
    flat = tmp_path / "flat.csv"
    flat.write_text("step,total,lr\n0,1.0,0.001\n10,0.5,0.001\n20,0.25,0.001\n")
    figure = loss_curves_figure(flat)
    assert len(figure.axes) == 1
    assert figure.axes[0].get_xlabel() == "step (learning rate 0.001 throughout)"
    plot_loss_curves(flat, tmp_path / "flat.png")
    assert png_size(tmp_path / "flat.png") == (825, 495)

    groups = tmp_path / "groups.csv"
    groups.write_text("step,total,lr_decoder,lr_latent\n0,1.0,0.001,0.01\n1,0.5,0.001,0.01\n")
    assert loss_curves_figure(groups).axes[0].get_xlabel() == \
        "step (learning rates decoder 0.001, latent 0.01 throughout)"

    decays = tmp_path / "decays.csv"
    decays.write_text("step,total,lr_decoder,lr_latent\n0,1.0,0.001,0.01\n1,0.5,0.001,0.005\n")
    figure = loss_curves_figure(decays)
    assert len(figure.axes) == 2 and figure.axes[0].get_xlabel() == ""
    assert figure.axes[1].get_xlabel() == "step"
    plot_loss_curves(decays, tmp_path / "decays.png")
    assert png_size(tmp_path / "decays.png") == (825, 660)


def test_a_flat_learning_rate_is_not_drawn_as_a_loss(tmp_path):
    flat = tmp_path / "flat.csv"
    flat.write_text("step,total,lr\n0,1.0,0.001\n10,0.5,0.001\n")
    loss_ax = loss_curves_figure(flat).axes[0]
    assert [line.get_label() for line in loss_ax.get_lines()] == ["total"]


# --------------------------------------------------------------------------------------------
# a point-cloud fit's report: points on the slices, the error picture against the points
# --------------------------------------------------------------------------------------------


def test_point_cloud_fit_report_shows_points_on_slices_and_the_error_against_them(tmp_path):
    from isofield.fitting import fit
    from isofield.fitting.outputs import input_points
    from isofield.fitting.rundir import RunDir

    points = sphere_points(3000, seed=5, radius=2.0) + (1.0, 0.0, 0.0)
    write_points(PointCloud(points, (points - (1.0, 0.0, 0.0)) / 2.0), tmp_path / "ball.ply")
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(
        {"options": {"batch": 256}, "extract": {"resolution": 32}, "train": {"log_every": 1}}))
    result = fit(tmp_path / "ball.ply", method="igr", config_file=tmp_path / "short.yaml", steps=5,
                 output=tmp_path / "run", progress=False)
    run = result.run_dir
    report = (run / "report.html").read_text()
    assert "magenta: the input points within 1% of the box&#x27;s side of each plane" in report
    assert magenta_pixels(run / "slices.png") > 250     # about 60 points per plane; the legend: 25
    # No reference given: the error picture measures the distance to the input points.
    assert (run / "error.png").is_file()
    assert "The mesh coloured by its distance to ball.ply" in report

    config = RunDir.open(run).load_config()
    np.testing.assert_allclose(input_points(config, None), points, atol=1e-6)
    mesh = trimesh.creation.icosphere()
    assert input_points(config, (tmp_path / "sphere.ply", mesh)) is not None   # read from the input
    config.input = str(tmp_path / "sphere.ply")
    mesh.export(tmp_path / "sphere.ply")
    assert input_points(config, None) is None                                  # a mesh input


def test_an_input_cloud_that_can_no_longer_be_read_leaves_the_slices_without_points(tmp_path, capsys):
    from isofield.fitting.config import FitConfig
    from isofield.fitting.outputs import input_points

    config = FitConfig(input=str(tmp_path / "moved.xyz"))
    assert input_points(config, None) is None
    err = capsys.readouterr().err
    assert err.startswith("isofield: warning: the slices show no input points: ") and "moved.xyz" in err
    assert err.count("\n") == 1

