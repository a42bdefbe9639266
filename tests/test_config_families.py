"""Every family's config shares one resolver and one train section (issue 23's drift bugs).

A schedule given with a ``name`` replaces the one below it (preset or lower layer) in every
family; ``max_grad_norm``, ``spike_factor`` and ``ema_decay`` reach the shared trainer of a fit,
DeepSDF, ShapeGF and ONet; DeepSDF's decoder and codes are parameter groups of that section.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from isofield.data.preprocess import preprocess
from isofield.data.procedural import write_family
from isofield.errors import InputError
from isofield.fitting.config import resolve_config as resolve_fit
from isofield.fitting.fit import fit_points
from isofield.methods import get_method
from isofield.occupancy import load_occupancy_model, train_occupancy_network
from isofield.occupancy.config import resolve_config as resolve_occupancy
from isofield.shapegf import load_gradient_field, train_gradient_field
from isofield.shapegf.config import resolve_config as resolve_shapegf
from isofield.deepsdf import load_shape_space, train_shape_space
from isofield.deepsdf.config import resolve_config as resolve_deepsdf
from isofield.train import settings
from isofield.train.checkpoint import load_checkpoint
from isofield.train.logging import read_loss_log
from isofield.train.loop import Trainer
from isofield.train.schedules import StepInfo, schedule_from_spec

COSINE = {"name": "cosine", "total_steps": 100}
SHARED = {"schedule": COSINE, "max_grad_norm": 0.5, "ema_decay": 0.9, "spike_factor": 3.0}
COSINE_AT_1 = 0.5 * (1 + math.cos(math.pi / 100))
"""the cosine schedule's factor at step 1 of 100"""

FAMILIES = {
    "fit": lambda layers: resolve_fit(get_method("igr").presets, [{"train": {"steps": 10}}, *layers]),
    "deepsdf": lambda layers: resolve_deepsdf([{"data": "d"}, *layers]),
    "onet": lambda layers: resolve_occupancy([{"method": "onet", "data": "d"}, *layers]),
    "shapegf": lambda layers: resolve_shapegf([{"data": "d"}, *layers]),
}


# --------------------------------------------------------------------------- resolving


@pytest.mark.parametrize("family", FAMILIES)
def test_a_named_schedule_replaces_the_presets_and_the_shared_options_resolve(family):
    preset = FAMILIES[family]([])
    assert preset.train.schedule != COSINE and preset.train.schedule["name"] in ("step", "cosine")
    config = FAMILIES[family]([{"train": SHARED}])
    assert config.train.schedule == COSINE
    assert (config.train.max_grad_norm, config.train.ema_decay, config.train.spike_factor) == (0.5, 0.9, 3.0)
    for group in config.train.groups or ("all",):
        factor = schedule_from_spec(config.train.group_schedule(group))(StepInfo(50, 0.0))
        assert factor == pytest.approx(0.5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_named_schedule_replaces_a_lower_layers(family):
    # A file's step schedule, then an override naming cosine: before, fit, ShapeGF and ONet
    # merged both ("unexpected keys ['every', 'factor', 'total_steps']").
    file = {"train": {"schedule": {"name": "step", "every": 10, "factor": 0.3}}}
    config = FAMILIES[family]([file, {"train": {"schedule": COSINE}}])
    assert config.train.schedule == COSINE
    merged = FAMILIES[family]([file, {"train": {"schedule": {"factor": 0.7}}}])
    assert merged.train.schedule == {"name": "step", "every": 10, "factor": 0.7}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("option, value, message", [
    ("ema_decay", 1.0, "config.train.ema_decay must be a number in (0, 1), got 1.0"),
    ("max_grad_norm", -1, "config.train.max_grad_norm must be a positive finite number, got -1.0"),
    ("spike_factor", 1.0, "config.train.spike_factor must be a number > 1, got 1.0"),
])
def test_the_shared_options_are_checked_alike(family, option, value, message):
    with pytest.raises(InputError) as error:
        FAMILIES[family]([{"train": {option: value}}])
    assert str(error.value) == message


def test_deepsdfs_groups_keep_the_presets_numbers_and_take_the_shared_schedule():
    paper = resolve_deepsdf([{"data": "d", "preset": "paper"}])
    step_500 = {"name": "step", "every": 500, "factor": 0.5}
    assert (paper.train.unit, paper.train.steps) == ("epochs", 2001)
    assert (paper.train.lr_decoder, paper.train.lr_codes) == (5e-4, 1e-3)
    assert paper.train.schedule_decoder == paper.train.schedule_codes == step_500
    cpu = resolve_deepsdf([{"data": "d"}])
    cosine = {"name": "cosine", "end": 1.0, "final_factor": 0.02, "unit": "progress"}
    assert (cpu.train.lr_decoder, cpu.train.lr_codes) == (2e-3, 4e-3)
    assert cpu.train.schedule_decoder == cpu.train.schedule_codes == cosine
    assert cpu.train.checkpoint_every_seconds == 60.0 and paper.train.checkpoint_every_seconds == 600.0
    # a group's own schedule wins over the shared one; the other group takes the shared one
    own = resolve_deepsdf([{"data": "d", "train": {"schedule": COSINE, "schedule_codes": {"name": "constant"},
                                                   "lr": 1e-4}}])
    assert (own.train.schedule_decoder, own.train.schedule_codes) == (COSINE, {"name": "constant"})
    assert (own.train.lr_decoder, own.train.lr_codes) == (1e-4, 4e-3)


def test_a_fit_counts_steps_and_deepsdf_epochs():
    with pytest.raises(InputError, match=r"^config\.train\.unit: must be one of 'steps', got 'epochs'$"):
        FAMILIES["fit"]([{"train": {"unit": "epochs"}}])
    for family in ("deepsdf", "onet", "shapegf"):
        assert FAMILIES[family]([{"train": {"unit": "epochs"}}]).train.unit == "epochs"


# --------------------------------------------------------------------------- training


@pytest.fixture
def built(monkeypatch) -> list[Trainer]:
    """Every trainer the shared builder makes during the test, each recording the total norm
    of the gradients after clipping at every step."""
    trainers: list[Trainer] = []

    class Recording(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.clipped_norms: list[float] = []
            trainers.append(self)

        def _clip_gradients(self) -> float:
            before = super()._clip_gradients()
            grads = [p.grad for group in self._optimizer.param_groups for p in group["params"]
                     if p.grad is not None]
            self.clipped_norms.append(float(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
            return before

    monkeypatch.setattr(settings, "Trainer", Recording)
    return trainers


@pytest.fixture(scope="module")
def chairs(tmp_path_factory) -> dict[str, Path]:
    """Two procedural chairs preprocessed for DeepSDF / ShapeGF and for ONet."""
    base = tmp_path_factory.mktemp("chairs")
    write_family("chairs", 2, base / "meshes", resolution=32)
    preprocess(base / "meshes", base / "deepsdf", samples=2000, surface_points=1000, progress=False)
    preprocess(base / "meshes", base / "onet", samples=2000, surface_points=10_000, protocol="onet",
               progress=False)
    return {"deepsdf": base / "deepsdf", "onet": base / "onet"}


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[key], b[key]) for key in a if a[key].is_floating_point())


def test_deepsdf_trains_through_the_shared_builder_and_clips(chairs, tmp_path, built):
    config = {"data": str(chairs["deepsdf"]), "latent_dim": 4, "shapes_per_batch": 2, "samples_per_shape": 64,
              "max_samples_per_shape": 500, "reconstruction_shapes": 0,
              "decoder": {"depth": 2, "hidden": 16, "skip": []},
              "extract": {"resolution": 8, "progress_resolution": 8},
              "train": {**SHARED, "max_grad_norm": 0.01, "steps": 2, "log_every": 1}}
    result = train_shape_space(config, tmp_path / "run", progress=False)
    assert result.step == 2 and len(built) == 1
    trainer = built[0]
    assert trainer.max_grad_norm == 0.01 and trainer.steps == 2
    log = read_loss_log(tmp_path / "run" / "losses.csv")
    assert (log["grad_norm"] > 0.01).all()                  # every step's gradient was longer ...
    assert trainer.clipped_norms == pytest.approx([0.01, 0.01], rel=1e-4)  # ... and clipped to 0.01
    assert log["rollbacks"].tolist() == [0, 0]
    assert log["lr_decoder"].tolist() == pytest.approx([2e-3, 2e-3 * COSINE_AT_1])
    assert log["lr_codes"].tolist() == pytest.approx([4e-3, 4e-3 * COSINE_AT_1])
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert sorted(checkpoint.averages) == ["codes", "decoder"]
    averaged = checkpoint.weights_to_use("codes")["weight"]
    assert differs({"w": averaged}, {"w": checkpoint.modules["codes"]["weight"]})
    space = load_shape_space(tmp_path / "run")                # the outputs use the average
    assert torch.equal(space.codes, averaged)


FAMILY_RUNS = {
    "shapegf": (train_gradient_field, lambda data: {
        "method": "shapegf", "data": str(data["deepsdf"]), "latent_dim": 4, "points_per_shape": 500,
        "input_points": 32, "target_points": 32, "shapes_per_batch": 1, "noise": {"levels": 2},
        "encoder": {"widths": [8], "head": [8]}, "score": {"hidden": 8, "blocks": 1},
        "langevin": {"steps_per_level": 1}, "latent": {"kind": "gmm", "options": {"components": 1}},
        "surface": {"resolution": 8, "gate_points": 100}}, 1e-3),
    "onet": (train_occupancy_network, lambda data: {
        "method": "onet", "data": str(data["onet"]), "shapes_per_batch": 1, "points_per_step": 64,
        "input": {"points": 32}, "encoder": {"condition_dim": 8, "hidden": 8},
        "decoder": {"hidden": 8, "blocks": 1}, "extract": {"resolution": 8, "coarse_resolution": 4}}, 5e-4),
}


@pytest.mark.parametrize("family", FAMILY_RUNS)
def test_shapegf_and_onet_train_with_the_shared_options_in_epochs(family, chairs, tmp_path, built):
    train, config, lr = FAMILY_RUNS[family]
    # one epoch of 2 shapes, 1 per step: 2 steps; the cosine counts epochs, so both at epoch 0
    result = train({**config(chairs), "train": {**SHARED, "unit": "epochs", "steps": 1, "log_every": 1}},
                   tmp_path / "run", progress=False)
    assert result.step == 2 and len(built) == 1 and built[0].max_grad_norm == 0.5
    log = read_loss_log(tmp_path / "run" / "losses.csv")
    assert log["lr"].tolist() == pytest.approx([lr, lr])
    assert np.isfinite(log["grad_norm"]).all() and log["rollbacks"].tolist() == [0, 0]
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert sorted(checkpoint.averages) == sorted(checkpoint.modules)
    if family == "onet":
        # batch-norm statistics recomputed into the average; the trained weights stay
        network = load_occupancy_model(tmp_path / "run").network
        expected = checkpoint.weights_to_use("network")
        parameters = [name for name, _ in network.named_parameters()]
        assert differs({k: expected[k] for k in parameters}, checkpoint.modules["network"])
        loaded = network.state_dict()
    else:
        loaded = load_gradient_field(tmp_path / "run").encoder.state_dict()
        expected = checkpoint.weights_to_use("encoder")
        assert differs(expected, checkpoint.modules["encoder"])
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_a_fit_trains_with_the_shared_options(tmp_path, built):
    angles = np.linspace(0, 2 * math.pi, 400, endpoint=False)
    points = 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    field, _ = fit_points(points, tmp_path / "run", method="sal", preset="paper", steps=2, progress=False,
                          overrides={"field": {"hidden": 16, "depth": 2, "skip": []},
                                     "options": {"batch": 128, "pool": 2000},
                                     "train": {**SHARED, "lr": 1e-3, "log_every": 1}})
    assert len(built) == 1 and built[0].max_grad_norm == 0.5
    log = read_loss_log(tmp_path / "run" / "losses.csv")
    assert log["lr"].tolist() == pytest.approx([1e-3, 1e-3 * COSINE_AT_1])
    assert np.isfinite(log["grad_norm"]).all() and log["rollbacks"].tolist() == [0, 0]
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    averaged = checkpoint.weights_to_use("field")
    assert differs(averaged, checkpoint.modules["field"])
    assert all(torch.equal(value, averaged[key]) for key, value in field.state_dict().items())
