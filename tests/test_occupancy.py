"""Occupancy networks end to end on spheres: config, training (ONet, ConvONet, VAE), resume,
MISE meshes, the ONet evaluation protocol, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from isofield.cli import main
from isofield.data.datasets import ShapeRef, write_split
from isofield.data.formats import write_onet_pointcloud, write_onet_points
from isofield.data.onet import VIEWS_FOLDER, OccupancyDataDir
from isofield.data.views import render_views, write_views
from isofield.errors import InputError
from isofield.geometry.io import read_mesh, write_points, PointCloud
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import OccupancySamples, SurfaceSamples
from isofield.occupancy import load_occupancy_model, resolve_config, resume_occupancy_network, train_occupancy_network
from isofield.occupancy.config import METHODS, kl_weight_at
from isofield.train.schedules import StepInfo
from isofield.occupancy.outputs import METHOD_TITLES, TILE
from isofield.evaluation import evaluate_mesh_folder
from isofield.occupancy.evaluate import evaluate_occupancy
from isofield.occupancy.latents import posterior_means
from isofield.occupancy.shapes import fixed_input, load_shapes
from isofield.occupancy.train import BATCH_NORM_BATCHES
from isofield.train.checkpoint import load_checkpoint

RADII = (0.2, 0.26, 0.32, 0.38, 0.44)
TEST_RADIUS = 0.29


def _sphere_shape(folder: Path, radius: float, seed: int) -> None:
    """An ONet-layout shape folder of a sphere of ``radius`` (canonical frame), user frame = x2 + 1,
    with two 32-pixel views."""
    rng = np.random.default_rng(seed)
    frame = Normalization(np.ones(3), 2.0)
    uniform = rng.uniform(-0.55, 0.55, (4000, 3)).astype(np.float32)
    directions = rng.normal(size=(4000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    near = (directions * radius + rng.normal(0, 0.02, (4000, 1)) * directions).astype(np.float32)
    for name, points in (("points.npz", np.concatenate([uniform, near])), ("points_iou.npz", uniform)):
        inside = np.linalg.norm(points, axis=1) < radius
        write_onet_points(OccupancySamples(points, inside), frame, folder / name)
    surface = rng.normal(size=(12000, 3))
    surface /= np.linalg.norm(surface, axis=1, keepdims=True)
    write_onet_pointcloud(SurfaceSamples((surface * radius).astype(np.float32), surface.astype(np.float32)),
                          frame, folder / "pointcloud.npz")
    write_views(folder / VIEWS_FOLDER, *render_views(trimesh.creation.icosphere(2, radius), 2, resolution=32))


@pytest.fixture(scope="module")
def spheres(tmp_path_factory) -> Path:
    """ONet-layout root ``spheres/balls/<id>/`` with train.json (5 radii) and test.json (1)."""
    root = tmp_path_factory.mktemp("data") / "spheres"
    train = [ShapeRef("spheres", "balls", f"ball_{index}") for index in range(len(RADII))]
    test = [ShapeRef("spheres", "balls", "held_out")]
    for seed, (ref, radius) in enumerate(zip(train + test, RADII + (TEST_RADIUS,))):
        _sphere_shape(root / "balls" / ref.shape_id, radius, seed)
    write_split(root / "train.json", train)
    write_split(root / "test.json", test)
    return root


def _config(root: Path, **changes) -> dict:
    config = {"method": "onet", "data": str(root), "split": str(root / "train.json"),
              "shapes_per_batch": 5, "points_per_step": 512, "input": {"points": 200},
              "encoder": {"condition_dim": 32, "hidden": 32}, "decoder": {"hidden": 32, "blocks": 2},
              "extract": {"resolution": 32, "coarse_resolution": 8, "threshold": 0.5},
              "train": {"steps": 300, "lr": 3e-3, "log_every": 50, "checkpoint_every": 100,
                        "schedule": {"name": "step", "every": 100, "factor": 0.5}}}
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    return config


def test_config_rejects_unknown_keys_and_mismatched_inputs(spheres):
    with pytest.raises(InputError, match="decoder: unknown key .width."):
        resolve_config([_config(spheres, decoder={"width": 3})])
    with pytest.raises(InputError, match="convonet encodes point clouds"):
        resolve_config([_config(spheres, method="convonet", input={"kind": "image"},
                                encoder={"kind": "image"})])
    with pytest.raises(InputError, match="needs latent_dim > 0"):
        resolve_config([_config(spheres, input={"kind": "none"})])
    with pytest.raises(InputError, match="divisible by 2"):
        resolve_config([_config(spheres, method="convonet", features={"plane_resolution": 18})])
    assert resolve_config([_config(spheres, preset="paper")]).encoder.condition_dim == 32
    assert set(METHOD_TITLES) == set(METHODS)  # every method's report has its own title


def test_kl_weight_rises_linearly_over_the_warmup(spheres):
    config = resolve_config([_config(spheres, input={"kind": "none"}, latent_dim=2, kl_weight=0.5, kl_warmup=4)])
    assert [kl_weight_at(config, StepInfo(step, 0.0)) for step in range(6)] == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5])
    assert kl_weight_at(resolve_config([_config(spheres, kl_weight=0.3, kl_warmup=0)]), StepInfo(0, 0.0)) == 0.3
    by_progress = resolve_config([_config(spheres, input={"kind": "none"}, latent_dim=2, kl_weight=0.5,
                                          kl_warmup=0.25, kl_warmup_unit="progress")])
    assert [kl_weight_at(by_progress, StepInfo(0, p)) for p in (0.0, 0.125, 0.25, 0.9)] == [0.0, 0.25, 0.5, 0.5]
    with pytest.raises(InputError, match="kl_warmup is a fraction of the run"):
        resolve_config([_config(spheres, latent_dim=2, kl_warmup=1500, kl_warmup_unit="progress")])
    with pytest.raises(InputError, match="kl_warmup must be at least 0"):
        resolve_config([_config(spheres, kl_warmup=-1)])


@pytest.fixture(scope="module")
def onet_run(spheres, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "onet"
    torch.manual_seed(0)
    result = train_occupancy_network(_config(spheres), run, progress=False)
    assert result.step == 300
    return run


def test_onet_learns_spheres_and_meshes_the_held_out_radius(onet_run, spheres):
    losses = np.genfromtxt(onet_run / "losses.csv", delimiter=",", names=True)
    assert losses["accuracy"][-1] > 0.9 > 0.6 > losses["accuracy"][0]
    evaluation = evaluate_occupancy(onet_run, spheres / "test.json", progress=False)
    row = evaluation.record["shapes"][0]
    # a 32-cell grid over the padded cube: IoU ~0.9 and Chamfer-L1 ~ a cell's tenth are a good fit
    assert row["iou"] > 0.85
    assert row["chamfer_l1"] < 0.012
    assert row["normal_consistency"] > 0.97
    # the stored batch-norm statistics are the average over the final calibration batches
    network = load_checkpoint(onet_run / "checkpoints" / "latest.pt").modules["network"]
    tracked = {int(value) for name, value in network.items() if name.endswith("num_batches_tracked")}
    assert tracked == {BATCH_NORM_BATCHES}
    mesh_path = evaluation.directory / "meshes" / "spheres" / "balls" / "held_out.ply"
    assert mesh_path.is_file()
    for name in ("loss.png", "reconstructions.png", "report.html"):
        assert (onet_run / name).is_file()


def test_mesh_folder_scores_the_same_meshes_alike(onet_run, spheres):
    """User-frame meshes of another method go through the stored frame to the same numbers."""
    first = evaluate_occupancy(onet_run, spheres / "test.json", progress=False)
    again = evaluate_mesh_folder(first.directory / "meshes", spheres, spheres / "test.json",
                                 first.directory / "rescored", progress=False)
    for key in ("iou", "chamfer_l1", "normal_consistency", "f_score"):
        assert again.record["shapes"][0][key] == pytest.approx(first.record["shapes"][0][key], abs=2e-3)


def test_complete_meshes_a_users_cloud_in_its_coordinates(onet_run, spheres, tmp_path, capsys):
    """``isofield complete`` encodes a cloud given in user coordinates with the frame of a data
    shape and writes the mesh there: the held-out sphere, radius 0.29 x 2 about (1, 1, 1)."""
    directions = np.random.default_rng(5).normal(size=(3000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    scan = tmp_path / "scan.ply"
    write_points(PointCloud(1.0 + 2.0 * TEST_RADIUS * directions), scan)
    out = tmp_path / "completed.ply"
    assert main(["complete", str(onet_run), str(scan), "--frame", "held_out", "-o", str(out)]) == 0
    assert "user coordinates" in capsys.readouterr().out
    radii = np.linalg.norm(read_mesh(out).vertices - 1.0, axis=1)
    assert abs(np.median(radii) - 2.0 * TEST_RADIUS) < 0.05 and radii.std() < 0.03
    # without --frame the cloud's bounding box is fitted to the unit cube, as preprocessing does
    _, frame = load_occupancy_model(onet_run).encode_points(1.0 + 2.0 * TEST_RADIUS * directions)
    assert frame.scale == pytest.approx(4.0 * TEST_RADIUS, rel=0.01) and np.allclose(frame.center, 1.0, atol=0.01)
    assert main(["complete", str(onet_run), str(scan), "-o", str(out)]) == 2  # no --overwrite
    assert main(["complete", str(onet_run), str(scan), "-o", str(tmp_path / "x.ply"), "--steps", "5"]) == 2
    assert "--steps: not used" in capsys.readouterr().err
    picture = spheres / "balls" / "held_out" / VIEWS_FOLDER / "000.png"
    assert main(["complete", str(onet_run), str(picture), "-o", str(tmp_path / "x.ply")]) == 2
    assert "reads 'pointcloud' inputs, not images" in capsys.readouterr().err


def test_single_image_onet_reads_the_radius_from_a_picture(spheres, tmp_path, capsys):
    torch.manual_seed(0)
    run = tmp_path / "image"
    train_occupancy_network(_config(spheres, input={"kind": "image", "image_size": 32},
                                    encoder={"kind": "image", "hidden": 8}), run, progress=False)
    row = evaluate_occupancy(run, spheres / "test.json", progress=False).record["shapes"][0]
    assert row["iou"] > 0.8
    picture = spheres / "balls" / "held_out" / VIEWS_FOLDER / "001.png"
    out = tmp_path / "from_picture.ply"
    assert main(["complete", str(run), str(picture), "-o", str(out)]) == 0
    assert "canonical unit-cube frame" in capsys.readouterr().out
    radii = np.linalg.norm(read_mesh(out).vertices, axis=1)
    assert abs(np.median(radii) - TEST_RADIUS) < 0.04


def test_threshold_is_chosen_on_validation_shapes(onet_run, spheres):
    evaluation = evaluate_occupancy(onet_run, spheres / "test.json", validation=spheres / "train.json",
                                    progress=False, out_dir=onet_run / "evaluation" / "validated")
    choice = evaluation.record["settings"]["threshold_choice"]
    best = int(np.argmax(choice["mean_iou"]))
    assert evaluation.record["settings"]["threshold"] == pytest.approx(choice["candidates"][best])
    assert max(choice["mean_iou"]) > 0.85


def test_resume_after_a_pause_equals_an_uninterrupted_run(spheres, tmp_path, monkeypatch, slow_steps):
    config = _config(spheres, train={"steps": 30, "log_every": 10, "checkpoint_every": 20})
    uninterrupted = train_occupancy_network(config, tmp_path / "whole", progress=False)
    slow_steps(0.1)              # a fake clock: the pause comes mid-run however fast the machine
    paused = train_occupancy_network(config, tmp_path / "paused", progress=False, exit_after=1.05)
    monkeypatch.undo()           # the resumed run keeps the real clock
    assert paused.reason == "exit-after" and 5 <= paused.step <= 15
    resumed = resume_occupancy_network(tmp_path / "paused", progress=False)
    assert resumed.step == uninterrupted.step == 30
    first, second = (load_checkpoint(run / "checkpoints" / "latest.pt").modules["network"]
                     for run in (tmp_path / "whole", tmp_path / "paused"))
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


@pytest.mark.parametrize("method, tolerance", [("convonet", 1e-5),
                                               pytest.param("onet", None, marks=pytest.mark.slow)])
def test_two_processes_train_as_one(spheres, tmp_path, torchrun, method, tolerance):
    """ConvONet has no batch statistics: two processes match one. ONet's conditional batch norm
    normalises each process's shard on its own, so there only the run itself is checked."""
    config = tmp_path / "occupancy.yaml"
    small = {"encoder": {"hidden": 16}, "decoder": {"hidden": 16},
             "features": {"plane_resolution": 8, "feature_dim": 8, "unet_depth": 2, "unet_base": 8}}
    config.write_text(json.dumps(_config(spheres, method=method, shapes_per_batch=4,
                                         train={"steps": 5, "log_every": 1}, **small)))
    runs = {}
    for processes in (1, 2):
        runs[processes] = tmp_path / f"run{processes}"
        torchrun(["-m", "isofield.cli", "train", str(config), "-o", str(runs[processes]), "-q"], processes)
    first, second = (load_checkpoint(run / "checkpoints" / "latest.pt") for run in runs.values())
    assert first.step == second.step == 5
    if tolerance is not None:
        for name, value in first.modules["network"].items():
            assert torch.allclose(value, second.modules["network"][name], atol=tolerance), name
    else:
        assert (runs[2] / "report.html").is_file()


def test_convonet_trains_on_planes(spheres, tmp_path):
    torch.manual_seed(0)
    config = _config(spheres, method="convonet", encoder={"hidden": 16}, decoder={"hidden": 16},
                     features={"plane_resolution": 16, "feature_dim": 16, "unet_depth": 2, "unet_base": 8},
                     train={"steps": 150})
    run = tmp_path / "convonet"
    train_occupancy_network(config, run, progress=False)
    losses = np.genfromtxt(run / "losses.csv", delimiter=",", names=True)
    assert losses["accuracy"][-1] > 0.9
    model = load_occupancy_model(run)
    assert set(model.network.encoder(torch.zeros(1, 10, 3))) == {"xy", "xz", "yz"}


def test_vae_generates_from_the_prior(spheres, tmp_path, capsys):
    torch.manual_seed(0)
    run = tmp_path / "vae"
    train_occupancy_network(_config(spheres, input={"kind": "none"}, latent_dim=2, kl_warmup=0,
                                    train={"steps": 600, "log_every": 100, "schedule": {"every": 10_000, "unit": "steps"}}),
                            run, progress=False)
    assert (run / "generated.png").is_file() and (run / "interpolation.png").is_file()
    # the interpolation joins the two spheres the codes hold farthest apart: smallest and largest
    assert "training shapes #0 and #4" in (run / "report.html").read_text()
    model = load_occupancy_model(run)
    shapes = load_shapes(OccupancyDataDir(spheres), [shape.ref for shape in model.shapes], model.config.input, 0)
    means = posterior_means(model, shapes)
    assert np.allclose(model.latent_fit.means[0], means.mean(0).numpy(), atol=1e-5)
    assert (run / "generated_fitted.png").is_file()
    fitted = model.sample_latents(200, seed=1, source="fitted")[:, 0]
    assert fitted.shape == (200, 2)          # draws stay among the codes, unlike the prior's
    assert float((fitted.mean(0) - means.mean(0)).norm()) < 0.3 * float(means.std(0).norm()) + 0.05
    assert main(["generate", str(run), "-n", "3", "-o", str(tmp_path / "fitted")]) == 0   # the default
    assert "3 of 3 samples meshed from z ~ the Gaussian fitted" in capsys.readouterr().out
    with Image.open(run / "reconstructions.png") as picture:  # no blank input column without input
        assert picture.width == 2 * TILE[1]
    assert main(["generate", str(run), "-n", "3", "--latent", "prior", "-o", str(tmp_path / "samples")]) == 0
    # the prior's tails may decode to nothing; most draws must give a sphere
    assert re.search(r"[23] of 3 samples meshed from z ~ the prior", capsys.readouterr().out)
    assert main(["generate", str(run), "-n", "3", "-o", str(tmp_path / "samples")]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize("method, options", [
    ("onet", {}), ("sald-vae", {"latent_dim": 4, "encoder": {"kind": "pointnet"}, "sign_agnostic": {"pool": 500}})])
def test_cli_trains_and_evaluates(spheres, tmp_path, capsys, method, options):
    config_path = tmp_path / "occupancy.yaml"
    config_path.write_text(json.dumps(_config(spheres, method=method, train={"steps": 20}, **options)))
    assert main(["train", str(config_path), "-o", str(tmp_path / "run"), "-q"]) == 0
    assert main(["evaluate", str(tmp_path / "run"), "--split", str(spheres / "test.json"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "iou" in out and "scores.csv" in out
    assert main(["evaluate", str(tmp_path / "run"), "--split", str(spheres / "test.json"), "--steps", "3"]) == 2
    assert "--steps: not used" in capsys.readouterr().err


def test_sald_vae_learns_signed_distances_of_spheres_from_unoriented_points(spheres, tmp_path):
    torch.manual_seed(0)
    run = tmp_path / "sald"
    config = _config(spheres, method="sald-vae", latent_dim=8, encoder={"kind": "pointnet"},
                     decoder={"hidden": 64, "blocks": 3},
                     sign_agnostic={"pool": 4000, "radius": 0.3}, train={"steps": 300})
    train_occupancy_network(config, run, progress=False)
    model = load_occupancy_model(run)
    evaluation = evaluate_occupancy(run, spheres / "test.json", progress=False)
    row = evaluation.record["shapes"][0]
    assert row["iou"] > 0.8 and row["chamfer_l1"] < 0.02
    assert evaluation.record["settings"]["threshold"] is None
    with pytest.raises(InputError, match="zero level of a signed distance"):
        evaluate_occupancy(run, spheres / "test.json", threshold=0.5, progress=False)
    # the field is signed: negative at the centre of the held-out sphere, positive outside
    data = OccupancyDataDir(spheres)
    shapes = load_shapes(data, data.shapes(spheres / "test.json"), model.config.input, 0)
    condition = model.condition(fixed_input(shapes, 0, model.config.input, seed=0))
    values = model.logits(torch.tensor([[[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]]), condition)[0]
    assert values[0] < -0.1 and values[1] > 0.1
