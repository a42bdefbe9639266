"""diff operators against analytic fields."""

from __future__ import annotations

import torch

from isofield.diff import divergence, gradient, laplacian


def _points(n=64, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)


def test_gradient_of_sphere_sdf_is_unit_radial():
    x = _points()
    f = x.norm(dim=1) - 0.5
    g = gradient(f, x)
    assert torch.allclose(g, x / x.norm(dim=1, keepdim=True), atol=1e-12)


def test_divergence_and_laplacian_of_quadratic():
    x = _points(d=3)
    f = (x[:, 0] ** 2) + 3 * (x[:, 1] ** 2) - 2 * x[:, 2] ** 2 + x[:, 0] * x[:, 1]
    # ∇f = (2x + y, 6y + x, -4z); Δf = 2 + 6 - 4 = 4 everywhere
    g = gradient(f, x)
    expected = torch.stack([2 * x[:, 0] + x[:, 1], 6 * x[:, 1] + x[:, 0], -4 * x[:, 2]], dim=1)
    assert torch.allclose(g, expected, atol=1e-12)
    assert torch.allclose(laplacian(f, x), torch.full((64,), 4.0, dtype=torch.float64), atol=1e-12)


def test_laplacian_of_distance_in_2d_and_3d():
    # Δ|x| = (D - 1) / |x|
    for d in (2, 3):
        x = _points(d=d, seed=d)
        r = x.norm(dim=1)
        assert torch.allclose(laplacian(r, x), (d - 1) / r, rtol=1e-10)


def test_divergence_of_linear_field_and_graph_is_kept():
    w = torch.tensor([[1.0, 2.0], [3.0, -5.0]], dtype=torch.float64, requires_grad=True)
    x = _points(d=2)
    v = x @ w.T  # div = trace(w) = -4
    div = divergence(v, x)
    assert torch.allclose(div, torch.full_like(div, -4.0))
    div.sum().backward()  # double backward reaches the parameters
    assert torch.allclose(w.grad, 64 * torch.eye(2, dtype=torch.float64))
