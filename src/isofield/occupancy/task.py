"""Occupancy networks as a trainer task: binary cross-entropy over K samples per shape (+ KL).

Per step, with B shapes drawn without replacement (:func:`~isofield.occupancy.shapes.draw_batch`):

    logits_i = D(p_i, E(input_i), z_i)                 p_i: K occupancy samples of shape i
    rec_i    = Σ_k BCE(logits_ik, o_ik)                ONet sums over the K points
    total    = mean over shapes of rec_i + kl_weight · KL(q(z | p_i, o_i, c_i) ‖ N(0, I))

Logged besides: ``bce`` (rec_i / K, the mean per point), ``kl`` and ``accuracy`` (the share of
samples on the right side of probability 0.5). Under DDP every rank draws the whole global batch
and computes its shard of the shapes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from isofield.occupancy.config import OccupancyConfig
from isofield.occupancy.network import OccupancyNetwork
from isofield.occupancy.shapes import ShapeTensors, draw_batch
from isofield.train.distributed import Shard
from isofield.train.loop import ParamGroup


class OccupancyTask:
    """The trainer task (see the module notes); ``shapes`` stay on the CPU, each batch moves to
    the network's device."""

    def __init__(self, network: OccupancyNetwork, shapes: ShapeTensors, config: OccupancyConfig) -> None:
        self.network, self.shapes, self.config = network, shapes, config
        self.shapes_per_batch = min(config.shapes_per_batch, len(shapes))
        self.shard, self._network = Shard(), network

    def modules(self) -> Mapping[str, nn.Module]:
        return {"network": self.network}

    def param_groups(self) -> Sequence[ParamGroup]:
        return [ParamGroup("network", list(self.network.parameters()), self.config.train.lr)]

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        self.shard, self._network = shard, modules["network"]

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss of one batch (this rank's part); every draw comes from ``generator``."""
        config, count = self.config, self.shapes_per_batch
        batch = draw_batch(self.shapes, count, config.points_per_step, config.input, generator)
        noise = torch.randn((count, max(config.latent_dim, 1)), generator=generator)
        device = next(self.network.parameters()).device
        take = lambda value: None if value is None else self.shard.take(value).to(device)  # noqa: E731
        inputs, points, occupancies = take(batch.inputs), take(batch.points), take(batch.occupancies)
        logits, kl = self._network(inputs, points, occupancies, take(noise))
        errors = F.binary_cross_entropy_with_logits(logits, occupancies, reduction="none").sum(dim=1)
        right = ((logits > 0) == (occupancies > 0.5)).float().mean(dim=1)
        samples = config.points_per_step
        return {"total": self.shard.mean(errors + config.kl_weight * kl, count),
                "bce": self.shard.mean(errors / samples, count),
                "kl": self.shard.mean(kl, count),
                "accuracy": self.shard.mean(right, count).detach()}
