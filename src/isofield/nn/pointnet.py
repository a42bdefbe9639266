"""PointNet encoder: a point cloud (B, N, D) -> one code (B, L), invariant to the points' order.

Each point goes through the same MLP (D -> widths[0] -> ... -> widths[-1], ReLU), the features
are max-pooled over the points, and a head MLP maps the pooled feature to the code (Qi et al.
2017, as used by ShapeGF and Occupancy Networks). No batch normalisation: a shape's code never
depends on the other shapes of its batch, so encoding one scan at test time equals encoding it
in a training batch, and DDP needs no synchronised statistics.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class PointNetEncoder(nn.Module):
    """Order-invariant encoder of point clouds.

    Args:
        latent_dim: L, the code size.
        widths: per-point MLP widths; the last one is the pooled feature size.
        head: hidden widths of the MLP from the pooled feature to the code.
        dim: D, the point dimension (3; 2 for planar tests).
    """

    def __init__(self, latent_dim: int, widths: Sequence[int] = (128, 128, 256, 512),
                 head: Sequence[int] = (256,), dim: int = 3) -> None:
        super().__init__()
        self.latent_dim, self.dim = latent_dim, dim
        self.per_point = _mlp([dim, *widths], last_activation=True)
        self.head = _mlp([widths[-1], *head, latent_dim], last_activation=False)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points (B, N, D) -> codes (B, L)."""
        if points.ndim != 3 or points.shape[-1] != self.dim:
            raise ValueError(f"PointNetEncoder expects points (B, N, {self.dim}), got {tuple(points.shape)}")
        features = self.per_point(points)                  # (B, N, F)
        return self.head(features.amax(dim=1))              # (B, L)


def _mlp(widths: Sequence[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if last_activation or index < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
