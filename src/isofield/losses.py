"""Loss terms of the fitting recipes: pure functions of tensors, means over the batch."""

from __future__ import annotations

import torch


def clamped_l1(pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """DeepSDF: mean |clamp(f, δ) − clamp(s, δ)| for pred, target (N,) -> scalar."""
    return (pred.clamp(-delta, delta) - target.clamp(-delta, delta)).abs().mean()


def surface_loss(values_on_surface: torch.Tensor) -> torch.Tensor:
    """IGR: mean |f(x)| over surface points, values (N,) -> scalar."""
    return values_on_surface.abs().mean()


def normal_loss(gradients: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """IGR: mean ‖∇f(x) − n(x)‖ for gradients, normals (N, D) -> scalar."""
    return (gradients - normals).norm(dim=-1).mean()


def eikonal_loss(gradients: torch.Tensor) -> torch.Tensor:
    """IGR: mean (‖∇f(x)‖ − 1)² for gradients (N, D) -> scalar."""
    return ((gradients.norm(dim=-1) - 1.0) ** 2).mean()


def pseudo_sdf_loss(values: torch.Tensor, targets: torch.Tensor, band: float) -> torch.Tensor:
    """Far-field supervision from approximate signed distances t (values, targets (N,) -> scalar).

    Beyond ``band`` from the surface (|t| > band): |f − t|. Within it, where t's magnitude is
    unreliable, only a wrong sign is penalised: relu(−sign(t)·f).
    """
    far = targets.abs() > band
    wrong_sign = torch.relu(-torch.sign(targets) * values)
    return torch.where(far, (values - targets).abs(), wrong_sign).mean()
