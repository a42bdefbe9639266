"""The typed configuration of a fit (``config.yaml`` in a run directory).

Layers, later ones winning: :data:`DEFAULTS` < the method's preset < a user's YAML file < keyword
arguments / command-line flags. Unknown keys are errors (see :mod:`isofield.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field as _field
from typing import Any, Literal, Mapping, Optional

from isofield.config import from_dict, merge
from isofield.errors import InputError
from isofield.methods.base import LevelSchedule
from isofield.nn import resolve_field_config
from isofield.train.averaging import check_average_decay
from isofield.train.settings import SCHEDULE_UNIT_KEYS, TrainConfig, check_train_config, without_replaced

_UNIT_KEYS = {**SCHEDULE_UNIT_KEYS, "grid_levels_every": "grid_levels_unit"}


@dataclass
class FitTrainConfig(TrainConfig):
    """The shared ``train`` section, plus the coarse-to-fine schedule of grid encodings and the
    weight average the outputs are made with."""

    checkpoint_every: int = 500
    grid_levels_start: int = 0
    """coarse-to-fine: grid levels used at the first step (0: all from the start)"""
    grid_levels_every: float = 100
    """coarse-to-fine: steps (or fraction of the run, see grid_levels_unit) between adding one
    grid level"""
    grid_levels_unit: Literal["steps", "progress"] = "steps"
    """what grid_levels_every counts: steps, or progress (fractions of the run's steps or time
    budget; isofield.train.schedules)"""
    ema_decay: Optional[float] = None
    """keep an exponential moving average of the field's weights with this decay, in (0, 1), and
    make the mesh and the report with it (isofield.train.averaging; None: the trained weights)"""


@dataclass
class ExtractConfig:
    resolution: int = 256
    """grid samples per axis of the final mesh"""
    method: Literal["sparse", "mise", "dense"] = "sparse"
    padding: float = 0.05
    """the grid covers [-1 - padding, 1 + padding]^3 of the canonical frame"""


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
    """Merge ``layers`` (lowest first), insert the chosen preset under them, validate.

    The preset is named by the merged ``preset`` key; its overrides sit just above the defaults.
    A spec with a ``name`` (a schedule) given in a layer replaces the preset's whole, so that
    ``{"name": "constant"}`` over a preset's step schedule does not inherit its ``every``; a
    schedule position given without its unit counts steps (:func:`without_replaced`).
    """
    merged: dict = {}
    for layer in layers:
        merged = merge(merged, layer)
    preset = merged.get("preset", FitConfig.preset)
    if preset not in method_presets:
        raise InputError(
            f"unknown preset {preset!r} for method {merged.get('method', FitConfig.method)!r} "
            f"(known: {', '.join(sorted(method_presets))})"
        )
    base = without_replaced(method_presets[preset], merged, _UNIT_KEYS)
    config = from_dict(FitConfig, merge(base, merged))
    # Spell the network out in full, so that the run survives later changes of the presets.
    config.field = resolve_field_config(config.field)
    check_train_config(config.train)
    try:
        level_schedule(config.train)
    except InputError as exc:
        raise InputError(f"config.train: {exc}") from None
    if config.train.ema_decay is not None:
        try:
            check_average_decay(config.train.ema_decay)
        except InputError as exc:
            raise InputError(f"config.train.{exc}") from None
    return config


def level_schedule(train: FitTrainConfig) -> LevelSchedule:
    """The coarse-to-fine schedule of grid levels of the ``train`` section."""
    return LevelSchedule(train.grid_levels_start, train.grid_levels_every, train.grid_levels_unit)


