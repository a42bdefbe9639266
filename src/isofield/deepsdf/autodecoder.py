"""DeepSDF's auto-decoder as a trainer task: one decoder f(x, z), one code per training shape.

Per step, with B shapes drawn without replacement and S samples per shape (half with sdf > 0):

    sdf        = mean over the B * S samples of |clamp(f(x_j, z_i), δ) − clamp(s_j, δ)|
    code_prior = (1 / σ²) · mean over the B shapes of ‖z_i‖²
    total      = sdf + code_prior

The decoder and the codes are two parameter groups ("decoder", "codes") with their own learning
rates and schedules. The codes are a ``torch.nn.Embedding`` (N, L), checkpointed with the decoder.

Under DDP (:mod:`isofield.train.distributed`) every rank draws the whole global batch, looks up
the codes of all B shapes (so that ``max_norm`` renormalises the same rows everywhere), then
computes the SDF and prior terms on its shard of the shapes only, as its part of the global mean.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from isofield.errors import InputError
from isofield.losses import clamped_errors
from isofield.deepsdf.samples import ShapeSamples
from isofield.train.distributed import Shard
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
        self.shard, self._calls = Shard(), self.modules()

    def modules(self) -> Mapping[str, nn.Module]:
        return {"decoder": self.decoder, "codes": self.codes}

    def param_groups(self) -> Sequence[ParamGroup]:
        return [ParamGroup("decoder", list(self.decoder.parameters()), self.lr_decoder),
                ParamGroup("codes", list(self.codes.parameters()), self.lr_codes)]

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        """This process's shard of each batch and the modules to call (DDP wrappers or not)."""
        self.shard, self._calls = shard, dict(modules)

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss terms of one batch (this rank's part of them); shapes and samples are drawn from
        ``generator``."""
        count, per_shape = self.shapes_per_batch, self.samples_per_shape
        shapes = torch.randperm(self.samples.num_shapes, generator=generator)[:count]
        rows = self.samples.draw_rows(shapes, per_shape, generator).view(count, per_shape)
        device = self.samples.points.device
        rows = self.shard.take(rows).reshape(-1).to(device)                    # (b * S,)
        codes = self.shard.take(self._calls["codes"](shapes.to(self.codes.weight.device)))  # (b, L)
        latent = codes.repeat_interleave(per_shape, dim=0)                      # (b * S, L)
        predicted = self._calls["decoder"](self.samples.points[rows], latent.to(device))
        errors = clamped_errors(predicted, self.samples.sdf[rows], self.clamp)
        sdf = self.shard.mean(errors, count * per_shape)
        prior = self.prior_weight * self.shard.mean(codes.square().sum(dim=1), count)
        return {"total": sdf + prior, "sdf": sdf, "code_prior": prior}
