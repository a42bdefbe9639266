"""ShapeGF: score matching against an analytic density, Langevin sampling onto a known surface,
the networks, the distance estimate and its mesh, training runs, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from isofield.cli import main
from isofield.config import from_dict
from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.errors import InputError
from isofield.geometry.io import read_points
from isofield.losses import score_matching_errors
from isofield.nn.pointnet import PointNetEncoder
from isofield.nn.score import ScoreNetwork
from isofield.shapegf import (
    GradientFieldModel,
    load_gradient_field,
    resolve_config,
    resume_gradient_field,
    sigma_levels,
    train_gradient_field,
)
from isofield.shapegf.clouds import draw_points
from isofield.shapegf.config import NoiseConfig, ShapeGFConfig
from isofield.shapegf.langevin import annealed_langevin
from isofield.shapegf.task import GradientFieldTask
from isofield.train.checkpoint import load_checkpoint
from isofield.train.logging import read_loss_log

RADIUS = 0.5


def sphere_score(points: torch.Tensor, sigma: float | torch.Tensor, radius: float = RADIUS) -> torch.Tensor:
    """∇ log of (the uniform density on a sphere blurred by N(0, σ² I)) at points (..., 3).

    q(ρ) ∝ (1/ρ) [exp(−(ρ−R)²/2σ²) − exp(−(ρ+R)²/2σ²)], so d log q / dρ =
    −1/ρ + (−(ρ−R) + (ρ+R) e^{−2Rρ/σ²}) / (σ² (1 − e^{−2Rρ/σ²})).
    """
    sigma = torch.as_tensor(sigma, dtype=points.dtype)
    while sigma.ndim < points.ndim:
        sigma = sigma[..., None]
    rho = points.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    decay = torch.exp(-2 * radius * rho / sigma ** 2)
    radial = -1 / rho + (-(rho - radius) + (rho + radius) * decay) / (sigma ** 2 * (1 - decay))
    return radial * points / rho


def sphere_points(count: int, seed: int, radius: float = RADIUS) -> torch.Tensor:
    direction = torch.randn(count, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return radius * direction / direction.norm(dim=1, keepdim=True)


class AnalyticSphere(nn.Module):
    """A stand-in score network: the exact score of a blurred sphere, whatever the code."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, points, sigma, latent):
        return sphere_score(points.double(), sigma).float()


def analytic_model(**config) -> GradientFieldModel:
    resolved = from_dict(ShapeGFConfig, {"data": "unused", **config})
    return GradientFieldModel(PointNetEncoder(4, (8,), ()), AnalyticSphere(), resolved, [], Path("."), 0)


# ---------------------------------------------------------------------- score matching, Langevin


def test_the_analytic_score_matches_finite_differences_of_its_log_density():
    sigma, x = 0.2, torch.tensor([[0.1, 0.2, 0.3], [0.0, 0.7, 0.1]], dtype=torch.float64)

    def log_q(p):
        rho = p.norm(dim=-1)
        return (-torch.log(rho) + torch.log(torch.exp(-(rho - RADIUS) ** 2 / (2 * sigma ** 2))
                                            - torch.exp(-(rho + RADIUS) ** 2 / (2 * sigma ** 2))))
    step = 1e-6
    numeric = torch.stack([(log_q(x + step * e) - log_q(x - step * e)) / (2 * step)
                           for e in torch.eye(3, dtype=torch.float64)], dim=-1)
    assert torch.allclose(sphere_score(x, sigma), numeric, rtol=1e-5)


@pytest.mark.parametrize("sigma", [0.05, 0.3])
def test_denoising_score_matching_is_smallest_at_the_true_score_with_the_predicted_value(sigma):
    clean = sphere_points(200_000, seed=1)[None]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    noisy, level = clean + sigma * noise, torch.tensor([sigma], dtype=torch.float64)
    true = sphere_score(noisy, sigma)
    loss = score_matching_errors(true, noise, level).item()
    # at the optimum E ½‖σ s + ε‖² = ½ (D − σ² E‖s‖²), since E[ε | x̃] = −σ s(x̃)
    expected = 0.5 * (3 - sigma ** 2 * true.square().sum(-1).mean().item())
    assert loss == pytest.approx(expected, abs=0.01)
    for wrong in (0.9 * true, 1.1 * true, true + 0.2 / sigma):
        assert score_matching_errors(wrong, noise, level).item() > loss + 1e-3


def score_errors(score: nn.Module, code: torch.Tensor, sigmas: list[float]) -> list[float]:
    """Median relative error of the learned score against the exact one, per level, at points
    blurred from the sphere by that level's noise."""
    errors = []
    for sigma in sigmas:
        radial = 1 + sigma / RADIUS * torch.randn(2000, 1, generator=torch.Generator().manual_seed(5))
        x = sphere_points(2000, seed=4).float() * radial
        learned = score(x[None], torch.tensor([sigma]), code)[0]
        true = sphere_score(x.double(), sigma).float()
        errors.append(((learned - true).norm(dim=1) / true.norm(dim=1).clamp_min(1 / sigma)).median().item())
    return errors


def test_training_on_a_sphere_learns_its_score_at_every_level():
    torch.manual_seed(0)
    cloud = sphere_points(2048, seed=3).float()[None]
    sigmas = [0.3, 0.1]
    encoder, score = PointNetEncoder(4, (16,), ()), ScoreNetwork(4, hidden=64, blocks=2)
    task = GradientFieldTask(encoder, score, cloud, sigmas, shapes_per_batch=1, input_points=64,
                             target_points=1024, lr=2e-3)
    before = score_errors(score, encoder(cloud[:, :64]), sigmas)
    optimizer = torch.optim.Adam([p for group in task.param_groups() for p in group.params], lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(500):
        optimizer.zero_grad()
        task.loss(step, generator)["total"].backward()
        optimizer.step()
    after = score_errors(score, encoder(cloud[:, :64]), sigmas)
    # measured: 0.65 and 0.71 before, 0.12 and 0.23 after 500 steps
    assert min(before) > 0.5
    assert after[0] < 0.2 and after[1] < 0.35


def test_the_logged_halves_of_the_levels_average_to_the_total():
    torch.manual_seed(0)
    clouds = sphere_points(2 * 500, seed=6).float().reshape(2, 500, 3)
    task = GradientFieldTask(PointNetEncoder(4, (8,), ()), ScoreNetwork(4, hidden=16, blocks=1),
                             clouds, [1.0, 0.3, 0.1, 0.03], shapes_per_batch=2, input_points=50,
                             target_points=60, lr=1e-3)
    for step in range(20):
        terms = {k: v.item() for k, v in task.loss(step, torch.Generator().manual_seed(step)).items()}
        # total = (n_fine · fine + (B − n_fine) · coarse) / B for a whole number n_fine of shapes
        if abs(terms["fine_levels"] - terms["coarse_levels"]) > 1e-3:
            n_fine = 2 * (terms["total"] - terms["coarse_levels"]) / (terms["fine_levels"] - terms["coarse_levels"])
            assert n_fine == pytest.approx(round(n_fine), abs=1e-3) and round(n_fine) in (0, 1, 2)
        else:   # one half had no shape: it logs 0 and the other half is the total
            assert terms["total"] == pytest.approx(max(terms["fine_levels"], terms["coarse_levels"]), rel=1e-5)


def test_annealed_langevin_with_the_exact_score_puts_the_points_on_the_sphere():
    sigmas = sigma_levels(NoiseConfig(sigma_max=1.0, sigma_min=0.01, levels=10))
    start = torch.randn(1, 4000, 3, generator=torch.Generator().manual_seed(0))
    result = annealed_langevin(lambda x, s: sphere_score(x, s), start, sigmas, steps_per_level=10,
                               step_ratio=0.2, denoise=True, generator=torch.Generator().manual_seed(1),
                               record=True)
    radius = result.points[0].norm(dim=1)
    assert abs(radius.mean().item() - RADIUS) < 0.003
    assert radius.std().item() < 0.006
    # spread over the whole sphere, not collapsed to a part of it
    assert result.points[0].mean(dim=0).norm().item() < 0.03
    assert len(result.trajectory) == len(sigmas) + 2
    spread = [(step[0].norm(dim=1) - RADIUS).abs().mean().item() for step in result.trajectory]
    assert spread[0] > 0.5 > spread[5] > spread[-1]           # the trajectory closes in


def test_langevin_is_repeatable_for_a_seed():
    model = analytic_model()
    codes = torch.zeros(2, 4)
    first, again = (model.sample(codes, 300, seed=7).points for _ in range(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, model.sample(codes, 300, seed=8).points)


def test_the_distance_estimate_of_the_exact_score_is_the_distance_to_the_sphere():
    model = analytic_model(surface={"reach": 2.0})
    points = np.random.default_rng(0).uniform(-1.1, 1.1, (5000, 3))
    surface = sphere_points(20_000, seed=1).numpy()
    estimate = model.distance(torch.zeros(4), points, surface)
    truth = np.abs(np.linalg.norm(points, axis=1) - RADIUS)
    error = np.abs(estimate - truth)
    # measured: 2e-4 within 0.02 of the surface (σ_min's reach), 1.7e-3 within the band of 0.05
    # (the curvature term σ²/ρ of coarser levels); beyond it the distance to the 20k points
    assert error[truth < 0.02].max() < 5e-4 and error[truth < 0.045].max() < 3e-3
    assert error.max() < 0.01
    # the centre, where the blurred density is stationary, is not taken for the surface
    assert model.distance(torch.zeros(4), np.zeros((1, 3)), surface)[0] > 0.49


@pytest.mark.parametrize("level, resolution", [(0.05, 48), (0.02, 96)])
def test_the_mesh_from_the_field_is_a_shell_around_the_surface(level, resolution):
    model = analytic_model(surface={"level": level, "reach": 2.0, "resolution": resolution,
                                    "gate_points": 20_000})
    mesh = model.surface_mesh(torch.zeros(4))
    parts = sorted(mesh.split(only_watertight=False), key=lambda part: np.ptp(part.vertices[:, 0]))
    assert mesh.is_watertight and len(parts) == 2
    inner, outer = (np.linalg.norm(part.vertices, axis=1) for part in parts)
    # measured: within 1e-3 of R - level and R + level
    assert abs(inner.mean() - (RADIUS - level)) < 0.003 and abs(outer.mean() - (RADIUS + level)) < 0.003


# ---------------------------------------------------------------------- networks


def test_the_encoder_ignores_the_order_of_the_points():
    torch.manual_seed(0)
    encoder = PointNetEncoder(8, (16, 32), (16,))
    points = torch.randn(3, 50, 3)
    shuffled = points[:, torch.randperm(50)]
    assert torch.allclose(encoder(points), encoder(shuffled), atol=1e-6)
    assert encoder(points).shape == (3, 8)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        encoder(points[0])


def test_the_score_network_scales_with_one_over_sigma_and_depends_on_the_code():
    torch.manual_seed(0)
    score = ScoreNetwork(5, hidden=32, blocks=2)
    points, codes = torch.randn(2, 10, 3), torch.randn(2, 5)
    out = score(points, torch.tensor([0.1, 0.1]), codes)
    assert out.shape == (2, 10, 3)
    assert not torch.allclose(out[0], score(points[:1], torch.tensor([0.1]), codes[1:])[0])
    # blocks start as the identity: the output is linear in the input layer's features
    assert torch.isfinite(out).all()


def test_draw_points_takes_distinct_points_of_each_cloud():
    clouds = torch.arange(2 * 20 * 3, dtype=torch.float32).reshape(2, 20, 3)
    drawn = draw_points(clouds, 20, torch.Generator().manual_seed(0))
    for cloud, subset in zip(clouds, drawn):
        assert sorted(subset[:, 0].tolist()) == sorted(cloud[:, 0].tolist())


# ---------------------------------------------------------------------- training runs


CHAIRS = 4


@pytest.fixture(scope="module")
def chairs(tmp_path_factory) -> Path:
    """A data directory of 4 procedural chairs (2,000 surface points each)."""
    base = tmp_path_factory.mktemp("chairs")
    write_family("chairs", CHAIRS, base / "meshes", resolution=40)
    preprocess(base / "meshes", base / "data", samples=2_000, surface_points=2_000, progress=False)
    return base / "data"


def tiny_config(data: Path, **overrides) -> dict:
    config = {"method": "shapegf", "data": str(data), "latent_dim": 8, "points_per_shape": 1000,
              "input_points": 128, "target_points": 256, "shapes_per_batch": CHAIRS,
              "noise": {"levels": 4, "sigma_min": 0.02},
              "encoder": {"widths": [16, 32], "head": [16]}, "score": {"hidden": 32, "blocks": 2},
              "langevin": {"steps_per_level": 3},
              "latent": {"kind": "gmm", "options": {"components": 1}},
              "surface": {"resolution": 24},
              "train": {"steps": 40, "lr": 3e-3, "log_every": 5, "checkpoint_every": 20}}
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def trained(chairs, tmp_path_factory):
    run = tmp_path_factory.mktemp("gf") / "run"
    return train_gradient_field(tiny_config(chairs), run, progress=False), run


def test_a_run_trains_and_writes_codes_latent_model_pictures_and_report(trained):
    result, run = trained
    assert result.reason == "finished" and result.step == 40
    log = read_loss_log(run / "losses.csv")
    assert np.mean(log["total"][-3:]) < log["total"][0]
    assert set(log) >= {"fine_levels", "coarse_levels"}
    assert torch.load(run / "codes.pt", weights_only=True).shape == (CHAIRS, 8)
    for name in ("loss", "reconstructions", "trajectory", "generated", "surface"):
        image = np.asarray(Image.open(run / f"{name}.png"))
        assert image.std() > 10, name                      # not blank
    assert (run / "surface.ply").stat().st_size > 0 and "shapegf" in (run / "report.html").read_text()
    model = load_gradient_field(run)
    assert model.step == 40 and model.latent_model is not None
    assert model.generate_codes(3, seed=0).shape == (3, 8)


def test_resume_after_a_pause_equals_an_uninterrupted_run(chairs, trained, tmp_path):
    _, uninterrupted = trained
    paused = train_gradient_field(tiny_config(chairs), tmp_path / "run", exit_after=0.0, progress=False)
    assert paused.reason == "exit-after" and not (tmp_path / "run" / "codes.pt").exists()
    resumed = resume_gradient_field(tmp_path / "run", progress=False)
    assert resumed.step == 40
    first, second = (load_checkpoint(r / "checkpoints" / "latest.pt") for r in (uninterrupted, tmp_path / "run"))
    for module in ("encoder", "score"):
        for name, value in first.modules[module].items():
            assert torch.equal(value, second.modules[module][name]), (module, name)


@pytest.mark.parametrize("layer, message", [
    ({"noise": {"sigma_min": 2.0}}, "sigma_min"),
    ({"input_points": 5000}, "points_per_shape"),
    ({"encoder": {"widths": []}}, "encoder.widths"),
    ({"langevin": {"step_ratio": 0.0}}, "step_ratio"),
    ({"latent": {"kind": "flow"}}, "latent.kind"),
    ({"unknown": 1}, "unknown"),
])
def test_config_errors_name_the_key(chairs, layer, message):
    with pytest.raises(InputError, match=message):
        resolve_config([tiny_config(chairs), layer])


def test_too_few_surface_points_are_reported_before_anything_is_written(chairs, tmp_path):
    with pytest.raises(InputError, match="surface points, fewer than"):
        train_gradient_field(tiny_config(chairs, points_per_shape=5000, input_points=100),
                             tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_command_line_trains_generates_and_upsamples(chairs, tmp_path, capsys):
    config = tmp_path / "gf.yaml"
    config.write_text(json.dumps(tiny_config(chairs, train={"steps": 10, "log_every": 5})))
    run = tmp_path / "run"
    assert main(["train", str(config), "-o", str(run), "-q"]) == 0
    assert "finished after 10 steps" in capsys.readouterr().out
    assert main(["generate", str(run), "-n", "3", "--points", "200"]) == 0
    clouds = sorted((run / "generated").glob("sample_*.ply"))
    assert len(clouds) == 3 and read_points(clouds[0]).points.shape == (200, 3)
    assert main(["generate", str(run), "-n", "3"]) == 2                 # refuses to overwrite
    assert "not empty" in capsys.readouterr().err
    assert main(["generate", str(run), "-n", "3", "--latent", "fitted", "-o", str(tmp_path / "g")]) == 2
    assert "--latent: not used by this kind of run" in capsys.readouterr().err
    source = tmp_path / "scan.xyz"
    points = 10 * np.random.default_rng(0).normal(size=(500, 3)) + 100
    np.savetxt(source, points)
    assert main(["upsample", str(run), str(source), "-n", "700", "--mesh", str(tmp_path / "m.ply"),
                 "--resolution", "16"]) == 0
    upsampled = read_points(tmp_path / "scan_700.ply").points
    assert upsampled.shape == (700, 3)
    # user coordinates: around the input, not the unit sphere
    assert np.linalg.norm(upsampled.mean(axis=0) - points.mean(axis=0)) < 15
    assert main(["upsample", str(run), str(source), "-n", "700"]) == 2
    # every chair was trained on: evaluate on all of them with a split
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"meshes": {"": [f"chair_{i:04d}" for i in range(CHAIRS)]}}))
    assert main(["evaluate", str(run), "--split", str(split), "--points", "200", "--generate", "6",
                 "-q"]) == 0
    printed = capsys.readouterr().out
    assert "auto-encoding, 4 shapes, 200 points" in printed and "1-NNA" in printed
    record = json.loads((run / "evaluation" / "autoencode" / "results.json").read_text())
    assert len(record["shapes"]) == CHAIRS and record["generation"]["generated_clouds"] == 6
    row = record["shapes"][0]
    # the floor: two disjoint 200-point samples of the same chair are closer than the
    # reconstruction of a 10-step model
    assert 0 < row["cd_floor"] < row["cd"] and 0 < row["emd_floor"] < row["emd"]
    assert main(["evaluate", str(run), "--split", str(split), "--mode", "complete"]) == 2
    assert "not used by this kind of run" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not an isofield training run" in capsys.readouterr().err


def test_two_processes_train_as_one(chairs, tmp_path, torchrun):
    config = tmp_path / "gf.yaml"
    config.write_text(json.dumps(tiny_config(chairs, shapes_per_batch=3, train={"steps": 6, "log_every": 1})))
    runs = {}
    for processes in (1, 2):
        runs[processes] = tmp_path / f"run{processes}"
        torchrun(["-m", "isofield.cli", "train", str(config), "-o", str(runs[processes]), "-q"], processes)
    first, second = (load_checkpoint(run / "checkpoints" / "latest.pt") for run in runs.values())
    for module in ("encoder", "score"):
        for name, value in first.modules[module].items():
            assert torch.allclose(value, second.modules[module][name], atol=1e-5), (module, name)
    assert np.allclose(read_loss_log(runs[1] / "losses.csv")["total"],
                       read_loss_log(runs[2] / "losses.csv")["total"], rtol=1e-4)
