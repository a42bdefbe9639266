"""The typed configuration of a fit (``config.yaml`` in a run directory).

Layers, later ones winning: the dataclass defaults < the method's preset < a user's YAML file <
keyword arguments / command-line flags (:func:`isofield.train.settings.resolve_layers`, shared by
every family). Unknown keys are errors (see :mod:`isofield.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field as _field
from typing import Any, Literal, Mapping, Optional

from isofield.errors import InputError
from isofield.extract.settings import ExtractConfig, check_extract_config
from isofield.methods.base import LevelSchedule
from isofield.nn import resolve_field_config
from isofield.train.settings import TrainConfig, resolve_layers


@dataclass
class FitTrainConfig(TrainConfig):
    """The shared ``train`` section, in steps (one shape: no epochs), plus the coarse-to-fine
    schedule of grid encodings."""

    unit: Literal["steps"] = "steps"
    checkpoint_every: int = 500
    grid_levels_start: int = 0
    """coarse-to-fine: grid levels used at the first step (0: all from the start)"""
    grid_levels_every: float = 100
    """coarse-to-fine: steps (or fraction of the run, see grid_levels_unit) between adding one
    grid level"""
    grid_levels_unit: Literal["steps", "progress"] = "steps"
    """what grid_levels_every counts: steps, or progress (fractions of the run's steps or time
    budget; isofield.train.schedules)"""


@dataclass
class FitConfig:
    method: str = "igr"
    preset: str = "fast"
    input: str = ""
    reference: Optional[str] = None
    """a mesh to evaluate against (user coordinates); default: the input when it is a mesh"""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda, cuda:N"""
    field: dict = _field(default_factory=dict)
    """network (isofield.nn.build_field): {"preset": "fast" | "paper", ...overrides}"""
    options: dict = _field(default_factory=dict)
    """the method's own options (e.g. isofield.methods.igr.IGROptions)"""
    train: FitTrainConfig = _field(default_factory=FitTrainConfig)
    extract: ExtractConfig = _field(default_factory=ExtractConfig)


def chosen_method(flag: str | None, file_layer: Mapping[str, Any]) -> str:
    """The fit's method: the flag / keyword argument when given, else the config file's, else
    the default (the flag wins over the file like every other layer)."""
    if flag is not None:
        return flag
    method = file_layer.get("method", FitConfig.method)
    return method if isinstance(method, str) else repr(method)


def resolve_config(method_presets: Mapping[str, Mapping[str, Any]], layers: list[Mapping[str, Any]]) -> FitConfig:
    """Merge ``layers`` (lowest first) over the chosen preset of the method, validate
    (:func:`isofield.train.settings.resolve_layers`, which also says what a layer's schedule or
    grid-level position replaces); spell the network out.
    """
    config = resolve_layers(FitConfig, layers, method_presets,
                            unit_keys={"grid_levels_every": "grid_levels_unit"})
    # Spell the network out in full, so that the run survives later changes of the presets.
    config.field = resolve_field_config(config.field)
    check_extract_config(config.extract)
    try:
        level_schedule(config.train)
    except InputError as exc:
        raise InputError(f"config.train: {exc}") from None
    return config


def level_schedule(train: FitTrainConfig) -> LevelSchedule:
    """The coarse-to-fine schedule of grid levels of the ``train`` section."""
    return LevelSchedule(train.grid_levels_start, train.grid_levels_every, train.grid_levels_unit)


