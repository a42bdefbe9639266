"""What a fitting recipe (a *method*) provides, and the registry that finds it by name.

A method is the only place that knows its recipe: which input it reads, which loss terms and
weights it uses, which presets it offers. The generic parts (network, trainer, extractor,
metrics, report) are shared and configured by :class:`isofield.fitting.config.FitConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol

import torch
from torch import nn

from isofield.errors import InputError
from isofield.geometry.normalization import Normalization
from isofield.nn import MultiResolutionGrid, set_active_levels
from isofield.train.loop import ParamGroup, TrainTask
from isofield.train.schedules import UNITS, StepInfo, Unit, whole_periods


@dataclass
class PreparedInput:
    """A method's training data, already in the canonical frame.

    Attributes:
        tensors: named CPU tensors the task trains on, e.g. ``points (N, 3)``, ``normals (N, 3)``.
        normalization: maps the canonical frame back to the user's coordinates.
        description: one line about what was read, for the log and the report.
        notes: one-line notes for the user about the input (e.g. normals that were ignored).
    """

    tensors: dict[str, torch.Tensor]
    normalization: Normalization
    description: str
    notes: tuple[str, ...] = ()


class Method(Protocol):
    """A registered fitting recipe."""

    name: ClassVar[str]
    options_type: ClassVar[type]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]
    """Preset name -> config overrides (keys of :class:`FitConfig`); ``"fast"`` is the default."""

    def prepare(self, path: Path, options: Any, seed: int) -> PreparedInput:
        """Read the user's input file and bring it to the canonical frame."""
        ...

    def task(self, field: nn.Module, data: PreparedInput, options: Any,
             device: torch.device, lr: float, levels: "LevelSchedule") -> TrainTask:
        """The trainer's task: the field's parameters and this recipe's loss."""
        ...


SETTLING_SCHEDULE = {"name": "cosine", "end": 1.0, "final_factor": 0.02, "unit": "progress"}
"""The fast presets' learning-rate schedule: a cosine over the run's progress down to 2% of the
starting rate. Adam moves each parameter by about the rate per step, so a rate left high holds
the field about one step from where its loss wants it (docs/fit-ablations.md)."""


@dataclass(frozen=True)
class LevelSchedule:
    """Coarse-to-fine training of grid encodings: ``start`` levels at the first step, one more
    every ``every`` steps or fraction of the run (``unit``, see :mod:`isofield.train.schedules`);
    ``start = 0`` uses every level from the beginning. E.g. ``LevelSchedule(2, 0.1, "progress")``
    trains 2 levels in the first tenth of the run, 3 in the second, ..., 8 from 60% on."""

    start: int = 0
    every: float = 100
    unit: Unit = "steps"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InputError(f"grid level schedule: unit must be one of {UNITS}, got {self.unit!r}")
        if self.start < 0:
            raise InputError(f"grid_levels_start must be >= 0, got {self.start}")
        if self.unit == "steps" and not (self.every >= 1 and float(self.every).is_integer()):
            raise InputError(f"grid_levels_every counts steps (grid_levels_unit: steps) and must be "
                             f"a positive integer, got {self.every}")
        if self.unit == "progress" and not 0 < self.every <= 1:
            raise InputError(f"grid_levels_every is a fraction of the run (grid_levels_unit: "
                             f"progress) and must be in (0, 1], got {self.every} "
                             "(to count steps set grid_levels_unit: steps)")

    def levels_at(self, info: StepInfo) -> int | None:
        """Active levels at the step ``info``, or None when the schedule is off."""
        if self.start <= 0:
            return None
        return self.start + whole_periods(info.position(self.unit), self.every, self.unit)


def grid_levels(field: nn.Module) -> tuple[int, int] | None:
    """(active, all) levels of the field's first grid encoding; None without one."""
    for module in field.modules():
        if isinstance(module, MultiResolutionGrid):
            return int(module.active_levels), module.levels
    return None


class FieldTask:
    """Base of single-shape tasks: trains one field's parameters at one learning rate.

    ``self.data`` holds the prepared input's tensors on ``device``. Subclasses implement
    ``step_loss(step, generator)``, the loss of one step (see ``loss`` of
    :class:`isofield.train.loop.TrainTask`). It is a :class:`~isofield.train.loop.ScheduledTask`:
    :meth:`set_progress` applies the coarse-to-fine level schedule and keeps the step's
    :class:`~isofield.train.schedules.StepInfo` in ``self.at`` for a subclass's own schedules
    (:meth:`scheduled_values`).
    """

    def __init__(self, field: nn.Module, data: PreparedInput, options: Any, device: torch.device,
                 lr: float, levels: LevelSchedule = LevelSchedule()) -> None:
        self.field = field
        self.data = {name: tensor.to(device) for name, tensor in data.tensors.items()}
        self.options = options
        self.device = device
        self.lr = lr
        self.levels = levels
        self.at = StepInfo(0, 0.0)

    def set_progress(self, info: StepInfo) -> dict[str, float]:
        self.at = info
        values = dict(self.scheduled_values())
        count = self.levels.levels_at(info)
        if count is not None and grid_levels(self.field) is not None:
            set_active_levels(self.field, count)
            values["grid_levels"] = float(grid_levels(self.field)[0])
        return values

    def scheduled_values(self) -> Mapping[str, float]:
        """A subclass's scheduled factors at ``self.at``, by name (logged); none here."""
        return {}

    def loss(self, step: int, generator: torch.Generator) -> Mapping[str, torch.Tensor]:
        return self.step_loss(step, generator)

    def step_loss(self, step: int, generator: torch.Generator) -> Mapping[str, torch.Tensor]:
        raise NotImplementedError

    def modules(self) -> Mapping[str, nn.Module]:
        return {"field": self.field}

    def param_groups(self) -> list[ParamGroup]:
        return [ParamGroup("field", list(self.field.parameters()), self.lr)]


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method instance to the registry under ``method.name``."""
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called ``name``; an unknown name is an InputError."""
    import isofield.methods  # noqa: F401  (registers the built-in methods)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method {name!r} (known: {', '.join(method_names())})") from None


def method_names() -> list[str]:
    import isofield.methods  # noqa: F401

    return sorted(_REGISTRY)
