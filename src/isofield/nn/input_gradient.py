"""The input gradient of a scalar coordinate network, back-propagated by hand in torch ops.

The networks' forward passes keep each hidden layer's weight and activation slope; this walks
back from the output layer to the network input with ordinary (differentiable) torch ops, so a
loss of the gradient trains the network with a first-order backward instead of autograd's
double backward (see :func:`isofield.diff.value_and_gradient`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


def backpropagate_to_input(output_weight: torch.Tensor, weights: Sequence[torch.Tensor],
                           slopes: Sequence[torch.Tensor], skips: Sequence[int] = (),
                           skip_width: int = 0) -> torch.Tensor:
    """``d f / d u`` of ``f = output_weight · h_L + b`` with ``h_0 = u`` and
    ``h_{l+1} = act(W_l h'_l + b_l)``, where ``h'_l = h_l``, or ``concat(h_l, u) / sqrt(2)`` at
    the layers in ``skips`` (IGR's skip connections, :class:`isofield.nn.mlp.MLPField`).

    Args:
        output_weight: (1, H) weight of the linear output layer.
        weights: per hidden layer, ``W_l`` (out_l, in_l).
        slopes: per hidden layer, the activation's derivative at its pre-activation (N, out_l).
        skips: indices of the layers that re-read ``u``.
        skip_width: the width of ``u`` at those layers.
    Returns:
        (N, width of u), differentiable with respect to every weight and slope.
    """
    grad_h, grad_u = output_weight, 0
    for index in reversed(range(len(weights))):
        grad_h = (grad_h * slopes[index]) @ weights[index]              # (N, in_l)
        if index in skips:
            grad_h, grad_skip = grad_h.split([grad_h.shape[1] - skip_width, skip_width], dim=-1)
            grad_h, grad_u = grad_h / math.sqrt(2), grad_u + grad_skip / math.sqrt(2)
    return grad_u + grad_h
