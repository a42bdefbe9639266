"""Learning-rate (and loss-weight) schedules as pure functions of the step.

A schedule maps the 0-based step index to a factor that multiplies a parameter group's base
learning rate: ``lr(step) = base_lr * schedule(step)``. It holds no state, so a resumed run only
needs its step to continue with exactly the learning rates of an uninterrupted one.

The :class:`~isofield.train.loop.Trainer` takes one schedule for every parameter group, or one per
group name (e.g. DeepSDF's decoder and latent codes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from isofield.errors import InputError

Schedule = Callable[[int], float]
"""step (0-based int) -> factor (float) multiplying a group's base learning rate."""


@dataclass(frozen=True)
class Constant:
    """Factor 1 at every step."""

    def __call__(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay:
    """Multiply by ``factor`` every ``every`` steps, down to ``min_factor``:
    ``max(factor ** (step // every), min_factor)``.

    IGR and DeepSDF halve their learning rates this way (``factor=0.5``). A floor suits a run
    with a weight average (``train.ema_decay`` of a fit), which finds the centre of the noise a
    moderate learning rate leaves, while that rate keeps the weights improving.
    """

    every: int
    factor: float = 0.5
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        _require(
            _is_int(self.every) and self.every > 0,
            f"step decay 'every' must be a positive integer, got {self.every!r}",
        )
        _require(
            _is_number(self.factor) and 0 < self.factor <= 1,
            f"step decay 'factor' must be in (0, 1], got {self.factor!r}",
        )
        _require(
            _is_number(self.min_factor) and 0 <= self.min_factor <= 1,
            f"step decay 'min_factor' must be in [0, 1], got {self.min_factor!r}",
        )

    def __call__(self, step: int) -> float:
        return max(self.factor ** (step // self.every), self.min_factor)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up to 1 over ``warmup_steps``, then a cosine decay to ``final_factor``.

    Warm-up factors are ``(step + 1) / warmup_steps`` (so step 0 already learns); the cosine runs
    from step ``warmup_steps`` (factor 1) to ``total_steps`` (factor ``final_factor``) and stays
    there afterwards.
    """

    total_steps: int
    warmup_steps: int = 0
    final_factor: float = 0.0

    def __post_init__(self) -> None:
        _require(
            _is_int(self.total_steps) and self.total_steps > 0,
            f"cosine 'total_steps' must be a positive integer, got {self.total_steps!r}",
        )
        _require(
            _is_int(self.warmup_steps) and 0 <= self.warmup_steps < self.total_steps,
            f"cosine 'warmup_steps' must be an integer in [0, total_steps): {self.warmup_steps!r}",
        )
        _require(
            _is_number(self.final_factor) and 0 <= self.final_factor <= 1,
            f"cosine 'final_factor' must be in [0, 1], got {self.final_factor!r}",
        )

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_factor + (1.0 - self.final_factor) * cosine


ANNEAL_SHAPES = ("linear", "quintic", "step")


@dataclass(frozen=True)
class Anneal:
    """A weight that anneals from 1 to ``final`` between steps ``start`` and ``end`` (DiGS's
    divergence; its decay parameters also end at a value that need not be 0).

    With ``t = (step - start) / (end - start)`` clipped to [0, 1] and ``a(t)`` = ``1 - t``
    (``linear``), ``1 - (6t^5 - 15t^4 + 10t^3)`` (``quintic``, smooth at both ends) or 1 until
    ``end`` and 0 from there on (``step``), the factor is ``final + (1 - final) a(t)``.
    """

    start: int
    end: int
    shape: str = "linear"
    final: float = 0.0

    def __post_init__(self) -> None:
        _require(
            _is_int(self.start) and _is_int(self.end) and 0 <= self.start < self.end,
            f"anneal needs integers 0 <= start < end, got start={self.start!r}, end={self.end!r}",
        )
        _require(self.shape in ANNEAL_SHAPES,
                 f"anneal 'shape' must be one of {ANNEAL_SHAPES}, got {self.shape!r}")
        _require(_is_number(self.final) and 0 <= self.final <= 1,
                 f"anneal 'final' must be in [0, 1], got {self.final!r}")

    def __call__(self, step: int) -> float:
        t = min(1.0, max(0.0, (step - self.start) / (self.end - self.start)))
        if self.shape == "linear":
            remaining = 1.0 - t
        elif self.shape == "quintic":
            remaining = 1.0 - t ** 3 * (10.0 - 15.0 * t + 6.0 * t ** 2)
        else:
            remaining = 1.0 if step < self.end else 0.0
        return self.final + (1.0 - self.final) * remaining


_BY_NAME: dict[str, type] = {"constant": Constant, "step": StepDecay, "cosine": WarmupCosine,
                             "anneal": Anneal}


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """A schedule from a config mapping, e.g. ``{"name": "step", "every": 500, "factor": 0.5}``.

    Names: ``constant``; ``step`` (every, factor, min_factor); ``cosine`` (total_steps, warmup_steps,
    final_factor); ``anneal`` (start, end, shape, final). Raises InputError for an unknown name or key, or a bad value.
    """
    options = dict(spec)
    name = options.pop("name", None)
    if name not in _BY_NAME:
        raise InputError(f"unknown schedule {name!r} (use one of {sorted(_BY_NAME)})")
    try:
        return _BY_NAME[name](**options)
    except TypeError:
        raise InputError(
            f"schedule {name!r}: unexpected or missing keys in {sorted(options)}"
        ) from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
