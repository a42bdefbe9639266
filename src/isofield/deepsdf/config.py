"""The typed configuration of a DeepSDF shape space (``isofield train CONFIG``, ``config.yaml`` of a run).

Layers, later ones winning: the dataclass defaults < the chosen preset (:data:`PRESETS`) < the
user's YAML file < keyword overrides (:func:`isofield.train.settings.resolve_layers`, shared by
every family). Unknown keys and wrong types are errors (:func:`isofield.config.from_dict`). The
resolved config spells out the decoder in full (:func:`isofield.nn.resolve_field_config`), the
code initialisation and each parameter group's learning rate and schedule, so a run survives
later changes of the presets.

Paths (``data``, ``split``) are read relative to the current directory and stored absolute.

Counting: ``train.unit`` says what ``train.steps`` and the learning-rate schedules count:
``steps`` (optimiser steps) or ``epochs`` (DeepSDF's unit: one epoch is
``ceil(N / shapes_per_batch)`` steps for N training shapes); a schedule with ``unit: progress``
counts fractions of the run instead (:mod:`isofield.train.schedules`), as the ``cpu`` preset's
does, so that a time budget goes through it. ``train.log_every``, ``train.checkpoint_every`` and
``reconstruction_every`` always count steps.

Parameter groups: the decoder and the codes train with ``train.lr_decoder`` / ``train.lr_codes``
and ``train.schedule_decoder`` / ``train.schedule_codes``; a group without its own takes
``train.lr`` / ``train.schedule``.

Code prior: isofield minimises ``mean |clamp(f(x, z_i), δ) - clamp(s, δ)| + (1 / σ²) · mean_i
‖z_i‖²`` over a batch, the paper's Gaussian prior ``N(0, σ² I)`` on the codes; ``code_bound``
caps ‖z_i‖ (DeepSDF's ``CodeBound``). Codes start as ``N(0, code_init_std²)`` per component,
by default ``1 / sqrt(latent_dim)``. How this compares with DeepSDF's code, and how the ``cpu``
preset was chosen: ``docs/deepsdf-ablations.md``.

Presets (:data:`PRESETS`):

- ``paper``: DeepSDF's chairs experiment. Every SDF sample is kept in memory (on the training
  device): 16 bytes per sample, e.g. 180 shapes x 500,000 samples = 1.4 GB; cap it with
  ``max_samples_per_shape``. DeepSDF's dropout and final tanh are left out.
- ``cpu``: a 4x128 decoder that reads the point's sin/cos features at 6 octaves (``2^k π x``,
  k = 0..5, :class:`~isofield.nn.FourierFeatures`) beside the point and the code, and small
  batches; sized for 2 CPU cores (20-30 minutes). The features let it keep the thin parts of
  chairs (slats, rails, spindles, the gaps between them) that a plain ReLU decoder blurs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

from isofield.errors import InputError
from isofield.extract.settings import MIN_RESOLUTION, ExtractConfig, check_extract_config
from isofield.nn import resolve_field_config
from isofield.train.settings import TrainConfig, resolve_layers

METHODS = ("deepsdf",)


@dataclass
class DeepSDFTrainConfig(TrainConfig):
    """The shared ``train`` section with two parameter groups, the decoder and the codes."""

    groups: ClassVar[tuple[str, ...]] = ("decoder", "codes")
    lr: float = 5e-4
    lr_decoder: Optional[float] = None
    """the decoder's base learning rate (null: lr)"""
    lr_codes: Optional[float] = None
    """the codes' base learning rate (null: lr)"""
    schedule_decoder: Optional[dict] = None
    """factor on lr_decoder (isofield.train.schedules.schedule_from_spec), in ``unit`` (null: schedule)"""
    schedule_codes: Optional[dict] = None
    """factor on lr_codes, in ``unit`` (null: schedule)"""
    checkpoint_every_seconds: float = 600.0


@dataclass
class ShapeSpaceExtractConfig(ExtractConfig):
    """The shared ``extract`` section, plus the resolution of the pictures drawn while training."""

    resolution: int = 128
    progress_resolution: int = 64
    """cells per axis of the reconstructions drawn while training"""


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
    train: DeepSDFTrainConfig = _field(default_factory=DeepSDFTrainConfig)
    extract: ShapeSpaceExtractConfig = _field(default_factory=ShapeSpaceExtractConfig)


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
        "train": {"unit": "epochs", "steps": 2001, "lr": 5e-4, "lr_codes": 1e-3,
                  "schedule": {"name": "step", "every": 500, "factor": 0.5},
                  "log_every": 100, "checkpoint_every": 10000},
        "extract": {"resolution": 256, "progress_resolution": 64},
    },
    # Sized for 2 CPU cores (20-30 minutes); Fourier features keep thin parts (docs/deepsdf-ablations.md).
    "cpu": {
        "latent_dim": 64,
        "code_prior_sigma": 100.0,
        "code_bound": None,
        "shapes_per_batch": 16,
        "samples_per_shape": 1024,
        "max_samples_per_shape": 50_000,
        "decoder": {"preset": "paper", "hidden": 128, "depth": 4, "activation": "relu",
                    "skip": [2], "weight_norm": True, "geometric_init": False,
                    "encoding": {"type": "fourier", "num_frequencies": 6, "include_input": False}},
        "train": {"unit": "steps", "steps": 12000, "lr": 2e-3, "lr_codes": 4e-3,
                  "schedule": {"name": "cosine", "end": 1.0, "final_factor": 0.02, "unit": "progress"},
                  "log_every": 10, "checkpoint_every": 1000, "checkpoint_every_seconds": 60.0},
        "reconstruction_every": 1000,
        "extract": {"resolution": 128, "progress_resolution": 48},
    },
}


def resolve_config(layers: list[Mapping[str, Any]]) -> ShapeSpaceConfig:
    """Merge ``layers`` (lowest first) over the preset they name; validate; resolve the decoder.

    Raises:
        InputError: an unknown key, preset or method, a wrong type, or a value out of range
            (the message names the key).
    """
    config = resolve_layers(ShapeSpaceConfig, layers, PRESETS)
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
    checks = [
        ("latent_dim", config.latent_dim, 1),
        ("shapes_per_batch", config.shapes_per_batch, 1),
        ("samples_per_shape", config.samples_per_shape, 2),
        ("max_samples_per_shape", config.max_samples_per_shape, 2),
        ("reconstruction_every", config.reconstruction_every, 1),
        ("reconstruction_shapes", config.reconstruction_shapes, 0),
        ("extract.progress_resolution", config.extract.progress_resolution, MIN_RESOLUTION),
    ]
    for name, value, low in checks:
        if value is not None and value < low:
            raise InputError(f"config.{name} must be at least {low}, got {value}")
    positive = [
        ("code_prior_sigma", config.code_prior_sigma),
        ("code_bound", config.code_bound),
        ("clamp", config.clamp),
    ]
    for name, value in positive:
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"config.{name} must be a positive finite number, got {value}")
    if config.code_init_std is not None and not 0 <= config.code_init_std < math.inf:
        raise InputError(f"config.code_init_std must be >= 0, got {config.code_init_std}")
    check_extract_config(config.extract)
