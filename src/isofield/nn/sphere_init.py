"""The last step of every geometric initialisation: fit the output layer to a sphere's SDF.

A network's last hidden features ``h(x): (M, H)`` are fixed by its initialisation; the output
layer ``f(x) = a · h(x) + b`` is then chosen by ridge-regularised least squares so that ``f``
approximates ``|x| - radius`` on points uniform in a ball around the sphere. This turns
the rough SAL / DiGS initialisations into an accurate signed sphere (see the measurements in
:class:`isofield.nn.mlp.MLPField` and :class:`isofield.nn.siren.SirenField`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


@torch.no_grad()
def fit_output_layer_to_sphere(hidden_features: Callable[[torch.Tensor], torch.Tensor],
                               output_layer: nn.Linear, in_dim: int, radius: float,
                               prior: torch.Tensor | None = None, num_points: int = 4096,
                               penalty: float = 1e-4, extent: float = 1.5) -> None:
    """Set ``output_layer`` (every output row) to the ridge fit of ``|x| - radius``.

    Args:
        hidden_features: maps points ``(M, in_dim)`` to the features ``(M, H)`` the layer reads.
        output_layer: ``nn.Linear(H, out_dim)``, overwritten in place.
        in_dim: dimension of the points.
        radius: radius of the sphere (canonical units).
        prior: ``(H,)`` weights the penalty pulls towards (zero when None); the bias is free.
        num_points: fitting points, drawn from a fixed generator (deterministic).
        penalty: ridge weight per point: the penalty is ``penalty * num_points * |a - prior|^2``.
        extent: the fitting points fill the ball of radius ``extent * radius``.
    """
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(num_points, in_dim, generator=generator, dtype=torch.float64)
    direction /= direction.norm(dim=1, keepdim=True)
    distance = extent * radius * torch.rand(num_points, 1, generator=generator,
                                         dtype=torch.float64) ** (1 / in_dim)
    points = (direction * distance).float()
    design = torch.cat([hidden_features(points), torch.ones(num_points, 1)], 1).double()
    ridge = penalty * num_points * torch.ones(design.shape[1], dtype=torch.float64)
    ridge[-1] = 0.0                                            # the bias is not penalised
    target = distance[:, 0] - radius
    prior = torch.zeros(design.shape[1] - 1) if prior is None else prior
    prior_with_bias = torch.cat([prior.double(), torch.zeros(1, dtype=torch.float64)])
    rhs = design.T @ target + ridge * prior_with_bias
    solution = torch.linalg.solve(design.T @ design + torch.diag(ridge), rhs).float()
    output_layer.weight.copy_(solution[:-1].expand_as(output_layer.weight))
    output_layer.bias.fill_(solution[-1].item())
