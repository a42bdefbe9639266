"""Fit one shape end to end (issue "Fit one shape"): accuracy against exact SDFs, meshes in the
user's coordinates, resume, re-meshing a run, the Python API, divergence.

Every shape sits off-centre and scaled (centre USER_CENTER, size USER_SCALE), so a result that
forgot to map back from the canonical frame (``x_user = x_canonical * scale + center``) fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
import yaml

from isofield.cli import main
from isofield.data.formats import write_sdf_samples
from isofield.fitting import FitResult, fit, load_field, resume
from isofield.fitting.rundir import RunDir
from isofield.geometry.io import read_mesh, write_points
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import sdf_samples
from isofield.geometry.sampling import sample_surface
from isofield.geometry.shapes import Shape, Sphere, Torus
from isofield.metrics.surface import evaluate_meshes
from isofield.nn import as_numpy_field
from isofield.train.checkpoint import load_checkpoint
from isofield.train.logging import read_loss_log

USER_CENTER = (5.0, -2.0, 1.0)
USER_SCALE = 3.0
SPHERE = Sphere(USER_SCALE, USER_CENTER)
TORUS = Torus(0.6 * USER_SCALE, 0.25 * USER_SCALE, USER_CENTER)
CLAMP = 0.1  # the sdf method's clamp δ, canonical units

# Small runs: a coarse final mesh, small batches.
SMALL = {"extract": {"resolution": 64}, "train": {"log_every": 1, "checkpoint_every_seconds": 1000.0}}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def sphere_mesh(subdivisions: int = 4) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=SPHERE.radius)
    mesh.apply_translation(USER_CENTER)
    return mesh


def torus_mesh() -> trimesh.Trimesh:
    mesh = trimesh.creation.torus(TORUS.major_radius, TORUS.minor_radius, major_sections=128, minor_sections=64)
    mesh.apply_translation(USER_CENTER)
    return mesh


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_config(path: Path, *layers: dict) -> Path:
    config: dict = {}
    for layer in layers:
        config = merge(config, layer)
    path.write_text(yaml.safe_dump(config))
    return path


def write_sdf_npz(mesh: trimesh.Trimesh, path: Path, n: int) -> Path:
    """DeepSDF-style samples of ``mesh`` (its own canonical frame stored beside them)."""
    samples, normalization = sdf_samples(mesh, n=n, seed=0)
    write_sdf_samples(samples, normalization, path)
    return path


def write_oriented_points(mesh: trimesh.Trimesh, path: Path, n: int) -> Path:
    write_points(sample_surface(mesh, n, seed=0), path)
    return path


def near_surface_points(shape: Shape, band: float, n: int, seed: int = 1) -> np.ndarray:
    """``n`` points (user frame) with |exact SDF| < ``band``, uniform in the padded bounds."""
    rng = np.random.default_rng(seed)
    lo, hi = shape.bounds
    pad = 2 * band
    chosen: list[np.ndarray] = []
    while sum(len(c) for c in chosen) < n:
        points = rng.uniform(lo - pad, hi + pad, size=(20 * n, 3))
        chosen.append(points[np.abs(shape.sdf(points)) < band])
    return np.concatenate(chosen)[:n]


def learned_user_sdf(run_dir: Path, points: np.ndarray) -> np.ndarray:
    """The run's field at user-frame ``points``, in user units: scale * f((x - center) / scale)."""
    run = RunDir.open(run_dir)
    normalization = Normalization.load(run_dir / "normalization.json")
    field = as_numpy_field(load_field(run))
    return normalization.distance_to_user(field(normalization.to_canonical(points).astype(np.float32)))


def module_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    return {f"{module}.{name}": tensor for module, state in checkpoint.modules.items()
            for name, tensor in state.items()}


def assert_run_directory(run_dir: Path, steps: int) -> None:
    """The files that let a run be resumed, re-meshed and re-evaluated; one log row per step."""
    for name in ("config.yaml", "normalization.json", "losses.csv", "checkpoints/latest.pt"):
        assert (run_dir / name).is_file(), name
    logged = read_loss_log(run_dir / "losses.csv")["step"]
    assert len(np.unique(logged)) == len(logged), f"duplicate steps in losses.csv: {logged}"
    np.testing.assert_array_equal(logged, np.arange(steps))
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").step == steps


# --------------------------------------------------------------------------------------------
# a short sdf run shared by the API, re-meshing and resume tests
#
# A finished fit costs ~8 s on 2 idle cores whatever its step count (slices, render, report,
# evaluation), so the tests that need one are marked slow; the default suite checks the same
# plumbing on runs paused before their first step (``exit_after=0``), which write no outputs.
# --------------------------------------------------------------------------------------------

SHORT_STEPS = 20
# A low learning rate keeps the field near the network's sphere initialisation for these few
# steps, so that a surface exists to mesh; these tests are about plumbing, not accuracy.
SHORT = merge(SMALL, {"options": {"batch": 256}, "train": {"lr": 1e-4}})


@pytest.fixture(scope="module")
def short_inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("short_inputs")
    mesh = sphere_mesh(subdivisions=3)
    mesh.export(folder / "sphere.ply")
    return {
        "samples": write_sdf_npz(mesh, folder / "sphere_sdf.npz", n=4000),
        "reference": folder / "sphere.ply",
        "config": write_config(folder / "short.yaml", SHORT),
    }


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, short_inputs) -> FitResult:
    """``fit(...)`` of the sphere's SDF samples, SHORT_STEPS steps, evaluated against the mesh."""
    output = tmp_path_factory.mktemp("short_run") / "run"
    return fit(short_inputs["samples"], method="sdf", config_file=short_inputs["config"], steps=SHORT_STEPS,
               reference=short_inputs["reference"], output=output, progress=False)


def test_a_fit_builds_the_distances_to_its_reference_mesh_once(short_inputs, tmp_path, monkeypatch):
    """The IoU's inside test, the slices' dashed contour and the error colours share one
    MeshDistance of the reference mesh (the fitted mesh gets its own, for the IoU)."""
    import isofield.fitting.outputs as outputs
    import isofield.metrics.surface as surface
    from isofield.geometry.groundtruth import MeshDistance

    built = []

    class CountedMeshDistance(MeshDistance):
        def __init__(self, mesh, *args, **kwargs):
            built.append(len(mesh.faces))
            super().__init__(mesh, *args, **kwargs)

    monkeypatch.setattr(outputs, "MeshDistance", CountedMeshDistance)
    monkeypatch.setattr(surface, "MeshDistance", CountedMeshDistance)
    result = fit(short_inputs["samples"], method="sdf", config_file=short_inputs["config"], steps=3,
                 reference=short_inputs["reference"], output=tmp_path / "run", progress=False)
    reference_faces = len(read_mesh(short_inputs["reference"]).faces)
    assert built.count(reference_faces) == 1
    assert result.metrics["iou"] is not None and (result.run_dir / "error.png").is_file()


@pytest.mark.slow
def test_api_returns_a_fit_result_with_metrics_in_user_units(short_run, short_inputs):
    result = short_run
    assert isinstance(result, FitResult)
    assert result.reason == "finished" and result.step == SHORT_STEPS and result.elapsed > 0
    assert result.mesh_path == result.run_dir / "mesh.ply" and result.mesh_path.is_file()
    assert_run_directory(result.run_dir, SHORT_STEPS)
    for name in ("metrics.json", "report.html", "loss.png", "slices.png", "render.png"):
        assert (result.run_dir / name).is_file(), name
    metrics = result.metrics
    assert metrics["protocol"]["name"] == "isofield-v1"
    assert json.loads((result.run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    # The metrics are those of the written mesh against the reference, in the user's units.
    again = evaluate_meshes(read_mesh(result.mesh_path), read_mesh(short_inputs["reference"]))
    assert metrics["chamfer_l1"] == pytest.approx(again["chamfer_l1"], rel=1e-6)  # mesh.ply holds float32
    diagonal = np.linalg.norm(sphere_mesh(3).extents)
    assert metrics["reference_bbox_diagonal"] == pytest.approx(diagonal, rel=1e-9)
    # Near the initial sphere: within 3% of the diagonal (the mesh would be ~100% off in the
    # canonical frame, centred at the origin with radius ~1).
    assert metrics["chamfer_l1"] < 0.03 * diagonal


@pytest.mark.slow
def test_short_run_mesh_is_in_user_coordinates(short_run):
    mesh = read_mesh(short_run.mesh_path)
    center = (mesh.bounds[0] + mesh.bounds[1]) / 2
    np.testing.assert_allclose(center, USER_CENTER, atol=0.05 * USER_SCALE)
    assert np.median(np.linalg.norm(mesh.vertices - USER_CENTER, axis=1)) == pytest.approx(USER_SCALE, rel=0.05)


@pytest.mark.slow
def test_remesh_a_run_directory_gives_its_own_mesh(short_run, tmp_path, capsys):
    output = tmp_path / "again.ply"
    code = main(["mesh", str(short_run.run_dir), "-o", str(output), "--resolution", "64"])
    assert code == 0, capsys.readouterr().err
    again, own = read_mesh(output), read_mesh(short_run.mesh_path)
    assert again.vertices.shape == own.vertices.shape and again.faces.shape == own.faces.shape
    np.testing.assert_allclose(again.vertices, own.vertices, rtol=0, atol=1e-5 * USER_SCALE)
    # A finer grid meshes the same surface, still in user coordinates.
    finer = tmp_path / "finer.ply"
    assert main(["mesh", str(short_run.run_dir), "-o", str(finer), "--resolution", "96"]) == 0
    finer_mesh = read_mesh(finer)
    assert len(finer_mesh.vertices) > len(own.vertices)
    np.testing.assert_allclose(finer_mesh.bounds, own.bounds, atol=0.02 * USER_SCALE)


@pytest.mark.slow
def test_a_finished_run_extended_by_resume_trains_on_at_the_end_of_its_schedule(short_inputs, tmp_path):
    staged = tmp_path / "staged"
    first = fit(short_inputs["samples"], method="sdf", config_file=short_inputs["config"], steps=SHORT_STEPS // 2,
                output=staged, progress=False)
    assert first.reason == "finished" and first.step == SHORT_STEPS // 2
    assert_run_directory(staged, SHORT_STEPS // 2)
    first_log = (staged / "losses.csv").read_text()
    second = resume(staged, steps=SHORT_STEPS, progress=False)
    assert second.reason == "finished" and second.step == SHORT_STEPS
    assert_run_directory(staged, SHORT_STEPS)
    assert yaml.safe_load((staged / "config.yaml").read_text())["train"]["steps"] == SHORT_STEPS
    # The first stage's rows stay; the second stage goes on from the end of the schedule
    # (progress never goes back), not from the middle of a schedule twice as long.
    assert (staged / "losses.csv").read_text().startswith(first_log)
    progress = read_loss_log(staged / "losses.csv")["progress"]
    half = SHORT_STEPS // 2
    np.testing.assert_allclose(progress[:half], np.arange(half) / half)
    np.testing.assert_array_equal(progress[half:], np.ones(SHORT_STEPS - half))


@pytest.mark.slow
def test_resume_after_exit_after_equals_one_uninterrupted_run(short_run, short_inputs, tmp_path, capsys):
    paused_dir = tmp_path / "paused"
    code = main(["fit", str(short_inputs["samples"]), "--method", "sdf", "--config", str(short_inputs["config"]),
                 "--steps", str(SHORT_STEPS), "-o", str(paused_dir), "--exit-after", "0", "-q"])
    assert code == 0
    assert f"resume with: isofield fit --resume {paused_dir}" in capsys.readouterr().out
    assert not (paused_dir / "mesh.ply").exists()
    assert load_checkpoint(paused_dir / "checkpoints" / "latest.pt").step == 0
    assert main(["fit", "--resume", str(paused_dir), "-q"]) == 0
    assert_run_directory(paused_dir, SHORT_STEPS)
    whole = module_tensors(short_run.run_dir)
    for name, tensor in module_tensors(paused_dir).items():
        assert torch.equal(tensor, whole[name]), name


@pytest.fixture
def paused_run(short_inputs, tmp_path) -> FitResult:
    """A run stopped before its first step: config, frame and the initial checkpoint only."""
    return fit(short_inputs["samples"], method="sdf", config_file=short_inputs["config"], steps=SHORT_STEPS,
               output=tmp_path / "paused", exit_after=0, progress=False)


def test_paused_run_holds_config_frame_and_checkpoint(paused_run, short_inputs):
    assert paused_run.reason == "exit-after" and paused_run.step == 0
    assert paused_run.mesh_path is None and paused_run.metrics == {}
    run_dir = paused_run.run_dir
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").step == 0
    assert not (run_dir / "mesh.ply").exists()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"] == "sdf" and config["train"]["steps"] == SHORT_STEPS
    assert config["input"] == str(short_inputs["samples"].resolve())
    assert config["options"]["batch"] == 256 and config["train"]["lr"] == 1e-4
    assert config["field"]["preset"] == "fast" and "hidden" in config["field"]  # spelled out
    # The run's frame is the one stored with the samples: DeepSDF's, the sphere at 1 / 1.03.
    frame = json.loads((run_dir / "normalization.json").read_text())
    with np.load(short_inputs["samples"]) as data:
        np.testing.assert_allclose(frame["center"], data["center"], rtol=0, atol=1e-12)
        assert frame["scale"] == pytest.approx(float(data["scale"]), rel=1e-12)
    np.testing.assert_allclose(frame["center"], USER_CENTER, atol=1e-6)
    assert frame["scale"] == pytest.approx(1.03 * USER_SCALE, rel=1e-6)


def test_resume_of_a_paused_run_keeps_one_log_row_per_step(paused_run):
    again = resume(paused_run.run_dir, exit_after=0, progress=False)
    assert again.reason == "exit-after" and again.step == 0
    log = paused_run.run_dir / "losses.csv"
    assert not log.exists() or len(read_loss_log(log)["step"]) == 0


def test_remesh_a_paused_run_in_user_coordinates(paused_run, tmp_path, capsys):
    """The initial field is the network's sphere of radius ~1 (canonical): in user coordinates
    a sphere of radius ``scale`` around USER_CENTER."""
    output = tmp_path / "init.ply"
    code = main(["mesh", str(paused_run.run_dir), "-o", str(output), "--resolution", "32"])
    assert code == 0, capsys.readouterr().err
    mesh = read_mesh(output)
    scale = Normalization.load(paused_run.run_dir / "normalization.json").scale
    np.testing.assert_allclose(mesh.centroid, USER_CENTER, atol=0.02 * scale)
    distance = np.linalg.norm(mesh.vertices - USER_CENTER, axis=1)
    assert np.median(distance) == pytest.approx(scale, rel=0.02)
    np.testing.assert_allclose(distance, scale, rtol=0.1)  # the grid's random init wrinkles it


# --------------------------------------------------------------------------------------------
# divergence
# --------------------------------------------------------------------------------------------


def assert_checkpoint_loadable_or_none(run_dir: Path) -> None:
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        for name, tensor in module_tensors(run_dir).items():
            assert torch.isfinite(tensor).all(), f"{latest} holds a non-finite {name}"


@pytest.mark.parametrize("lr, expected", [("1.0e+30", ("diverged", "no surface")),
                                          (".inf", ("lr must be a positive finite number",))])
def test_exploding_learning_rate_ends_with_one_line_error(short_inputs, tmp_path, capsys, lr, expected):
    config = tmp_path / "explode.yaml"
    config.write_text(f"options:\n  batch: 256\nextract:\n  resolution: 32\ntrain:\n  lr: {lr}\n")
    run_dir = tmp_path / "run"
    code = main(["fit", str(short_inputs["samples"]), "--method", "sdf", "--config", str(config),
                 "--steps", "3", "-o", str(run_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("isofield: error: ") and "Traceback" not in err
    assert any(phrase in err for phrase in expected)
    assert not (run_dir / "mesh.ply").exists()
    assert_checkpoint_loadable_or_none(run_dir)


def fit_with_train_option(short_inputs, tmp_path, capsys, option: str) -> tuple[int, str, Path]:
    """A 3-step CLI fit of the sphere's SDF samples with ``option`` (a YAML line) added to the
    ``train`` section: (exit code, stderr, run directory)."""
    run_dir = tmp_path / option.replace(":", "").replace(" ", "_")
    config = run_dir.with_suffix(".yaml")
    config.write_text(f"options:\n  batch: 256\nextract:\n  resolution: 32\ntrain:\n  lr: 1.0e-4\n  {option}\n")
    capsys.readouterr()
    code = main(["fit", str(short_inputs["samples"]), "--method", "sdf", "--config", str(config),
                 "--steps", "3", "-o", str(run_dir), "-q"])
    return code, capsys.readouterr().err, run_dir


def assert_refused_in_one_line(code: int, err: str, run_dir: Path, message: str) -> None:
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not run_dir.exists()      # refused before the run starts


def test_spike_rollback_from_the_config_logs_rollbacks_and_refuses_a_bad_factor(short_inputs, tmp_path,
                                                                                capsys):
    code, _, run_dir = fit_with_train_option(short_inputs, tmp_path, capsys, "spike_factor: 3.0")
    assert code == 0
    assert read_loss_log(run_dir / "losses.csv")["rollbacks"].tolist() == [0.0]
    assert_refused_in_one_line(*fit_with_train_option(short_inputs, tmp_path, capsys, "spike_factor: 1.0"),
                               "spike_factor must be a number > 1, got 1.0")


def test_a_weight_average_from_the_config_makes_the_outputs_and_a_bad_decay_is_refused(
        short_inputs, tmp_path, capsys):
    code, _, run_dir = fit_with_train_option(short_inputs, tmp_path, capsys, "ema_decay: 0.9")
    assert code == 0 and (run_dir / "mesh.ply").is_file()
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    averaged = load_field(RunDir.open(run_dir)).state_dict()
    trained = checkpoint.modules["field"]
    assert all(torch.equal(averaged[key], checkpoint.weights_to_use("field")[key]) for key in trained)
    assert not all(torch.equal(averaged[key], trained[key]) for key in trained)
    assert_refused_in_one_line(*fit_with_train_option(short_inputs, tmp_path, capsys, "ema_decay: 1.0"),
                               "config.train.ema_decay must be a number in (0, 1), got 1.0")


def test_divergence_after_a_checkpoint_keeps_it(short_inputs, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["fit", str(short_inputs["samples"]), "--method", "sdf", "--config", str(short_inputs["config"]),
                 "--steps", "12", "-o", str(run_dir), "--exit-after", "0", "-q"]) == 0
    before = (run_dir / "checkpoints" / "latest.pt").read_bytes()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["train"]["lr"] = float("inf")  # a user edits the run's config, then resumes
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    code = main(["fit", "--resume", str(run_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "diverged" in err and "is kept" in err and "latest.pt" in err
    assert (run_dir / "checkpoints" / "latest.pt").read_bytes() == before
    assert_checkpoint_loadable_or_none(run_dir)


# --------------------------------------------------------------------------------------------
# accuracy (minutes on 2 cores)
# --------------------------------------------------------------------------------------------

SDF_STEPS = 500


@pytest.mark.slow
def test_sdf_fit_recovers_the_exact_sdf_of_a_torus(tmp_path):
    """Mean |f - exact| within 0.5% of the shape's size (its bounding-sphere radius) in the band."""
    samples = write_sdf_npz(torus_mesh(), tmp_path / "torus_sdf.npz", n=20_000)
    config = write_config(tmp_path / "c.yaml", SMALL, {"options": {"batch": 1024}})
    result = fit(samples, method="sdf", config_file=config, steps=SDF_STEPS, output=tmp_path / "run",
                 progress=False)
    assert result.reason == "finished"
    normalization = Normalization.load(result.run_dir / "normalization.json")
    size = normalization.scale / 1.03  # DeepSDF's frame: the farthest vertex at 1 / 1.03
    assert size == pytest.approx(TORUS.major_radius + TORUS.minor_radius, rel=1e-3)
    points = near_surface_points(TORUS, band=CLAMP * normalization.scale, n=20_000)
    error = np.abs(learned_user_sdf(result.run_dir, points) - TORUS.sdf(points))
    assert error.mean() < 0.005 * size   # 0.22% with the cosine decay; 0.6-1.3% without
    # The extracted surface, in user coordinates, lies on the exact torus.
    vertices = read_mesh(result.mesh_path).vertices
    assert np.mean(np.abs(TORUS.sdf(vertices))) < 0.01 * size


# Measured (fast preset, batch 4096, 20k points; 50 s for both on 2 cores): watertight, one
# component, Chamfer below 1% of the diagonal. With batch 1024 the preset's lr (2e-2) is too
# noisy for these step counts.
IGR_STEPS = {"sphere": 200, "torus": 500}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sphere", "torus"])
def test_igr_fit_of_oriented_points_gives_a_watertight_mesh(tmp_path, name):
    mesh = sphere_mesh(5) if name == "sphere" else torus_mesh()
    mesh.export(tmp_path / "reference.ply")
    points = write_oriented_points(mesh, tmp_path / "points.ply", n=20_000)
    config = write_config(tmp_path / "c.yaml", SMALL, {"options": {"batch": 4096, "far_pool": 50_000}})
    result = fit(points, method="igr", config_file=config, steps=IGR_STEPS[name], output=tmp_path / "run",
                 reference=tmp_path / "reference.ply", progress=False)
    fitted = read_mesh(result.mesh_path)
    assert fitted.is_watertight
    merged = trimesh.Trimesh(fitted.vertices, fitted.faces)  # merges duplicate vertices
    assert len(merged.split(only_watertight=False)) == 1, "spurious surfaces"
    assert merged.euler_number == (2 if name == "sphere" else 0)  # genus 0 / genus 1
    diagonal = np.linalg.norm(mesh.extents)
    assert result.metrics["chamfer_l1"] < 0.01 * diagonal
    assert result.metrics["chamfer_l1_percent_of_diagonal"] < 1.0
    # In the user's coordinates: the vertices lie on the exact (off-centre, scaled) surface.
    shape = SPHERE if name == "sphere" else TORUS
    assert np.mean(np.abs(shape.sdf(fitted.vertices))) < 0.01 * diagonal


# --------------------------------------------------------------------------------------------
# raw data: triangle soups and points without normals (sal, sald, digs, igr's siren preset)
# --------------------------------------------------------------------------------------------

# the fast preset's outside guard is for its grid field; this MLP extrapolates as its initial sphere
RAW_SMALL = merge(SMALL, {"field": {"preset": "paper", "hidden": 64, "depth": 3, "skip": []},
                          "options": {"batch": 1024, "pool": 50_000, "surface_points": 20_000,
                                      "outside_weight": 0.0},
                          "train": {"lr": 3e-3}})


@pytest.mark.parametrize("method", ["sal", "sald"])
def test_sign_agnostic_fit_of_a_triangle_soup_gives_the_closed_sphere(tmp_path, method):
    """A sphere whose faces are shuffled, a third flipped, some duplicated and two holes cut:
    the fit is a watertight mesh on the exact sphere, in the user's coordinates."""
    from isofield.geometry.soup import make_triangle_soup

    soup = make_triangle_soup(sphere_mesh(4), holes=2, hole_radius=0.05, seed=0)
    soup.export(tmp_path / "soup.obj")
    sphere_mesh(5).export(tmp_path / "reference.ply")
    config = write_config(tmp_path / "c.yaml", RAW_SMALL)
    result = fit(tmp_path / "soup.obj", method=method, config_file=config, steps=150,
                 output=tmp_path / "run", reference=tmp_path / "reference.ply", progress=False)
    fitted = read_mesh(result.mesh_path)
    assert fitted.is_watertight
    assert np.mean(np.abs(SPHERE.sdf(fitted.vertices))) < 0.01 * USER_SCALE
    assert result.metrics["normal_consistency"] > 0.99


def test_digs_fit_of_points_without_normals_and_metrics_against_them(tmp_path):
    cloud = sample_surface(sphere_mesh(5), 5000, seed=0)
    np.savetxt(tmp_path / "points.xyz", cloud.points)                # no normals
    config = write_config(tmp_path / "c.yaml", SMALL, {
        "extract": {"padding": 0.2},   # this short run's surface bulges past the points' sphere
        "field": {"hidden": 64, "depth": 2},
        "options": {"batch": 512, "divergence_schedule": {"name": "anneal", "start": 20, "end": 60}},
        "train": {"lr": 5e-4}})
    result = fit(tmp_path / "points.xyz", method="digs", config_file=config, steps=300,
                 output=tmp_path / "run", progress=False)
    log = read_loss_log(result.run_dir / "losses.csv")
    assert log["divergence"][0] > 0 and log["divergence"][-1] == 0.0   # annealed away
    assert result.metrics["protocol"]["input"] == "mesh against points"   # the input is the reference
    assert result.metrics["normal_consistency"] is None                  # no reference normals
    # DiGS first bends the initial sphere to lower its divergence, then fits the points again:
    # measured 2.6% of the radius after 300 steps (one component, watertight).
    assert result.metrics["chamfer_l1"] < 0.04 * USER_SCALE
    fitted = read_mesh(result.mesh_path)
    assert fitted.is_watertight
    assert len(trimesh.Trimesh(fitted.vertices, fitted.faces).split(only_watertight=False)) == 1


def test_igr_siren_preset_fits_oriented_points(tmp_path):
    points = write_oriented_points(sphere_mesh(5), tmp_path / "points.ply", n=5000)
    config = write_config(tmp_path / "c.yaml", SMALL, {"field": {"hidden": 64, "depth": 3},
                                                       "options": {"batch": 1024}})
    result = fit(points, method="igr", preset="siren", config_file=config, steps=600,
                 output=tmp_path / "run", progress=False)
    stored = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert stored["field"]["type"] == "siren" and stored["options"]["normal_kind"] == "cosine"
    assert set(read_loss_log(result.run_dir / "losses.csv")) >= {"off_surface", "normal", "eikonal"}
    # Near the data the field is the sphere's SDF. (SIREN's recipe does not constrain the far
    # field's sign, so a short run may leave surfaces near the box's edges: not tested here.)
    # Measured after 600 steps at the recipe's lr 1e-4, seeds 0-3: 1.3-2.2% of the radius on
    # average (after 300 steps the recipe's loss still spikes: docs/fit-ablations.md).
    on_sphere = sample_surface(sphere_mesh(5), 2000, seed=3).points
    assert np.mean(np.abs(learned_user_sdf(result.run_dir, on_sphere))) < 0.05 * USER_SCALE
    outside = USER_CENTER + 1.1 * (on_sphere - USER_CENTER)
    assert np.mean(learned_user_sdf(result.run_dir, outside) > 0) > 0.95      # measured 0.975
