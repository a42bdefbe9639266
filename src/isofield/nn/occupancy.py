"""Occupancy Networks (Mescheder et al. 2019): decoders of p(occupied | x, c, z) and their encoders.

    decoder   logits(x) = fc_out relu(CBN(h_K; s)),   h_0 = fc_p(x),   s = [c, z],
              h_k = h_{k-1} + conv(relu(CBN(conv(relu(CBN(h_{k-1}; s))); s)))      k = 1 .. K
    encoders  ResNetPointNet: a point cloud (B, N, D) -> the condition c (B, C);
              LatentEncoder: q(z | x, o, c), points with their occupancies -> mean, log σ (B, Z).

Conditional batch normalisation (CBN) normalises each feature over the batch and the points and
then scales and shifts it by γ(c), β(c): the condition enters every block. γ starts at 1 and β at 0
whatever c is, and the last layer of every residual block starts at zero, so every block starts as
the identity. A VAE's latent code z joins c as the condition of every CBN (s = [c, z]); a decoder
with neither (C = Z = 0) uses plain residual blocks, `ResnetBlockFC`.

ONet adds z to the first layer only. On the procedural chairs its unconditional VAE then
ignored z: after 2,500 steps, decoding a shape with its own code or with another's gave
training accuracies of 0.763 and 0.756, and all prior samples were one chair.

The decoder's batch statistics couple the shapes of a training batch (as in the paper); in eval
mode the running statistics are used and every shape is decoded on its own.
"""

from __future__ import annotations

import torch
from torch import nn


class ResnetBlockFC(nn.Module):
    """x + fc_1(relu(fc_0(relu(x)))) per point, with a linear shortcut when the sizes differ.

    (..., size_in) -> (..., size_out); the hidden width is min(size_in, size_out) unless given.
    fc_1 starts at zero, so the block starts as its shortcut.
    """

    def __init__(self, size_in: int, size_out: int | None = None, size_hidden: int | None = None) -> None:
        super().__init__()
        size_out = size_in if size_out is None else size_out
        size_hidden = min(size_in, size_out) if size_hidden is None else size_hidden
        self.fc_0 = nn.Linear(size_in, size_hidden)
        self.fc_1 = nn.Linear(size_hidden, size_out)
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else nn.Identity()
        nn.init.zeros_(self.fc_1.weight)
        nn.init.zeros_(self.fc_1.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., size_in) -> (..., size_out)."""
        return self.shortcut(x) + self.fc_1(torch.relu(self.fc_0(torch.relu(x))))


class CBatchNorm1d(nn.Module):
    """Conditional batch normalisation: γ(c) ⊙ BN(x) + β(c), γ and β linear in c.

    BN normalises each of the F features over the batch and the T points (no affine part of its
    own). γ starts at 1 and β at 0 for any c.
    """

    def __init__(self, condition_dim: int, features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features, affine=False)
        self.gamma = nn.Linear(condition_dim, features)
        self.beta = nn.Linear(condition_dim, features)
        for layer, bias in ((self.gamma, 1.0), (self.beta, 0.0)):
            nn.init.zeros_(layer.weight)
            nn.init.constant_(layer.bias, bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """x (B, F, T), condition (B, C) -> (B, F, T)."""
        return self.gamma(condition)[:, :, None] * self.norm(x) + self.beta(condition)[:, :, None]


class CBNResnetBlock(nn.Module):
    """x + conv_1(relu(CBN_1(conv_0(relu(CBN_0(x; c))); c))), 1x1 convolutions over the points.

    x (B, H, T), condition (B, C) -> (B, H, T); conv_1 starts at zero.
    """

    def __init__(self, condition_dim: int, size: int) -> None:
        super().__init__()
        self.norm_0 = CBatchNorm1d(condition_dim, size)
        self.fc_0 = nn.Conv1d(size, size, 1)
        self.norm_1 = CBatchNorm1d(condition_dim, size)
        self.fc_1 = nn.Conv1d(size, size, 1)
        nn.init.zeros_(self.fc_1.weight)
        nn.init.zeros_(self.fc_1.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """x (B, H, T), condition (B, C) -> (B, H, T)."""
        hidden = self.fc_0(torch.relu(self.norm_0(x, condition)))
        return x + self.fc_1(torch.relu(self.norm_1(hidden, condition)))


class OccupancyDecoder(nn.Module):
    """Occupancy logits of query points given a condition c and / or a latent code z.

    Args:
        condition_dim: C; 0 for an unconditional decoder.
        latent_dim: Z; 0 for a decoder without latent code (C = Z = 0: plain residual blocks).
        hidden: H, the width of every block.
        blocks: K, the number of residual blocks.
        dim: D, the point dimension (3; 2 for planar tests).
    """

    def __init__(self, condition_dim: int, latent_dim: int = 0, hidden: int = 256, blocks: int = 5,
                 dim: int = 3) -> None:
        super().__init__()
        self.condition_dim, self.latent_dim, self.dim = condition_dim, latent_dim, dim
        self.fc_p = nn.Linear(dim, hidden)
        modulation_dim = condition_dim + latent_dim
        if modulation_dim > 0:
            self.blocks = nn.ModuleList(CBNResnetBlock(modulation_dim, hidden) for _ in range(blocks))
            self.norm = CBatchNorm1d(modulation_dim, hidden)
        else:
            self.blocks = nn.ModuleList(ResnetBlockFC(hidden) for _ in range(blocks))
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, points: torch.Tensor, condition: torch.Tensor | None = None,
                latent: torch.Tensor | None = None) -> torch.Tensor:
        """points (B, T, D), condition (B, C) or None, latent (B, Z) or None -> logits (B, T)."""
        self._check(points, condition, latent)
        net = self.fc_p(points)                                            # (B, T, H)
        parts = [part for part in (condition, latent) if part is not None]
        if parts:
            modulation = torch.cat(parts, dim=1)                           # (B, C + Z)
            net = net.transpose(1, 2)                                      # (B, H, T)
            for block in self.blocks:
                net = block(net, modulation)
            net = torch.relu(self.norm(net, modulation)).transpose(1, 2)   # (B, T, H)
        else:
            for block in self.blocks:
                net = block(net)
            net = torch.relu(net)
        return self.fc_out(net).squeeze(-1)

    def _check(self, points: torch.Tensor, condition: torch.Tensor | None, latent: torch.Tensor | None) -> None:
        if points.ndim != 3 or points.shape[-1] != self.dim:
            raise ValueError(f"OccupancyDecoder expects points (B, T, {self.dim}), got {tuple(points.shape)}")
        _check_vector("OccupancyDecoder", "condition", condition, points.shape[0], self.condition_dim)
        _check_vector("OccupancyDecoder", "latent", latent, points.shape[0], self.latent_dim)


class ResNetPointNet(nn.Module):
    """ONet's point-cloud encoder: residual PointNet with max-pooled context after every block.

    fc_pos lifts each point to 2H features; each block maps 2H -> H per point, and its output is
    concatenated with its max over the points (2H again) before the next block. The last block's
    features are max-pooled and mapped to the condition. Order-invariant.

    Args:
        condition_dim: C, the output size.
        hidden: H.
        blocks: the number of residual blocks.
        dim: D, the point dimension.
    """

    def __init__(self, condition_dim: int, hidden: int = 128, blocks: int = 5, dim: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.fc_pos = nn.Linear(dim, 2 * hidden)
        self.blocks = nn.ModuleList(ResnetBlockFC(2 * hidden, hidden) for _ in range(blocks))
        self.fc_c = nn.Linear(hidden, condition_dim)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points (B, N, D) -> condition (B, C)."""
        if points.ndim != 3 or points.shape[-1] != self.dim:
            raise ValueError(f"ResNetPointNet expects points (B, N, {self.dim}), got {tuple(points.shape)}")
        net = self.blocks[0](self.fc_pos(points))                          # (B, N, H)
        for block in self.blocks[1:]:
            net = block(_with_max_pool(net))
        return self.fc_c(torch.relu(net.amax(dim=1)))


class LatentEncoder(nn.Module):
    """q(z | x, o, c) of ONet's VAE: the mean and log standard deviation of a diagonal Gaussian.

    Each query point and its occupancy (and c, when C > 0) are embedded, two layers see every
    point's features next to their max over the points, and a final max-pool feeds the heads.
    Order-invariant in the (point, occupancy) pairs.

    Args:
        latent_dim: Z.
        condition_dim: C; 0 for an unconditional model.
        hidden: the per-point width.
        dim: D, the point dimension.
    """

    def __init__(self, latent_dim: int, condition_dim: int = 0, hidden: int = 128, dim: int = 3) -> None:
        super().__init__()
        self.condition_dim, self.dim = condition_dim, dim
        self.fc_pos = nn.Linear(dim, hidden)
        self.fc_occupancy = nn.Linear(1, hidden)
        self.fc_c = nn.Linear(condition_dim, hidden) if condition_dim > 0 else None
        self.fc_0 = nn.Linear(hidden, hidden)
        self.pooled = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(2))
        self.fc_mean = nn.Linear(hidden, latent_dim)
        self.fc_log_std = nn.Linear(hidden, latent_dim)

    def forward(self, points: torch.Tensor, occupancies: torch.Tensor,
                condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """points (B, T, D), occupancies (B, T) float, condition (B, C) or None
        -> mean (B, Z), log_std (B, Z)."""
        if points.ndim != 3 or points.shape[-1] != self.dim or occupancies.shape != points.shape[:2]:
            raise ValueError(f"LatentEncoder expects points (B, T, {self.dim}) and occupancies (B, T), "
                             f"got {tuple(points.shape)} and {tuple(occupancies.shape)}")
        _check_vector("LatentEncoder", "condition", condition, points.shape[0], self.condition_dim)
        net = self.fc_pos(points) + self.fc_occupancy(occupancies[..., None])   # (B, T, H)
        if self.fc_c is not None:
            net = net + self.fc_c(condition)[:, None, :]
        net = self.fc_0(torch.relu(net))
        for layer in self.pooled:
            net = layer(torch.relu(_with_max_pool(net)))
        pooled = net.amax(dim=1)                                           # (B, H)
        return self.fc_mean(pooled), self.fc_log_std(pooled)


def _with_max_pool(features: torch.Tensor) -> torch.Tensor:
    """features (B, N, F) -> (B, N, 2F): each point's features next to their max over the points."""
    return torch.cat([features, features.amax(dim=1, keepdim=True).expand_as(features)], dim=2)


def _check_vector(owner: str, name: str, tensor: torch.Tensor | None, batch: int, size: int) -> None:
    """A per-shape input must be (B, size), or None when its size is 0."""
    if size == 0 and tensor is not None:
        raise ValueError(f"{owner} was built with {name}_dim = 0 and expects {name} None, got {tuple(tensor.shape)}")
    if size > 0 and (tensor is None or tuple(tensor.shape) != (batch, size)):
        got = None if tensor is None else tuple(tensor.shape)
        raise ValueError(f"{owner} expects {name} ({batch}, {size}), got {got}")
