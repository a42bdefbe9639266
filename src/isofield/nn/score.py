"""Score network of ShapeGF: g(x, σ, z) ≈ ∇ₓ log Q_σ(x), the gradient field of a shape's
points blurred by Gaussian noise of scale σ.

    c   = [z, log σ]                                   (B, L + 1): what the field depends on
    h_0 = W_in [x, c]                                  per point, (B, N, H)
    h_k = h_{k-1} + W2 relu(W1 relu(γ_k(c) ⊙ h_{k-1} + β_k(c)))     k = 1 .. K (FiLM-conditioned
                                                        ResNet blocks, as ShapeGF's ResNet decoder
                                                        conditioned on the code and the noise level)
    g   = W_out relu(h_K) / σ

Dividing by σ (the noise-conditional scaling of NCSNv2) makes the raw output of order one at
every level: the target of denoising score matching at level σ is -ε / σ with ε ~ N(0, I). The
last layer of each block starts at zero, so every block starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn


class ScoreNetwork(nn.Module):
    """g(x, σ, z): points (B, N, D), noise levels (B,), codes (B, L) -> scores (B, N, D).

    Args:
        latent_dim: L.
        hidden: H, the width of every block.
        blocks: K, the number of conditioned ResNet blocks.
        dim: D (3; 2 for planar tests).
    """

    def __init__(self, latent_dim: int, hidden: int = 256, blocks: int = 4, dim: int = 3) -> None:
        super().__init__()
        self.latent_dim, self.dim = latent_dim, dim
        condition = latent_dim + 1
        self.input = nn.Linear(dim + condition, hidden)
        self.blocks = nn.ModuleList(_FilmBlock(hidden, condition) for _ in range(blocks))
        self.output = nn.Linear(hidden, dim)

    def forward(self, points: torch.Tensor, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """points (B, N, D), sigma (B,) > 0, latent (B, L) -> (B, N, D)."""
        batch, count, _ = points.shape
        condition = torch.cat([latent, sigma.log()[:, None]], dim=1)             # (B, C)
        expanded = condition[:, None, :].expand(batch, count, condition.shape[1])
        hidden = self.input(torch.cat([points, expanded], dim=2))                # (B, N, H)
        for block in self.blocks:
            hidden = block(hidden, condition)
        return self.output(torch.relu(hidden)) / sigma[:, None, None]


class _FilmBlock(nn.Module):
    """h + W2 relu(W1 relu(γ(c) ⊙ h + β(c))); W2 starts at zero."""

    def __init__(self, hidden: int, condition: int) -> None:
        super().__init__()
        self.modulation = nn.Linear(condition, 2 * hidden)
        self.first = nn.Linear(hidden, hidden)
        self.second = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.second.weight)
        nn.init.zeros_(self.second.bias)
        with torch.no_grad():                      # γ starts near 1, β near 0
            self.modulation.weight.mul_(0.1)
            self.modulation.bias.zero_()
            self.modulation.bias[:hidden] = 1.0

    def forward(self, hidden: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """hidden (B, N, H), condition (B, C) -> (B, N, H)."""
        scale, shift = self.modulation(condition)[:, None, :].chunk(2, dim=2)   # (B, 1, H) each
        update = self.first(torch.relu(scale * hidden + shift))
        return hidden + self.second(torch.relu(update))
