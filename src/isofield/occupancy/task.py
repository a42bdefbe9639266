"""Encoder-decoder shape spaces as a trainer task: occupancy networks' binary cross-entropy over
K samples per shape (+ KL), or sald-vae's SAL / SALD losses over K pool samples (+ KL).

Per step, with B shapes drawn without replacement (:func:`~isofield.occupancy.shapes.draw_batch`):

    logits_i = D(p_i, E(input_i), z_i)                 p_i: K occupancy samples of shape i
    rec_i    = Σ_k BCE(logits_ik, o_ik)                ONet sums over the K points
    total    = mean over shapes of rec_i + β Σ_z max(KL_z(q(z | p_i, o_i, c_i) ‖ N(0, I)), λ)

β rises linearly from 0 to ``kl_weight`` over the first ``kl_warmup`` steps or fraction of the run
(then stays; the task is a :class:`~isofield.train.loop.ScheduledTask`); λ is
``kl_free_nats`` (free bits; 0: the plain KL).

Logged besides: ``bce`` (rec_i / K, the mean per point), ``kl`` (a VAE's, without free bits) and
``accuracy`` (the share of samples on the right side of probability 0.5). sald-vae (per shape, K
samples x of its pool with unsigned distance h to its points): mean | |f(x, z)| − h(x) | + λ mean
min(‖∇f − ∇h‖, ‖∇f + ∇h‖) + the same KL term, logged as ``sal``, ``sald``, ``kl``. Under DDP
every rank draws the whole global batch and computes its shard of the shapes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from isofield.losses import free_bits_kl, sign_agnostic_gradient_loss, sign_agnostic_loss
from isofield.occupancy.config import OccupancyConfig, is_sdf, is_vae, kl_weight_at
from isofield.occupancy.network import OccupancyNetwork
from isofield.occupancy.shapes import Batch, ShapeTensors, draw_batch
from isofield.train.distributed import Shard
from isofield.train.loop import ParamGroup
from isofield.train.schedules import StepInfo


class OccupancyTask:
    """The trainer task (see the module notes); ``shapes`` stay on the CPU, each batch moves to
    the network's device."""

    def __init__(self, network: OccupancyNetwork, shapes: ShapeTensors, config: OccupancyConfig) -> None:
        self.network, self.shapes, self.config = network, shapes, config
        self.shapes_per_batch = min(config.shapes_per_batch, len(shapes))
        self.shard, self._network = Shard(), network
        self.at = StepInfo(0, 0.0)

    def modules(self) -> Mapping[str, nn.Module]:
        return {"network": self.network}

    def param_groups(self) -> Sequence[ParamGroup]:
        return [ParamGroup("network", list(self.network.parameters()), self.config.train.lr)]

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        self.shard, self._network = shard, modules["network"]

    def set_progress(self, info: StepInfo) -> dict[str, float]:
        self.at = info
        return {"kl_weight": kl_weight_at(self.config, info)} if is_vae(self.config) else {}

    def loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss of one batch (this rank's part); every draw comes from ``generator``."""
        config, count = self.config, self.shapes_per_batch
        batch, noise = self._draw(generator)
        device = next(self.network.parameters()).device
        take = lambda value: None if value is None else self.shard.take(value).to(device)  # noqa: E731
        if is_sdf(config):
            terms = self._sign_agnostic_terms(take(batch.inputs), take(batch.points), take(batch.distances),
                                              take(batch.directions), take(noise), kl_weight_at(config, self.at))
        else:
            terms = self._occupancy_terms(take(batch.inputs), take(batch.points), take(batch.occupancies),
                                          take(noise), kl_weight_at(config, self.at))
        return {name: self.shard.mean(value, count) for name, value in terms.items()}

    @torch.no_grad()
    def forward_batch(self, generator: torch.Generator) -> None:
        """A whole batch (every rank's shapes) through the unwrapped network in its current mode,
        for :func:`~isofield.nn.batch_norm.recompute_batch_norm_statistics`."""
        batch, noise = self._draw(generator)
        device = next(self.network.parameters()).device
        inputs = None if batch.inputs is None else batch.inputs.to(device)
        occupancies = None if is_sdf(self.config) else batch.occupancies.to(device)
        self.network(inputs, batch.points.to(device), occupancies, noise.to(device))

    def _draw(self, generator: torch.Generator) -> tuple[Batch, torch.Tensor]:
        """One step's batch of every rank's shapes and its reparameterisation noise (B, max(Z, 1))."""
        config, count = self.config, self.shapes_per_batch
        batch = draw_batch(self.shapes, count, config.points_per_step, config.input, generator)
        return batch, torch.randn((count, max(config.latent_dim, 1)), generator=generator)

    def _occupancy_terms(self, inputs: torch.Tensor | None, points: torch.Tensor, occupancies: torch.Tensor,
                         noise: torch.Tensor, kl_weight: float) -> dict[str, torch.Tensor]:
        """Per-shape terms (b,): BCE summed over the samples (+ KL), its mean, KL, accuracy."""
        logits, kl = self._network(inputs, points, occupancies, noise)
        errors = F.binary_cross_entropy_with_logits(logits, occupancies, reduction="none").sum(dim=1)
        right = ((logits > 0) == (occupancies > 0.5)).float().mean(dim=1)
        terms = {"total": errors + self._kl_penalty(kl, kl_weight), "bce": errors / points.shape[1]}
        if is_vae(self.config):
            terms["kl"] = kl.sum(dim=1)
        return {**terms, "accuracy": right.detach()}

    def _kl_penalty(self, kl: torch.Tensor, kl_weight: float) -> torch.Tensor:
        """The loss's prior term per shape (b,) from per-dimension KLs (b, Z): weighted, free bits."""
        return kl_weight * free_bits_kl(kl, self.config.kl_free_nats)

    def _sign_agnostic_terms(self, inputs: torch.Tensor, points: torch.Tensor, distances: torch.Tensor,
                             directions: torch.Tensor, noise: torch.Tensor, kl_weight: float) -> dict[str, torch.Tensor]:
        """Per-shape terms (b,): SAL (+ λ SALD) (+ KL), each part."""
        weight = self.config.sign_agnostic.derivative_weight
        points = points.requires_grad_(weight > 0)
        values, kl = self._network(inputs, points, None, noise)
        terms = {"sal": sign_agnostic_loss(values, distances, dim=1)}
        total = terms["sal"] + self._kl_penalty(kl, kl_weight)
        if weight > 0:
            (gradients,) = torch.autograd.grad(values.sum(), points, create_graph=True)
            terms["sald"] = sign_agnostic_gradient_loss(gradients, directions, dim=1)
            total = total + weight * terms["sald"]
        return {"total": total, **terms, "kl": kl.sum(dim=1)}
