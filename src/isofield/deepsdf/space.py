"""A trained shape space read back from its run directory, and meshes from its codes.

    >>> space = load_shape_space("runs/chairs")
    >>> mesh = space.mesh(3)                     # training shape 3, in its own coordinates
    >>> blend = space.mesh(0.5 * (space.codes[0] + space.codes[1]))  # canonical frame
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch import nn

from isofield.errors import InputError
from isofield.extract.api import ExtractionStats, extract_mesh
from isofield.geometry.normalization import Normalization
from isofield.nn import as_numpy_field, build_field
from isofield.nn.field import NumpyField
from isofield.deepsdf.config import ShapeSpaceConfig
from isofield.deepsdf.rundir import ShapeSpaceRun
from isofield.train.shapes import TrainingShape


@dataclass(frozen=True)
class ShapeSpace:
    """A trained auto-decoder.

    Attributes:
        decoder: f(x (P, 3), z (P, L) or (L,)) -> (P,) SDF values in a shape's canonical frame;
            eval mode, on the CPU when loaded by :func:`load_shape_space`.
        codes: (N, L) float32, row i is training shape i's code.
        config: the run's resolved configuration.
        shapes: the N training shapes in code order (names, frames).
        data_dir: the DeepSDF data directory the space was trained on.
        step: training steps behind the decoder and codes.
    """

    decoder: nn.Module
    codes: torch.Tensor
    config: ShapeSpaceConfig
    shapes: list[TrainingShape]
    data_dir: Path
    step: int

    def field(self, code: int | torch.Tensor | np.ndarray) -> NumpyField:
        """The numpy field (P, 3) -> (P,) of a training shape's index or of a code (L,),
        canonical frame, evaluated where the decoder lives."""
        return code_field(self.decoder, self.code(code))

    def code(self, code: int | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Training shape ``code``'s row of :attr:`codes`, or the given code (L,) as float32."""
        if isinstance(code, (int, np.integer)):
            if not 0 <= code < len(self.codes):
                raise InputError(f"shape index {code} is out of range (0 .. {len(self.codes) - 1})")
            return self.codes[int(code)]
        tensor = torch.as_tensor(code, dtype=torch.float32)
        if tensor.shape != (self.codes.shape[1],):
            raise InputError(f"a code must have shape ({self.codes.shape[1]},), got {tuple(tensor.shape)}")
        return tensor

    def mesh(self, code: int | torch.Tensor | np.ndarray, resolution: int | None = None,
             normalization: Normalization | None = None) -> trimesh.Trimesh:
        """The zero level set of a code. A training shape's index gives its mesh in the shape's
        own coordinates; a code gives a mesh in the canonical frame unless ``normalization`` is
        given. ``resolution`` defaults to ``config.extract.resolution``."""
        latent = self.code(code)
        if normalization is None and isinstance(code, (int, np.integer)):
            normalization = self.shapes[int(code)].normalization
        mesh, _ = code_mesh(self.decoder, latent, self.config,
                            resolution or self.config.extract.resolution, normalization)
        return mesh


def canonical_bounds(config: ShapeSpaceConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The extraction box [-1 - padding, 1 + padding]^3 of the canonical frame."""
    half = 1.0 + config.extract.padding
    return (-half,) * 3, (half,) * 3


SHAPE_RADIUS = 1.0
"""Every shape of a space lies in this ball of the canonical frame: preprocessing puts a
shape's farthest point at radius 1 / 1.03 (DeepSDF's buffer), and its uniform samples fill
[-1, 1]^3, so the decoder saw no surface beyond the ball and no samples at all beyond the cube."""


def code_field(decoder: nn.Module, code: torch.Tensor) -> NumpyField:
    """The numpy field (P, 3) -> (P,) of ``decoder`` at ``code`` (L,), evaluated on the
    decoder's device, inside the ball of :data:`SHAPE_RADIUS`: ``max(f(x, z), |x| - radius)``.

    Beyond the ball the decoder extrapolates, and a field that dips below zero there (e.g.
    under a swivel chair's base, in the extraction box's padding) would be meshed as a
    floating sheet. Intersecting with the ball keeps the field's sign, and so the surface,
    inside the ball."""
    device = next(decoder.parameters()).device
    field = as_numpy_field(decoder, device=device, latent=code.detach().to(device))

    def in_the_ball(points: np.ndarray) -> np.ndarray:
        outside = np.linalg.norm(points, axis=1).astype(np.float32) - np.float32(SHAPE_RADIUS)
        return np.maximum(field(points), outside)

    return in_the_ball


def code_mesh(decoder: nn.Module, code: torch.Tensor, config: ShapeSpaceConfig, resolution: int,
              normalization: Normalization | None = None) -> tuple[trimesh.Trimesh, ExtractionStats]:
    """The zero level set of ``decoder`` at ``code`` (L,) by ``config.extract.method``; in ``normalization``'s user frame when given, else canonical.

    Raises InputError when the field has no zero crossing in the box."""
    return extract_mesh(code_field(decoder, code), bounds=canonical_bounds(config), resolution=resolution,
                        method=config.extract.method, normalization=normalization)


def load_shape_space(run_dir: str | Path) -> ShapeSpace:
    """The decoder and codes of a run's latest checkpoint (their weight average when the run
    keeps one, ``train.ema_decay``), with its config and shapes."""
    run = ShapeSpaceRun.open(run_dir)
    config, data_dir, shapes, checkpoint = run.load_trained()
    decoder = build_field(config.decoder)
    try:
        decoder.load_state_dict(checkpoint.weights_to_use("decoder"))
        codes = checkpoint.weights_to_use("codes")["weight"].float()
    except (KeyError, RuntimeError) as exc:
        raise InputError(f"{run.checkpoint_path}: does not hold this run's decoder and codes "
                         f"({str(exc).splitlines()[0]})") from None
    if codes.shape != (len(shapes), config.latent_dim):
        raise InputError(f"{run.checkpoint_path}: codes of shape {tuple(codes.shape)}, expected "
                         f"({len(shapes)}, {config.latent_dim})")
    return ShapeSpace(decoder.eval(), codes, config, shapes, data_dir, checkpoint.step)
