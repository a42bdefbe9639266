"""SIREN (Sitzmann et al. 2020): an MLP with sine activations, and its geometric initialisations.

``h_0 = x``, ``h_{l+1} = sin(ω_l (W_l h_l + b_l))`` for the ``depth`` hidden layers
(``ω_0 = first_omega``, later ``ω_l = omega``), then a linear output ``f = W_out h + b_out``.

Initialisations (``init``):

- ``"siren"`` — the paper's: first layer ``W ~ U(-1/in_dim, 1/in_dim)``, later layers (and the
  output) ``W ~ U(-sqrt(6/fan_in)/ω, sqrt(6/fan_in)/ω)``; biases PyTorch's default. The initial
  field is a small random function: fine with supervision everywhere (an SDF recipe with
  off-surface terms), but it has no inside, so sign-agnostic recipes cannot start from it.
- ``"geometric"`` — a signed sphere, as DiGS's geometric SIREN initialisation intends, built
  differently: the first layer gets *low* frequencies (``ω_0 W ~ U(-1, 1)``, phases
  ``ω_0 b ~ U(-π, π)``), the hidden layers the paper's init, and the output layer is the ridge
  fit of ``|x| - radius`` on the ball of radius ``2.6 * radius``
  (:func:`isofield.nn.sphere_init.fit_output_layer_to_sphere`), which covers the sample box
  ``[-1.5, 1.5]^3`` of the raw-data methods: unlike a ReLU network, a SIREN does not
  extrapolate beyond the fitted ball (fitting to ``1.5 * radius`` only: errors up to 0.7 in
  the box's corners). Measured (4x256, ω = 30, radius 1, mfgi, two seeds): for
  ``0.2 <= |x| <= 1.5`` mean error 0.018-0.021 (3-D) / 0.008-0.009 (2-D), max 0.13 / 0.04;
  for ``1.5 <= |x| <= 2.6`` mean 0.008-0.013 / 0.003; ``||∇f| - 1|`` 0.09 / 0.05 on average.
  Higher first-layer frequencies make it worse (``ω_0 W ~ U(-4, 4)``: mean 0.06, max 0.49).
- ``"mfgi"`` — DiGS's multi-frequency geometric initialisation: as ``"geometric"``, but a
  fraction ``high_frequency_fraction`` of the first layer's neurons get the paper's
  high-frequency init, and the second layer's weights that read them start at zero. The
  initial field is exactly the geometric sphere, yet the high frequencies receive gradients
  from the first step and can add detail as training goes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from isofield.errors import InputError
from isofield.nn.sphere_init import fit_output_layer_to_sphere

SIREN_INITS = ("siren", "geometric", "mfgi")
SPHERE_FIT_EXTENT = 2.6
"""the sphere fit covers the ball of radius 2.6 * radius (the corners of [-1.5, 1.5]^3)"""


class SirenField(nn.Module):
    """A sine-activated field ``f(x) -> R^out_dim``.

    Args:
        in_dim: dimension of the points (3, or 2 for planar problems).
        out_dim: number of outputs.
        hidden: width of the hidden layers.
        depth: number of hidden (sine) layers, >= 1; ``depth + 1`` linear layers in total.
        omega: ω of the hidden layers (SIREN: 30).
        first_omega: ω of the first layer (SIREN: 30).
        init: "siren", "geometric" or "mfgi" (see the module docstring).
        radius: radius of the initial sphere (geometric and mfgi inits).
        high_frequency_fraction: share of first-layer neurons with high frequencies (mfgi),
            in [0, 1); needs ``depth >= 2`` to have a layer reading them.

    Shapes: ``forward(x: (N, in_dim)) -> (N,)`` when ``out_dim == 1``, else ``(N, out_dim)``.
    """

    def __init__(self, in_dim: int = 3, out_dim: int = 1, hidden: int = 256, depth: int = 4,
                 omega: float = 30.0, first_omega: float = 30.0, init: str = "mfgi",
                 radius: float = 1.0, high_frequency_fraction: float = 0.25) -> None:
        super().__init__()
        _check_siren_arguments(in_dim, out_dim, hidden, depth, omega, first_omega, init, radius,
                               high_frequency_fraction)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.omegas = [float(first_omega)] + [float(omega)] * (depth - 1)
        self.hidden_layers = nn.ModuleList(
            nn.Linear(in_dim if index == 0 else hidden, hidden) for index in range(depth))
        self.output_layer = nn.Linear(hidden, out_dim)
        self._paper_init()
        if init != "siren":
            self._geometric_init(radius, high_frequency_fraction if init == "mfgi" else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Field values at points ``x: (N, in_dim)`` -> ``(N,)`` or ``(N, out_dim)``."""
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise InputError(f"SirenField: points must have shape (N, {self.in_dim}), "
                             f"got {tuple(x.shape)}")
        h = self.output_layer(self._hidden_features(x))
        return h.squeeze(-1) if self.out_dim == 1 else h

    def _hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations ``(N, hidden)`` of points ``(N, in_dim)``."""
        h = x
        for omega, layer in zip(self.omegas, self.hidden_layers):
            h = torch.sin(omega * layer(h))
        return h

    @torch.no_grad()
    def _paper_init(self) -> None:
        first = self.hidden_layers[0]
        first.weight.uniform_(-1.0 / self.in_dim, 1.0 / self.in_dim)
        for omega, layer in zip(self.omegas[1:] + [self.omegas[-1]],
                                [*self.hidden_layers[1:], self.output_layer]):
            bound = math.sqrt(6.0 / layer.in_features) / omega
            layer.weight.uniform_(-bound, bound)

    @torch.no_grad()
    def _geometric_init(self, radius: float, high_frequency_fraction: float) -> None:
        first, omega = self.hidden_layers[0], self.omegas[0]
        high = int(round(high_frequency_fraction * first.out_features))
        low = slice(high, first.out_features)
        first.weight[low].uniform_(-1.0 / omega, 1.0 / omega)
        first.bias[low].uniform_(-math.pi / omega, math.pi / omega)
        if high:
            self.hidden_layers[1].weight[:, :high].zero_()
        fit_output_layer_to_sphere(self._hidden_features, self.output_layer, self.in_dim, radius,
                                   extent=SPHERE_FIT_EXTENT)


def _check_siren_arguments(in_dim: int, out_dim: int, hidden: int, depth: int, omega: float,
                           first_omega: float, init: str, radius: float,
                           high_frequency_fraction: float) -> None:
    """Raise InputError naming the first bad SirenField argument."""
    for name, value in [("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden),
                        ("depth", depth)]:
        if not isinstance(value, int) or value < 1:
            raise InputError(f"SIREN field: {name} must be an integer >= 1, got {value!r}")
    for name, value in [("omega", omega), ("first_omega", first_omega), ("radius", radius)]:
        if not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"SIREN field: {name} must be positive, got {value!r}")
    if init not in SIREN_INITS:
        raise InputError(f"SIREN field: init must be one of {SIREN_INITS}, got {init!r}")
    if not isinstance(high_frequency_fraction, (int, float)) or not 0 <= high_frequency_fraction < 1:
        raise InputError(f"SIREN field: high_frequency_fraction must be in [0, 1), "
                         f"got {high_frequency_fraction!r}")
    if init == "mfgi" and high_frequency_fraction > 0 and depth < 2:
        raise InputError("SIREN field: the mfgi init needs depth >= 2 (a layer after the first)")
