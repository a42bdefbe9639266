"""Schedules on progress (issue 22): the fraction of a run's limit reached drives grid levels,
learning rates and loss-weight anneals, so a time budget goes through the whole schedule
however slow the steps are; under a step limit progress is exact and resuming changes nothing.

Time is faked: ``isofield.train.loop.time`` is replaced by a clock that advances a fixed number
of seconds per call, and the trainer reads it once per step (and once when it starts).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from isofield.config import from_dict
from isofield.demo import DEMO_BUDGET_SECONDS
from isofield.errors import InputError
from isofield.fitting.config import resolve_config
from isofield.fitting.fit import train_prepared
from isofield.geometry.io import write_points
from isofield.geometry.normalization import Normalization
from isofield.geometry.sampling import sample_surface
from isofield.methods.base import FieldTask, LevelSchedule, PreparedInput, get_method, grid_levels
from isofield.train.logging import read_loss_log
from isofield.train.loop import StopReason, Trainer, describe_stop
from isofield.train.schedules import StepInfo, run_progress, schedule_from_spec


class LineTask(FieldTask):
    """A FieldTask on a 1-D line fit; records the StepInfo of every step."""

    def __init__(self, levels: LevelSchedule = LevelSchedule(), **kwargs) -> None:
        field = torch.nn.Linear(1, 1)
        with torch.no_grad():
            field.weight.fill_(0.3)
            field.bias.fill_(-0.1)
        data = PreparedInput({"x": torch.linspace(-1, 1, 16)[:, None]}, Normalization(np.zeros(3), 1.0), "line")
        super().__init__(field, data, None, torch.device("cpu"), lr=0.05, levels=levels)
        self.seen: list[StepInfo] = []

    def scheduled_values(self) -> dict[str, float]:
        self.seen.append(self.at)
        return {"half": 0.5 if self.at.progress >= 0.5 else 1.0}

    def step_loss(self, step, generator):
        x = self.data["x"] + 0.01 * torch.randn(self.data["x"].shape, generator=generator)
        mse = ((self.field(x) - 2 * x) ** 2).mean()
        return {"total": mse, "mse": mse}


def trainer(task, run_dir, **options) -> Trainer:
    defaults = dict(progress=False, checkpoint_every=4, checkpoint_every_seconds=None, seed=3)
    return Trainer(task, run_dir, **(defaults | options))


# ------------------------------------------------------------------------------ progress


def test_progress_from_steps_time_and_both():
    assert run_progress(30, 100, 0.0, None) == 0.3
    assert run_progress(0, 100, 0.0, None) == 0.0
    assert run_progress(7, None, 25.0, 100.0) == 0.25
    # both limits: the larger fraction (here the time budget is the tighter one), capped at 1
    assert run_progress(10, 1000, 60.0, 120.0) == 0.5
    assert run_progress(900, 1000, 60.0, 120.0) == 0.9
    assert run_progress(1000, 1000, 150.0, 120.0) == 1.0


def test_level_activation_and_learning_rate_at_given_progress():
    levels = LevelSchedule(2, 0.1, "progress")
    at = [levels.levels_at(StepInfo(0, p)) for p in (0.0, 0.099, 0.1, 0.3, 0.55, 0.6, 1.0)]
    assert at == [2, 2, 3, 5, 7, 8, 12]  # the grid caps the count at its own levels
    # a change written at 30% of a 100-step run happens at step 30 (0.3 / 0.1 < 3 in floats)
    assert levels.levels_at(StepInfo(30, 30 / 100)) == 5
    assert LevelSchedule(2, 100).levels_at(StepInfo(250, 0.9)) == 4  # steps ignore progress
    assert LevelSchedule().levels_at(StepInfo(5, 0.5)) is None
    fast = resolve_config(get_method("igr").presets, [{"train": {"time_budget": 100.0}}])
    lr = schedule_from_spec(fast.train.schedule)
    assert [lr(StepInfo(3, p)) for p in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 0.51, 0.02])
    anneal = schedule_from_spec(get_method("digs").options_type().divergence_schedule)
    assert [anneal(StepInfo(0, p)) for p in (0.05, 0.15, 0.25)] == pytest.approx([1.0, 0.5, 0.0])


def test_step_counted_settings_keep_working_over_presets_in_progress():
    igr = get_method("igr")
    # a position given without its unit counts steps, as before schedules could count progress
    old = resolve_config(igr.presets, [{"train": {"steps": 10, "grid_levels_every": 50,
                                                  "schedule": {"name": "step", "every": 500}}}])
    assert (old.train.grid_levels_every, old.train.grid_levels_unit) == (50, "steps")
    assert old.train.schedule == {"name": "step", "every": 500}
    # an old config's partial step spec over the fast preset's cosine says what to write
    with pytest.raises(InputError, match=r"schedule 'cosine': .* \(it takes end, warmup, final_factor, unit; .*"
                                         r"name another kind to replace it, e\.g\. \{name: step, every: 500\}\)"):
        resolve_config(igr.presets, [{"train": {"steps": 10, "schedule": {"every": 500}}}])
    assert schedule_from_spec(old.train.schedule)(StepInfo(500, 0.1)) == 0.5
    kept = resolve_config(igr.presets, [{"train": {"steps": 10, "grid_levels_start": 3}}])
    assert (kept.train.grid_levels_every, kept.train.grid_levels_unit) == (0.1, "progress")


def test_bad_level_settings_are_one_line_errors():
    igr = get_method("igr")
    with pytest.raises(InputError, match=r"config\.train: grid_levels_every is a fraction of the run .* got 50"):
        resolve_config(igr.presets, [{"train": {"steps": 10, "grid_levels_every": 50,
                                                 "grid_levels_unit": "progress"}}])
    with pytest.raises(InputError, match="grid_levels_every counts steps .* got 0.5"):
        resolve_config(igr.presets, [{"train": {"steps": 10, "grid_levels_every": 0.5}}])
    with pytest.raises(InputError, match="must be one of 'steps', 'progress'"):
        resolve_config(igr.presets, [{"train": {"steps": 10, "grid_levels_unit": "epochs"}}])
    with pytest.raises(InputError, match=r"config\.train\.schedule: 'every' is a fraction of the run"):
        resolve_config(igr.presets, [{"train": {"steps": 10, "schedule": {"name": "step", "every": 750,
                                                                          "unit": "progress"}}}])


# ------------------------------------------------------------------------------ the trainer


def test_trainer_hands_progress_to_schedules_and_task_and_logs_it(tmp_path):
    task = LineTask(LevelSchedule())
    result = trainer(task, tmp_path, steps=8,
                     schedule=schedule_from_spec({"name": "step", "every": 0.5, "unit": "progress"})).run()
    assert [info.progress for info in task.seen] == [k / 8 for k in range(8)]
    assert [info.step for info in task.seen] == list(range(8))
    log = read_loss_log(tmp_path / "losses.csv")
    assert list(log) == ["step", "total", "mse", "lr", "progress", "schedule_half"]
    assert log["lr"].tolist() == [0.05] * 4 + [0.025] * 4
    assert log["schedule_half"].tolist() == [1.0] * 4 + [0.5] * 4
    assert (result.progress, result.schedule, result.reason) == (1.0, {"half": 0.5}, StopReason.FINISHED)


def test_time_budget_progress_on_a_fake_clock(tmp_path, slow_steps):
    slow_steps(2.5)                         # each step takes 2.5 s: 40 steps in 100 s
    task = LineTask(LevelSchedule(2, 0.1, "progress"))
    result = trainer(task, tmp_path, time_budget=100.0).run()
    assert (result.step, result.reason, result.progress) == (40, StopReason.TIME_BUDGET, 1.0)
    assert result.elapsed == 100.0 and result.steps_per_second == 0.4
    assert [info.progress for info in task.seen] == [k / 40 for k in range(40)]
    # both limits: the time budget is the tighter one, so it sets the progress
    slow_steps(2.5)
    both = LineTask()
    trainer(both, tmp_path / "both", steps=1000, time_budget=100.0).run()
    assert [info.progress for info in both.seen][:3] == [0.0, 0.025, 0.05]


def test_a_step_limited_run_resumed_midway_equals_the_uninterrupted_run(tmp_path, slow_steps):
    slow_steps(1.0)
    spec = {"name": "step", "every": 0.25, "unit": "progress"}
    straight = LineTask(LevelSchedule(2, 0.1, "progress"))
    trainer(straight, tmp_path / "straight", steps=12, schedule=schedule_from_spec(spec)).run()
    first = LineTask(LevelSchedule(2, 0.1, "progress"))
    paused = trainer(first, tmp_path / "resumed", steps=12, exit_after=5.0,
                     schedule=schedule_from_spec(spec)).run()
    assert (paused.reason, paused.step, paused.progress) == (StopReason.EXIT_AFTER, 5, 5 / 12)
    assert "stopped at 42% of its schedule" in describe_stop(paused.reason.value, paused.step,
                                                              paused.elapsed, paused.progress)
    resumed = LineTask(LevelSchedule(2, 0.1, "progress"))
    done = trainer(resumed, tmp_path / "resumed", steps=12, schedule=schedule_from_spec(spec)).run()
    assert (done.step, done.steps_run, done.progress) == (12, 7, 1.0)
    assert [info.progress for info in first.seen + resumed.seen] == [k / 12 for k in range(12)]
    assert torch.equal(straight.field.weight, resumed.field.weight)
    assert torch.equal(straight.field.bias, resumed.field.bias)
    assert (tmp_path / "resumed" / "losses.csv").read_text() == (tmp_path / "straight" / "losses.csv").read_text()


def test_progress_never_goes_back_when_a_run_is_given_a_longer_budget(tmp_path, slow_steps):
    slow_steps(1.0)
    trainer(LineTask(), tmp_path, time_budget=10.0).run()
    longer = LineTask()
    result = trainer(longer, tmp_path, time_budget=20.0).run()
    assert result.step == 20
    assert [info.progress for info in longer.seen] == [1.0] * 10


def test_pause_at_returns_before_the_limit_that_progress_is_measured_against(tmp_path):
    task = LineTask()
    result = trainer(task, tmp_path, steps=10, pause_at=4).run()
    assert (result.reason, result.step, result.progress) == (StopReason.PAUSED, 4, 0.4)
    result = trainer(task, tmp_path, steps=10, pause_at=10).run()
    assert (result.reason, result.step, result.progress) == (StopReason.FINISHED, 10, 1.0)


# ------------------------------------------------------------------------------ the demo


def test_the_demo_config_reaches_every_grid_level_when_steps_are_slow(tmp_path, slow_steps):
    """The busy machine of issue 22 trained 76 steps in the demo's 100 s and stopped with 2 of 8
    grid levels; on progress 25 steps of 4 s go through the whole schedule."""
    points = tmp_path / "sphere.ply"
    write_points(sample_surface(trimesh.creation.icosphere(3), 2000, seed=0), points)
    igr = get_method("igr")
    config = resolve_config(igr.presets, [{"input": str(points), "train": {
        "time_budget": DEMO_BUDGET_SECONDS, "checkpoint_every_seconds": 1e6, "log_every": 1},
        "options": {"batch": 256}}])
    data = igr.prepare(points, from_dict(igr.options_type, config.options), seed=0)
    slow_steps(DEMO_BUDGET_SECONDS / 25)
    field, result = train_prepared(config, data, tmp_path / "run", progress=False)
    assert (result.step, result.reason, result.progress) == (25, StopReason.TIME_BUDGET, 1.0)
    log = read_loss_log(tmp_path / "run" / "losses.csv")
    # 2 levels, one more every 10% of the run (2.5 steps of 4 s): all 8 from step 15 (60%)
    expected = [min(8, 2 + int(step / 2.5 + 1e-9)) for step in range(25)]
    assert log["schedule_grid_levels"].tolist() == expected
    assert result.schedule == {"grid_levels": 8.0}
    # a cosine from 2e-2 to 2% of it over the run's progress, 4% per step
    cosine = [2e-2 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * 0.04 * step))) for step in (0, 12, 24)]
    assert log["lr"][[0, 12, 24]].tolist() == pytest.approx(cosine, rel=1e-5)
    assert grid_levels(field) == (8, 8)
