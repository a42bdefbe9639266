"""The ``train`` section shared by the fit config and the shape-space configs (ShapeGF, the
occupancy family): limits, learning rate and its schedule, checkpoints, logging, gradient clipping
and spike rollback, the trainer built from them and what a training call returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from isofield.errors import InputError
from isofield.train.loop import Trainer, TrainResult
from isofield.train.schedules import schedule_from_spec
from isofield.train.spikes import check_spike_settings


@dataclass
class TrainConfig:
    steps: Optional[int] = None
    time_budget: Optional[float] = None
    lr: float = 1e-3
    schedule: dict = field(default_factory=lambda: {"name": "constant"})
    """factor on lr at each step (isofield.train.schedules.schedule_from_spec), counting steps or,
    with ``unit: progress``, fractions of the run"""
    checkpoint_every: int = 1000
    checkpoint_every_seconds: float = 60.0
    keep_checkpoints: int = 3
    log_every: int = 10
    max_grad_norm: Optional[float] = None
    """clip the gradient to this L2 norm before each step (None: no clipping)"""
    spike_factor: Optional[float] = None
    """roll back ~100-150 steps instead of a step whose loss exceeds this many times the median
    of the last 100 (isofield.train.spikes; None: never)"""
    spike_lr_factor: float = 1.0
    """each rollback multiplies the learning rate by this"""


def check_train_config(train: TrainConfig) -> None:
    """Raise InputError naming the first value of ``config.train`` out of range."""
    if train.steps is None and train.time_budget is None:
        raise InputError("config.train: give a training limit, steps or time_budget "
                         "(--steps / --time-budget)")
    for name, value, low in (("steps", train.steps, 1), ("checkpoint_every", train.checkpoint_every, 1),
                             ("keep_checkpoints", train.keep_checkpoints, 0), ("log_every", train.log_every, 1)):
        if value is not None and value < low:
            raise InputError(f"config.train.{name} must be at least {low}, got {value}")
    for name, value in (("lr", train.lr), ("time_budget", train.time_budget),
                        ("max_grad_norm", train.max_grad_norm),
                        ("checkpoint_every_seconds", train.checkpoint_every_seconds)):
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"config.train.{name} must be a positive finite number, got {value}")
    try:
        schedule_from_spec(train.schedule)
    except InputError as exc:
        raise InputError(f"config.train.schedule: {exc}") from None
    if train.spike_factor is not None:
        try:
            check_spike_settings(train.spike_factor, train.spike_lr_factor)
        except InputError as exc:
            raise InputError(f"config.train.{exc}") from None


SCHEDULE_UNIT_KEYS: dict[str, str] = {name: "unit" for name in ("every", "start", "end", "warmup")}
"""position key of a schedule spec -> the key of its unit (isofield.train.schedules)"""


def without_replaced(preset: Mapping[str, Any], layers: Mapping[str, Any],
                     unit_keys: Mapping[str, str] = SCHEDULE_UNIT_KEYS) -> dict:
    """The preset without what ``layers`` replace, to merge ``layers`` over: a sub-mapping given
    as a named spec (``{"name": "constant"}`` over a preset's step schedule must not inherit its
    ``every``), and the unit of a value given without one (``unit_keys``: value key -> its unit's
    key), which then counts in the default unit, steps: ``grid_levels_every: 50`` or
    ``schedule: {every: 500}`` over a preset written in progress count steps, as before
    schedules could count progress."""
    dropped = {unit for key, unit in unit_keys.items() if key in layers and unit not in layers}
    kept = {}
    for key, value in preset.items():
        given = layers.get(key)
        if key in dropped or (isinstance(given, Mapping) and "name" in given):
            continue
        kept[key] = (without_replaced(value, given, unit_keys)
                     if isinstance(value, Mapping) and isinstance(given, Mapping) else value)
    return kept


def build_trainer(task, run_dir: str | Path, train: TrainConfig, seed: int, *, progress: bool,
                  exit_after: float | None, ema_decay: float | None = None) -> Trainer:
    """The shared trainer of ``task`` with the limits, schedule and checkpoints of ``train``
    (and a weight average of this decay, for the fits whose outputs use it)."""
    return Trainer(task, run_dir, steps=train.steps, time_budget=train.time_budget,
                   schedule=schedule_from_spec(train.schedule), checkpoint_every=train.checkpoint_every,
                   checkpoint_every_seconds=train.checkpoint_every_seconds,
                   keep_numbered=train.keep_checkpoints, log_every=train.log_every, seed=seed,
                   max_grad_norm=train.max_grad_norm, spike_factor=train.spike_factor,
                   spike_lr_factor=train.spike_lr_factor, ema_decay=ema_decay, progress=progress,
                   exit_after=exit_after)


@dataclass(frozen=True)
class TrainingOutcome:
    """What a train / resume call of a shape-space method returns: the run directory, why
    training stopped, steps and seconds of training in total, the last losses, the fraction of
    the run's limit reached (below 1: stopped before the end of its schedule) and the task's
    schedule values at the last step."""

    run_dir: Path
    reason: str
    step: int
    elapsed: float
    losses: dict[str, float]
    progress: float = 0.0
    schedule: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, run_dir: Path, result: TrainResult) -> "TrainingOutcome":
        return cls(run_dir, result.reason.value, result.step, result.elapsed, dict(result.losses),
                   result.progress, dict(result.schedule))
