"""Adapters between networks and the rest of isofield: a numpy field callable, a config factory.

A "field" for the extractor and the slicer is any callable
``f(points: np.ndarray (N, D) float32) -> np.ndarray (N,) float32``; :func:`as_numpy_field`
wraps a torch module as one. :func:`build_field` builds the networks for fitting one shape
from a small config dict (presets "paper", "fast" and "siren").
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from isofield.errors import InputError
from isofield.nn.encodings import FourierFeatures, MultiResolutionGrid
from isofield.nn.mlp import MLPField
from isofield.nn.siren import SirenField

NumpyField = Callable[[np.ndarray], np.ndarray]


def as_numpy_field(module: nn.Module, device: str | torch.device = "cpu", batch_size: int = 65536,
                   latent: np.ndarray | torch.Tensor | None = None) -> NumpyField:
    """Wrap ``module`` as a numpy field evaluated under ``torch.no_grad`` in batches.

    Args:
        module: maps ``x: (B, D)`` (and ``latent: (L,)`` when given) to ``(B,)`` values; it must
            already live on ``device``. It is evaluated in eval mode; its previous mode is
            restored after each call.
        device: where the batches are evaluated.
        batch_size: points per forward pass (bounds the memory used).
        latent: optional latent code ``(L,)`` shared by all points, passed as
            ``module(x, latent)``.
    Returns:
        ``field(points: (N, D) float32 array) -> (N,) float32 array``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    code = None if latent is None else torch.as_tensor(latent, dtype=torch.float32, device=device)

    def field(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        if points.ndim != 2:
            raise InputError(f"field points must have shape (N, D), got {points.shape}")
        values = np.empty(len(points), dtype=np.float32)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(points), batch_size):
                    batch = torch.as_tensor(points[start:start + batch_size], dtype=torch.float32,
                                            device=device)
                    output = module(batch) if code is None else module(batch, code)
                    values[start:start + len(batch)] = output.reshape(-1).float().cpu().numpy()
        finally:
            module.train(was_training)
        return values

    return field


PRESETS: dict[str, dict[str, Any]] = {
    # IGR (Gropp et al. 2020): 8x512 softplus(beta=100), skip at layer 4, sphere init, weight norm.
    "paper": dict(type="mlp", in_dim=3, out_dim=1, latent_dim=0, hidden=512, depth=8,
                  activation="softplus", beta=100.0, skip=(4,), weight_norm=True,
                  geometric_init=True, radius=1.0, encoding=None),
    # Multi-resolution grid + a 2x64 softplus MLP with the sphere init on the raw coordinates.
    "fast": dict(type="mlp", in_dim=3, out_dim=1, latent_dim=0, hidden=64, depth=2,
                 activation="softplus", beta=100.0, skip=(), weight_norm=True,
                 geometric_init=True, radius=1.0,
                 encoding=dict(type="grid", levels=8, features_per_level=2, base_resolution=8,
                               max_resolution=128, log2_hashmap_size=16)),
    # SIREN / DiGS: 4x256 sine layers (omega 30) with the multi-frequency geometric init.
    "siren": dict(type="siren", in_dim=3, out_dim=1, hidden=256, depth=4, omega=30.0,
                  first_omega=30.0, init="mfgi", radius=1.0, high_frequency_fraction=0.25),
}
NETWORKS: dict[str, type[nn.Module]] = {"mlp": MLPField, "siren": SirenField}
_ABSENT = object()  # marks "no encoding key in the config" (None means "no encoding")
ENCODINGS: dict[str, type[nn.Module]] = {"grid": MultiResolutionGrid, "fourier": FourierFeatures}
ENCODING_KEYS = {
    "grid": ("levels", "features_per_level", "base_resolution", "max_resolution",
             "log2_hashmap_size", "bounds", "interpolation"),
    "fourier": ("num_frequencies", "include_input", "kind", "sigma", "seed"),
}


def build_field(config: dict[str, Any]) -> nn.Module:
    """Build a field network from a config dict (see :func:`resolve_field_config`)."""
    settings = resolve_field_config(config)
    settings.pop("preset")
    network = NETWORKS[settings.pop("type")]
    if network is SirenField:
        return SirenField(**settings)
    encoding = settings.pop("encoding")
    settings["skip"] = tuple(settings["skip"])
    return MLPField(input_encoding=_build_encoding(encoding, settings["in_dim"]), **settings)


def resolve_field_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every preset value written out (store it so a run outlives preset changes).

    Keys: ``preset`` ("paper", "fast" or "siren", default "paper"), which also fixes the network
    ``type`` ("mlp" or "siren"), then overrides of that network's arguments: for an MLP any of
    ``in_dim, out_dim, hidden, depth, activation, beta, skip, weight_norm, geometric_init,
    radius, latent_dim`` (see :class:`MLPField`) and ``encoding``: None, or a dict with
    ``type`` ("grid" or "fourier") and that encoding's arguments; for SIREN any of ``in_dim,
    out_dim, hidden, depth, omega, first_omega, init, radius, high_frequency_fraction`` (see
    :class:`SirenField`). An ``encoding`` dict without ``type`` (or with the preset's type)
    updates the preset's encoding; one with another type replaces it. The encoding's ``in_dim``
    follows the field's.

    Presets: "paper" is IGR's 8x512 softplus (beta 100) MLP with a skip at layer 4, geometric
    init and weight norm; "fast" is an 8-level grid (8..128 cells per axis over [-1, 1]^3,
    2 features per level, hash tables of 2**16 rows; 0.58M parameters) plus a 2x64 softplus
    MLP with geometric init and weight norm; "siren" is a 4x256 SIREN (omega 30) with the
    multi-frequency geometric init.

    Returns:
        a new dict with ``preset``, ``type`` and every argument of that network (``skip`` as a
        list); ``resolve_field_config(resolved)`` returns it unchanged.
    Raises:
        InputError: an unknown key (named in the message), preset or encoding type.
    """
    if not isinstance(config, dict):
        raise InputError(f"field config must be a mapping, got {type(config).__name__}")
    settings = dict(config)
    preset = settings.pop("preset", "paper")
    if preset not in PRESETS:
        raise InputError(f"field config: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    resolved = {"preset": preset, **copy.deepcopy(PRESETS[preset])}
    kind = resolved["type"]
    if settings.pop("type", kind) != kind:
        raise InputError(f"field config: preset {preset!r} is a {kind} network; choose the "
                         f"preset to change the network type")
    allowed = sorted(set(resolved) - {"preset", "type"})
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise InputError(f"field config: unknown key {unknown[0]!r} for a {kind} network "
                         f"(allowed: preset, {', '.join(allowed)})")
    if kind == "mlp":
        resolved["encoding"] = _merge_encoding(resolved["encoding"],
                                               settings.pop("encoding", _ABSENT))
    resolved.update(settings)
    if kind == "mlp":
        if not isinstance(resolved["skip"], (list, tuple)):
            raise InputError(f"field config: skip must be a list of layer indices, "
                             f"got {resolved['skip']!r}")
        resolved["skip"] = list(resolved["skip"])
    return resolved


def _merge_encoding(preset_encoding: dict[str, Any] | None,
                    requested: dict[str, Any] | None | object) -> dict[str, Any] | None:
    """The preset's encoding settings, updated or replaced by the requested ones, completed."""
    if requested is _ABSENT:
        return _complete_encoding(preset_encoding)
    if requested is None:
        return None
    if not isinstance(requested, dict):
        raise InputError(f"field config: encoding must be a mapping or null, got {requested!r}")
    kind = requested.get("type", None if preset_encoding is None else preset_encoding["type"])
    if preset_encoding is not None and kind == preset_encoding["type"]:
        return _complete_encoding({**preset_encoding, **requested})
    return _complete_encoding({"type": kind, **requested})


def _complete_encoding(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check the encoding's type and keys; write out every argument (defaults included)."""
    if settings is None:
        return None
    kind = settings.get("type")
    if kind not in ENCODINGS:
        raise InputError(f"field config: encoding type must be one of {', '.join(ENCODINGS)}, "
                         f"got {kind!r}")
    unknown = sorted(set(settings) - {"type"} - set(ENCODING_KEYS[kind]))
    if unknown:
        raise InputError(f"field config: unknown key 'encoding.{unknown[0]}' for a {kind} encoding "
                         f"(allowed: type, {', '.join(ENCODING_KEYS[kind])})")
    parameters = inspect.signature(ENCODINGS[kind]).parameters
    defaults = {key: parameters[key].default for key in ENCODING_KEYS[kind]}
    if kind == "fourier":
        defaults["include_input"] = False               # MLPField already reads raw coordinates
    complete = {"type": kind, **defaults, **settings}
    if "bounds" in complete:
        complete["bounds"] = list(complete["bounds"])
    return complete


def _build_encoding(settings: dict[str, Any] | None, in_dim: int) -> nn.Module | None:
    """Instantiate a completed encoding description (None -> no encoding)."""
    if settings is None:
        return None
    options = dict(settings)
    kind = options.pop("type")
    if "bounds" in options:
        options["bounds"] = tuple(options["bounds"])
    return ENCODINGS[kind](in_dim=in_dim, **options)
