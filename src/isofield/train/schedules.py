"""Learning-rate and loss-weight schedules, as pure functions of the run's position.

The :class:`~isofield.train.loop.Trainer` computes, once per step, a :class:`StepInfo`: the
0-based index of the step being taken and the run's *progress*, the fraction of its limit
reached before that step (:func:`run_progress`: ``step / steps`` under a step limit,
``elapsed / time_budget`` under a time budget, the larger of the two under both). A schedule maps
it to a factor, e.g. on a parameter group's base learning rate: ``lr = base_lr * schedule(info)``.

Every schedule counts in one ``unit``:

- ``progress``: its positions (``every``, ``start``, ``end``, ``warmup``) are fractions of the
  run, so a run goes through the whole schedule whatever its limit and however fast its steps
  are: a time budget on a slow or loaded machine reaches the same end as on an idle one. The
  fit methods' ``fast`` presets and the shape-space families' ``cpu`` presets are written this
  way.
- ``steps`` (the default, as before progress existed): its positions count steps. The ``paper``
  presets keep their papers' schedules so (a halving every 2000 steps, written as a fraction of
  a paper's long run, would halve the rate dozens of times within a short one).

Schedules hold no state, so a resumed run only needs its step and elapsed time to continue
with exactly the factors of an uninterrupted one (under a step limit, progress is exact).

The :class:`~isofield.train.loop.Trainer` takes one schedule for every parameter group, or one per
group name (e.g. DeepSDF's decoder and latent codes).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from isofield.errors import InputError

UNITS = ("steps", "progress")
Unit = Literal["steps", "progress"]
_BOUNDARY_SLACK = 1e-9
"""added to a count of whole periods of progress, so that ``0.3 / 0.1`` (2.9999999999999996 in
floats) counts 3 periods: a change written at 30% of a 100-step run happens at step 30"""


@dataclass(frozen=True)
class StepInfo:
    """Where a run stands at the step being taken.

    Attributes:
        step: 0-based index of the step being taken (steps completed before it).
        progress: the fraction of the run's limit reached before this step, in [0, 1]
            (:func:`run_progress`).
    """

    step: int
    progress: float

    def position(self, unit: Unit) -> float:
        """The step index (``steps``) or the progress (``progress``)."""
        return self.step if unit == "steps" else self.progress


def run_progress(step: int, steps: int | None, elapsed: float, time_budget: float | None) -> float:
    """The fraction of a run's limit reached after ``step`` steps and ``elapsed`` seconds of
    training: ``step / steps`` for a step limit, ``elapsed / time_budget`` for a time budget,
    the larger for both; capped at 1."""
    fractions = [0.0]
    if steps is not None:
        fractions.append(step / steps)
    if time_budget is not None:
        fractions.append(elapsed / time_budget)
    return min(1.0, max(fractions))


Schedule = Callable[[StepInfo], float]
"""StepInfo -> factor (float), e.g. on a group's base learning rate."""


@dataclass(frozen=True)
class Constant:
    """Factor 1 at every step."""

    unit: Unit = "steps"

    def __call__(self, info: StepInfo) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay:
    """Multiply by ``factor`` every ``every`` steps or fraction of the run (``unit``), down to
    ``min_factor``: ``max(factor ** floor(position / every), min_factor)``.

    IGR and DeepSDF halve their learning rates this way (``factor=0.5``). A floor suits a run
    with a weight average (``train.ema_decay`` of a fit), which finds the centre of the noise a
    moderate learning rate leaves, while that rate keeps the weights improving.
    """

    every: float
    factor: float = 0.5
    min_factor: float = 0.0
    unit: Unit = "steps"

    def __post_init__(self) -> None:
        _check_positions(self, ("every",))
        _require(self.every > 0, f"step decay 'every' must be positive, got {self.every!r}")
        _require(
            _is_number(self.factor) and 0 < self.factor <= 1,
            f"step decay 'factor' must be in (0, 1], got {self.factor!r}",
        )
        _require(
            _is_number(self.min_factor) and 0 <= self.min_factor <= 1,
            f"step decay 'min_factor' must be in [0, 1], got {self.min_factor!r}",
        )

    def __call__(self, info: StepInfo) -> float:
        periods = whole_periods(info.position(self.unit), self.every, self.unit)
        return max(self.factor ** periods, self.min_factor)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up to 1 until ``warmup``, then a cosine decay to ``final_factor`` at ``end``
    (positions in ``unit``), staying there afterwards.

    In steps, warm-up factors are ``(step + 1) / warmup`` (so step 0 already learns); in
    progress ``progress / warmup``.
    """

    end: float
    warmup: float = 0
    final_factor: float = 0.0
    unit: Unit = "steps"

    def __post_init__(self) -> None:
        _check_positions(self, ("end", "warmup"))
        _require(0 <= self.warmup < self.end,
                 f"cosine needs 0 <= warmup < end, got warmup={self.warmup!r}, end={self.end!r}")
        _require(
            _is_number(self.final_factor) and 0 <= self.final_factor <= 1,
            f"cosine 'final_factor' must be in [0, 1], got {self.final_factor!r}",
        )

    def __call__(self, info: StepInfo) -> float:
        position = info.position(self.unit)
        if position < self.warmup:
            return (position + (self.unit == "steps")) / self.warmup
        progress = min(1.0, (position - self.warmup) / (self.end - self.warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_factor + (1.0 - self.final_factor) * cosine


ANNEAL_SHAPES = ("linear", "quintic", "step")


@dataclass(frozen=True)
class Anneal:
    """A weight that anneals from 1 to ``final`` between ``start`` and ``end`` (positions in
    ``unit``; DiGS's divergence; its decay parameters also end at a value that need not be 0).

    With ``t = (position - start) / (end - start)`` clipped to [0, 1] and ``a(t)`` = ``1 - t``
    (``linear``), ``1 - (6t^5 - 15t^4 + 10t^3)`` (``quintic``, smooth at both ends) or 1 until
    ``end`` and 0 from there on (``step``), the factor is ``final + (1 - final) a(t)``.
    """

    start: float
    end: float
    shape: str = "linear"
    final: float = 0.0
    unit: Unit = "steps"

    def __post_init__(self) -> None:
        _check_positions(self, ("start", "end"))
        _require(0 <= self.start < self.end,
                 f"anneal needs 0 <= start < end, got start={self.start!r}, end={self.end!r}")
        _require(self.shape in ANNEAL_SHAPES,
                 f"anneal 'shape' must be one of {ANNEAL_SHAPES}, got {self.shape!r}")
        _require(_is_number(self.final) and 0 <= self.final <= 1,
                 f"anneal 'final' must be in [0, 1], got {self.final!r}")

    def __call__(self, info: StepInfo) -> float:
        position = info.position(self.unit)
        t = min(1.0, max(0.0, (position - self.start) / (self.end - self.start)))
        if self.shape == "linear":
            remaining = 1.0 - t
        elif self.shape == "quintic":
            remaining = 1.0 - t ** 3 * (10.0 - 15.0 * t + 6.0 * t ** 2)
        else:
            remaining = 1.0 if position < self.end else 0.0
        return self.final + (1.0 - self.final) * remaining


_BY_NAME: dict[str, type] = {"constant": Constant, "step": StepDecay, "cosine": WarmupCosine,
                             "anneal": Anneal}

_STEP_KEYS: dict[str, dict[str, str]] = {"cosine": {"total_steps": "end", "warmup_steps": "warmup"}}
"""Keys that count steps, as configs wrote them before schedules took a unit, and the keys they
stand for (read with ``unit: steps``)."""


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """A schedule from a config mapping, e.g. ``{"name": "step", "every": 500, "factor": 0.5}``
    (every 500 steps) or ``{"name": "step", "every": 0.25, "unit": "progress"}`` (every quarter
    of the run).

    Names: ``constant``; ``step`` (every, factor, min_factor); ``cosine`` (end, warmup,
    final_factor; ``total_steps`` and ``warmup_steps`` are read as ``end`` and ``warmup`` in
    steps); ``anneal`` (start, end, shape, final); each with ``unit``: ``steps`` (the
    default: positions are integer step counts) or ``progress`` (fractions of the run). Raises
    InputError for an unknown name, key or unit, or a bad value.
    """
    options = dict(spec)
    name = options.pop("name", None)
    if name not in _BY_NAME:
        raise InputError(f"unknown schedule {name!r} (use one of {sorted(_BY_NAME)})")
    for old, new in _STEP_KEYS.get(name, {}).items():
        if old in options:
            if new in options or options.get("unit", "steps") != "steps":
                raise InputError(f"schedule {name!r}: {old!r} counts steps; give {new!r} instead")
            options[new] = options.pop(old)
    unit = options.get("unit", "steps")
    if unit not in UNITS:
        raise InputError(f"schedule {name!r}: unit must be one of {UNITS}, got {unit!r}")
    try:
        return _BY_NAME[name](**options)
    except TypeError:
        known = ", ".join(field.name for field in dataclasses.fields(_BY_NAME[name]))
        raise InputError(
            f"schedule {name!r}: unexpected or missing keys in {sorted(options)} (it takes "
            f"{known or 'no keys'}; a spec without 'name' updates the schedule below it, so name "
            f"another kind to replace it, e.g. {{name: step, every: 500}})"
        ) from None


def whole_periods(position: float, every: float, unit: Unit) -> int:
    """How many whole periods ``every`` fit in ``position`` (steps or progress, ``unit``)."""
    if unit == "steps":
        return int(position // every)
    return math.floor(position / every + _BOUNDARY_SLACK)


def _check_positions(schedule: Any, names: tuple[str, ...]) -> None:
    """Positions are integer steps (unit ``steps``) or finite fractions of the run (``progress``)."""
    _require(schedule.unit in UNITS, f"unit must be one of {UNITS}, got {schedule.unit!r}")
    for name in names:
        value = getattr(schedule, name)
        if schedule.unit == "steps":
            _require(_is_int(value), f"'{name}' counts steps and must be an integer, got {value!r} "
                                     "(for a fraction of the run add unit: progress)")
        else:
            _require(_is_number(value) and 0 <= value <= 1,
                     f"'{name}' is a fraction of the run (unit: progress) and must be in [0, 1], "
                     f"got {value!r} (to count steps use unit: steps)")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
