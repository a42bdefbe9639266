"""The typed configuration of a ShapeGF run (``method: shapegf`` in ``isofield train CONFIG``).

Layers, later ones winning: the dataclass defaults < the preset (:data:`PRESETS`) < the user's
YAML file < keyword overrides (:func:`isofield.train.settings.resolve_layers`); unknown keys and
wrong types are errors (:func:`isofield.config.from_dict`). Paths (``data``, ``split``) are
stored absolute.

Noise levels: ``noise.levels`` values of σ in a geometric sequence from ``noise.sigma_max`` down
to ``noise.sigma_min`` (ShapeGF: 10 levels from 1 to 0.01), in canonical units (the shapes of an
isofield/DeepSDF data directory fill the unit sphere).

Presets (:data:`PRESETS`):

- ``paper``: ShapeGF's auto-encoder on ShapeNet: codes of 128, a 4-layer PointNet to 512
  features, a score network of 256 wide, 2,048 points in and 2,048 noisy points per shape, 32
  shapes per step, Adam at 1e-3; Langevin with 10 steps per level.
- ``cpu``: sized for 180 procedural chairs in about 20 minutes on 2 CPU cores (see the notes of
  the preset below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from isofield.errors import InputError
from isofield.train.settings import TrainConfig, resolve_layers

METHOD = "shapegf"


@dataclass
class NoiseConfig:
    sigma_max: float = 1.0
    sigma_min: float = 0.01
    levels: int = 10


@dataclass
class PointNetEncoderConfig:
    widths: list[int] = _field(default_factory=lambda: [128, 128, 256, 512])
    """per-point MLP widths of the PointNet (isofield.nn.pointnet)"""
    head: list[int] = _field(default_factory=lambda: [256])
    """hidden widths from the pooled feature to the code"""


@dataclass
class ScoreConfig:
    hidden: int = 256
    blocks: int = 4


@dataclass
class LangevinConfig:
    steps_per_level: int = 10
    step_ratio: float = 0.2
    """α_k = step_ratio · σ_k²: each step x += α/2 · g + sqrt(α) · ξ"""
    denoise: bool = True
    """a last noise-free step x += σ_min² · g(x, σ_min) (Tweedie's estimate of the clean points)"""


@dataclass
class LatentConfig:
    kind: Literal["gan", "gmm"] = "gan"
    """the second stage over the training codes: latent WGAN-GP (ShapeGF) or a Gaussian mixture"""
    options: dict = _field(default_factory=dict)
    """keyword options of isofield.nn.latent.fit_latent_model for that kind"""


@dataclass
class SurfaceConfig:
    level: float = 0.025
    """the mesh is the level set {d = level} of the distance estimate d (a thin shell)"""
    reach: float = 1.0
    """a level σ's estimate is used where it is at most reach · σ (where that level was trained)"""
    band: float = 0.05
    """the field's estimate is used within this distance of the Langevin surface points"""
    gate_points: int = 20000
    """points sampled on the surface to find the band"""
    resolution: int = 128
    padding: float = 0.1


@dataclass
class ShapeGFConfig:
    method: str = METHOD
    preset: str = "cpu"
    data: str = ""
    """a data directory with surface samples (isofield preprocess, or DeepSDF's own)"""
    split: Optional[str] = None
    """DeepSDF split JSON of the training shapes; default every shape of ``data``"""
    latent_dim: int = 128
    points_per_shape: int = 10000
    """surface points kept in memory per shape; inputs and targets are drawn from them"""
    input_points: int = 2048
    """points per shape given to the encoder at each step"""
    target_points: int = 2048
    """points per shape perturbed with noise at each step"""
    shapes_per_batch: int = 32
    seed: int = 0
    device: str = "auto"
    noise: NoiseConfig = _field(default_factory=NoiseConfig)
    encoder: PointNetEncoderConfig = _field(default_factory=PointNetEncoderConfig)
    score: ScoreConfig = _field(default_factory=ScoreConfig)
    langevin: LangevinConfig = _field(default_factory=LangevinConfig)
    latent: LatentConfig = _field(default_factory=LatentConfig)
    surface: SurfaceConfig = _field(default_factory=SurfaceConfig)
    train: TrainConfig = _field(default_factory=TrainConfig)


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "latent_dim": 128, "input_points": 2048, "target_points": 2048, "shapes_per_batch": 32,
        "score": {"hidden": 256, "blocks": 4},
        "train": {"steps": 100_000, "lr": 1e-3, "log_every": 100, "checkpoint_every": 5000,
                  "checkpoint_every_seconds": 600.0},
    },
    # 2 CPU cores: a 128-wide score network, 1,024 input and 512 noisy points per shape, 16
    # shapes per step.
    "cpu": {
        "latent_dim": 128, "input_points": 1024, "target_points": 512, "shapes_per_batch": 16,
        "encoder": {"widths": [64, 128, 256], "head": [256]},
        "score": {"hidden": 128, "blocks": 4},
        "train": {"steps": 8000, "lr": 1e-3,
                  "schedule": {"name": "step", "every": 0.375, "factor": 0.5, "unit": "progress"}},
    },
}


def resolve_config(layers: list[Mapping[str, Any]]) -> ShapeGFConfig:
    """Merge ``layers`` (lowest first) over the preset they name, validate, make paths absolute.

    Raises:
        InputError: an unknown key or preset, a wrong type, or a value out of range.
    """
    config = resolve_layers(ShapeGFConfig, layers, PRESETS)
    if config.method != METHOD:
        raise InputError(f"config.method: expected {METHOD!r}, got {config.method!r}")
    _check_values(config)
    config.data = str(Path(config.data).resolve())
    config.split = None if config.split is None else str(Path(config.split).resolve())
    return config


def sigma_levels(noise: NoiseConfig) -> list[float]:
    """The noise levels, largest first: geometric from sigma_max to sigma_min."""
    if noise.levels == 1:
        return [noise.sigma_max]
    ratio = (noise.sigma_min / noise.sigma_max) ** (1.0 / (noise.levels - 1))
    return [noise.sigma_max * ratio ** k for k in range(noise.levels)]


def _check_values(config: ShapeGFConfig) -> None:
    """Raise InputError naming the first value out of range."""
    if not config.data:
        raise InputError("config.data: give the data directory to train on")
    at_least = [
        ("latent_dim", config.latent_dim, 1), ("points_per_shape", config.points_per_shape, 16),
        ("input_points", config.input_points, 1), ("target_points", config.target_points, 1),
        ("shapes_per_batch", config.shapes_per_batch, 1), ("noise.levels", config.noise.levels, 1),
        ("score.hidden", config.score.hidden, 1), ("score.blocks", config.score.blocks, 0),
        ("langevin.steps_per_level", config.langevin.steps_per_level, 1),
        ("surface.resolution", config.surface.resolution, 8),
        ("surface.gate_points", config.surface.gate_points, 1),
    ]
    for name, value, low in at_least:
        if value is not None and value < low:
            raise InputError(f"config.{name} must be at least {low}, got {value}")
    positive = [
        ("noise.sigma_max", config.noise.sigma_max), ("noise.sigma_min", config.noise.sigma_min),
        ("langevin.step_ratio", config.langevin.step_ratio), ("surface.level", config.surface.level),
        ("surface.reach", config.surface.reach), ("surface.band", config.surface.band),
    ]
    for name, value in positive:
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"config.{name} must be a positive finite number, got {value}")
    if config.noise.sigma_min > config.noise.sigma_max:
        raise InputError(f"config.noise: sigma_min ({config.noise.sigma_min}) exceeds sigma_max "
                         f"({config.noise.sigma_max})")
    if config.input_points > config.points_per_shape or config.target_points > config.points_per_shape:
        raise InputError(f"config: input_points and target_points must not exceed points_per_shape "
                         f"({config.points_per_shape})")
    if not 0 <= config.surface.padding < math.inf:
        raise InputError(f"config.surface.padding must be >= 0, got {config.surface.padding}")
    for name, widths in [("encoder.widths", config.encoder.widths), ("encoder.head", config.encoder.head)]:
        if min(widths, default=1) < 1 or (name == "encoder.widths" and not widths):
            raise InputError(f"config.{name} must be a list of positive integers, got {widths}")
