"""The typed configuration of an encoder-decoder shape space: ``method: onet``, ``convonet`` or
``sald-vae`` in ``isofield train CONFIG``.

Layers, later ones winning: the dataclass defaults < the method's preset (:data:`PRESETS`) < the
user's YAML file < keyword overrides (:func:`isofield.train.settings.resolve_layers`); unknown keys
and wrong types are errors (:func:`isofield.config.from_dict`). Paths (``data``, ``split``) are
stored absolute; a split may also be the name of ONet's ``.lst`` files (``train``, ``val``,
``test``).

What the network sees (``input.kind``):

- ``pointcloud``: ``input.points`` points drawn from the shape's ``pointcloud.npz`` with
  Gaussian noise of standard deviation ``input.noise`` (ONet's point-cloud completion: 300 points,
  σ = 0.005 in the unit-cube frame); a new draw every step, a fixed seeded draw at test time.
- ``image``: one of the shape's rendered views (``img/``), resized to ``input.image_size``.
- ``none``: nothing; with ``latent_dim > 0`` this is ONet's unconditional VAE.

``latent_dim > 0`` adds ONet's VAE: q(z | occupancy points, c) gives μ and log σ, the decoder
sees z = μ + σ ε in training (through every conditional batch norm) and the loss adds
``kl_weight`` · KL(q ‖ N(0, I)), the weight rising linearly from 0 over the first ``kl_warmup``
steps (or fraction of the run), with the first ``kl_free_nats`` of each latent dimension free.

Presets (:data:`PRESETS`, by ``preset`` and method):

- ``paper``: ONet's point-cloud completion (ResNet-PointNet to 512, CBN decoder of 256 with 5
  blocks, 2,048 points per shape, 64 shapes per step, Adam at 1e-4) and ConvONet's three-plane
  model (32 features, 64² planes, U-Net of depth 4, local decoder of 32 with 5 blocks, 32 shapes
  per step).
- ``cpu``: the same models narrowed for 2 CPU cores (see :data:`PRESETS`).

``sald-vae`` (the SALD paper's shape space over raw scans) is a VAE whose encoder is a PointNet
over the input cloud (μ and log σ), whose decoder is an SDF MLP f(x, z) (geometric init), trained
with the SAL / SALD losses on each shape's unsigned-distance pool (``sign_agnostic``, drawn from
its surface points without normals) plus ``kl_weight`` · KL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from isofield.errors import InputError
from isofield.train.schedules import StepInfo
from isofield.train.settings import TrainConfig, resolve_layers

METHODS = ("onet", "convonet", "sald-vae")
PLANES = ("xy", "xz", "yz")


@dataclass
class InputConfig:
    kind: Literal["pointcloud", "image", "none"] = "pointcloud"
    points: int = 300
    """points per input cloud"""
    noise: float = 0.005
    """standard deviation of the Gaussian noise on the input points, canonical (unit-cube) units"""
    image_size: int = 64
    """side of the square images given to the image encoder (views are resized to it)"""


@dataclass
class EncoderConfig:
    kind: Literal["resnet-pointnet", "pointnet", "image"] = "resnet-pointnet"
    """global encoders of ``method: onet`` (ConvONet always uses its local PointNet)"""
    condition_dim: int = 512
    """c, the size of the global encoding (onet)"""
    hidden: int = 128
    """width of the encoder's per-point layers (both methods) or base channels (image)"""


@dataclass
class DecoderConfig:
    hidden: int = 256
    blocks: int = 5


@dataclass
class FeatureConfig:
    """ConvONet's feature volumes."""

    planes: list[str] = _field(default_factory=lambda: list(PLANES))
    """canonical planes to scatter to (any of xy, xz, yz)"""
    grid: bool = False
    """a 3-D feature grid instead of (or with) the planes"""
    plane_resolution: int = 64
    grid_resolution: int = 32
    feature_dim: int = 32
    unet_depth: int = 4
    unet_base: int = 32
    """channels of the U-Net's first level (a multiple of 8), doubled at every level down"""


@dataclass
class SignAgnosticConfig:
    """sald-vae: each shape's pool of samples with their unsigned distance to its points
    (isofield.data.raw_input.PoolSpec), in the unit-cube frame."""

    derivative_weight: float = 0.1
    """λ of SALD's gradient term (0: SAL)"""
    pool: int = 20_000
    neighbour_k: int = 50
    global_sigma: float = 0.15
    global_fraction: float = 0.3
    uniform_fraction: float = 0.2
    bounds: float = 0.75
    surfel_k: int = 10
    radius: float = 0.5
    """radius of the decoder's initial sphere (geometric initialisation)"""


@dataclass
class MiseConfig:
    """The ``extract`` section: MISE's grids over the padded cube and the surface's probability."""

    resolution: int = 128
    """cells per axis of the final MISE grid"""
    coarse_resolution: int = 32
    """cells per axis of MISE's first grid"""
    threshold: float = 0.2
    """occupancy probability of the surface (ONet: 0.2), until ``isofield evaluate`` chooses one
    on validation shapes"""


@dataclass
class OccupancyConfig:
    method: str = "onet"
    preset: str = "cpu"
    data: str = ""
    """an ONet-layout data directory (isofield preprocess --protocol onet, or ONet's own)"""
    split: Optional[str] = None
    """the training shapes: a JSON split, a .lst file, or a .lst name (train); default all"""
    points_per_step: int = 2048
    """occupancy samples per shape per step (K)"""
    shapes_per_batch: int = 64
    latent_dim: int = 0
    """z of the VAE; 0: no VAE"""
    kl_weight: float = 1.0
    """β of the KL term. The ``cpu`` preset of ``onet`` uses 0.1: on the chairs (3,000 s, 32
    latents) β = 1 left 16 active latent units, a decoder that read little of z (training
    accuracy 0.808 with each chair's own posterior mean, 0.750 with another chair's) and prior
    samples that were nearly one armchair; β = 0.1 gave 29 active units, 0.835 against 0.753,
    and prior samples that range from side chairs to armchairs, some with holes where the prior
    reaches codes the posteriors never used. Trained on to 7,340 steps (6,000 s) the posteriors
    drift further from N(0, I) (0.858 against 0.750, but 29 of 32 prior draws in pieces), which
    is why ``generate`` samples the Gaussian fitted to the posterior means
    (:mod:`isofield.occupancy.latents`)"""
    kl_warmup: float = 0
    """steps (or fraction of the run, see kl_warmup_unit) over which the KL weight rises linearly
    from 0 to ``kl_weight`` (0: from the start). Without it ONet's VAE on the chairs collapsed
    within 1,500 steps (KL 1.4 nats, the mean chair for every code); the ``cpu`` preset warms up
    over the first eighth of the run (1,500 of its 12,000 steps)"""
    kl_warmup_unit: Literal["steps", "progress"] = "steps"
    """what kl_warmup counts: steps, or progress (fractions of the run; isofield.train.schedules)"""
    kl_free_nats: float = 0.0
    """free bits: nats of KL per latent dimension that cost nothing (0: the plain KL). The
    ``cpu`` preset of ``onet`` uses 0.5: with the plain KL and warm-up, ONet's VAE on the chairs
    still collapsed (KL 9 nats after 400 steps, the same chair for every code)"""
    padding: float = 0.1
    """the field lives in the unit cube grown by this fraction (ONet's padded cube)"""
    seed: int = 0
    device: str = "auto"
    input: InputConfig = _field(default_factory=InputConfig)
    encoder: EncoderConfig = _field(default_factory=EncoderConfig)
    decoder: DecoderConfig = _field(default_factory=DecoderConfig)
    features: FeatureConfig = _field(default_factory=FeatureConfig)
    sign_agnostic: SignAgnosticConfig = _field(default_factory=SignAgnosticConfig)
    extract: MiseConfig = _field(default_factory=MiseConfig)
    train: TrainConfig = _field(default_factory=TrainConfig)


_PAPER_TRAIN = {"steps": 300_000, "lr": 1e-4, "log_every": 100, "checkpoint_every": 5000,
                "checkpoint_every_seconds": 600.0}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "onet": {"shapes_per_batch": 64, "encoder": {"condition_dim": 512, "hidden": 512},
                 "decoder": {"hidden": 256, "blocks": 5}, "train": _PAPER_TRAIN},
        "convonet": {"shapes_per_batch": 32, "encoder": {"hidden": 32},
                     "decoder": {"hidden": 32, "blocks": 5}, "train": _PAPER_TRAIN},
        "sald-vae": {"shapes_per_batch": 64, "latent_dim": 256, "kl_weight": 0.001,
                     "encoder": {"kind": "pointnet", "hidden": 128}, "decoder": {"hidden": 512, "blocks": 8},
                     "train": {**_PAPER_TRAIN, "lr": 5e-4}},
    },
    # 2 CPU cores, about 30 minutes: 16 shapes of 1,024 occupancy points per step; ONet's encoder
    # and decoder at half width; ConvONet's planes at 32² with a U-Net of depth 3. Adam at 5e-4
    # (ONet's 1e-4 is tuned for 300k steps), halved every eighth of the run (1,500 of its 12,000
    # steps; fractions of the run, so that a time budget goes through the schedule).
    "cpu": {
        "onet": {"shapes_per_batch": 16, "points_per_step": 1024, "kl_weight": 0.1, "kl_warmup": 0.125,
                 "kl_warmup_unit": "progress",
                 "kl_free_nats": 0.5,
                 "encoder": {"condition_dim": 256, "hidden": 128},
                 "decoder": {"hidden": 128, "blocks": 5},
                 "train": {"steps": 12_000, "lr": 5e-4,
                           "schedule": {"name": "step", "every": 0.125, "factor": 0.5, "unit": "progress"}}},
        "convonet": {"shapes_per_batch": 16, "points_per_step": 1024, "encoder": {"hidden": 32},
                     "features": {"plane_resolution": 32, "grid_resolution": 16, "unet_depth": 3},
                     "decoder": {"hidden": 32, "blocks": 5},
                     "train": {"steps": 12_000, "lr": 5e-4,
                               "schedule": {"name": "step", "every": 0.125, "factor": 0.5, "unit": "progress"}}},
        # sald-vae: kl_weight 1e-5, not the paper preset's 1e-3. With 1e-3, 1,500 s on the chairs
        # ended with σ ≈ 0.97 and the posterior means nearly alike: the decoder learned the mean
        # chair (test IoU 0.40). The SAL loss is a mean over points (about 0.02), so a KL of
        # 50 nats at 1e-3 would cost more than the whole reconstruction term.
        "sald-vae": {"shapes_per_batch": 16, "points_per_step": 1024, "latent_dim": 64, "kl_weight": 1e-5,
                     "encoder": {"kind": "pointnet", "hidden": 128}, "decoder": {"hidden": 128, "blocks": 4},
                     "train": {"steps": 12_000, "lr": 5e-4,
                               "schedule": {"name": "step", "every": 0.125, "factor": 0.5, "unit": "progress"}}},
    },
}


def resolve_config(layers: list[Mapping[str, Any]]) -> OccupancyConfig:
    """Merge ``layers`` (lowest first) over the preset of their method, validate, make paths
    absolute.

    Raises:
        InputError: an unknown key, method or preset, a wrong type, or a value out of range.
    """
    config = resolve_layers(OccupancyConfig, layers, _method_presets, unit_keys={"kl_warmup": "kl_warmup_unit"})
    _check_values(config)
    config.data = str(Path(config.data).resolve())
    if config.split is not None and Path(config.split).suffix:
        config.split = str(Path(config.split).resolve())
    return config


def _method_presets(merged: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Preset name -> the preset of the merged layers' method."""
    method = merged.get("method", OccupancyConfig.method)
    if method not in METHODS:
        raise InputError(f"config.method: expected one of {', '.join(METHODS)}, got {method!r}")
    return {name: presets[method] for name, presets in PRESETS.items()}


def is_vae(config: OccupancyConfig) -> bool:
    return config.latent_dim > 0


def has_input(config: OccupancyConfig) -> bool:
    """Whether an encoder reads an input (a point cloud or an image); not for the
    unconditional VAE (``input.kind: none``)."""
    return config.input.kind != "none"


def kl_weight_at(config: OccupancyConfig, at: StepInfo) -> float:
    """The KL weight at a training step: ``kl_weight``, reached linearly over the first
    ``kl_warmup`` steps (factor ``(step + 1) / kl_warmup``, so the first step has some) or
    fraction of the run (factor ``progress / kl_warmup``)."""
    if config.kl_warmup == 0:
        return config.kl_weight
    if config.kl_warmup_unit == "steps":
        return config.kl_weight * min(1.0, (at.step + 1) / config.kl_warmup)
    return config.kl_weight * min(1.0, at.progress / config.kl_warmup)


def is_sdf(config: OccupancyConfig) -> bool:
    """Whether the decoder gives signed distances (sald-vae) rather than occupancy logits."""
    return config.method == "sald-vae"


def _check_values(config: OccupancyConfig) -> None:
    """Raise InputError naming the first value out of range."""
    if not config.data:
        raise InputError("config.data: give the data directory to train on")
    at_least = [
        ("points_per_step", config.points_per_step, 1), ("shapes_per_batch", config.shapes_per_batch, 1),
        ("latent_dim", config.latent_dim, 0), ("kl_warmup", config.kl_warmup, 0), ("input.points", config.input.points, 1),
        ("input.image_size", config.input.image_size, 16), ("encoder.condition_dim", config.encoder.condition_dim, 1),
        ("encoder.hidden", config.encoder.hidden, 1), ("decoder.hidden", config.decoder.hidden, 1),
        ("decoder.blocks", config.decoder.blocks, 1), ("features.plane_resolution", config.features.plane_resolution, 4),
        ("features.grid_resolution", config.features.grid_resolution, 4),
        ("features.feature_dim", config.features.feature_dim, 1), ("features.unet_depth", config.features.unet_depth, 1),
        ("features.unet_base", config.features.unet_base, 8),
        ("extract.resolution", config.extract.resolution, 8),
        ("extract.coarse_resolution", config.extract.coarse_resolution, 1),
    ]
    for name, value, low in at_least:
        if value is not None and value < low:
            raise InputError(f"config.{name} must be at least {low}, got {value}")
    if config.kl_warmup_unit == "steps" and not float(config.kl_warmup).is_integer():
        raise InputError(f"config.kl_warmup counts steps (kl_warmup_unit: steps) and must be an "
                         f"integer, got {config.kl_warmup}")
    if config.kl_warmup_unit == "progress" and config.kl_warmup > 1:
        raise InputError(f"config.kl_warmup is a fraction of the run (kl_warmup_unit: progress) "
                         f"and must be in [0, 1], got {config.kl_warmup}")
    for name, value in (("input.noise", config.input.noise), ("kl_weight", config.kl_weight),
                        ("kl_free_nats", config.kl_free_nats), ("padding", config.padding)):
        if not 0 <= value < math.inf:
            raise InputError(f"config.{name} must be a finite number >= 0, got {value}")
    raw = config.sign_agnostic
    for name, value in (("pool", raw.pool), ("neighbour_k", raw.neighbour_k), ("global_sigma", raw.global_sigma),
                        ("bounds", raw.bounds), ("radius", raw.radius)):
        if not 0 < value < math.inf:
            raise InputError(f"config.sign_agnostic.{name} must be a positive number, got {value}")
    if raw.derivative_weight < 0 or raw.surfel_k < 0:
        raise InputError("config.sign_agnostic: derivative_weight and surfel_k must be >= 0")
    if not 0 <= raw.global_fraction + raw.uniform_fraction <= 1 or min(raw.global_fraction, raw.uniform_fraction) < 0:
        raise InputError("config.sign_agnostic: global_fraction and uniform_fraction must be >= 0 with a sum <= 1")
    if not 0 < config.extract.threshold < 1:
        raise InputError(f"config.extract.threshold must lie in (0, 1), got {config.extract.threshold}")
    _check_features(config)
    if not has_input(config) and not is_vae(config):
        raise InputError("config: input.kind 'none' needs latent_dim > 0 (an unconditional VAE)")
    if config.method == "sald-vae" and (config.latent_dim == 0 or config.input.kind != "pointcloud"
                                        or config.encoder.kind != "pointnet"):
        raise InputError("config: sald-vae encodes point clouds (input.kind: pointcloud) with a PointNet "
                         "(encoder.kind: pointnet) into a latent_dim > 0")
    if config.method == "convonet" and config.input.kind != "pointcloud":
        raise InputError(f"config.input.kind: convonet encodes point clouds, got {config.input.kind!r}")
    if config.input.kind == "image" and config.encoder.kind != "image":
        raise InputError("config: input.kind 'image' needs encoder.kind 'image'")
    if config.input.kind == "pointcloud" and config.encoder.kind == "image":
        raise InputError("config: encoder.kind 'image' needs input.kind 'image'")


def _check_features(config: OccupancyConfig) -> None:
    features = config.features
    unknown = [plane for plane in features.planes if plane not in PLANES]
    if unknown or len(set(features.planes)) != len(features.planes):
        raise InputError(f"config.features.planes: distinct names among {', '.join(PLANES)}, got {features.planes}")
    if config.method != "convonet":
        return
    if not features.planes and not features.grid:
        raise InputError("config.features: give planes, grid: true, or both")
    if features.unet_base % 8:
        raise InputError(f"config.features.unet_base must be a multiple of 8, got {features.unet_base}")
    divisor = 2 ** (features.unet_depth - 1)
    for name, size in (("plane_resolution", features.plane_resolution), ("grid_resolution", features.grid_resolution)):
        if size % divisor:
            raise InputError(f"config.features.{name} ({size}) must be divisible by 2**(unet_depth - 1) = {divisor}")
