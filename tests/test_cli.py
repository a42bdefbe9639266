"""The command line end to end: every command on small inputs, and every kind of bad input.

Contract under test (issue "Foundation"): a bad input gives exit code 2 and ONE line on stderr,
``isofield: error: ...``, naming the file or key at fault, with no traceback, and no file is
written or changed. Commands run in-process through :func:`isofield.cli.main` (with the working
directory moved to ``tmp_path``, so a stray default output would be seen); one test runs the
installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from isofield.cli import main
from isofield.geometry.io import PointCloud, write_points
from isofield.geometry.shapes import get_shape

SPHERE_RADIUS = 1.0
# Off-centre and scaled copy of the sphere: outputs must come back in these user coordinates.
USER_CENTER = np.array([5.0, -2.0, 1.0])
USER_RADIUS = 3.0

# Small, fast settings for the fits run from the command line.
FAST_FIT = {
    "options": {"batch": 1024, "surface_points": 5000},
    "extract": {"resolution": 64},
    "train": {"log_every": 1},
}


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Run every command from tmp_path, so default outputs (runs/...) land where we look."""
    monkeypatch.chdir(tmp_path)


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    """``isofield ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder`` (relative path -> (content, mtime in ns)); folders too."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        state[key] = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else (b"<dir>", 0)
    return state


def assert_one_line_error(code: int, err: str, *names: str) -> None:
    """Exit code 2 and one stderr line ``isofield: error: ...`` that mentions every name."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("isofield: error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"


def refuses(capsys, tmp_path: Path, args: list[object], *names: str) -> str:
    """Run a command that must fail: one-line error naming ``names``, nothing written or changed."""
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, *names)
    assert snapshot(tmp_path) == before, "a failing command wrote or changed files"
    return err


def icosphere(radius: float = SPHERE_RADIUS, center=(0.0, 0.0, 0.0), subdivisions: int = 3) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    mesh.apply_translation(center)
    return mesh


@pytest.fixture
def sphere_ply(tmp_path) -> Path:
    """Unit icosphere at the origin: 642 vertices, 1280 faces."""
    path = tmp_path / "sphere.ply"
    icosphere().export(path)
    return path


@pytest.fixture
def user_sphere_ply(tmp_path) -> Path:
    """Icosphere of radius USER_RADIUS around USER_CENTER."""
    path = tmp_path / "user_sphere.ply"
    icosphere(USER_RADIUS, USER_CENTER).export(path)
    return path


@pytest.fixture
def cloud_ply(tmp_path) -> Path:
    """The unit icosphere's 642 vertices with normals, as a PLY point cloud (no faces)."""
    path = tmp_path / "cloud.ply"
    sphere = icosphere()
    write_points(PointCloud(sphere.vertices, sphere.vertex_normals), path)
    return path


@pytest.fixture
def points_xyz(tmp_path) -> Path:
    """500 points on the unit sphere, 3 columns: no normals."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3))
    path = tmp_path / "points.xyz"
    np.savetxt(path, points / np.linalg.norm(points, axis=1, keepdims=True))
    return path


@pytest.fixture
def sdf_npz(tmp_path) -> Path:
    """4000 DeepSDF-style SDF samples of the unit icosphere (cheap input for the sdf method)."""
    from isofield.data.formats import write_sdf_samples
    from isofield.geometry.samples import sdf_samples

    path = tmp_path / "sphere_sdf.npz"
    write_sdf_samples(*sdf_samples(icosphere(), n=4000, seed=0), path)
    return path


@pytest.fixture
def fast_yaml(tmp_path) -> Path:
    """Small settings for igr."""
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(FAST_FIT))
    return path


@pytest.fixture
def sdf_yaml(tmp_path) -> Path:
    """Small settings for the sdf method."""
    path = tmp_path / "sdf.yaml"
    path.write_text(yaml.safe_dump({**FAST_FIT, "options": {"batch": 1024}}))
    return path


def bad_file(tmp_path: Path, kind: str) -> Path:
    """A broken input file of the given kind."""
    files = {
        "missing": ("missing.ply", None),
        "unknown-extension": ("shape.abc", b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"),
        "empty-ply": ("empty.ply", b""),
        "empty-off": ("empty.off", b""),
        "garbage-ply": ("garbage.ply", bytes(range(256)) * 4),
        "garbage-off": ("garbage.off", b"\x00\xffthis is not a mesh\x01\x02\n\x03"),
        "nan-off": ("nan.off", b"OFF\n3 1 0\n0 0 0\nnan 1 0\n0 0 1\n3 0 1 2\n"),
        "truncated-off": ("truncated.off", b"OFF\n4 2 0\n0 0 0\n1 0 0\n3 0 1 2\n"),
    }
    name, content = files[kind]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


BAD_FILES = ["missing", "unknown-extension", "empty-ply", "empty-off", "garbage-ply", "garbage-off",
             "nan-off", "truncated-off"]


# --------------------------------------------------------------------------------------------
# good runs
# --------------------------------------------------------------------------------------------


def test_info_describes_a_mesh(capsys, sphere_ply):
    code, out, err = run_cli(capsys, "info", sphere_ply)
    assert code == 0 and err == ""
    assert "642 vertices, 1280 faces, 1 component" in out
    assert "watertight: yes" in out and "consistently oriented: yes" in out
    assert "bounds [-1, -1, -1] to [1, 1, 1], diagonal 3.464" in out


def test_info_describes_a_point_cloud(capsys, cloud_ply):
    code, out, _ = run_cli(capsys, "info", cloud_ply)
    assert code == 0
    assert "642 points with normals" in out


def test_sample_sdf_npz_has_deepsdf_layout_and_right_signs(capsys, tmp_path, sphere_ply):
    output = tmp_path / "samples.npz"
    code, out, _ = run_cli(capsys, "sample", sphere_ply, "-o", output, "--kind", "sdf", "-n", 20000)
    assert code == 0 and "20000 sdf samples" in out
    with np.load(output) as data:
        assert {"pos", "neg", "center", "scale"} <= set(data.files)
        pos, neg, center, scale = data["pos"], data["neg"], data["center"], float(data["scale"])
    assert pos.shape[1] == neg.shape[1] == 4 and len(pos) + len(neg) == 20000
    assert np.all(pos[:, 3] > 0) and np.all(neg[:, 3] <= 0)
    # DeepSDF's frame: bounding-box centre, farthest vertex at 1 / 1.03.
    np.testing.assert_allclose(center, 0.0, atol=1e-9)
    assert scale == pytest.approx(1.03 * SPHERE_RADIUS, rel=1e-6)
    rows = np.concatenate([pos, neg])
    user = rows[:, :3] * scale + center
    exact = (np.linalg.norm(user, axis=1) - SPHERE_RADIUS) / scale  # canonical units
    # The icosphere's facets lie within 0.0046 of the true sphere.
    assert np.max(np.abs(rows[:, 3] - exact)) < 0.006
    clear = np.abs(exact) > 0.006
    assert np.array_equal(np.sign(rows[clear, 3]), np.sign(exact[clear]))
    assert 0.3 < np.mean(exact < 0) < 0.7  # near-surface samples on both sides


def test_sample_surface_points_lie_on_the_sphere_with_outward_normals(capsys, tmp_path, user_sphere_ply):
    output = tmp_path / "surface.npz"
    code, _, _ = run_cli(capsys, "sample", user_sphere_ply, "-o", output, "--kind", "surface", "-n", 2000)
    assert code == 0
    with np.load(output) as data:
        points, normals = data["points"], data["normals"]
        center, scale = data["center"], float(data["scale"])
    user = points * scale + center
    radial = (user - USER_CENTER) / np.linalg.norm(user - USER_CENTER, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(user - USER_CENTER, axis=1), USER_RADIUS, atol=0.005 * USER_RADIUS)
    assert np.min(np.einsum("ij,ij->i", radial, normals)) > 0.99


def test_sample_occupancy_labels_match_the_sphere(capsys, tmp_path, sphere_ply):
    output = tmp_path / "points.npz"
    code, _, _ = run_cli(capsys, "sample", sphere_ply, "-o", output, "--kind", "occupancy", "-n", 4000)
    assert code == 0
    with np.load(output) as data:
        points, packed = data["points"], data["occupancies"]
        center, scale = data["loc"], float(data["scale"])
    inside = np.unpackbits(packed, count=len(points)).astype(bool)
    radius = np.linalg.norm(points * scale + center, axis=1)
    clear = np.abs(radius - SPHERE_RADIUS) > 0.005
    assert np.array_equal(inside[clear], radius[clear] < SPHERE_RADIUS)


def test_mesh_of_analytic_sphere_has_vertices_at_its_radius(capsys, tmp_path):
    output = tmp_path / "sphere_out.ply"
    code, out, _ = run_cli(capsys, "mesh", "--shape", "sphere", "-o", output, "--resolution", 64)
    assert code == 0 and str(output) in out
    mesh = trimesh.load(output, process=False)
    radius = get_shape("sphere").radius  # 0.5
    cell = 1.1 / 64
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), radius, atol=0.05 * cell)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.01)


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_mesh_of_analytic_torus_lies_on_its_zero_level(capsys, tmp_path, method):
    output = tmp_path / "torus.obj"
    code, _, _ = run_cli(capsys, "mesh", "--shape", "torus", "-o", output, "--resolution", 48, "--method", method)
    assert code == 0
    mesh = trimesh.load(output, process=False, force="mesh")
    torus = get_shape("torus")
    assert np.max(np.abs(torus.sdf(mesh.vertices))) < 0.005
    assert mesh.is_watertight and mesh.euler_number == 0  # genus one


def test_mesh_of_a_mesh_file_comes_back_in_user_coordinates(capsys, tmp_path, user_sphere_ply):
    output = tmp_path / "remeshed.off"
    code, _, _ = run_cli(capsys, "mesh", user_sphere_ply, "-o", output, "--resolution", 32)
    assert code == 0
    mesh = trimesh.load(output, process=False)
    distance = np.linalg.norm(mesh.vertices - USER_CENTER, axis=1)
    np.testing.assert_allclose(distance, USER_RADIUS, atol=0.01 * USER_RADIUS)


def test_slice_of_analytic_torus_and_of_a_mesh_file(capsys, tmp_path, sphere_ply):
    for source, output in ((["--shape", "torus"], "torus_slice.png"), ([sphere_ply], "mesh_slice.png")):
        code, out, _ = run_cli(capsys, "slice", *source, "-o", tmp_path / output, "--resolution", 32,
                               "--axis", "y")
        assert code == 0 and output in out
        image = np.asarray(Image.open(tmp_path / output).convert("RGB"))
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # a colour map, not a blank page


def test_render_writes_a_png_of_the_requested_size(capsys, tmp_path, sphere_ply):
    output = tmp_path / "render.png"
    code, _, _ = run_cli(capsys, "render", sphere_ply, "-o", output, "--size", 64, "--view", 0, 0)
    assert code == 0
    image = np.asarray(Image.open(output).convert("RGB"))
    assert image.shape == (64, 64, 3)
    background = np.all(image == 255, axis=-1)
    # The sphere fills the middle of the frame; the corners are background.
    assert not background[32, 32] and background[0, 0] and background[-1, -1]
    assert 0.2 < np.mean(~background) < 0.95


def test_eval_of_a_mesh_against_itself(capsys, sphere_ply):
    n = 50_000
    code, out, _ = run_cli(capsys, "eval", sphere_ply, sphere_ply, "-n", n, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["protocol"]["name"] == "isofield-v1"
    assert result["protocol"]["units"] == "reference mesh units"
    assert result["protocol"]["n_points"] == n
    # Two independent samplings of the same surface: the only distance left is the sampling
    # gap, mean nearest-neighbour distance of a Poisson set = 0.5 / sqrt(density).
    area = icosphere().area
    assert result["chamfer_l1"] == pytest.approx(0.5 * np.sqrt(area / n), rel=0.15)
    assert result["chamfer_l1_percent_of_diagonal"] < 0.3
    assert result["f_score"] == 1.0
    assert result["normal_consistency"] > 0.995
    assert result["iou"] == pytest.approx(1.0, abs=1e-9)


def test_eval_of_concentric_spheres_gives_the_gap(capsys, tmp_path, sphere_ply):
    bigger = tmp_path / "bigger.off"
    icosphere(1.1 * SPHERE_RADIUS).export(bigger)
    code, out, _ = run_cli(capsys, "eval", sphere_ply, bigger, "-n", 20000)
    assert code == 0
    assert "isofield-v1" in out and "reference mesh units" in out
    code, out, _ = run_cli(capsys, "eval", sphere_ply, bigger, "-n", 20000, "--json", "--tau", 0.2)
    result = json.loads(out)
    assert result["chamfer_l1"] == pytest.approx(0.1 * SPHERE_RADIUS, abs=0.01)
    assert result["f_score"] == 1.0  # every point within tau = 0.2 of the other sphere
    assert result["iou"] == pytest.approx(1 / 1.1**3, abs=0.02)
    code, out, _ = run_cli(capsys, "eval", sphere_ply, bigger, "-n", 20000, "--json", "--tau", 0.05)
    assert json.loads(out)["f_score"] == 0.0  # the gap 0.1 exceeds tau
    code, out, _ = run_cli(capsys, "eval", sphere_ply, bigger, "-n", 20000, "--json", "--surface")
    # to the other sphere's triangles: the gap, without the sampling's
    assert json.loads(out)["surface_chamfer_l1"] == pytest.approx(0.1 * SPHERE_RADIUS, rel=0.02)


@pytest.mark.slow
def test_fit_writes_a_run_and_prints_its_metrics(capsys, tmp_path, sphere_ply, fast_yaml):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "fit", sphere_ply, "--method", "igr", "--config", fast_yaml,
                             "--steps", 5, "-o", run, "-q")
    assert code == 0, err
    assert f"{run}: finished after 5 steps" in out
    assert f"mesh: {run / 'mesh.ply'}" in out and "chamfer_l1" in out
    for name in ("config.yaml", "normalization.json", "losses.csv", "checkpoints/latest.pt", "mesh.ply",
                 "metrics.json", "report.html"):
        assert (run / name).is_file(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["method"] == "igr" and config["train"]["steps"] == 5
    assert config["options"]["batch"] == 1024 and config["extract"]["resolution"] == 64
    # The printed numbers are those of metrics.json (against the input mesh, its own units).
    metrics = json.loads((run / "metrics.json").read_text())
    printed = re.search(r"chamfer_l1 (\S+) \((\S+)% of diagonal\)", out)
    assert float(printed.group(1)) == pytest.approx(metrics["chamfer_l1"], rel=1e-3)
    assert float(printed.group(2)) == pytest.approx(metrics["chamfer_l1_percent_of_diagonal"], rel=1e-3)
    assert metrics["reference_bbox_diagonal"] == pytest.approx(2 * np.sqrt(3) * SPHERE_RADIUS, rel=1e-6)


def test_fit_paused_by_exit_after_prints_how_to_resume(capsys, tmp_path, sdf_npz, sdf_yaml):
    run = tmp_path / "paused"
    code, out, _ = run_cli(capsys, "fit", sdf_npz, "--method", "sdf", "--config", sdf_yaml, "--steps", 5,
                           "-o", run, "--exit-after", 0, "-q")
    assert code == 0
    assert "exit-after after 0 steps" in out and f"resume with: isofield fit --resume {run}" in out
    assert (run / "checkpoints" / "latest.pt").is_file() and not (run / "mesh.ply").exists()


# --------------------------------------------------------------------------------------------
# bad inputs: one line, exit code 2, nothing written
# --------------------------------------------------------------------------------------------


def _command_args(command: str, path: Path, tmp_path: Path) -> list[object]:
    """Arguments running ``command`` on the input ``path`` (the reference of eval is ``path`` too)."""
    out = tmp_path / "out"
    return {
        "info": ["info", path],
        "sample": ["sample", path, "-o", out.with_suffix(".npz"), "-n", 1000],
        "mesh": ["mesh", path, "-o", out.with_suffix(".ply"), "--resolution", 16],
        "slice": ["slice", path, "-o", out.with_suffix(".png"), "--resolution", 16],
        "render": ["render", path, "-o", out.with_suffix(".png"), "--size", 32],
        "eval": ["eval", path, path, "-n", 1000],
        "fit": ["fit", path, "--steps", 2, "-o", tmp_path / "run", "-q"],
    }[command]


COMMANDS = ["info", "sample", "mesh", "slice", "render", "eval", "fit"]


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_file_is_refused_in_one_line(capsys, tmp_path, command, kind):
    path = bad_file(tmp_path, kind)
    refuses(capsys, tmp_path, _command_args(command, path, tmp_path), path.name)


@pytest.mark.parametrize("command", ["sample", "mesh", "slice"])  # render and eval take clouds: test_pictures
def test_point_cloud_where_a_mesh_is_needed(capsys, tmp_path, cloud_ply, command):
    err = refuses(capsys, tmp_path, _command_args(command, cloud_ply, tmp_path), cloud_ply.name)
    assert "no faces" in err


def test_eval_names_the_bad_one_of_two_inputs(capsys, tmp_path, sphere_ply):
    missing = tmp_path / "nowhere.ply"
    refuses(capsys, tmp_path, ["eval", sphere_ply, missing], "nowhere.ply", "not found")
    refuses(capsys, tmp_path, ["eval", missing, sphere_ply], "nowhere.ply", "not found")


def test_fit_igr_of_points_without_normals_says_so(capsys, tmp_path, points_xyz, fast_yaml):
    err = refuses(capsys, tmp_path, ["fit", points_xyz, "--method", "igr", "--config", fast_yaml,
                                     "--steps", 2, "-o", tmp_path / "run", "-q"], points_xyz.name)
    assert "no normals" in err and "normal_weight" in err


def test_unknown_config_key_is_named(capsys, tmp_path, sphere_ply):
    config = tmp_path / "typo.yaml"
    config.write_text("train:\n  stepz: 10\n")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--config", config, "--steps", 2, "-o", tmp_path / "run"],
            "stepz")
    config.write_text("bogus_key: 1\n")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--config", config, "--steps", 2, "-o", tmp_path / "run"],
            "bogus_key")


def test_missing_or_malformed_config_file_is_named(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--config", tmp_path / "none.yaml", "--steps", 2],
            "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--config", broken, "--steps", 2], "broken.yaml")


def test_wrong_config_value_type_is_named(capsys, tmp_path, sphere_ply):
    config = tmp_path / "types.yaml"
    config.write_text("train:\n  lr: fast\n")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--config", config, "--steps", 2], "train.lr")


def test_learning_rate_in_exponent_notation_is_a_number(capsys, tmp_path, sdf_npz):
    """``lr: 1e-3`` is how people write learning rates; PyYAML alone reads it as a string."""
    config = tmp_path / "lr.yaml"
    config.write_text("train:\n  lr: 1e-3\n")
    code, _, err = run_cli(capsys, "fit", sdf_npz, "--method", "sdf", "--config", config, "--steps", 2,
                           "-o", tmp_path / "run", "--exit-after", 0, "-q")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["lr"] == 1e-3


@pytest.mark.parametrize("value", ["-0.001", ".nan"])
def test_learning_rate_must_be_positive_and_finite(capsys, tmp_path, sdf_npz, value):
    config = tmp_path / "lr.yaml"
    config.write_text(f"train:\n  lr: {value}\n")
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", config, "--steps", 2,
                               "-o", tmp_path / "run", "--exit-after", 0, "-q"], "lr")


def test_unknown_method_and_preset_are_named(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--method", "nerf", "--steps", 2], "nerf", "igr", "sdf")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--preset", "turbo", "--steps", 2], "turbo", "fast")


def test_fit_without_a_training_limit_is_refused(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["fit", sphere_ply], "--steps")


def test_unknown_shape_and_missing_source_are_refused(capsys, tmp_path):
    refuses(capsys, tmp_path, ["mesh", "--shape", "teapot", "-o", tmp_path / "x.ply"], "teapot")
    refuses(capsys, tmp_path, ["mesh", "-o", tmp_path / "x.ply"], "--shape")


def test_mesh_of_a_folder_that_is_not_a_run(capsys, tmp_path):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    refuses(capsys, tmp_path, ["mesh", folder, "-o", tmp_path / "x.ply"], "not_a_run", "config.yaml")


def test_bad_numbers_are_refused(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["mesh", "--shape", "sphere", "-o", tmp_path / "x.ply", "--resolution", 0],
            "resolution")
    refuses(capsys, tmp_path, ["sample", sphere_ply, "-o", tmp_path / "x.npz", "-n", 0], "number of SDF samples")
    refuses(capsys, tmp_path, ["render", sphere_ply, "-o", tmp_path / "x.png", "--size", 0], "--size must be")
    refuses(capsys, tmp_path, ["mesh", "--shape", "sphere", "-o", tmp_path / "x.ply", "--bounds",
                               -1, -1, -1, 1, -2, 1], "--bounds")


def test_unknown_output_format_is_refused(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["mesh", "--shape", "sphere", "-o", tmp_path / "x.abc", "--resolution", 16],
            "x.abc")
    refuses(capsys, tmp_path, ["slice", "--shape", "sphere", "-o", tmp_path / "x.abc", "--resolution", 16],
            "x.abc")


@pytest.mark.parametrize("command", ["sample", "mesh", "slice", "render"])
def test_output_path_equal_to_the_input_is_refused(capsys, tmp_path, sphere_ply, command):
    args = {
        "sample": ["sample", sphere_ply, "-o", sphere_ply, "-n", 1000],
        "mesh": ["mesh", sphere_ply, "-o", sphere_ply, "--resolution", 16],
        "slice": ["slice", sphere_ply, "-o", sphere_ply, "--resolution", 16],
        "render": ["render", sphere_ply, "-o", sphere_ply, "--size", 32],
    }[command]
    refuses(capsys, tmp_path, args, sphere_ply.name, "same as an input")


def test_output_path_equal_to_the_input_through_another_spelling(capsys, tmp_path, sphere_ply):
    other_spelling = Path("sub") / ".." / sphere_ply.name  # relative to tmp_path, the working dir
    (tmp_path / "sub").mkdir()
    refuses(capsys, tmp_path, ["render", sphere_ply, "-o", other_spelling, "--size", 32], "same as an input")


def test_fit_output_equal_to_the_input_file_is_refused(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--steps", 2, "-o", sphere_ply], sphere_ply.name)


def test_fit_into_a_non_empty_folder_leaves_it_untouched(capsys, tmp_path, sphere_ply):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    (folder / "config.yaml").write_text("method: igr\n")
    os.utime(folder / "thesis.txt", ns=(1_000_000_000, 1_000_000_000))
    err = refuses(capsys, tmp_path, ["fit", sphere_ply, "--steps", 2, "-o", folder], "precious", "not empty")
    assert "--resume" in err  # it holds a config.yaml: the hint says how to continue it
    assert (folder / "thesis.txt").stat().st_mtime_ns == 1_000_000_000


def test_fit_into_an_existing_run_leaves_it_untouched(capsys, tmp_path, sdf_npz, sdf_yaml):
    run = tmp_path / "run"
    code, _, _ = run_cli(capsys, "fit", sdf_npz, "--method", "sdf", "--config", sdf_yaml, "--steps", 2,
                         "-o", run, "--exit-after", 0, "-q")
    assert code == 0
    refuses(capsys, tmp_path, ["fit", sdf_npz, "--method", "sdf", "--config", sdf_yaml, "--steps", 2,
                               "-o", run], "run", "--resume")


def test_fit_resume_of_a_folder_that_is_not_a_run(capsys, tmp_path, sphere_ply):
    refuses(capsys, tmp_path, ["fit", "--resume", tmp_path / "nothing_here"], "nothing_here")
    refuses(capsys, tmp_path, ["fit", sphere_ply, "--resume", tmp_path], "--resume")


def test_argparse_errors_exit_with_code_2_and_write_nothing(capsys, tmp_path, sphere_ply):
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(sphere_ply), "-o", str(tmp_path / "x.npz"), "--kind", "voxels"])
    assert exit_info.value.code == 2
    assert "voxels" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_console_script_reports_a_corrupt_file_in_one_line(tmp_path):
    """The installed entry point: a bad input gives exit code 2 and one stderr line."""
    garbage = bad_file(tmp_path, "garbage-ply")
    script = Path(sys.executable).with_name("isofield")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "isofield.cli"]
    before = snapshot(tmp_path)
    completed = subprocess.run(
        [*command, "render", str(garbage), "-o", str(tmp_path / "r.png")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert_one_line_error(completed.returncode, completed.stderr, garbage.name)
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# datasets and partial scans: shapes, preprocess, scan; eval against points
# --------------------------------------------------------------------------------------------


def test_shapes_writes_watertight_chairs_and_resumes(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "shapes", "chairs", "-n", 2, "-o", "chairs", "--resolution", 32, "-q")
    assert code == 0 and "2 chairs" in out
    meshes = sorted((tmp_path / "chairs").glob("*.obj"))
    assert [p.name for p in meshes] == ["chair_0000.obj", "chair_0001.obj"]
    assert all(trimesh.load(p, process=True).is_watertight for p in meshes)
    meshes_before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in meshes}
    assert run_cli(capsys, "shapes", "chairs", "-n", 2, "-o", "chairs", "--resolution", 32, "-q")[0] == 0
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in meshes} == meshes_before  # not redone
    refuses(capsys, tmp_path, ["shapes", "chairs", "-n", 2, "-o", "chairs", "--resolution", 48, "-q"], "chairs")


def test_preprocess_a_folder_of_meshes_and_report_a_broken_one(capsys, tmp_path, sphere_ply):
    folder = tmp_path / "meshes"
    folder.mkdir()
    icosphere().export(folder / "ball.ply")
    (folder / "broken.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\nnan 1 0\n3 0 1 2\n")
    code, out, _ = run_cli(capsys, "preprocess", folder, "-o", "data", "-n", 2000,
                           "--surface-points", 500, "-q")
    assert code == 0 and "1 preprocessed" in out and "1 failed" in out and "broken" in out
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert sorted(entry["status"] for entry in manifest["shapes"]) == ["failed", "ok"]
    assert (folder / "broken.off").read_text().startswith("OFF")     # the input is untouched
    with np.load(tmp_path / "data" / "SdfSamples" / "meshes" / "ball.npz") as npz:
        assert len(npz["pos"]) + len(npz["neg"]) == 2000


def test_split_holds_out_a_fraction_of_the_meshes_and_never_overwrites(capsys, tmp_path):
    folder = tmp_path / "meshes"
    folder.mkdir()
    for index in range(10):
        icosphere().export(folder / f"ball_{index}.ply")
    code, out, _ = run_cli(capsys, "split", folder, "--test-fraction", 0.2, "-o", "splits")
    assert code == 0 and "8 shapes" in out and "2 shapes" in out
    train, test = (json.loads((tmp_path / "splits" / name).read_text())["meshes"][""]  # flat folder: no class
                   for name in ("train.json", "test.json"))
    assert len(train) == 8 and len(test) == 2
    assert sorted(train + test) == [f"ball_{index}" for index in range(10)]
    before = (tmp_path / "splits" / "train.json").read_bytes()
    code, _, err = run_cli(capsys, "split", folder, "--test-fraction", 0.5, "-o", "splits")
    assert code == 2 and "already exists" in err
    assert (tmp_path / "splits" / "train.json").read_bytes() == before


def test_scan_keeps_the_visible_hemisphere_with_normals(capsys, tmp_path, sphere_ply):
    code, out, _ = run_cli(capsys, "scan", sphere_ply, "--camera", "azimuth=0,elevation=0,resolution=64",
                           "-o", "partial.ply")
    assert code == 0
    from isofield.geometry.io import read_points

    cloud = read_points(tmp_path / "partial.ply")
    assert cloud.normals is not None and len(cloud.points) > 500
    radius = np.linalg.norm(cloud.points, axis=1)
    assert np.abs(radius - SPHERE_RADIUS).max() < 0.02 * SPHERE_RADIUS
    assert (np.einsum("ij,ij->i", cloud.normals, cloud.points / radius[:, None]) > 0.9).all()
    assert (cloud.points[:, 2] > 0).all()                   # azimuth 0: the camera looks from +z
    assert f"{len(cloud.points)} points" in out
    refuses(capsys, tmp_path, ["scan", sphere_ply, "--camera", "zoom=2", "-o", "p.ply"], "zoom")


def test_eval_against_a_point_cloud_uses_its_normals(capsys, tmp_path, sphere_ply):
    from isofield.geometry.sampling import sample_surface

    write_points(sample_surface(icosphere(subdivisions=5), 5000, seed=0), tmp_path / "scan.ply")
    code, out, _ = run_cli(capsys, "eval", sphere_ply, tmp_path / "scan.ply", "--json")
    result = json.loads(out)
    assert result["protocol"]["input"] == "mesh against points"
    assert result["normal_consistency"] > 0.99
    assert result["chamfer_l1"] < 0.02 * SPHERE_RADIUS
    refuses(capsys, tmp_path, ["eval", sphere_ply, tmp_path / "scan.ply", "--surface"],
            "--surface", "scan.ply", "point cloud")
