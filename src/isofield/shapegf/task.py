"""ShapeGF's auto-encoder as a trainer task: a PointNet encoder E and a score network g.

Per step, with B shapes drawn without replacement:

    z_i = E(X_i)                   X_i: ``input_points`` points of shape i
    σ_i = a noise level drawn uniformly from the levels, one per shape
    x̃  = y + σ_i ε,  ε ~ N(0, I)   y: ``target_points`` other points of shape i
    total = mean over shapes of ½ · mean over points ‖σ_i g(x̃, σ_i, z_i) + ε‖²

``fine_levels`` and ``coarse_levels`` are the same mean over the shapes whose σ lies in the
smaller / larger half of the levels (logged only: the loss of a level depends on σ far more than
on training, so the total alone is a noisy curve).

(denoising score matching weighted by σ², :func:`isofield.losses.score_matching_errors`).
Under DDP every rank draws the whole global batch and computes its shard of the shapes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from isofield.losses import score_matching_errors
from isofield.shapegf.clouds import draw_points
from isofield.train.distributed import Shard
from isofield.train.loop import ParamGroup


class GradientFieldTask:
    """The trainer task (see the module notes).

    Args:
        encoder: point clouds (B, N, 3) -> codes (B, L).
        score: g(points (B, N, 3), sigma (B,), codes (B, L)) -> (B, N, 3).
        clouds: (S, P, 3) every training shape's points, on the networks' device.
        sigmas: (K,) the noise levels.
        shapes_per_batch: B (at most S are used).
        input_points, target_points: points per shape for the encoder and for the noise.
        lr: base learning rate of both networks.
    """

    def __init__(self, encoder: nn.Module, score: nn.Module, clouds: torch.Tensor,
                 sigmas: Sequence[float], *, shapes_per_batch: int, input_points: int,
                 target_points: int, lr: float) -> None:
        self.encoder, self.score, self.clouds = encoder, score, clouds
        self.sigmas = torch.tensor(list(sigmas), dtype=torch.float32)
        self.shapes_per_batch = min(shapes_per_batch, len(clouds))
        self.input_points, self.target_points, self.lr = input_points, target_points, lr
        self.shard, self._calls = Shard(), self.modules()

    def modules(self) -> Mapping[str, nn.Module]:
        return {"encoder": self.encoder, "score": self.score}

    def param_groups(self) -> Sequence[ParamGroup]:
        params = list(self.encoder.parameters()) + list(self.score.parameters())
        return [ParamGroup("networks", params, self.lr)]

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        """This process's shard of each batch and the modules to call (DDP wrappers or not)."""
        self.shard, self._calls = shard, dict(modules)

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss of one batch (this rank's part); every draw comes from ``generator``."""
        count = self.shapes_per_batch
        shapes = torch.randperm(len(self.clouds), generator=generator)[:count]
        clouds = self.clouds[shapes.to(self.clouds.device)]
        inputs = draw_points(clouds, self.input_points, generator)              # (B, Ni, 3)
        targets = draw_points(clouds, self.target_points, generator)            # (B, Nt, 3)
        levels = torch.randint(len(self.sigmas), (count,), generator=generator)
        noise = torch.randn(targets.shape, generator=generator)                 # (B, Nt, 3)
        inputs, targets, noise, sigma = (
            self.shard.take(value).to(self.clouds.device)
            for value in (inputs, targets, noise, self.sigmas[levels]))
        codes = self._calls["encoder"](inputs)
        scores = self._calls["score"](targets + sigma[:, None, None] * noise, sigma, codes)
        errors = score_matching_errors(scores, noise, sigma)                    # (b,)
        fine = levels >= len(self.sigmas) // 2                                  # (B,) smaller σ
        fine_here = self.shard.take(fine).to(errors.device)
        return {"total": self.shard.mean(errors, count),
                "fine_levels": self.shard.mean(errors * fine_here, max(int(fine.sum()), 1)),
                "coarse_levels": self.shard.mean(errors * ~fine_here, max(int((~fine).sum()), 1))}
