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
from isofield.nn import set_active_levels
from isofield.train.loop import ParamGroup, TrainTask


@dataclass
class PreparedInput:
    """A method's training data, already in the canonical frame.

    Attributes:
        tensors: named CPU tensors the task trains on, e.g. ``points (N, 3)``, ``normals (N, 3)``.
        normalization: maps the canonical frame back to the user's coordinates.
        description: one line about what was read, for the log and the report.
    """

    tensors: dict[str, torch.Tensor]
    normalization: Normalization
    description: str


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


@dataclass(frozen=True)
class LevelSchedule:
    """Coarse-to-fine training of grid encodings: ``start`` levels at step 0, one more every
    ``every`` steps; ``start = 0`` uses every level from the beginning."""

    start: int = 0
    every: int = 100

    def __post_init__(self) -> None:
        if self.start < 0 or self.every < 1:
            raise InputError(f"grid level schedule: start must be >= 0 and every >= 1, got {self.start}, {self.every}")

    def levels_at(self, step: int) -> int | None:
        """Active levels at ``step``, or None when the schedule is off."""
        return None if self.start <= 0 else self.start + step // self.every


class FieldTask:
    """Base of single-shape tasks: trains one field's parameters at one learning rate.

    ``self.data`` holds the prepared input's tensors on ``device``. Subclasses implement
    ``step_loss(step, generator)``, the loss of one step (see ``loss`` of
    :class:`isofield.train.loop.TrainTask`); :meth:`loss` first applies the coarse-to-fine
    level schedule.
    """

    def __init__(self, field: nn.Module, data: PreparedInput, options: Any, device: torch.device,
                 lr: float, levels: LevelSchedule = LevelSchedule()) -> None:
        self.field = field
        self.data = {name: tensor.to(device) for name, tensor in data.tensors.items()}
        self.options = options
        self.device = device
        self.lr = lr
        self.levels = levels

    def loss(self, step: int, generator: torch.Generator) -> Mapping[str, torch.Tensor]:
        count = self.levels.levels_at(step)
        if count is not None:
            set_active_levels(self.field, count)
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
