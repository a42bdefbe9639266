"""Annealed Langevin dynamics: move points from noise to a surface through the noise levels.

For each level σ_k, largest first, ``steps_per_level`` steps of

    x ← x + (α_k / 2) · g(x, σ_k) + sqrt(α_k) · ξ,     α_k = step_ratio · σ_k²,  ξ ~ N(0, I)

(Song & Ermon 2019; ShapeGF samples point clouds this way). Near a surface g ≈ −(x − p) / σ²,
so each step moves a point ``step_ratio / 2`` of the way to its projection p while the noise
keeps it spread by about σ_k. An optional last step without noise, x ← x + σ_min² · g(x, σ_min)
(Tweedie's formula), removes the spread of the smallest level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

ScoreFunction = Callable[[torch.Tensor, float], torch.Tensor]
"""g(points (B, N, D), σ) -> scores (B, N, D)."""


@dataclass(frozen=True)
class LangevinResult:
    """points: (B, N, D) the final points; trajectory: the points before the first level and
    after each level (and after the denoising step), each (B, N, D); empty unless recorded."""

    points: torch.Tensor
    trajectory: list[torch.Tensor]


@torch.no_grad()
def annealed_langevin(score: ScoreFunction, start: torch.Tensor, sigmas: Sequence[float], *,
                      steps_per_level: int, step_ratio: float, denoise: bool,
                      generator: torch.Generator, record: bool = False) -> LangevinResult:
    """Run the dynamics from ``start`` (B, N, D) down ``sigmas`` (largest first).

    ``generator`` (on the points' device) draws every noise vector, so equal seeds give equal
    points. ``record`` keeps the points after each level (moved to the CPU).
    """
    points = start.clone()
    trajectory = [points.cpu().clone()] if record else []
    for sigma in sigmas:
        alpha = step_ratio * sigma ** 2
        for _ in range(steps_per_level):
            noise = torch.randn(points.shape, generator=generator, device=points.device)
            points += 0.5 * alpha * score(points, sigma) + math.sqrt(alpha) * noise
        if record:
            trajectory.append(points.cpu().clone())
    if denoise:
        points += sigmas[-1] ** 2 * score(points, sigmas[-1])
        if record:
            trajectory.append(points.cpu().clone())
    return LangevinResult(points, trajectory)
