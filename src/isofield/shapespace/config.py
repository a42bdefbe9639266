"""The typed configuration of a shape-space run (``isofield train CONFIG``, ``config.yaml`` of a run).

Layers, later ones winning: the dataclass defaults < the chosen preset (:data:`PRESETS`) < the
user's YAML file < keyword overrides. Unknown keys and wrong types are errors
(:func:`isofield.config.from_dict`). The resolved config spells out the decoder in full
(:func:`isofield.nn.resolve_field_config`) and the code initialisation, so a run survives later
changes of the presets.

Paths (``data``, ``split``) are read relative to the current directory and stored absolute.

Counting: ``train.unit`` says what ``train.steps`` and the two learning-rate schedules count:
``steps`` (optimiser steps) or ``epochs`` (DeepSDF's unit: one epoch is
``ceil(N / shapes_per_batch)`` steps for N training shapes); a schedule with ``unit: progress``
counts fractions of the run instead (:mod:`isofield.train.schedules`), as the ``cpu`` preset's
do (halved every quarter: every 3,000 of its 12,000 steps), so that a time budget goes through
them. The ``paper`` preset keeps DeepSDF's schedule in epochs. ``train.log_every``,
``train.checkpoint_every`` and ``reconstruction_every`` always count steps.

Code prior, compared with DeepSDF's code (``train_deep_sdf.py``): isofield minimises
``mean |clamp(f(x, z_i), δ) - clamp(s, δ)| + (1 / σ²) · mean_i ‖z_i‖²`` over a batch, the paper's
Gaussian prior ``N(0, σ² I)`` on the codes. DeepSDF's code adds
``CodeRegularizationLambda · mean_i ‖z_i‖`` (the norm, not its square, ramped in over the first
100 epochs) and caps ‖z_i‖ at ``CodeBound``. The paper preset takes ``1 / σ² = 1e-4`` (σ = 100),
DeepSDF's λ, so both pull a code of norm 1/2 back equally hard (gradients ``2 z / σ²`` and
``λ z / ‖z‖``), and keeps the bound (``code_bound: 1.0``). Codes start as ``N(0, code_init_std²)``
per component; DeepSDF's code uses ``CodeInitStdDev / sqrt(L) = 1 / sqrt(L)`` (the paper says
``N(0, 0.01²)``), the default here (``code_init_std: null``).

Presets (:data:`PRESETS`):

- ``paper``: DeepSDF's chairs experiment. Every SDF sample is kept in memory (on the training
  device): 16 bytes per sample, e.g. 180 shapes x 500,000 samples = 1.4 GB; cap it with
  ``max_samples_per_shape``. DeepSDF's dropout (0.2 on every layer) and final tanh are left out
  (isofield's MLP has neither; with the prediction clamped to ±δ the tanh changes little).
- ``cpu``: chosen by measurement on 180 procedural chairs (``isofield shapes chairs``,
  resolution 128, 100,000 SDF samples each, 50,000 kept), 2 cores: a 4x128 decoder costs
  6.3 µs per sample and step (0.10 s per step of 16 shapes x 1024 samples), 5x256 16 µs,
  DeepSDF's 8x512 99 µs; at equal compute (about 250 core-seconds) 4x128 reached a clamped-L1
  loss of 0.0061 where 5x256 reached 0.0168. The full preset (12,000 steps, 1,000 epochs)
  used 3,180 CPU-seconds on both threads, pictures included: about 27 minutes on 2 idle
  cores. Loss (mean over the last 500 steps) 0.0129 at step 1,000, 0.0062 at 3,000, 0.0028
  at 12,000; four training chairs meshed at resolution 128 from their codes: Chamfer-L1
  0.36-0.49% of the bounding-box diagonal, normal consistency 0.86-0.91, F-score 0.92-0.97.
  Geometric initialisation made no measurable difference (loss 0.0122 with, 0.0123 without,
  after 300 steps on 6 chairs); it is off, as in DeepSDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from isofield.config import from_dict, merge
from isofield.errors import InputError
from isofield.nn import resolve_field_config
from isofield.train.schedules import schedule_from_spec

METHODS = ("deepsdf",)
MIN_EXTRACT_RESOLUTION = 8
_WHOLE_TRAIN_KEYS = ("schedule_decoder", "schedule_codes")


@dataclass
class TrainConfig:
    steps: Optional[int] = None
    """stop after this many steps or epochs (see ``unit``), across resumes"""
    time_budget: Optional[float] = None
    """stop after this many seconds of training, across resumes"""
    unit: Literal["steps", "epochs"] = "steps"
    """what ``steps`` and the schedules count"""
    lr_decoder: float = 5e-4
    lr_codes: float = 1e-3
    schedule_decoder: dict = _field(default_factory=lambda: {"name": "constant"})
    """factor on lr_decoder (isofield.train.schedules.schedule_from_spec), in ``unit``"""
    schedule_codes: dict = _field(default_factory=lambda: {"name": "constant"})
    """factor on lr_codes, in ``unit``"""
    checkpoint_every: int = 1000
    """steps between numbered checkpoints"""
    checkpoint_every_seconds: float = 600.0
    keep_checkpoints: int = 3
    log_every: int = 10
    """steps between rows of losses.csv and code_history.csv"""


@dataclass
class ExtractConfig:
    resolution: int = 128
    """cells per axis of the final reconstructions"""
    progress_resolution: int = 64
    """cells per axis of the reconstructions drawn while training"""
    padding: float = 0.05
    """the grid covers [-1 - padding, 1 + padding]^3 of the canonical frame"""


@dataclass
class ShapeSpaceConfig:
    method: str = "deepsdf"
    preset: str = "cpu"
    data: str = ""
    """a DeepSDF data directory (isofield preprocess, or DeepSDF's own)"""
    split: Optional[str] = None
    """DeepSDF split JSON: the training shapes, in code order; default every shape of ``data``"""
    latent_dim: int = 256
    code_init_std: Optional[float] = None
    """codes start N(0, code_init_std^2) per component; null: 1 / sqrt(latent_dim)"""
    code_prior_sigma: float = 100.0
    """σ of the Gaussian code prior; the loss adds (1 / σ²) · mean ‖z‖²"""
    code_bound: Optional[float] = None
    """cap on ‖z‖ (DeepSDF's CodeBound, torch Embedding max_norm); null: none"""
    clamp: float = 0.1
    """δ: SDF values and predictions are clamped to [-δ, δ]"""
    shapes_per_batch: int = 64
    samples_per_shape: int = 16384
    """per step and shape: half drawn from the samples with sdf > 0, half from the others"""
    max_samples_per_shape: Optional[int] = None
    """samples kept in memory per shape (half with sdf > 0 where possible); null: all"""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda, cuda:N"""
    reconstruction_every: Optional[int] = None
    """steps between reconstruction pictures while training; null: only at the end"""
    reconstruction_shapes: int = 4
    """training shapes reconstructed in the pictures (evenly spread over the code indices)"""
    decoder: dict = _field(default_factory=dict)
    """overrides of the preset's decoder, an MLP (isofield.nn.build_field; latent_dim is set)"""
    train: TrainConfig = _field(default_factory=TrainConfig)
    extract: ExtractConfig = _field(default_factory=ExtractConfig)


PRESETS: dict[str, dict[str, Any]] = {
    # DeepSDF's chairs experiment (examples/chairs/specs.json): 8x512 ReLU MLP with weight norm and
    # the input re-read at layer 4, codes of 256 with norm at most 1, 64 shapes x 16384 samples
    # per step, Adam at 5e-4 (decoder) and 1e-3 (codes), both halved every 500 epochs, 2001 epochs.
    "paper": {
        "latent_dim": 256,
        "code_prior_sigma": 100.0,
        "code_bound": 1.0,
        "shapes_per_batch": 64,
        "samples_per_shape": 16384,
        "decoder": {"preset": "paper", "activation": "relu", "skip": [4], "weight_norm": True,
                    "geometric_init": False},
        "train": {"unit": "epochs", "steps": 2001, "lr_decoder": 5e-4, "lr_codes": 1e-3,
                  "schedule_decoder": {"name": "step", "every": 500, "factor": 0.5},
                  "schedule_codes": {"name": "step", "every": 500, "factor": 0.5},
                  "log_every": 100, "checkpoint_every": 10000},
        "extract": {"resolution": 256, "progress_resolution": 64},
    },
    # Sized for 2 CPU cores: 180 procedural chairs in about 30 minutes (see the module notes).
    "cpu": {
        "latent_dim": 64,
        "code_prior_sigma": 100.0,
        "code_bound": None,
        "shapes_per_batch": 16,
        "samples_per_shape": 1024,
        "max_samples_per_shape": 50_000,
        "decoder": {"preset": "paper", "hidden": 128, "depth": 4, "activation": "relu",
                    "skip": [2], "weight_norm": True, "geometric_init": False},
        "train": {"unit": "steps", "steps": 12000, "lr_decoder": 1e-3, "lr_codes": 2e-3,
                  "schedule_decoder": {"name": "step", "every": 0.25, "factor": 0.5, "unit": "progress"},
                  "schedule_codes": {"name": "step", "every": 0.25, "factor": 0.5, "unit": "progress"},
                  "log_every": 10, "checkpoint_every": 1000, "checkpoint_every_seconds": 60.0},
        "reconstruction_every": 1000,
        "extract": {"resolution": 128, "progress_resolution": 48},
    },
}


def steps_per_epoch(num_shapes: int, shapes_per_batch: int) -> int:
    """Steps of one epoch, which draws every shape once on average: ``ceil(N / min(B, N))``."""
    return math.ceil(num_shapes / min(shapes_per_batch, num_shapes))


def resolve_config(layers: list[Mapping[str, Any]]) -> ShapeSpaceConfig:
    """Merge ``layers`` (lowest first) over the preset they name; validate; resolve the decoder.

    Raises:
        InputError: an unknown key, preset or method, a wrong type, or a value out of range
            (the message names the key).
    """
    merged: dict = {}
    for layer in layers:
        merged = _merge(merged, layer)
    preset = merged.get("preset", ShapeSpaceConfig.preset)
    if preset not in PRESETS:
        raise InputError(f"config: unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
    config = from_dict(ShapeSpaceConfig, _merge(PRESETS[preset], merged))
    if config.method not in METHODS:
        raise InputError(f"config.method: unknown shape-space method {config.method!r} "
                         f"(known: {', '.join(METHODS)})")
    _check_values(config)
    config.decoder = _resolve_decoder(config.decoder, config.latent_dim)
    if config.code_init_std is None:
        config.code_init_std = 1.0 / math.sqrt(config.latent_dim)
    config.data = str(Path(config.data).resolve())
    config.split = None if config.split is None else str(Path(config.split).resolve())
    return config


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """:func:`isofield.config.merge`, except that a schedule given in ``override`` replaces the
    one in ``base`` whole (a ``step`` schedule's keys mean nothing to a ``cosine`` one)."""
    out = merge(base, override)
    train = override.get("train")
    for key in _WHOLE_TRAIN_KEYS:
        if isinstance(train, Mapping) and key in train:
            out["train"][key] = train[key]
    return out


def _resolve_decoder(decoder: dict, latent_dim: int) -> dict:
    """The decoder section written out in full, with ``latent_dim`` taken from the config."""
    if decoder.get("latent_dim", latent_dim) != latent_dim:
        raise InputError(f"config.decoder.latent_dim ({decoder['latent_dim']}) differs from "
                         f"config.latent_dim ({latent_dim}); set latent_dim only")
    try:
        return resolve_field_config({**decoder, "latent_dim": latent_dim})
    except InputError as exc:
        raise InputError(f"config.decoder: {exc}") from None


def _check_values(config: ShapeSpaceConfig) -> None:
    """Raise InputError naming the first value out of range."""
    if not config.data:
        raise InputError("config.data: give the DeepSDF data directory to train on")
    train, extract = config.train, config.extract
    if train.steps is None and train.time_budget is None:
        raise InputError("config.train: give a training limit, steps or time_budget")
    checks = [
        ("latent_dim", config.latent_dim, 1),
        ("shapes_per_batch", config.shapes_per_batch, 1),
        ("samples_per_shape", config.samples_per_shape, 2),
        ("max_samples_per_shape", config.max_samples_per_shape, 2),
        ("reconstruction_every", config.reconstruction_every, 1),
        ("reconstruction_shapes", config.reconstruction_shapes, 0),
        ("train.steps", train.steps, 1),
        ("train.checkpoint_every", train.checkpoint_every, 1),
        ("train.keep_checkpoints", train.keep_checkpoints, 0),
        ("train.log_every", train.log_every, 1),
        ("extract.resolution", extract.resolution, MIN_EXTRACT_RESOLUTION),
        ("extract.progress_resolution", extract.progress_resolution, MIN_EXTRACT_RESOLUTION),
    ]
    for name, value, low in checks:
        if value is not None and value < low:
            raise InputError(f"config.{name} must be at least {low}, got {value}")
    positive = [
        ("code_prior_sigma", config.code_prior_sigma),
        ("code_bound", config.code_bound),
        ("clamp", config.clamp),
        ("train.time_budget", train.time_budget),
        ("train.lr_decoder", train.lr_decoder),
        ("train.lr_codes", train.lr_codes),
        ("train.checkpoint_every_seconds", train.checkpoint_every_seconds),
    ]
    for name, value in positive:
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"config.{name} must be a positive finite number, got {value}")
    if config.code_init_std is not None and not 0 <= config.code_init_std < math.inf:
        raise InputError(f"config.code_init_std must be >= 0, got {config.code_init_std}")
    for name in ("schedule_decoder", "schedule_codes"):
        try:
            schedule_from_spec(getattr(train, name))
        except InputError as exc:
            raise InputError(f"config.train.{name}: {exc}") from None
    if not 0 <= extract.padding < math.inf:
        raise InputError(f"config.extract.padding must be >= 0, got {extract.padding}")
