"""Loss terms of the fitting recipes: pure functions of tensors, means over the batch."""

from __future__ import annotations

import torch


def clamped_l1(pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """DeepSDF: mean |clamp(f, δ) − clamp(s, δ)| for pred, target (N,) -> scalar."""
    return clamped_errors(pred, target, delta).mean()


def clamped_errors(pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """|clamp(f, δ) − clamp(s, δ)| for pred, target (N,) -> (N,)."""
    return (pred.clamp(-delta, delta) - target.clamp(-delta, delta)).abs()


def surface_loss(values_on_surface: torch.Tensor) -> torch.Tensor:
    """IGR: mean |f(x)| over surface points, values (N,) -> scalar."""
    return values_on_surface.abs().mean()


def normal_loss(gradients: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """IGR: mean ‖∇f(x) − n(x)‖ for gradients, normals (N, D) -> scalar."""
    return (gradients - normals).norm(dim=-1).mean()


def normal_cosine_loss(gradients: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """SIREN: mean (1 − cos∠(∇f(x), n(x))) for gradients, normals (N, D) -> scalar."""
    return (1.0 - torch.nn.functional.cosine_similarity(gradients, normals, dim=-1)).mean()


def eikonal_loss(gradients: torch.Tensor, power: int = 2) -> torch.Tensor:
    """mean |‖∇f(x)‖ − 1|^p for gradients (N, D) -> scalar; IGR p = 2, SIREN and DiGS p = 1."""
    return ((gradients.norm(dim=-1) - 1.0).abs() ** power).mean()


def off_surface_loss(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """SIREN, DiGS: mean exp(−α|f(x)|) away from the surface, values (N,) -> scalar.

    It pushes the field away from zero where there is no data, so no spurious surface forms.
    """
    return torch.exp(-alpha * values.abs()).mean()


def outside_sign_loss(values: torch.Tensor, points: torch.Tensor, radius: float = 1.0) -> torch.Tensor:
    """mean relu(−f(x)) over points farther than ``radius`` from the origin, values (N,),
    points (N, D) -> scalar (0 when there are none).

    In the canonical frame every input point lies within the unit sphere, so anything beyond
    it is outside the shape: a negative value there is a spurious inside.
    """
    beyond = points.detach().norm(dim=-1) > radius
    return torch.where(beyond, torch.relu(-values), torch.zeros_like(values)).mean()


def sign_agnostic_loss(values: torch.Tensor, unsigned: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """SAL: mean | |f(x)| − h(x) | for values, unsigned distances h (..., N) -> scalar, or the
    mean over ``dim`` only (e.g. per shape of (B, N) values)."""
    return (values.abs() - unsigned).abs().mean(dim=dim)


def sign_agnostic_gradient_loss(gradients: torch.Tensor, unsigned_gradients: torch.Tensor,
                                dim: int | None = None) -> torch.Tensor:
    """SALD: mean min(‖∇f − ∇h‖, ‖∇f + ∇h‖) for gradients, ∇h (..., N, D) -> scalar, or the
    mean over ``dim`` of the (..., N) point terms only."""
    minus = (gradients - unsigned_gradients).norm(dim=-1)
    plus = (gradients + unsigned_gradients).norm(dim=-1)
    return torch.minimum(minus, plus).mean(dim=dim)


def divergence_loss(divergences: torch.Tensor) -> torch.Tensor:
    """DiGS: mean |∇·∇f(x)| for divergences (N,) -> scalar."""
    return divergences.abs().mean()


def pseudo_sdf_loss(values: torch.Tensor, targets: torch.Tensor, band: float) -> torch.Tensor:
    """Far-field supervision from approximate signed distances t (values, targets (N,) -> scalar).

    Beyond ``band`` from the surface (|t| > band): |f − t|. Within it, where t's magnitude is
    unreliable, only a wrong sign is penalised: relu(−sign(t)·f).
    """
    far = targets.abs() > band
    wrong_sign = torch.relu(-torch.sign(targets) * values)
    return torch.where(far, (values - targets).abs(), wrong_sign).mean()


def score_matching_errors(scores: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Denoising score matching at level σ, weighted by λ(σ) = σ² (ShapeGF, NCSN).

    For points x̃ = x + σ ε of a shape, the score of the blurred density has target −ε / σ;
    the weighted squared error is ½ σ² ‖g(x̃) + ε / σ‖² = ½ ‖σ g(x̃) + ε‖², of order one at
    every level. scores, noise (B, N, D), sigma (B,) -> per-shape means (B,).
    """
    return 0.5 * (sigma[:, None, None] * scores + noise).square().sum(dim=-1).mean(dim=1)


def gaussian_kl(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) of each shape's latent posterior, per latent dimension:
    mean, log_std (B, Z) -> (B, Z).

    ½ (μ² + σ² − 1 − 2 log σ); summed over Z it is the prior term of a variational auto-encoder's loss.
    """
    return 0.5 * (mean.square() + torch.exp(2.0 * log_std) - 1.0 - 2.0 * log_std)


def free_bits_kl(kl: torch.Tensor, free_nats: float) -> torch.Tensor:
    """Σ_z max(KL_z, free_nats) of per-dimension KLs (B, Z) -> (B,) (Kingma et al. 2016).

    The first ``free_nats`` of every latent dimension cost nothing, so the encoder can carry that
    much information about each shape before the prior pulls back: against posterior collapse.
    """
    return kl.clamp(min=free_nats).sum(dim=-1)
