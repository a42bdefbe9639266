"""DeepSDF's auto-decoder as a trainer task: one decoder f(x, z), one code per training shape.

Per step, with B shapes drawn without replacement and S samples per shape (half with sdf > 0):

    sdf        = mean over the B * S samples of |clamp(f(x_j, z_i), δ) − clamp(s_j, δ)|
    code_prior = (1 / σ²) · mean over the B shapes of ‖z_i‖²
    total      = sdf + code_prior

The decoder and the codes are two parameter groups ("decoder", "codes") with their own learning
rates and schedules. The codes are a ``torch.nn.Embedding`` (N, L), checkpointed with the decoder.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from isofield.errors import InputError
from isofield.losses import clamped_l1
from isofield.shapespace.samples import ShapeSamples
from isofield.train.loop import ParamGroup


def make_codes(num_shapes: int, latent_dim: int, init_std: float,
               bound: float | None = None) -> nn.Embedding:
    """The code table (num_shapes, latent_dim), entries N(0, init_std²) drawn from torch's global
    generator (seed it first). ``bound`` caps each code's norm on lookup (Embedding max_norm)."""
    codes = nn.Embedding(num_shapes, latent_dim, max_norm=bound)
    with torch.no_grad():
        codes.weight.normal_(0.0, init_std)
    return codes


class AutoDecoderTask:
    """The trainer task of an auto-decoder (see the module notes).

    Args:
        decoder: maps points (P, 3) and codes (P, L) to SDF values (P,), e.g. an
            :class:`~isofield.nn.MLPField` with ``latent_dim = L``.
        codes: the code table (N, L), one row per shape of ``samples``.
        samples: every shape's SDF samples (points on the decoder's device).
        clamp: δ, in canonical units.
        prior_weight: 1 / σ².
        shapes_per_batch: B (at most N are used).
        samples_per_shape: S.
        lr_decoder, lr_codes: base learning rates of the two groups.
    """

    def __init__(self, decoder: nn.Module, codes: nn.Embedding, samples: ShapeSamples, *,
                 clamp: float, prior_weight: float, shapes_per_batch: int,
                 samples_per_shape: int, lr_decoder: float, lr_codes: float) -> None:
        if codes.num_embeddings != samples.num_shapes:
            raise InputError(f"{codes.num_embeddings} codes for {samples.num_shapes} shapes")
        self.decoder, self.codes, self.samples = decoder, codes, samples
        self.clamp, self.prior_weight = clamp, prior_weight
        self.shapes_per_batch = min(shapes_per_batch, samples.num_shapes)
        self.samples_per_shape = samples_per_shape
        self.lr_decoder, self.lr_codes = lr_decoder, lr_codes

    def modules(self) -> Mapping[str, nn.Module]:
        return {"decoder": self.decoder, "codes": self.codes}

    def param_groups(self) -> Sequence[ParamGroup]:
        return [ParamGroup("decoder", list(self.decoder.parameters()), self.lr_decoder),
                ParamGroup("codes", list(self.codes.parameters()), self.lr_codes)]

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss terms of one batch; shapes and samples are drawn from ``generator``."""
        shapes = torch.randperm(self.samples.num_shapes, generator=generator)[: self.shapes_per_batch]
        rows = self.samples.draw_rows(shapes, self.samples_per_shape, generator)
        device = self.samples.points.device
        rows = rows.to(device)
        batch_codes = self.codes(shapes.to(self.codes.weight.device))          # (B, L)
        latent = batch_codes.repeat_interleave(self.samples_per_shape, dim=0)   # (B * S, L)
        predicted = self.decoder(self.samples.points[rows], latent.to(device))
        sdf = clamped_l1(predicted, self.samples.sdf[rows], self.clamp)
        prior = self.prior_weight * code_prior(batch_codes)
        return {"total": sdf + prior, "sdf": sdf, "code_prior": prior}


def code_prior(codes: torch.Tensor) -> torch.Tensor:
    """mean_i ‖z_i‖² of codes (B, L) -> scalar (the Gaussian prior's negative log, up to 1/σ²)."""
    return codes.square().sum(dim=1).mean()

