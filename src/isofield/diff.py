"""Differential operators of fields through autograd (SIREN-style one-liners for the losses).

All operators keep the graph (``create_graph=True``) so that a loss built from them can be
back-propagated to the network's parameters (double backward); :func:`value_and_gradient` lets
a field that knows its own gradient skip that double backward.
"""

from __future__ import annotations

import torch
from torch import nn


def gradient(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """∇f: values (N,) or (N, 1) computed from points (N, D) with requires_grad -> (N, D)."""
    (grad,) = torch.autograd.grad(
        values, points, grad_outputs=torch.ones_like(values), create_graph=True
    )
    return grad


def value_and_gradient(field: nn.Module, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f and ∇f at points (N, D) -> values (N,), gradients (N, D), both differentiable with
    respect to the field's parameters.

    A field that computes its own input gradient (``analytic_gradient``, e.g. an MLP on a
    feature grid, :class:`isofield.nn.mlp.MLPField`) gives both from one call of its forward
    (``with_gradient=True``, so hooks see it), and the loss's backward is first order; any other
    goes through :func:`gradient` (a double backward). The analytic outputs carry no graph back
    to ``points``: a loss that differentiates them again with respect to the points (a
    divergence) needs :func:`gradient`.
    """
    if getattr(field, "analytic_gradient", False):
        return field(points, with_gradient=True)
    points = points.detach().requires_grad_(True)
    values = field(points)
    return values, gradient(values, points)


def divergence(vectors: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """∇·v: vectors (N, D) computed from points (N, D) -> (N,)."""
    div = torch.zeros(vectors.shape[0], dtype=vectors.dtype, device=vectors.device)
    for axis in range(vectors.shape[1]):
        div = div + gradient(vectors[:, axis], points)[:, axis]
    return div


def laplacian(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Δf = ∇·∇f: values (N,) computed from points (N, D) -> (N,)."""
    return divergence(gradient(values, points), points)
