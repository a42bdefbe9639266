"""Differential operators of fields through autograd (SIREN-style one-liners for the losses).

All operators keep the graph (``create_graph=True``) so that a loss built from them can be
back-propagated to the network's parameters (double backward).
"""

from __future__ import annotations

import torch


def gradient(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """∇f: values (N,) or (N, 1) computed from points (N, D) with requires_grad -> (N, D)."""
    (grad,) = torch.autograd.grad(
        values, points, grad_outputs=torch.ones_like(values), create_graph=True
    )
    return grad


def divergence(vectors: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """∇·v: vectors (N, D) computed from points (N, D) -> (N,)."""
    div = torch.zeros(vectors.shape[0], dtype=vectors.dtype, device=vectors.device)
    for axis in range(vectors.shape[1]):
        div = div + gradient(vectors[:, axis], points)[:, axis]
    return div


def laplacian(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Δf = ∇·∇f: values (N,) computed from points (N, D) -> (N,)."""
    return divergence(gradient(values, points), points)
