"""The generic training loop: convergence, exact resume, checkpoints, signals, limits, NaNs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from isofield.errors import InputError
from isofield.geometry.normalization import Normalization
from isofield.train.averaging import averaged_copies
from isofield.train.checkpoint import CheckpointStore, load_checkpoint
from isofield.train.logging import LossLog, read_loss_log
from isofield.train.loop import (
    ParamGroup,
    StopReason,
    Trainer,
    TrainingDivergedError,
    progress_postfix,
    progress_record,
)
from isofield.train.schedules import Constant, StepDecay, StepInfo, WarmupCosine, schedule_from_spec
from isofield.train.settings import TrainConfig, build_trainer, check_train_config

SLOPE, INTERCEPT = 3.0, -1.0


class ToyTask:
    """Fit y = 3x - 1 on x ~ U(-1, 1) drawn from the trainer's generator.

    ``hidden=0``: a linear model (the exact answer is weight 3, bias -1); ``hidden>0``: a small
    MLP with dropout, which also exercises torch's global generator. Hooks inject failures:
    ``nan_at`` (NaN loss), ``signal_at`` (a signal sent to this process inside the loss),
    ``hang_at`` (touch ``marker`` and sleep, for a kill from outside), ``sleep`` (seconds per step),
    ``spike_at`` (steps whose loss is 1000x, as in a SIREN loss spike).
    """

    def __init__(
        self,
        hidden: int = 0,
        dropout: float = 0.0,
        two_groups: bool = False,
        nan_at: int | None = None,
        signal_at: tuple[int, int] | None = None,
        hang_at: int | None = None,
        marker: Path | None = None,
        sleep: float = 0.0,
        spike_at: tuple[int, ...] = (),
    ) -> None:
        init = torch.Generator().manual_seed(123)
        if hidden:
            self.model = nn.Sequential(
                nn.Linear(1, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1)
            )
        else:
            self.model = nn.Linear(1, 1)
        with torch.no_grad():
            for param in self.model.parameters():
                param.copy_(0.5 * torch.randn(param.shape, generator=init))
        self.two_groups = two_groups
        self.nan_at, self.signal_at, self.hang_at = nan_at, signal_at, hang_at
        self.marker, self.sleep = marker, sleep
        self.spike_at = spike_at

    def modules(self) -> dict[str, nn.Module]:
        return {"field": self.model}

    def param_groups(self) -> list[ParamGroup]:
        if not self.two_groups:
            return [ParamGroup("field", list(self.model.parameters()), lr=0.05)]
        weights = [p for name, p in self.model.named_parameters() if name.endswith("weight")]
        biases = [p for name, p in self.model.named_parameters() if name.endswith("bias")]
        return [ParamGroup("weights", weights, lr=0.05), ParamGroup("biases", biases, lr=0.02)]

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        self._hooks(step)
        x = torch.rand(32, 1, generator=generator) * 2 - 1
        mse = ((self.model(x) - (SLOPE * x + INTERCEPT)) ** 2).mean()
        if step == self.nan_at:
            mse = mse * float("nan")
        if step in self.spike_at:
            mse = mse * 1000.0
        l2 = sum((p**2).sum() for p in self.model.parameters())
        return {"total": mse + 1e-8 * l2, "mse": mse, "l2": l2}

    def _hooks(self, step: int) -> None:
        if self.signal_at is not None and step == self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])
        if step == self.hang_at:
            self.marker.touch()
            time.sleep(120)
        if self.sleep:
            time.sleep(self.sleep)


class NormalizedToyTask(ToyTask):
    """A ToyTask with extra state: a Normalization record and a counter of loss calls."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.normalization = Normalization(np.array([1.0, 2.0, 3.0]), 2.5)
        self.calls = 0

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        self.calls += 1
        return super().loss(step, generator)

    def extra_state(self) -> dict:
        return {"normalization": self.normalization.to_dict(), "calls": self.calls}

    def load_extra_state(self, state: dict) -> None:
        self.normalization = Normalization.from_dict(state["normalization"])
        self.calls = state["calls"]


def make_trainer(task, run_dir, **options) -> Trainer:
    defaults = dict(progress=False, checkpoint_every=5, checkpoint_every_seconds=None, seed=7)
    return Trainer(task, run_dir, **(defaults | options))


def parameters(task: ToyTask) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in task.model.named_parameters()}


def assert_same_parameters(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def log_lines(run_dir: Path, without: str | None = None) -> list[str]:
    """The lines of the run's loss log, optionally without one column."""
    lines = (run_dir / "losses.csv").read_text().splitlines()
    if without is None:
        return lines
    drop = lines[0].split(",").index(without)
    return [",".join(cell for index, cell in enumerate(line.split(",")) if index != drop)
            for line in lines]


# --- schedules ------------------------------------------------------------------------------


def at(step: int, progress: float = 0.0) -> StepInfo:
    return StepInfo(step, progress)


def test_schedule_factors():
    assert [Constant()(at(s)) for s in (0, 10**6)] == [1.0, 1.0]
    decay = StepDecay(every=10, factor=0.5)
    assert [decay(at(s)) for s in (0, 9, 10, 25, 30)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    floored = StepDecay(every=10, factor=0.5, min_factor=0.2)
    assert [floored(at(s)) for s in (9, 10, 19, 20, 30, 10**6)] == [1.0, 0.5, 0.5, 0.25, 0.2, 0.2]
    cosine = WarmupCosine(end=110, warmup=10, final_factor=0.1)
    assert cosine(at(0)) == pytest.approx(0.1)
    assert cosine(at(9)) == pytest.approx(1.0)
    assert cosine(at(10)) == pytest.approx(1.0)
    assert cosine(at(60)) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine(at(110)) == pytest.approx(0.1)
    assert cosine(at(500)) == pytest.approx(0.1)


def test_schedule_from_spec_and_bad_specs():
    assert schedule_from_spec({"name": "step", "every": 4, "factor": 0.25})(at(8)) == 0.0625
    assert schedule_from_spec({"name": "constant"})(at(3)) == 1.0
    with pytest.raises(InputError, match="unknown schedule 'linear'"):
        schedule_from_spec({"name": "linear"})
    with pytest.raises(InputError, match="'cosine': unexpected or missing keys"):
        schedule_from_spec({"name": "cosine", "end": 10, "warmpu": 2})
    older = schedule_from_spec({"name": "cosine", "total_steps": 110, "warmup_steps": 10})
    assert older == WarmupCosine(end=110, warmup=10)
    with pytest.raises(InputError, match="'total_steps' counts steps; give 'end' instead"):
        schedule_from_spec({"name": "cosine", "total_steps": 100, "unit": "progress"})
    with pytest.raises(InputError, match="'every' must be positive"):
        StepDecay(every=0)
    with pytest.raises(InputError, match=r"'min_factor' must be in \[0, 1\], got -0\.1"):
        schedule_from_spec({"name": "step", "every": 4, "min_factor": -0.1})
    with pytest.raises(InputError, match="0 <= warmup < end"):
        WarmupCosine(end=10, warmup=10)
    with pytest.raises(InputError, match="'every' counts steps and must be an integer, got 0.5"):
        schedule_from_spec({"name": "step", "every": 0.5})
    with pytest.raises(InputError, match=r"'every' is a fraction of the run \(unit: progress\) and must be in \[0, 1\], got 750"):
        schedule_from_spec({"name": "step", "every": 750, "unit": "progress"})
    with pytest.raises(InputError, match="unit must be one of"):
        schedule_from_spec({"name": "step", "every": 5, "unit": "epochs"})


# --- training -------------------------------------------------------------------------------


def test_linear_fit_converges_to_the_known_line(tmp_path):
    task = ToyTask()
    result = make_trainer(
        task, tmp_path, steps=400, schedule=StepDecay(100, 0.5), checkpoint_every=100
    ).run()
    assert result.reason == StopReason.FINISHED == "finished"
    assert (result.step, result.steps_run) == (400, 400)
    assert result.losses["mse"] < 1e-6
    assert task.model.weight.item() == pytest.approx(SLOPE, abs=1e-3)
    assert task.model.bias.item() == pytest.approx(INTERCEPT, abs=1e-3)
    log = read_loss_log(tmp_path / "losses.csv")
    assert list(log) == ["step", "total", "mse", "l2", "lr", "progress"]
    np.testing.assert_array_equal(log["progress"], np.arange(400) / 400)
    np.testing.assert_array_equal(log["step"], np.arange(400))
    assert log["lr"][[0, 99, 100, 399]].tolist() == [0.05, 0.05, 0.025, 0.00625]
    assert log["mse"][-1] == result.losses["mse"]


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        task = ToyTask(hidden=8, dropout=0.2)
        make_trainer(task, tmp_path / name, steps=15, seed=seed).run()
        runs[name] = parameters(task)
    assert_same_parameters(runs["a"], runs["b"])
    assert not torch.equal(runs["a"]["0.weight"], runs["c"]["0.weight"])


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    schedule = StepDecay(every=7, factor=0.5)
    straight = ToyTask(hidden=8, dropout=0.2)
    make_trainer(straight, tmp_path / "straight", steps=20, schedule=schedule).run()

    first = make_trainer(ToyTask(hidden=8, dropout=0.2), tmp_path / "resumed", steps=10,
                         schedule=schedule).run()
    assert (first.step, first.reason) == (10, "finished")
    resumed_task = ToyTask(hidden=8, dropout=0.2)  # fresh weights: must come from the checkpoint
    second = make_trainer(resumed_task, tmp_path / "resumed", steps=20, schedule=schedule).run()
    assert (second.step, second.steps_run, second.reason) == (20, 10, "finished")

    assert_same_parameters(parameters(straight), parameters(resumed_task))
    resumed_lines = log_lines(tmp_path / "resumed", without="progress")
    assert resumed_lines == log_lines(tmp_path / "straight", without="progress")
    assert [int(line.split(",")[0]) for line in resumed_lines[1:]] == list(range(20))
    # the first call ran a 10-step run to its end; progress never goes back, so the longer
    # limit holds it at 1 (schedules in steps, as here, are unaffected)
    progress = read_loss_log(tmp_path / "resumed" / "losses.csv")["progress"]
    np.testing.assert_array_equal(progress, [step / 10 for step in range(10)] + [1.0] * 10)


def test_the_callers_global_random_stream_is_left_alone(tmp_path):
    task = ToyTask(hidden=4, dropout=0.5)  # building the modules draws from the global stream
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    make_trainer(task, tmp_path, steps=3).run()
    assert torch.equal(torch.rand(3), expected)


def test_two_parameter_groups_have_their_own_rates_and_schedules(tmp_path):
    schedules = {"weights": StepDecay(every=2, factor=0.5), "biases": Constant()}
    make_trainer(ToyTask(two_groups=True), tmp_path, steps=5, schedule=schedules).run()
    log = read_loss_log(tmp_path / "losses.csv")
    assert log["lr_weights"].tolist() == [0.05, 0.05, 0.025, 0.025, 0.0125]
    assert log["lr_biases"].tolist() == [0.02] * 5
    with pytest.raises(InputError, match=r"schedules are given for groups \['weights'\]"):
        make_trainer(ToyTask(two_groups=True), tmp_path, steps=5, schedule={"weights": Constant()})


def test_checkpoint_content_loads_with_weights_only(tmp_path):
    task = NormalizedToyTask()
    result = make_trainer(task, tmp_path, steps=6).run()
    raw = torch.load(result.checkpoint, weights_only=True)
    assert raw["format"] == "isofield-checkpoint" and raw["step"] == 6
    assert raw["generator_state"].dtype == torch.uint8
    assert raw["extra"] == {"normalization": {"center": [1.0, 2.0, 3.0], "scale": 2.5}, "calls": 6}
    assert set(raw["optimizer"]["state"]) == {0, 1}
    assert torch.equal(raw["modules"]["field"]["weight"], task.model.weight.detach())
    assert raw["losses"]["mse"] == result.losses["mse"]
    assert load_checkpoint(result.checkpoint).elapsed == pytest.approx(result.elapsed)
    # a checkpoint from before weight averages existed loads, with none
    assert raw.pop("averages") == {}
    torch.save(raw, tmp_path / "older.pt")
    older = load_checkpoint(tmp_path / "older.pt")
    assert older.averages == {} and torch.equal(older.weights_to_use("field")["weight"], task.model.weight)


def test_extra_state_is_restored_on_resume(tmp_path):
    make_trainer(NormalizedToyTask(), tmp_path, steps=4).run()
    task = NormalizedToyTask()
    task.normalization = Normalization.identity()
    make_trainer(task, tmp_path, steps=7).run()
    assert task.normalization.scale == 2.5 and task.normalization.center.tolist() == [1, 2, 3]
    assert task.calls == 7


def test_unsafe_extra_state_is_refused_before_writing(tmp_path):
    class Unsafe(NormalizedToyTask):
        def extra_state(self) -> dict:
            return {"normalization": self.normalization}

    with pytest.raises(TypeError, match=r"\['extra'\]\['normalization'\] is a Normalization"):
        make_trainer(Unsafe(), tmp_path, steps=3).run()
    assert not (tmp_path / "checkpoints" / "latest.pt").exists()


def test_numbered_snapshots_are_pruned_to_the_newest_k(tmp_path):
    make_trainer(ToyTask(), tmp_path, steps=20, checkpoint_every=3, keep_numbered=2).run()
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "latest.pt", "step_000015.pt", "step_000018.pt"
    ]
    assert load_checkpoint(folder / "latest.pt").step == 20
    assert load_checkpoint(folder / "step_000018.pt").step == 18
    assert CheckpointStore(tmp_path, keep_numbered=2).numbered_steps() == [15, 18]


def test_exit_after_returns_its_reason_and_a_resumable_checkpoint(tmp_path):
    task = ToyTask(sleep=0.01)
    result = make_trainer(task, tmp_path, steps=10_000, exit_after=0.05).run()
    assert result.reason == StopReason.EXIT_AFTER
    assert 1 <= result.step < 100
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.step == result.step
    assert torch.equal(checkpoint.modules["field"]["weight"], task.model.weight.detach())
    again = make_trainer(ToyTask(), tmp_path, steps=result.step + 3).run()
    assert (again.step, again.steps_run, again.reason) == (result.step + 3, 3, "finished")


def test_time_budget_counts_across_resumes(tmp_path):
    first = make_trainer(ToyTask(sleep=0.01), tmp_path, time_budget=0.1).run()
    assert first.reason == StopReason.TIME_BUDGET
    assert first.elapsed >= 0.1 and first.step >= 1
    again = make_trainer(ToyTask(), tmp_path, time_budget=0.1).run()
    assert (again.reason, again.steps_run, again.step) == ("time-budget", 0, first.step)
    more = make_trainer(ToyTask(sleep=0.01), tmp_path, time_budget=0.2).run()
    assert more.step > first.step and more.elapsed >= 0.2


def test_nan_loss_names_step_and_term_and_keeps_the_last_checkpoint(tmp_path):
    trainer = make_trainer(ToyTask(nan_at=7), tmp_path, steps=20, checkpoint_every=5)
    with pytest.raises(TrainingDivergedError, match=r"at step 7: loss term 'mse' is nan") as info:
        trainer.run()
    assert "step 5) is kept" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, InputError)
    checkpoint = load_checkpoint(trainer.checkpoint_path)
    assert checkpoint.step == 5
    assert all(torch.isfinite(t).all() for t in checkpoint.modules["field"].values())
    assert read_loss_log(trainer.log_path)["step"].tolist() == list(range(7))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_step_saves_and_restores_handlers(tmp_path, signum):
    before = signal.getsignal(signum)
    result = make_trainer(ToyTask(signal_at=(4, signum)), tmp_path, steps=50).run()
    assert result.reason == StopReason.INTERRUPTED
    assert result.step == 5
    assert load_checkpoint(result.checkpoint).step == 5
    assert signal.getsignal(signum) is before
    resumed = make_trainer(ToyTask(), tmp_path, steps=8).run()
    assert (resumed.step, resumed.steps_run) == (8, 3)


def test_resume_drops_log_rows_after_the_checkpoint_and_partial_lines(tmp_path):
    straight = ToyTask()
    make_trainer(straight, tmp_path / "straight", steps=12).run()
    run_dir = tmp_path / "crashed"
    make_trainer(ToyTask(), run_dir, steps=5).run()
    with open(run_dir / "losses.csv", "a") as fh:  # rows a killed process wrote after step 5
        fh.write("5,1,1,1,0.05\n6,1,1,1,0.05\n7,1,")
    (run_dir / "checkpoints" / ".latest.pt.abc123.pt").write_bytes(b"half a checkpoint")
    resumed = ToyTask()
    make_trainer(resumed, run_dir, steps=12).run()
    assert_same_parameters(parameters(straight), parameters(resumed))
    assert log_lines(run_dir, without="progress") == log_lines(tmp_path / "straight", without="progress")
    assert not list((run_dir / "checkpoints").glob(".*"))


def test_loss_log_refuses_other_columns_and_reads_only_complete_lines(tmp_path):
    path = tmp_path / "losses.csv"
    with LossLog(path) as log:
        log.append({"step": 0, "total": 0.5})
        log.append({"step": 1, "total": 0.25})
    with open(path, "a") as fh:
        fh.write("2,0.1")
    assert read_loss_log(path)["total"].tolist() == [0.5, 0.25]
    with pytest.raises(InputError, match="losses.csv: the log has columns"):
        LossLog(path).append({"step": 3, "eikonal": 1.0})
    LossLog(path).truncate(before_step=1)
    assert path.read_text() == "step,total\n0,0.5\n"


def test_a_log_of_an_older_run_is_widened_by_the_columns_a_resumed_run_adds(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,total,lr\n0,0.5,0.01\n1,0.25,0.01\n")
    with LossLog(path) as log:
        log.append({"step": 2, "total": 0.125, "lr": 0.01, "progress": 0.5})
    assert path.read_text() == (
        "step,total,lr,progress\n0,0.5,0.01,nan\n1,0.25,0.01,nan\n2,0.125,0.01,0.5\n"
    )
    assert read_loss_log(path)["progress"][2] == 0.5


def test_max_grad_norm_clips_the_step_and_logs_the_norm_before_clipping(tmp_path):
    reference = ToyTask(hidden=4)
    reference.loss(0, torch.Generator().manual_seed(7))["total"].backward()
    gradient = torch.cat([p.grad.flatten() for p in reference.model.parameters()])
    task = ToyTask(hidden=4)
    before = torch.cat([p.detach().flatten() for p in task.model.parameters()])
    make_trainer(task, tmp_path, steps=1, optimizer=torch.optim.SGD, max_grad_norm=0.01).run()
    after = torch.cat([p.detach().flatten() for p in task.model.parameters()])
    lr = task.param_groups()[0].lr
    assert float(gradient.norm()) > 1.0
    torch.testing.assert_close(before - after, lr * 0.01 * gradient / gradient.norm())
    logged = read_loss_log(tmp_path / "losses.csv")
    assert logged["grad_norm"][0] == pytest.approx(float(gradient.norm()), rel=1e-5)


def test_a_loss_spike_rolls_back_to_the_oldest_copy_and_training_goes_on(tmp_path):
    reference = ToyTask(hidden=4)
    make_trainer(reference, tmp_path / "reference", steps=150).run()
    # copies before steps 150, 200 and 250; the spike at 250 loads the one of step 150, the one
    # at 260 (before the next copy) loads it again: each time the state after 150 steps
    for spikes, steps in (((250,), 251), ((250, 260), 261)):
        task = ToyTask(hidden=4, spike_at=spikes)
        run_dir = tmp_path / f"spikes-{len(spikes)}"
        make_trainer(task, run_dir, steps=steps, spike_factor=3.0).run()
        assert_same_parameters(parameters(task), parameters(reference))
        rollbacks = read_loss_log(run_dir / "losses.csv")["rollbacks"]
        assert rollbacks[spikes[0] - 1] == 0 and rollbacks[-1] == len(spikes)
    make_trainer(ToyTask(hidden=4, spike_at=(250,)), tmp_path / "on", steps=600, spike_factor=3.0,
                 spike_lr_factor=0.5).run()
    log = read_loss_log(tmp_path / "on" / "losses.csv")
    assert log["mse"][-1] < 0.5 * log["mse"][249]       # it trains on from the copy
    assert (log["lr"][250], log["lr"][251], log["lr"][-1]) == pytest.approx((0.05, 0.025, 0.025))



def test_the_shared_train_section_turns_the_spike_rollback_on(tmp_path):
    settings = TrainConfig(steps=251, checkpoint_every=5, checkpoint_every_seconds=None,
                           log_every=1, spike_factor=3.0, spike_lr_factor=0.5)
    check_train_config(settings)
    build_trainer(ToyTask(hidden=4, spike_at=(250,)), tmp_path, settings, seed=7, progress=False,
                  exit_after=None).run()
    log = read_loss_log(tmp_path / "losses.csv")
    assert (log["rollbacks"][-1], log["lr"][-1]) == pytest.approx((1.0, 0.05))
    with pytest.raises(InputError, match=r"^config\.train\.spike_factor must be a number > 1, got 1\.0$"):
        check_train_config(TrainConfig(steps=3, spike_factor=1.0))

# --- weight average -------------------------------------------------------------------------


def test_the_weight_average_is_a_warmed_up_ema_of_the_trained_weights():
    weight = nn.Parameter(torch.zeros(()))
    module = nn.Module()
    module.weight = weight
    average = averaged_copies({"m": module}, decay=0.3)["m"]
    expected = None
    for update, value in enumerate([4.0, 8.0, 2.0, 6.0, 10.0]):
        with torch.no_grad():
            weight.fill_(value)
        average.update_parameters(module)
        # the first update copies; then d = min(0.3, (1 + n) / (10 + n)) at the n-th: 2/11, 3/12,
        # then 0.3
        decay = min(0.3, (1 + update) / (10 + update))
        expected = value if expected is None else decay * expected + (1 - decay) * value
        assert average.module.weight.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(8.5586, abs=1e-4)   # 4, 7.2727, 3.3182, 5.1955, 8.5586
    with pytest.raises(InputError, match=r"^ema_decay must be a number in \(0, 1\), got 1$"):
        averaged_copies({"m": module}, decay=1)


def test_a_trainer_with_an_average_ends_on_it_checkpoints_it_and_resumes_it_exactly(tmp_path):
    straight = ToyTask(hidden=8)
    make_trainer(straight, tmp_path / "straight", steps=20, ema_decay=0.8).run()
    checkpoint = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    averaged = checkpoint.weights_to_use("field")
    assert_same_parameters(parameters(straight), {name: averaged[name] for name in averaged})
    assert not torch.equal(checkpoint.modules["field"]["0.weight"], averaged["0.weight"])
    assert int(checkpoint.averages["field"]["n_averaged"]) == 20

    make_trainer(ToyTask(hidden=8), tmp_path / "resumed", steps=10, ema_decay=0.8).run()
    resumed = ToyTask(hidden=8)
    make_trainer(resumed, tmp_path / "resumed", steps=20, ema_decay=0.8).run()
    assert_same_parameters(parameters(straight), parameters(resumed))
    # a plain trainer on the same run trains on from the trained weights, not the average
    plain = ToyTask(hidden=8)
    make_trainer(plain, tmp_path / "resumed", steps=20).run()
    assert torch.equal(plain.model[0].weight, checkpoint.modules["field"]["0.weight"])


def test_a_spike_rollback_also_rolls_the_average_back(tmp_path):
    reference = ToyTask(hidden=4)
    make_trainer(reference, tmp_path / "reference", steps=150, ema_decay=0.9).run()
    task = ToyTask(hidden=4, spike_at=(250,))
    make_trainer(task, tmp_path / "spike", steps=251, spike_factor=3.0, ema_decay=0.9).run()
    assert_same_parameters(parameters(task), parameters(reference))


def test_bad_options_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="give steps, time_budget or both"):
        make_trainer(ToyTask(), tmp_path)
    with pytest.raises(InputError, match="steps must be a positive integer, got 0"):
        make_trainer(ToyTask(), tmp_path, steps=0)
    with pytest.raises(InputError, match="time_budget must be a number of seconds > 0"):
        make_trainer(ToyTask(), tmp_path, time_budget=float("nan"))
    with pytest.raises(InputError, match="keep_numbered"):
        make_trainer(ToyTask(), tmp_path, steps=3, keep_numbered=-1)
    with pytest.raises(InputError, match="log_every must be a positive integer, got None"):
        make_trainer(ToyTask(), tmp_path, steps=3, log_every=None)
    with pytest.raises(InputError, match="max_grad_norm must be"):
        make_trainer(ToyTask(), tmp_path, steps=3, max_grad_norm=0.0)
    with pytest.raises(InputError, match="spike_factor must be a number > 1, got 0.5"):
        make_trainer(ToyTask(), tmp_path, steps=3, spike_factor=0.5)
    with pytest.raises(InputError, match="spike_lr_factor must be in"):
        make_trainer(ToyTask(), tmp_path, steps=3, spike_factor=2.0, spike_lr_factor=0.0)
    assert not any(tmp_path.iterdir())


def test_corrupt_or_foreign_checkpoint_raises_input_error(tmp_path):
    latest = tmp_path / "checkpoints" / "latest.pt"
    latest.parent.mkdir()
    latest.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match=r"latest.pt: corrupt or unsafe checkpoint \(Unsupported"):
        make_trainer(ToyTask(), tmp_path, steps=3).run()
    torch.save({"format": "isofield-checkpoint", "payload": Normalization.identity()}, latest)
    with pytest.raises(InputError, match=r"unsafe checkpoint \(Unsupported global: GLOBAL isof"):
        make_trainer(ToyTask(), tmp_path, steps=3).run()
    torch.save({"weights": torch.zeros(2)}, latest)
    with pytest.raises(InputError, match="latest.pt: not an isofield checkpoint"):
        make_trainer(ToyTask(), tmp_path, steps=3).run()
    make_trainer(ToyTask(), tmp_path / "mlp", steps=2).run()
    with pytest.raises(InputError, match="module 'field' does not fit the task's network"):
        make_trainer(ToyTask(hidden=4), tmp_path / "mlp", steps=3).run()
    make_trainer(ToyTask(hidden=4), tmp_path / "moments", steps=2).run()
    moments = tmp_path / "moments" / "checkpoints" / "latest.pt"
    data = torch.load(moments, weights_only=True)
    first = data["optimizer"]["state"][0]
    first["exp_avg"] = first["exp_avg"].T.contiguous()               # (4, 1) -> (1, 4)
    torch.save(data, moments)
    with pytest.raises(InputError, match=r"'exp_avg' of shape \(1, 4\) for a parameter of shape \(4, 1\)"):
        make_trainer(ToyTask(hidden=4), tmp_path / "moments", steps=3).run()


def test_progress_postfix_shows_terms_and_remaining_time():
    losses = {"total": 0.012345, "eikonal": 2.0}
    assert progress_postfix(losses, 12.4, None) == "total=0.01235 eikonal=2"
    assert progress_postfix(losses, 12.4, 3600) == (
        "total=0.01235 eikonal=2 time=00:12/1:00:00 left=59:47"
    )


RECORD = r"step (\d+)/20 \((\d+)%\), loss [0-9.e-]+, 0\.2 steps/s, ETA (\d+) s"


def test_progress_records_every_30_seconds_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys,
                                                                         slow_steps):
    # Before: nothing at all on stderr without a terminal (nohup, CI, cluster jobs).
    # The trainer's clock is faked (conftest's slow_steps): 5 s a step.
    import re

    slow_steps(5.0)
    monkeypatch.delenv("ISOFIELD_LOG_SECONDS", raising=False)
    make_trainer(ToyTask(), tmp_path, steps=20, progress=True).run()
    lines = capsys.readouterr().err.splitlines()
    assert [re.fullmatch(RECORD, line).groups() for line in lines] == [
        ("6", "30", "70"), ("12", "60", "40"), ("18", "90", "10")]


def test_progress_records_follow_the_environment_and_quiet(tmp_path, monkeypatch, capsys, slow_steps):
    slow_steps(5.0)
    monkeypatch.setenv("ISOFIELD_LOG_SECONDS", "50")
    make_trainer(ToyTask(), tmp_path / "every50", steps=20, progress=True).run()
    assert [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()] == ["step 10/20", "step 20/20"]
    monkeypatch.setenv("ISOFIELD_LOG_SECONDS", "0")
    make_trainer(ToyTask(), tmp_path / "none", steps=20, progress=True).run()
    monkeypatch.delenv("ISOFIELD_LOG_SECONDS")
    make_trainer(ToyTask(), tmp_path / "quiet", steps=20, progress=False).run()
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("ISOFIELD_LOG_SECONDS", "soon")
    with pytest.raises(InputError, match=r"^ISOFIELD_LOG_SECONDS='soon': give seconds between progress records"):
        make_trainer(ToyTask(), tmp_path / "bad", steps=20, progress=True)


def test_progress_record_under_a_time_budget_and_long_waits():
    assert progress_record(120, None, 0.4, {"mse": 0.5, "total": 0.0123}, 8.1, 180.0) == (
        "step 120 (40%), loss 0.0123, 8.1 steps/s, ETA 3 min")
    assert progress_record(5, 3000, 0.0, {"total": 1.0}, 0.5, None).endswith("ETA ?")
    assert progress_record(5, 3000, 0.01, {"total": 1.0}, 0.5, 7500.0).endswith("ETA 2 h 05 min")


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from test_train import ToyTask, make_trainer
    task = ToyTask(hidden=8, dropout=0.2, hang_at=int(sys.argv[3]), marker=Path(sys.argv[4]))
    make_trainer(task, sys.argv[2], steps=40, checkpoint_every=3).run()
    """
)


@pytest.mark.slow  # ~4-6 s: the subprocess imports torch
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    straight = ToyTask(hidden=8, dropout=0.2)
    make_trainer(straight, tmp_path / "straight", steps=40, checkpoint_every=3).run()

    run_dir, marker = tmp_path / "killed", tmp_path / "hanging"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(Path(__file__).parent), str(run_dir), "17", str(marker)]
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the training subprocess never reached step 17"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt").step == 15
    assert read_loss_log(run_dir / "losses.csv")["step"].tolist() == list(range(17))

    resumed = ToyTask(hidden=8, dropout=0.2)
    result = make_trainer(resumed, run_dir, steps=40, checkpoint_every=3).run()
    assert (result.step, result.steps_run) == (40, 25)
    assert_same_parameters(parameters(straight), parameters(resumed))
    assert log_lines(run_dir) == log_lines(tmp_path / "straight")


def test_divergence_in_parameters_is_caught_before_saving(tmp_path):
    class ExplodingStep(ToyTask):
        def loss(self, step, generator):
            terms = super().loss(step, generator)
            if step == 3:  # adds 0 to the loss but NaN to the gradient (d sqrt|x| / dx at 0)
                weight = self.model.weight
                terms["total"] = terms["total"] + torch.sqrt((weight - weight.detach()).abs().sum())
            return terms

    with pytest.raises(TrainingDivergedError, match="parameter field.weight is not finite"):
        make_trainer(ExplodingStep(), tmp_path, steps=10, checkpoint_every=4).run()
    assert not (tmp_path / "checkpoints" / "latest.pt").exists()


def test_anneal_schedules_go_from_one_to_zero_between_start_and_end():
    from isofield.train.schedules import Anneal

    linear = schedule_from_spec({"name": "anneal", "start": 100, "end": 300})
    assert [linear(at(s)) for s in (0, 100, 150, 200, 300, 1000)] == [1.0, 1.0, 0.75, 0.5, 0.0, 0.0]
    quintic = Anneal(100, 300, "quintic")
    assert quintic(at(100)) == 1.0 and quintic(at(200)) == pytest.approx(0.5) and quintic(at(300)) == 0.0
    assert quintic(at(110)) == pytest.approx(1 - (10 * 0.05**3 - 15 * 0.05**4 + 6 * 0.05**5))
    step = Anneal(100, 300, "step")
    assert (step(at(299)), step(at(300))) == (1.0, 0.0)
    with pytest.raises(InputError, match="start < end"):
        Anneal(300, 100)
    with pytest.raises(InputError, match="shape"):
        Anneal(0, 10, "cubic")


def test_anneal_to_a_final_factor_keeps_it_after_the_end():
    from isofield.train.schedules import Anneal

    linear = schedule_from_spec({"name": "anneal", "start": 100, "end": 300, "final": 0.2})
    assert [linear(at(s)) for s in (0, 200, 300, 5000)] == pytest.approx([1.0, 0.6, 0.2, 0.2])
    assert Anneal(100, 300, "quintic", final=0.2)(at(200)) == pytest.approx(0.6)
    step = Anneal(100, 300, "step", final=0.2)
    assert (step(at(299)), step(at(300))) == (1.0, 0.2)
    with pytest.raises(InputError, match="'final' must be in"):
        Anneal(0, 10, final=1.5)
