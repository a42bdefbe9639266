"""What every family's config shares: the ``train`` section, the trainer built from it, the
layered resolution of a whole config (:func:`resolve_layers`) and what a training call returns.

The ``train`` section (:class:`TrainConfig`) is the same for single-shape fits, DeepSDF, the
occupancy family and ShapeGF: limits (``steps`` in ``unit``, ``time_budget``), the learning rate
and its schedule, per-group learning rates and schedules where a family trains several parameter
groups (DeepSDF's decoder and codes), gradient clipping, loss-spike rollback, a weight average,
checkpoints and logging. :func:`build_trainer` turns it into the shared
:class:`~isofield.train.loop.Trainer`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Mapping, Optional, Sequence, TypeVar, Union

from isofield.config import from_dict, merge
from isofield.errors import InputError
from isofield.train.averaging import check_average_decay
from isofield.train.loop import Trainer, TrainResult
from isofield.train.schedules import Schedule, StepInfo, schedule_from_spec
from isofield.train.spikes import check_spike_settings
from isofield.train.threads import apply_thread_setting

C = TypeVar("C")


@dataclass
class TrainConfig:
    """The ``train`` section of every family's config."""

    steps: Optional[int] = None
    """stop after this many steps (or epochs, see ``unit``), across resumes"""
    time_budget: Optional[float] = None
    """stop after this many seconds of training, across resumes"""
    unit: Literal["steps", "epochs"] = "steps"
    """what ``steps`` and the schedules' step counts count: optimiser steps, or epochs of a shape
    set (one epoch is ``ceil(N / shapes_per_batch)`` steps for N training shapes)"""
    lr: float = 1e-3
    """base learning rate (of every parameter group without one of its own)"""
    schedule: dict = field(default_factory=lambda: {"name": "constant"})
    """factor on lr at each step (isofield.train.schedules.schedule_from_spec), counting ``unit``
    or, with ``unit: progress``, fractions of the run"""
    checkpoint_every: int = 1000
    """steps between numbered checkpoints"""
    checkpoint_every_seconds: float = 60.0
    keep_checkpoints: int = 3
    log_every: int = 10
    """steps between rows of losses.csv"""
    max_grad_norm: Optional[float] = None
    """clip the gradient to this L2 norm before each step (None: no clipping)"""
    spike_factor: Optional[float] = None
    """roll back ~100-150 steps instead of a step whose loss exceeds this many times the median
    of the last 100 (isofield.train.spikes; None: never)"""
    spike_lr_factor: float = 1.0
    """each rollback multiplies the learning rate by this"""
    ema_decay: Optional[float] = None
    """keep an exponential moving average of the weights with this decay, in (0, 1), and make
    the outputs with it (isofield.train.averaging; None: the trained weights)"""

    groups: ClassVar[tuple[str, ...]] = ()
    """parameter groups with a learning rate and schedule of their own: a family's subclass
    declares fields ``lr_<group>`` and ``schedule_<group>`` for each (None: ``lr`` and
    ``schedule``); the others train with ``lr`` and ``schedule``"""

    def group_lr(self, group: str) -> float:
        """The base learning rate of parameter group ``group``."""
        own = getattr(self, f"lr_{group}") if group in self.groups else None
        return self.lr if own is None else own

    def group_schedule(self, group: str) -> dict:
        """The schedule spec of parameter group ``group``."""
        own = getattr(self, f"schedule_{group}") if group in self.groups else None
        return self.schedule if own is None else own


def check_train_config(train: TrainConfig) -> None:
    """Raise InputError naming the first value of ``config.train`` out of range."""
    if train.steps is None and train.time_budget is None:
        raise InputError("config.train: give a training limit, steps or time_budget "
                         "(--steps / --time-budget)")
    for name, value, low in (("steps", train.steps, 1), ("checkpoint_every", train.checkpoint_every, 1),
                             ("keep_checkpoints", train.keep_checkpoints, 0), ("log_every", train.log_every, 1)):
        if value is not None and value < low:
            raise InputError(f"config.train.{name} must be at least {low}, got {value}")
    rates = [(f"lr_{group}", getattr(train, f"lr_{group}")) for group in train.groups]
    for name, value in (("lr", train.lr), *rates, ("time_budget", train.time_budget),
                        ("max_grad_norm", train.max_grad_norm),
                        ("checkpoint_every_seconds", train.checkpoint_every_seconds)):
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"config.train.{name} must be a positive finite number, got {value}")
    schedules = [f"schedule_{group}" for group in train.groups]
    for name in ("schedule", *schedules):
        if getattr(train, name) is not None:
            try:
                schedule_from_spec(getattr(train, name))
            except InputError as exc:
                raise InputError(f"config.train.{name}: {exc}") from None
    try:
        if train.spike_factor is not None:
            check_spike_settings(train.spike_factor, train.spike_lr_factor)
        if train.ema_decay is not None:
            check_average_decay(train.ema_decay)
    except InputError as exc:
        raise InputError(f"config.train.{exc}") from None


def steps_per_epoch(num_shapes: int, shapes_per_batch: int) -> int:
    """Steps of one epoch, which draws every shape once on average: ``ceil(N / min(B, N))``."""
    return math.ceil(num_shapes / min(shapes_per_batch, num_shapes))


@dataclass(frozen=True)
class EpochSchedule:
    """A schedule written in epochs, evaluated at steps: the schedule at the step's epoch
    ``step // steps_per_epoch`` (and the step's progress, which does not depend on the unit)."""

    schedule: Schedule
    steps_per_epoch: int

    def __call__(self, info: StepInfo) -> float:
        return self.schedule(StepInfo(info.step // self.steps_per_epoch, info.progress))


def build_trainer(task, run_dir: str | Path, train: TrainConfig, seed: int, *, progress: bool,
                  exit_after: float | None, pause_at: int | None = None,
                  steps_per_epoch: int | None = None) -> Trainer:
    """The shared trainer of ``task`` with the limits, learning-rate schedules (one per group
    of ``train.groups``, else one for all), gradient clipping, spike rollback, weight average
    and checkpoints of ``train``.

    Args:
        pause_at: return (reason ``paused``) after this many steps, before the run's limits
            (a family that trains in chunks).
        steps_per_epoch: steps of one epoch of the family's shape set (:func:`steps_per_epoch`);
            required when ``train.unit`` is ``epochs``.
    """
    per_unit = _steps_per_unit(train, steps_per_epoch)
    note = apply_thread_setting()
    if note:
        print(f"isofield: {note}", file=sys.stderr)

    def in_steps(spec: dict) -> Schedule:
        schedule = schedule_from_spec(spec)
        return schedule if per_unit == 1 else EpochSchedule(schedule, per_unit)

    schedule = ({group: in_steps(train.group_schedule(group)) for group in train.groups}
                if train.groups else in_steps(train.schedule))
    return Trainer(task, run_dir, steps=step_limit(train, steps_per_epoch),
                   time_budget=train.time_budget, pause_at=pause_at, schedule=schedule,
                   checkpoint_every=train.checkpoint_every,
                   checkpoint_every_seconds=train.checkpoint_every_seconds,
                   keep_numbered=train.keep_checkpoints, log_every=train.log_every, seed=seed,
                   max_grad_norm=train.max_grad_norm, spike_factor=train.spike_factor,
                   spike_lr_factor=train.spike_lr_factor, ema_decay=train.ema_decay,
                   progress=progress, exit_after=exit_after)


def step_limit(train: TrainConfig, steps_per_epoch: int | None = None) -> int | None:
    """``train.steps`` counted in optimiser steps (None: no step limit)."""
    return None if train.steps is None else train.steps * _steps_per_unit(train, steps_per_epoch)


def _steps_per_unit(train: TrainConfig, steps_per_epoch: int | None) -> int:
    if train.unit != "epochs":
        return 1
    if steps_per_epoch is None:
        raise ValueError("train.unit 'epochs' needs the family's steps_per_epoch")
    return steps_per_epoch


# --------------------------------------------------------------------------- resolving a config

SCHEDULE_UNIT_KEYS: dict[str, str] = {name: "unit" for name in ("every", "start", "end", "warmup")}
"""position key of a schedule spec -> the key of its unit (isofield.train.schedules)"""

Presets = Mapping[str, Mapping[str, Any]]
"""preset name -> the config keys it sets"""


def resolve_layers(config_type: type[C], layers: Sequence[Mapping[str, Any]],
                   presets: Union[Presets, Callable[[Mapping[str, Any]], Presets]], *,
                   unit_keys: Mapping[str, str] | None = None) -> C:
    """The typed config ``config_type`` of ``layers`` (lowest first), with its train section
    checked and its parameter groups spelled out.

    Layers, later ones winning: the dataclass defaults < the preset named by the merged
    ``preset`` key (default ``config_type.preset``) < each of ``layers`` (a YAML file, then
    overrides). A mapping given with a ``name`` (a schedule spec) replaces the one below it
    (preset or lower layer) whole, and a position the layers give without its unit counts in the
    default unit, not in the preset's (:func:`without_replaced`). ``presets`` maps
    names to presets, or is a function of the merged layers returning that mapping (presets
    that depend on the method). ``unit_keys`` adds the family's own position keys to
    :data:`SCHEDULE_UNIT_KEYS` (e.g. ``{"kl_warmup": "kl_warmup_unit"}``).

    Raises:
        InputError: an unknown preset or key, a wrong type, or a train value out of range.
    """
    merged: dict = {}
    for layer in layers:
        merged = merge(without_replaced(merged, layer, unit_keys={}), layer)
    table = presets(merged) if callable(presets) else presets
    name = merged.get("preset", getattr(config_type, "preset"))
    if name not in table:
        method = merged.get("method", getattr(config_type, "method"))
        raise InputError(f"config: unknown preset {name!r} for method {method!r} "
                         f"(known: {', '.join(sorted(table))})")
    keys = {**SCHEDULE_UNIT_KEYS, **(unit_keys or {})}
    config = from_dict(config_type, merge(without_replaced(table[name], merged, keys), merged))
    train = getattr(config, "train")
    check_train_config(train)
    for group in train.groups:
        setattr(train, f"lr_{group}", train.group_lr(group))
        setattr(train, f"schedule_{group}", train.group_schedule(group))
    return config


def without_replaced(preset: Mapping[str, Any], layers: Mapping[str, Any],
                     unit_keys: Mapping[str, str] = SCHEDULE_UNIT_KEYS) -> dict:
    """``preset`` (or a lower layer) without what ``layers`` replace, to merge ``layers`` over:
    a sub-mapping given as a named spec (``{"name": "constant"}`` over a preset's step schedule
    must not inherit its ``every``), and the unit of a value given without one (``unit_keys``:
    value key -> its unit's key), which then counts in the default unit, steps:
    ``grid_levels_every: 50`` or ``schedule: {every: 500}`` over a preset written in progress
    count steps, as before schedules could count progress."""
    dropped = {unit for key, unit in unit_keys.items() if key in layers and unit not in layers}
    kept = {}
    for key, value in preset.items():
        given = layers.get(key)
        if key in dropped or (isinstance(given, Mapping) and "name" in given):
            continue
        kept[key] = (without_replaced(value, given, unit_keys)
                     if isinstance(value, Mapping) and isinstance(given, Mapping) else value)
    return kept


# --------------------------------------------------------------------------- training outcome

@dataclass(frozen=True)
class TrainingOutcome:
    """What a train / resume call of a family trained from a config (DeepSDF, occupancy,
    ShapeGF) returns: the run directory, why training stopped, steps and seconds of training in
    total, the last losses, the fraction of the run's limit reached (below 1: stopped before the
    end of its schedule), the task's schedule values at the last step and, where the family
    scores them, one row per reconstructed training shape (index, shape, metrics against its
    source; empty when training was only paused)."""

    run_dir: Path
    reason: str
    step: int
    elapsed: float
    losses: dict[str, float]
    progress: float = 0.0
    schedule: dict[str, float] = field(default_factory=dict)
    reconstructions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, run_dir: Path, result: TrainResult,
           reconstructions: list[dict[str, Any]] | None = None) -> "TrainingOutcome":
        return cls(run_dir, result.reason.value, result.step, result.elapsed, dict(result.losses),
                   result.progress, dict(result.schedule), list(reconstructions or []))
