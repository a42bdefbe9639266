"""DeepSDF auto-decoder training: samples and batches, the loss, runs, resume, pictures, config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from isofield.config import to_dict
from isofield.data.datasets import DeepSDFDataDir, write_split
from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.data.splits import reconstruction_indices
from isofield.errors import InputError
from isofield.geometry.io import read_mesh
from isofield.losses import clamped_l1
from isofield.metrics.surface import evaluate_meshes
from isofield.nn import build_field
from isofield.deepsdf import load_shape_space, resolve_config, resume_shape_space, train_shape_space
from isofield.deepsdf.autodecoder import AutoDecoderTask, make_codes
from isofield.deepsdf.history import read_code_history
from isofield.deepsdf.outputs import principal_components, source_meshes
from isofield.deepsdf.samples import ShapeSamples, balanced_subset, load_training_samples
from isofield.deepsdf.space import SHAPE_RADIUS, code_field, code_mesh
from isofield.train.checkpoint import load_checkpoint
from isofield.train.logging import read_loss_log
from isofield.train.schedules import StepDecay, StepInfo
from isofield.train.settings import EpochSchedule, steps_per_epoch

CHAIRS = 6


@pytest.fixture(scope="module")
def chairs(tmp_path_factory) -> Path:
    """A DeepSDF data directory of 6 procedural chairs (resolution 48, 20k SDF samples each)."""
    base = tmp_path_factory.mktemp("chairs")
    write_family("chairs", CHAIRS, base / "meshes", resolution=48)
    preprocess(base / "meshes", base / "data", samples=20_000, surface_points=2_000, progress=False)
    return base / "data"


def tiny_config(data: Path, **overrides) -> dict:
    """A config small enough for a test: a 3x64 decoder, codes of 16, 6 x 512 samples per step."""
    config = {
        "data": str(data), "preset": "cpu", "latent_dim": 16, "shapes_per_batch": CHAIRS,
        "samples_per_shape": 512, "max_samples_per_shape": 4000, "reconstruction_every": 20,
        "reconstruction_shapes": 2,
        "decoder": {"depth": 3, "hidden": 64, "skip": [1]},
        "train": {"steps": 60, "lr_decoder": 3e-3, "lr_codes": 6e-3, "log_every": 5,
                  "checkpoint_every": 20, "schedule_decoder": {"name": "constant"},
                  "schedule_codes": {"name": "constant"}},
        "extract": {"resolution": 32, "progress_resolution": 16},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    return config


@pytest.fixture(scope="module")
def trained(chairs, tmp_path_factory):
    """(result, run directory) of one tiny run of 300 steps on the 6 chairs; tests only read it."""
    run = tmp_path_factory.mktemp("run") / "chairs"
    config = tiny_config(chairs, reconstruction_every=100, train={"steps": 300})
    return train_shape_space(config, run, progress=False), run


# --------------------------------------------------------------------------- samples and batches


def test_draw_rows_takes_half_from_each_side_of_the_surface():
    shape0 = (np.zeros((8, 3)), np.array([0.1, -0.1, 0.2, -0.2, -0.3, 0.3, -0.4, -0.5]))
    shape1 = (np.ones((12, 3)), np.array([0.1] * 10 + [-0.1, 0.0]))
    samples = ShapeSamples.from_arrays([shape0, shape1])
    assert samples.offsets.tolist() == [0, 8, 20]
    assert samples.positive.tolist() == [3, 10]
    # positive rows first within each shape, original order kept
    assert samples.sdf[:8].tolist() == pytest.approx([0.1, 0.2, 0.3, -0.1, -0.2, -0.3, -0.4, -0.5])
    rows = samples.draw_rows(torch.tensor([1, 0]), 8, torch.Generator().manual_seed(0)).reshape(2, 8)
    assert ((rows[0] >= 8) & (rows[0] < 20)).all() and ((rows[1] >= 0) & (rows[1] < 8)).all()
    sdf = samples.sdf[rows]
    assert (sdf[:, :4] > 0).all() and (sdf[:, 4:] <= 0).all()
    again = samples.draw_rows(torch.tensor([1, 0]), 8, torch.Generator().manual_seed(0)).reshape(2, 8)
    assert torch.equal(rows, again)


def test_draw_rows_covers_every_sample_of_a_side_uniformly():
    samples = ShapeSamples.from_arrays([(np.zeros((5, 3)), np.array([1.0, 1.0, -1.0, -1.0, -1.0]))])
    rows = samples.draw_rows(torch.tensor([0]), 30_000, torch.Generator().manual_seed(1))
    counts = np.bincount(rows.numpy(), minlength=5)
    assert counts[:2] / 15_000 == pytest.approx([0.5, 0.5], abs=0.02)
    assert counts[2:] / 15_000 == pytest.approx([1 / 3] * 3, abs=0.02)


def test_a_shape_without_inside_samples_is_named_in_the_error():
    with pytest.raises(InputError, match=r"b\.npz: no SDF samples with sdf <= 0"):
        ShapeSamples.from_arrays([(np.zeros((2, 3)), np.array([1.0, -1.0])),
                                  (np.zeros((2, 3)), np.array([1.0, 2.0]))], names=["a.npz", "b.npz"])


def test_balanced_subset_keeps_half_of_each_side_or_fills_up():
    rng = np.random.default_rng(0)
    sdf = np.concatenate([np.full(100, 0.5), np.full(4, -0.5)])
    points = np.arange(104 * 3, dtype=np.float32).reshape(104, 3)
    kept_points, kept_sdf = balanced_subset(points, sdf, 10, rng)
    assert (kept_sdf > 0).sum() == 6 and (kept_sdf <= 0).sum() == 4
    assert np.array_equal(kept_points[:, 0] / 3, np.sort(kept_points[:, 0] / 3))  # order kept
    even = np.concatenate([np.full(50, 0.5), np.full(50, -0.5)])
    assert (balanced_subset(points[:100], even, 10, rng)[1] > 0).sum() == 5
    assert balanced_subset(points, sdf, None, rng)[1] is sdf


def test_training_samples_keep_at_most_the_limit_per_shape_and_each_frame(chairs):
    data = DeepSDFDataDir(chairs)
    refs = data.shapes()
    samples, frames = load_training_samples(data, refs, 1000, seed=0)
    assert samples.num_shapes == CHAIRS and len(frames) == CHAIRS
    assert (samples.offsets[1:] - samples.offsets[:-1]).tolist() == [1000] * CHAIRS
    assert samples.positive.tolist() == [500] * CHAIRS
    assert frames[2].to_dict() == data.load_sdf(refs[2])[1].to_dict()
    again, _ = load_training_samples(data, refs[2:3], 1000, seed=0)
    assert torch.equal(again.points, samples.points[2000:3000])  # independent of the other shapes


# --------------------------------------------------------------------------- the loss


def test_loss_terms_equal_the_hand_computation(chairs):
    data = DeepSDFDataDir(chairs)
    samples, _ = load_training_samples(data, data.shapes(), 2000, seed=0)
    torch.manual_seed(0)
    decoder = build_field({"preset": "paper", "depth": 2, "hidden": 32, "skip": [], "latent_dim": 8,
                           "activation": "relu", "geometric_init": False})
    codes = make_codes(CHAIRS, 8, init_std=0.3)
    sigma = 0.5
    task = AutoDecoderTask(decoder, codes, samples, clamp=0.1, prior_weight=1 / sigma ** 2,
                           shapes_per_batch=4, samples_per_shape=64, lr_decoder=1e-3, lr_codes=1e-3)
    generator = torch.Generator().manual_seed(7)
    replay = torch.Generator().manual_seed(7)
    terms = task.loss(0, generator)

    shapes = torch.randperm(CHAIRS, generator=replay)[:4]
    rows = samples.draw_rows(shapes, 64, replay).reshape(4, 64)
    z = codes.weight.detach()[shapes]
    with torch.no_grad():
        predicted = torch.stack([decoder(samples.points[rows[i]], z[i]) for i in range(4)])
    sdf = clamped_l1(predicted.reshape(-1), samples.sdf[rows].reshape(-1), 0.1)
    prior = float((z.numpy() ** 2).sum(axis=1).mean()) / sigma ** 2
    assert terms["sdf"].item() == pytest.approx(float(sdf), rel=1e-5)
    assert terms["code_prior"].item() == pytest.approx(prior, rel=1e-5)
    assert terms["total"].item() == pytest.approx(float(sdf) + prior, rel=1e-5)
    assert prior == pytest.approx(8 * 0.3 ** 2 / sigma ** 2, rel=0.5)  # E‖z‖² = L · std²


def test_codes_start_with_the_given_spread_and_respect_the_bound():
    torch.manual_seed(0)
    codes = make_codes(500, 64, init_std=0.125)
    assert float(codes.weight.detach().std()) == pytest.approx(0.125, rel=0.02)
    bounded = make_codes(3, 4, init_std=10.0, bound=1.0)
    looked_up = bounded(torch.arange(3))
    assert torch.linalg.norm(looked_up, dim=1).tolist() == pytest.approx([1.0] * 3, rel=1e-5)


# --------------------------------------------------------------------------- a trained run


def test_the_loss_decreases_on_six_chairs(trained):
    result, run = trained
    log = read_loss_log(run / "losses.csv")
    assert log["step"].tolist() == list(range(0, 300, 5))
    assert result.step == 300 and result.reason == "finished"
    assert log["sdf"][-3:].mean() < 0.6 * log["sdf"][:3].mean()
    assert {"lr_decoder", "lr_codes", "code_prior", "total"} <= set(log)


def test_trained_codes_differ_and_each_fits_its_own_shape_best(trained, chairs):
    space = load_shape_space(trained[1])
    codes = space.codes
    assert codes.shape == (CHAIRS, 16)
    data = DeepSDFDataDir(chairs)
    samples, _ = load_training_samples(data, data.shapes(), 4000, seed=0)
    errors = np.empty((CHAIRS, CHAIRS))  # errors[i, j]: shape i's samples decoded with code j
    with torch.no_grad():
        for i in range(CHAIRS):
            rows = slice(int(samples.offsets[i]), int(samples.offsets[i + 1]))
            for j in range(CHAIRS):
                predicted = space.decoder(samples.points[rows], codes[j])
                errors[i, j] = float(clamped_l1(predicted, samples.sdf[rows], 0.1))
    own = np.diag(errors)
    others = (errors.sum(axis=1) - own) / (CHAIRS - 1)
    assert (own < 0.7 * others).all()


def test_code_history_has_the_first_code_at_every_logged_step(trained):
    _, run = trained
    steps, history = read_code_history(run / "code_history.csv")
    assert steps.tolist() == read_loss_log(run / "losses.csv")["step"].tolist()
    assert history.shape == (60, 16)
    final = load_shape_space(run).codes[0].numpy()
    assert np.abs(history[-1] - final).max() < np.abs(history[0] - final).max()


def test_shapes_json_lists_the_training_shapes_in_code_order_with_their_frames(trained, chairs):
    _, run = trained
    record = json.loads((run / "shapes.json").read_text())
    data = DeepSDFDataDir(chairs)
    assert record["data"] == str(chairs.resolve())
    assert [shape["id"] for shape in record["shapes"]] == [ref.shape_id for ref in data.shapes()]
    frame = data.load_sdf(data.shapes()[4])[1]
    assert record["shapes"][4]["normalization"]["scale"] == pytest.approx(frame.scale)
    assert record["shapes"][4]["samples"] == 4000


def test_pictures_and_report_are_written_and_not_blank(trained):
    _, run = trained
    for name in ("loss", "code_history", "reconstructions", "embedding", "progress"):
        image = np.asarray(Image.open(run / f"{name}.png").convert("RGB"))
        assert image.shape[0] > 200 and image.shape[1] > 300, name
        colours = np.unique(image.reshape(-1, 3).astype(np.int64) @ np.array([65536, 256, 1]))
        assert image.std() > 10 and len(colours) > 50, name
    assert sorted(path.name for path in (run / "progress").iterdir()) == ["step_000100.png", "step_000200.png"]
    html = (run / "report.html").read_text()
    for name in ("loss.png", "code_history.png", "reconstructions.png", "embedding.png", "chamfer_l1"):
        assert name in html


def test_reconstructions_are_written_in_each_shapes_own_coordinates(trained, chairs):
    result, run = trained
    assert [row["index"] for row in result.reconstructions] == [0, 5]
    truth = read_mesh(chairs.parent / "meshes" / "chair_0005.obj")
    learned = read_mesh(run / "reconstructions" / "0005_chair_0005.ply")
    # a loose bound after 300 tiny steps: it fails if the mesh were left in the canonical frame
    assert result.reconstructions[1]["chamfer_l1_percent_of_diagonal"] < 6.0
    assert np.abs(learned.bounds - truth.bounds).max() < 0.15 * np.linalg.norm(truth.bounds[1] - truth.bounds[0])


def test_loaded_space_meshes_a_training_shape_and_a_blend(trained):
    space = load_shape_space(trained[1])
    assert not space.decoder.training and space.step == 300
    assert next(space.decoder.parameters()).device.type == "cpu"
    mesh = space.mesh(0, resolution=24)
    canonical = space.mesh(space.codes[0], resolution=24)
    frame = space.shapes[0].normalization
    assert np.allclose(mesh.vertices, frame.to_user(canonical.vertices), atol=1e-4)
    with pytest.raises(InputError, match="out of range"):
        space.mesh(CHAIRS)
    with pytest.raises(InputError, match=r"shape \(16,\)"):
        space.field(np.zeros(3))


class _ConstantDecoder(torch.nn.Module):
    """f(x, z) = value everywhere: a decoder that is inside even where it never saw a sample."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.value.expand(len(x))


def test_a_codes_field_and_mesh_end_at_the_unit_ball_where_the_shapes_lie():
    decoder, code = _ConstantDecoder(-0.5), torch.zeros(4)
    field = code_field(decoder, code)
    points = np.array([[0.0, 0.4, 0.0], [0.0, 0.9, 0.0], [0.0, -1.05, 0.0], [1.0, 1.0, 1.0]], np.float32)
    # max(f, |x| - 1): the decoder's value deep inside, the ball's signed distance near and beyond it
    assert np.allclose(field(points), [-0.5, -0.1, 0.05, np.sqrt(3) - 1], atol=1e-6)
    # an everywhere-negative field meshes as the unit sphere, not as the extraction box's faces
    mesh, _ = code_mesh(decoder, code, resolve_config([{"data": "d"}]), resolution=32)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert mesh.is_watertight and np.abs(radii - SHAPE_RADIUS).max() < 0.01


# --------------------------------------------------------------------------- resume


def test_resume_from_an_earlier_checkpoint_repeats_the_same_steps(trained, tmp_path):
    _, original = trained
    run = tmp_path / "run"
    shutil.copytree(original, run)
    # as if the process had been killed after step 270: the last checkpoint holds step 260,
    # the logs have rows up to step 265
    shutil.copy(run / "checkpoints" / "step_000260.pt", run / "checkpoints" / "latest.pt")
    assert read_code_history(run / "code_history.csv")[0][-1] == 295
    resumed = resume_shape_space(run, progress=False)
    assert resumed.step == 300 and resumed.losses == trained[0].losses
    same_modules(run, original)
    for name in ("losses.csv", "code_history.csv"):
        assert (run / name).read_text() == (original / name).read_text()


def same_modules(run_a: Path, run_b: Path) -> None:
    """Assert that the latest checkpoints of two runs hold bit-identical decoders and codes."""
    a = load_checkpoint(run_a / "checkpoints" / "latest.pt").modules
    b = load_checkpoint(run_b / "checkpoints" / "latest.pt").modules
    for module in ("decoder", "codes"):
        assert a[module].keys() == b[module].keys()
        assert all(torch.equal(a[module][key], b[module][key]) for key in a[module]), module


@pytest.mark.slow
def test_resume_after_a_stop_equals_an_uninterrupted_run(chairs, tmp_path):
    # Schedules in steps: a run whose limit grows from 25 to 40 then decays like a 40-step run
    # (the preset's schedules count progress, which a longer limit stretches).
    in_steps = {name: {"name": "step", "every": 10, "factor": 0.5}
                for name in ("schedule_decoder", "schedule_codes")}
    whole = train_shape_space(tiny_config(chairs, reconstruction_shapes=1, train={"steps": 40, **in_steps}),
                              tmp_path / "whole", progress=False)
    part = train_shape_space(tiny_config(chairs, reconstruction_shapes=1, train={"steps": 25, **in_steps}),
                             tmp_path / "parts", progress=False)
    assert part.step == 25
    # a process killed after step 27 leaves rows beyond the last checkpoint (step 25)
    for name, row in (("code_history.csv", "25," + ",".join(["9"] * 16)), ("losses.csv", "25,9,9,9,9,9,9")):
        with open(tmp_path / "parts" / name, "a") as stream:
            stream.write(row + "\n")
    resumed = resume_shape_space(tmp_path / "parts", steps=40, progress=False)
    assert resumed.step == 40 and resumed.losses == whole.losses
    same_modules(tmp_path / "parts", tmp_path / "whole")
    parts_log, whole_log = (read_loss_log(tmp_path / run / "losses.csv") for run in ("parts", "whole"))
    assert parts_log.keys() == whole_log.keys()
    for column in parts_log.keys() - {"progress"}:  # progress: the share of each run's own limit
        np.testing.assert_array_equal(parts_log[column], whole_log[column], err_msg=column)
    history = "code_history.csv"
    assert (tmp_path / "parts" / history).read_text() == (tmp_path / "whole" / history).read_text()
    assert read_code_history(tmp_path / "parts" / history)[0].tolist() == list(range(0, 40, 5))


def test_a_paused_run_writes_no_final_outputs_and_resumes(chairs, tmp_path):
    paused = train_shape_space(tiny_config(chairs, reconstruction_shapes=0), tmp_path / "run",
                               exit_after=0, progress=False)
    assert paused.reason == "exit-after" and paused.step == 0 and paused.reconstructions == []
    assert not (tmp_path / "run" / "report.html").exists()
    with pytest.raises(InputError, match="not empty.*--resume"):
        train_shape_space(tiny_config(chairs), tmp_path / "run", progress=False)
    done = resume_shape_space(tmp_path / "run", steps=10, progress=False)
    assert done.step == 10 and (tmp_path / "run" / "report.html").exists()


# --------------------------------------------------------------------------- units and schedules


def test_epochs_count_steps_of_all_shapes_and_schedules_change_per_epoch(chairs, tmp_path):
    assert steps_per_epoch(6, 4) == 2 and steps_per_epoch(180, 16) == 12 and steps_per_epoch(3, 64) == 1
    assert [EpochSchedule(StepDecay(every=1), 2)(StepInfo(step, 0.0)) for step in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    config = tiny_config(chairs, shapes_per_batch=4, reconstruction_every=None, reconstruction_shapes=0,
                         train={"unit": "epochs", "steps": 3, "log_every": 1,
                                "schedule_decoder": {"name": "step", "every": 1, "factor": 0.5}})
    result = train_shape_space(config, tmp_path / "run", progress=False)
    log = read_loss_log(tmp_path / "run" / "losses.csv")
    assert result.step == 6
    assert log["lr_decoder"].tolist() == pytest.approx([3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4, 7.5e-4])
    assert log["lr_codes"].tolist() == pytest.approx([6e-3] * 6)


# --------------------------------------------------------------------------- configuration


def test_presets_resolve_to_the_documented_networks(tmp_path):
    paper = resolve_config([{"preset": "paper", "data": str(tmp_path)}])
    assert (paper.decoder["depth"], paper.decoder["hidden"], paper.decoder["skip"]) == (8, 512, [4])
    assert paper.decoder["activation"] == "relu" and paper.decoder["latent_dim"] == 256
    assert (paper.shapes_per_batch, paper.samples_per_shape) == (64, 16384)
    assert paper.code_init_std == pytest.approx(1 / 16) and 1 / paper.code_prior_sigma ** 2 == pytest.approx(1e-4)
    assert paper.train.unit == "epochs" and paper.train.schedule_codes == {"name": "step", "every": 500, "factor": 0.5}
    cpu = resolve_config([{"data": "rel/data"}])
    assert cpu.preset == "cpu" and cpu.decoder["latent_dim"] == cpu.latent_dim
    assert (cpu.decoder["depth"], cpu.decoder["hidden"], cpu.decoder["activation"]) == (4, 128, "relu")
    encoding = cpu.decoder["encoding"]
    assert (encoding["type"], encoding["kind"], encoding["num_frequencies"], encoding["include_input"]) == \
        ("fourier", "log", 6, False)
    assert (cpu.train.lr_decoder, cpu.train.lr_codes) == (2e-3, 4e-3)
    assert cpu.data == str(Path("rel/data").resolve())
    assert resolve_config([to_dict(cpu)]) == cpu


def test_the_paper_preset_trains_deepsdfs_decoder_with_bounded_codes(chairs, tmp_path):
    overrides = {"shapes_per_batch": 4, "samples_per_shape": 32, "reconstruction_shapes": 0,
                 "code_init_std": 1.0, "train": {"steps": 1}, "extract": {"resolution": 16}}
    result = train_shape_space({"preset": "paper", "data": str(chairs)}, tmp_path / "run",
                               overrides=overrides, progress=False)
    assert result.step == 2  # one epoch: 6 shapes, 4 per step
    modules = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt").modules
    assert modules["codes"]["weight"].shape == (CHAIRS, 256)
    assert modules["decoder"]["hidden_layers.0.parametrizations.weight.original1"].shape == (512, 259)
    assert modules["decoder"]["hidden_layers.3.parametrizations.weight.original1"].shape == (512 - 259, 512)
    # codes start at norm ~16; those looked up are cut to the bound 1, then take one Adam step
    norms = torch.linalg.norm(modules["codes"]["weight"], dim=1)
    assert ((norms - 1).abs() < 0.03).sum() >= 4 and ((norms > 10) | ((norms - 1).abs() < 0.03)).all()


@pytest.mark.parametrize("layer, message", [
    ({"data": "d", "lr": 1e-3}, r"unknown key 'lr'"),
    ({"data": "d", "train": {"epochs": 3}}, r"config\.train: unknown key 'epochs'"),
    ({"data": "d", "preset": "gpu"}, r"unknown preset 'gpu'"),
    ({"data": "d", "method": "onet"}, r"config\.method: unknown shape-space method 'onet'"),
    ({}, r"config\.data: give the DeepSDF data directory"),
    ({"data": "d", "clamp": 0}, r"config\.clamp must be a positive"),
    ({"data": "d", "latent_dim": 0}, r"config\.latent_dim must be at least 1"),
    ({"data": "d", "decoder": {"latent_dim": 3}}, r"decoder\.latent_dim \(3\) differs"),
    ({"data": "d", "decoder": {"preset": "siren"}}, r"config\.decoder: .*unknown key 'activation' for a siren"),
    ({"data": "d", "decoder": {"width": 3}}, r"config\.decoder: .*unknown key 'width'"),
    ({"data": "d", "train": {"schedule_codes": {"name": "step"}}}, r"config\.train\.schedule_codes: "),
    ({"data": "d", "train": {"steps": None, "time_budget": None}}, r"give a training limit"),
])
def test_config_errors_are_one_line_and_name_the_key(layer, message):
    with pytest.raises(InputError, match=message) as error:
        resolve_config([layer])
    assert "\n" not in str(error.value)


def test_bad_data_is_reported_before_anything_is_written(chairs, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"missing.*not a DeepSDF data directory \(folder not found\)"):
        train_shape_space(tiny_config(tmp_path / "missing"), out, progress=False)
    write_split(tmp_path / "empty.json", [])
    with pytest.raises(InputError, match=r"empty\.json: no training shapes"):
        train_shape_space(tiny_config(chairs, split=str(tmp_path / "empty.json")), out, progress=False)
    (tmp_path / "bad.yaml").write_text(f"data: {chairs}\nlatent: 3\n")
    with pytest.raises(InputError, match=r"unknown key 'latent'"):
        train_shape_space(tmp_path / "bad.yaml", out, progress=False)
    assert not out.exists()


def test_a_split_chooses_the_shapes_and_their_code_order(chairs, tmp_path):
    refs = DeepSDFDataDir(chairs).shapes()
    write_split(tmp_path / "split.json", [refs[3], refs[1]])
    config = tiny_config(chairs, split=str(tmp_path / "split.json"), reconstruction_every=None,
                         reconstruction_shapes=0, train={"steps": 2})
    train_shape_space(config, tmp_path / "run", progress=False)
    space = load_shape_space(tmp_path / "run")
    assert [shape.ref for shape in space.shapes] == [refs[3], refs[1]]
    assert space.codes.shape == (2, 16)


# --------------------------------------------------------------------------- picture helpers


def test_principal_components_of_points_on_a_line():
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    values = np.outer(np.linspace(-1, 1, 5), direction) + 4.0
    coordinates, explained = principal_components(values, 2)
    assert explained.tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    assert np.abs(coordinates[:, 0]).tolist() == pytest.approx([1, 0.5, 0, 0.5, 1])
    assert coordinates[:, 1] == pytest.approx(0, abs=1e-12)
    single, share = principal_components(np.ones((1, 4)), 2)
    assert single.tolist() == [[0.0, 0.0]] and share.tolist() == [0.0, 0.0]


def test_source_meshes_come_from_the_preprocessing_manifest(chairs, tmp_path):
    refs = DeepSDFDataDir(chairs).shapes()[:2]
    assert source_meshes(chairs, refs) == [chairs.parent / "meshes" / "chair_0000.obj",
                                           chairs.parent / "meshes" / "chair_0001.obj"]
    assert source_meshes(tmp_path, refs) == [None, None]  # DeepSDF's own folders have no manifest


def test_reconstruction_indices_spread_over_the_codes():
    assert reconstruction_indices(180, 4) == [0, 60, 119, 179]
    assert reconstruction_indices(2, 4) == [0, 1]
    assert reconstruction_indices(5, 0) == []


# --------------------------------------------------------------------------- quality (slow)


@pytest.mark.slow
def test_a_short_training_reconstructs_a_training_chair(chairs, tmp_path):
    config = tiny_config(chairs, latent_dim=32, reconstruction_every=None, reconstruction_shapes=3,
                         samples_per_shape=1024, max_samples_per_shape=None,
                         decoder={"depth": 4, "hidden": 128, "skip": [2]},
                         train={"steps": 600, "log_every": 50},
                         extract={"resolution": 96})
    result = train_shape_space(config, tmp_path / "run", progress=False)
    # measured: Chamfer-L1 0.47-0.90% of the diagonal, normal consistency 0.82-0.93
    worst = max(row["chamfer_l1_percent_of_diagonal"] for row in result.reconstructions)
    assert worst < 1.2
    assert min(row["normal_consistency"] for row in result.reconstructions) > 0.78
    truth = read_mesh(chairs.parent / "meshes" / "chair_0000.obj")
    learned = load_shape_space(tmp_path / "run").mesh(0)
    assert evaluate_meshes(learned, truth, n_points=20_000)["chamfer_l1_percent_of_diagonal"] < 1.2


# --------------------------------------------------------------------------- several processes


def test_two_processes_train_the_shape_space_as_one_with_the_same_global_batch(chairs, tmp_path, torchrun):
    # 5 shapes per step: the ranks take 3 and 2 of them; code_bound exercises max_norm
    config = tiny_config(chairs, shapes_per_batch=5, code_bound=0.5, reconstruction_every=None,
                         reconstruction_shapes=1, train={"steps": 12, "checkpoint_every": 100},
                         extract={"resolution": 16, "progress_resolution": 16})
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    one, two = tmp_path / "one", tmp_path / "two"
    train = ["-m", "isofield.cli", "train", str(config_path), "-q", "-o"]
    torchrun(train + [str(one)], 1)
    printed = torchrun(train + [str(two)], 2)
    assert printed.count("finished after 12 steps") == 1  # only the main process prints
    first, second = (load_checkpoint(run / "checkpoints" / "latest.pt") for run in (one, two))
    assert first.step == second.step == 12
    for module in ("decoder", "codes"):
        for name, value in first.modules[module].items():
            # measured: 7e-7 apart (float32 sums in another order)
            assert torch.allclose(value, second.modules[module][name], atol=1e-5), (module, name)
    for term in ("total", "sdf", "code_prior"):
        assert np.allclose(read_loss_log(one / "losses.csv")[term],
                           read_loss_log(two / "losses.csv")[term], rtol=1e-4)
    assert np.allclose(read_code_history(one / "code_history.csv")[1],
                       read_code_history(two / "code_history.csv")[1], atol=1e-5)
    assert (two / "report.html").exists() and (two / "shapes.json").exists()
