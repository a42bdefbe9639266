"""Networks for fitting one shape: MLP field, grid and Fourier encodings, adapters, factory."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from isofield.errors import InputError
from isofield.nn.encodings import FourierFeatures, MultiResolutionGrid, level_resolutions
from isofield.nn.field import as_numpy_field, build_field, resolve_field_config
from isofield.nn.mlp import MLPField


def shell_points(n: int, seed: int, dim: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Points with 0.2 <= |x| <= 1.5: (n, dim) points and their (n,) norms."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(n, dim, generator=generator)
    direction /= direction.norm(dim=1, keepdim=True)
    radius = 0.2 + 1.3 * torch.rand(n, generator=generator)
    return direction * radius[:, None], radius


def eikonal_step_loss(field: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|f| + (|grad f| - 1)^2 at x: needs the second derivative through the field."""
    x = x.clone().requires_grad_()
    values = field(x)
    (gradient,) = torch.autograd.grad(values.sum(), x, create_graph=True)
    return values.abs().mean() + ((gradient.norm(dim=1) - 1) ** 2).mean()


# ----------------------------------------------------------------------------- MLP field


@pytest.mark.parametrize("preset", ["paper", "fast"])
@pytest.mark.parametrize("seed", [0, 1])
def test_geometric_init_approximates_sphere_sdf(preset: str, seed: int) -> None:
    torch.manual_seed(seed)
    field = build_field({"preset": preset})
    x, norm = shell_points(2000, seed=10 + seed)
    x.requires_grad_()
    values = field(x)
    (gradient,) = torch.autograd.grad(values.sum(), x)
    error = (values - (norm - 1.0)).abs()
    assert error.mean().item() < 0.05
    assert error.max().item() < 0.2
    cosine = (gradient * x).sum(1) / (gradient.norm(dim=1) * norm)
    assert cosine.min().item() > 0.8                     # the gradient points outward
    assert abs(gradient.norm(dim=1).mean().item() - 1) < 0.15


def test_geometric_init_radius_scales_the_sphere() -> None:
    torch.manual_seed(0)
    field = MLPField(hidden=64, depth=2, skip=(), radius=0.3)
    x, norm = shell_points(1000, seed=4)
    x = x * 0.3                                          # 0.06 <= |x| <= 0.45
    assert (field(x) - (0.3 * norm - 0.3)).abs().mean().item() < 0.05 * 0.3


def test_geometric_init_ignores_latent_and_encoding() -> None:
    torch.manual_seed(0)
    field = MLPField(hidden=64, depth=3, skip=(2,), latent_dim=5,
                     input_encoding=FourierFeatures(num_frequencies=3, include_input=False))
    x, _ = shell_points(100, seed=3)
    first = field(x, torch.randn(5))
    second = field(x, torch.randn(100, 5))
    assert torch.allclose(first, second, atol=1e-6)
    assert field.input_width == 5 + 3 + 18


def test_mlp_layer_count_and_skip_widths() -> None:
    field = MLPField(hidden=32, depth=4, skip=(2,), weight_norm=False, geometric_init=False)
    widths = [(layer.in_features, layer.out_features) for layer in field.hidden_layers]
    assert widths == [(3, 32), (32, 29), (32, 32), (32, 32)]
    assert (field.output_layer.in_features, field.output_layer.out_features) == (32, 1)


def test_skip_concatenates_input_and_divides_by_sqrt2() -> None:
    torch.manual_seed(0)
    field = MLPField(hidden=8, depth=2, skip=(1,), activation="relu", weight_norm=False,
                     geometric_init=False)
    x = torch.randn(6, 3)
    first, second = field.hidden_layers
    h = torch.relu(first(x))
    h = torch.relu(second(torch.cat([h, x], 1) / math.sqrt(2)))
    assert torch.allclose(field(x), field.output_layer(h)[:, 0], atol=1e-6)


def test_output_shapes() -> None:
    x = torch.randn(7, 3)
    assert MLPField(hidden=16, depth=2, skip=())(x).shape == (7,)
    assert MLPField(out_dim=4, hidden=16, depth=2, skip=())(x).shape == (7, 4)
    planar = MLPField(in_dim=2, hidden=16, depth=2, skip=())
    assert planar(torch.randn(5, 2)).shape == (5,)


@pytest.mark.parametrize("weight_norm", [True, False])
def test_state_dict_round_trip(weight_norm: bool, tmp_path) -> None:
    torch.manual_seed(0)
    source = build_field({"preset": "fast", "weight_norm": weight_norm})
    with torch.no_grad():
        source.input_encoding.table.normal_()            # make the grid matter
        source.output_layer.bias.add_(0.3)
    path = tmp_path / "field.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(1)
    target = build_field({"preset": "fast", "weight_norm": weight_norm})
    target.load_state_dict(torch.load(path, weights_only=True))
    x = torch.rand(100, 3) * 2 - 1
    assert torch.equal(source(x), target(x))
    if weight_norm:
        assert any("parametrizations.weight.original0" in key for key in source.state_dict())


def test_bad_mlp_arguments_raise_input_error() -> None:
    with pytest.raises(InputError, match="skip layer 8"):
        MLPField(depth=8, skip=(8,))
    with pytest.raises(InputError, match="activation"):
        MLPField(activation="tanh")
    with pytest.raises(InputError, match="latent code must be given"):
        MLPField(hidden=16, depth=2, skip=(), latent_dim=4)(torch.zeros(2, 3))
    with pytest.raises(InputError, match=r"shape \(N, 3\)"):
        MLPField(hidden=16, depth=2, skip=())(torch.zeros(2, 4))


# ----------------------------------------------------------------------------- grid encoding


def test_level_resolutions_grow_geometrically() -> None:
    assert level_resolutions(16, 16, 512) == [int(16 * 32 ** (level / 15) + 1e-9)
                                              for level in range(16)]
    assert level_resolutions(5, 16, 256) == [16, 32, 64, 128, 256]
    assert level_resolutions(1, 16, 256) == [16]


def test_grid_table_layout_dense_then_hashed() -> None:
    grid = MultiResolutionGrid(levels=4, base_resolution=4, max_resolution=32, log2_hashmap_size=10)
    assert grid.resolutions == [4, 8, 16, 32]
    assert grid.num_dense == 2                           # 5^3 = 125 and 9^3 = 729 <= 1024
    assert grid.table_rows == [125, 729, 1024, 1024]
    assert grid.table.shape == (2, 125 + 729 + 2048)
    assert grid.out_dim == 8
    assert grid(torch.zeros(3, 3)).shape == (3, 8)
    assert grid.table.abs().max().item() <= 1e-4


def test_grid_loads_a_table_stored_rows_first() -> None:
    source = MultiResolutionGrid(levels=3, base_resolution=4, max_resolution=16, log2_hashmap_size=9)
    with torch.no_grad():
        source.table.normal_()
    state = source.state_dict()
    state["table"] = state["table"].T.contiguous()                   # (total_rows, F)
    target = MultiResolutionGrid(levels=3, base_resolution=4, max_resolution=16, log2_hashmap_size=9)
    target.load_state_dict(state)
    x = torch.rand(50, 3) * 2 - 1
    assert torch.equal(target.table, source.table) and torch.equal(target(x), source(x))


def test_hash_rows_in_range_and_dense_levels_bijective() -> None:
    grid = MultiResolutionGrid(levels=4, base_resolution=4, max_resolution=32, log2_hashmap_size=10)
    finest = grid.resolutions[-1]
    axes = torch.arange(finest)
    cells = torch.cartesian_prod(axes, axes, axes)                          # (32^3, 3)
    per_level = torch.stack([cells.clamp(max=res - 1) for res in grid.resolutions], dim=1)
    rows = grid.cell_corner_rows(per_level.permute(2, 0, 1)).transpose(0, 1)   # (N, 8, 4)
    starts = grid.level_offsets.tolist() + [grid.table.shape[1]]
    for level in range(grid.levels):
        level_rows = rows[:, :, level]
        assert level_rows.min() >= starts[level] and level_rows.max() < starts[level + 1]
    for level, res in enumerate(grid.resolutions[: grid.num_dense]):
        # Every vertex (i, j, k) of a dense level has its own row: (res + 1)^3 distinct rows.
        corners = torch.tensor(list(itertools.product((0, 1), repeat=3)))
        vertices = (per_level[:, level, None, :] + corners).reshape(-1, 3)
        unique_vertices, first = np.unique(vertices.numpy(), axis=0, return_index=True)
        assert len(unique_vertices) == (res + 1) ** 3
        vertex_rows = rows[:, :, level].reshape(-1)[torch.from_numpy(first)]
        assert len(torch.unique(vertex_rows)) == (res + 1) ** 3
    hashed = rows[:, :, grid.num_dense:]
    assert len(torch.unique(hashed[:, :, -1])) > 0.9 * 1024            # the hash fills its table


def test_hash_matches_instant_ngp_formula() -> None:
    grid = MultiResolutionGrid(levels=2, base_resolution=2, max_resolution=300, log2_hashmap_size=6)
    assert grid.num_dense == 1
    cell = torch.tensor([[[1, 1, 0], [123, 45, 299]]]).permute(2, 0, 1)     # (3, N=1, L=2)
    rows = grid.cell_corner_rows(cell)[:, 0, 1] - grid.level_offsets[1]
    for corner, (bx, by, bz) in enumerate(itertools.product((0, 1), repeat=3)):
        i, j, k = 123 + bx, 45 + by, 299 + bz
        expected = ((i * 1) ^ (j * 2654435761) ^ (k * 805459861)) % 64
        assert rows[corner].item() == expected


def linear_grid(coefficients: tuple[float, ...], offset: float, **kwargs) -> MultiResolutionGrid:
    """A grid whose features (both per level) at every vertex are coefficients . x + offset."""
    dim = len(coefficients)
    grid = MultiResolutionGrid(features_per_level=2, in_dim=dim, **kwargs).double()
    lo, hi = grid.bounds
    with torch.no_grad():
        for level, res in enumerate(grid.resolutions):
            axis = torch.linspace(lo, hi, res + 1, dtype=torch.float64)
            # Vertex (i, j, k) sits in row i + j (res+1) + k (res+1)^2: x varies fastest.
            coordinates = reversed(torch.meshgrid(*[axis] * dim, indexing="ij"))
            values = sum(a * c for a, c in zip(coefficients, coordinates)).reshape(-1) + offset
            start = grid.level_offsets[level]
            grid.table[:, start:start + len(values)] = values
    return grid


def test_trilinear_interpolation_reproduces_linear_functions() -> None:
    grid = linear_grid((0.7, -1.3, 2.1), 0.25, levels=3, base_resolution=3, max_resolution=12,
                       log2_hashmap_size=12, bounds=(-1.5, 2.0))
    assert grid.num_dense == 3
    x = torch.rand(5000, 3, dtype=torch.float64) * 3.5 - 1.5
    expected = 0.7 * x[:, 0] - 1.3 * x[:, 1] + 2.1 * x[:, 2] + 0.25
    features = grid(x)
    assert torch.allclose(features, expected[:, None].expand(-1, 6), atol=1e-5, rtol=0)
    # Its gradient is the constant (a, b, c) everywhere, also in float32.
    x32 = x.float().requires_grad_()
    (gradient,) = torch.autograd.grad(grid.float()(x32)[:, 0].sum(), x32)
    assert torch.allclose(gradient, torch.tensor([0.7, -1.3, 2.1]).expand(5000, 3), atol=1e-4)


def test_bilinear_interpolation_in_the_plane() -> None:
    grid = linear_grid((-0.4, 1.9), -0.5, levels=2, base_resolution=5, max_resolution=20)
    x = torch.rand(1000, 2, dtype=torch.float64) * 2 - 1
    expected = -0.4 * x[:, 0] + 1.9 * x[:, 1] - 0.5
    assert torch.allclose(grid(x), expected[:, None].expand(-1, 4), atol=1e-5, rtol=0)


def test_points_outside_bounds_are_clamped() -> None:
    grid = linear_grid((1.0, 2.0, 3.0), 0.0, levels=1, base_resolution=4, max_resolution=4)
    inside = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64)
    outside = torch.tensor([[3.0, -7.0, 0.5]], dtype=torch.float64)
    assert torch.allclose(grid(outside), grid(inside))
    assert grid(inside)[0, 0].item() == pytest.approx(1.0 - 2.0 + 1.5)


def test_smoothstep_interpolates_vertices_with_zero_slope_there() -> None:
    grid = linear_grid((1.0, 0.0, 0.0), 0.0, levels=1, base_resolution=2, max_resolution=2,
                       interpolation="smoothstep")
    x = torch.tensor([[-0.5, 0.1, 0.2], [0.0, 0.3, 0.3], [0.5, 0.0, 0.0]], dtype=torch.float64)
    # Cells [-1, 0] and [0, 1]: t = 0.5 maps to 0.5, the vertex 0 stays exact.
    assert grid(x)[:, 0].tolist() == pytest.approx([-0.5, 0.0, 0.5])
    quarter = torch.tensor([[-0.75, 0.0, 0.0]], dtype=torch.float64)
    assert grid(quarter)[0, 0].item() == pytest.approx(-1 + (3 * 0.25**2 - 2 * 0.25**3))
    vertex = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(grid(vertex)[0, 0], vertex)
    assert gradient.abs().max().item() == 0.0


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("dim", [3, 2])
def test_grid_gradcheck_and_gradgradcheck_dense_and_hashed(interpolation: str, dim: int) -> None:
    torch.manual_seed(0)
    grid = MultiResolutionGrid(levels=3, base_resolution=2, max_resolution=8, in_dim=dim,
                               log2_hashmap_size=6 if dim == 3 else 5,
                               interpolation=interpolation).double()
    assert 0 < grid.num_dense < grid.levels                 # 3-D: 27 rows dense, then 125 and 729 > 64
    with torch.no_grad():
        grid.table.normal_()
    # Keep points off cell faces, where (bi)linear interpolation is not differentiable.
    x = (torch.rand(8, dim, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    table = grid.table.detach().clone().requires_grad_()

    def encode(points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return functional_call(grid, {"table": features}, (points,))

    assert torch.autograd.gradcheck(encode, (x, table))
    assert torch.autograd.gradgradcheck(encode, (x, table))


def test_eikonal_loss_gradient_through_grid_matches_finite_differences() -> None:
    torch.manual_seed(0)
    grid = MultiResolutionGrid(levels=2, base_resolution=2, max_resolution=6, log2_hashmap_size=5,
                               features_per_level=1).double()
    with torch.no_grad():
        grid.table.normal_()
    x = torch.rand(10, 3, dtype=torch.float64) * 1.6 - 0.8

    def eikonal(features: torch.Tensor) -> torch.Tensor:
        def field(points: torch.Tensor) -> torch.Tensor:
            return functional_call(grid, {"table": features}, (points,)).sum(1)

        return eikonal_step_loss(field, x)

    assert torch.autograd.gradcheck(eikonal, (grid.table.detach().clone().requires_grad_(),))


def test_double_backward_through_fast_field() -> None:
    torch.manual_seed(0)
    field = build_field({"preset": "fast"}).double()
    with torch.no_grad():                                # leave the init: let the grid matter
        field.input_encoding.table.normal_(0, 0.1)
        field.hidden_layers[0].parametrizations.weight.original1[:, 3:].normal_(0, 0.5)
    x = torch.rand(64, 3, dtype=torch.float64) * 1.6 - 0.8
    eikonal_step_loss(field, x).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in field.parameters())
    table = field.input_encoding.table
    assert table.grad.abs().sum().item() > 0
    # Directional derivative of the loss along the table gradient vs a central difference.
    direction = table.grad / table.grad.norm()
    analytic = (table.grad * direction).sum().item()
    eps = 1e-6
    with torch.no_grad():
        table += eps * direction
    plus = eikonal_step_loss(field, x).item()
    with torch.no_grad():
        table -= 2 * eps * direction
    minus = eikonal_step_loss(field, x).item()
    assert (plus - minus) / (2 * eps) == pytest.approx(analytic, rel=1e-4)


def test_bad_grid_arguments_raise_input_error() -> None:
    with pytest.raises(InputError, match="max_resolution"):
        MultiResolutionGrid(base_resolution=32, max_resolution=16)
    with pytest.raises(InputError, match="interpolation"):
        MultiResolutionGrid(interpolation="cubic")
    with pytest.raises(InputError, match="bounds"):
        MultiResolutionGrid(bounds=(1.0, -1.0))


def test_fitting_fast_field_to_sphere_sdf_by_l1_regression() -> None:
    torch.manual_seed(0)
    field = build_field({"preset": "fast"})
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    target = lambda p: p.norm(dim=1) - 0.5                            # noqa: E731
    for _ in range(200):                                 # ~1.7 s on one busy core
        x = torch.rand(1024, 3, generator=generator) * 2 - 1
        loss = (field(x) - target(x)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x = torch.rand(20000, 3, generator=generator) * 2 - 1
    with torch.no_grad():
        error = (field(x) - target(x)).abs().mean().item()
    assert error < 0.01                                  # measured 0.003


# ----------------------------------------------------------------------------- Fourier features


def test_fourier_log_features_values_and_dim() -> None:
    encoding = FourierFeatures(in_dim=3, num_frequencies=4, include_input=True)
    assert encoding.out_dim == 3 + 2 * 3 * 4
    x = torch.tensor([[0.1, -0.2, 0.3]])
    features = encoding(x)[0]
    assert torch.allclose(features[:3], x[0])
    phases = [2**k * math.pi * v for k in range(4) for v in (0.1, -0.2, 0.3)]
    sines = torch.tensor([math.sin(phase) for phase in phases])
    cosines = torch.tensor([math.cos(phase) for phase in phases])
    assert torch.allclose(features[3:15], sines, atol=1e-6)
    assert torch.allclose(features[15:], cosines, atol=1e-6)


def test_fourier_gaussian_features_are_seeded_and_saved() -> None:
    first = FourierFeatures(in_dim=2, num_frequencies=16, include_input=False, kind="gaussian",
                            sigma=3.0, seed=5)
    second = FourierFeatures(in_dim=2, num_frequencies=16, include_input=False, kind="gaussian",
                             sigma=3.0, seed=5)
    assert first.out_dim == 32
    x = torch.randn(10, 2)
    assert torch.equal(first(x), second(x))
    assert "frequency_matrix" in first.state_dict()
    # sin^2 + cos^2 = 1 for every frequency.
    features = first(x)
    assert torch.allclose(features[:, :16] ** 2 + features[:, 16:] ** 2, torch.ones(10, 16),
                          atol=1e-5)


# ----------------------------------------------------------------------------- adapters


def test_as_numpy_field_batches_and_restores_mode() -> None:
    calls: list[int] = []

    class Sphere(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(len(x))
            assert not self.training and not torch.is_grad_enabled()
            return x.norm(dim=1) - 1

    module = Sphere().train()
    field = as_numpy_field(module, batch_size=400)
    points = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    values = field(points)
    assert calls == [400, 400, 200]
    assert values.dtype == np.float32 and values.shape == (1000,)
    np.testing.assert_allclose(values, np.linalg.norm(points, axis=1) - 1, atol=1e-6)
    assert module.training
    assert field(np.zeros((0, 3), np.float32)).shape == (0,) and calls == [400, 400, 200]


def test_as_numpy_field_passes_latent_code() -> None:
    torch.manual_seed(0)
    decoder = MLPField(hidden=32, depth=2, skip=(), latent_dim=4)
    with torch.no_grad():
        decoder.hidden_layers[0].parametrizations.weight.original1[:, :4].normal_()
    code = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    points = np.random.default_rng(1).uniform(-1, 1, (50, 3)).astype(np.float32)
    expected = decoder(torch.from_numpy(points), torch.from_numpy(code)).detach().numpy()
    np.testing.assert_allclose(as_numpy_field(decoder, latent=code, batch_size=7)(points), expected,
                               atol=1e-6)


def test_build_field_presets_and_overrides() -> None:
    paper = build_field({"preset": "paper"})
    assert len(paper.hidden_layers) == 8 and paper.hidden_layers[1].out_features == 512
    assert paper.skip == (4,) and paper.hidden_layers[3].out_features == 512 - 3
    assert paper.input_encoding is None and paper.activation.beta == 100.0
    fast = build_field({"preset": "fast", "encoding": {"levels": 4}})
    assert isinstance(fast.input_encoding, MultiResolutionGrid)
    assert fast.input_encoding.levels == 4 and fast.input_encoding.resolutions[-1] == 128
    assert fast.input_width == 3 + 8
    fourier = build_field({"preset": "fast", "encoding": {"type": "fourier", "num_frequencies": 2}})
    assert fourier.input_width == 3 + 12                  # include_input defaults to False here
    assert build_field({"preset": "fast", "encoding": None}).input_encoding is None


def test_resolved_config_writes_out_every_value_and_is_stable() -> None:
    resolved = resolve_field_config({"preset": "fast", "hidden": 32, "encoding": {"levels": 4}})
    assert resolved["hidden"] == 32 and resolved["depth"] == 2 and resolved["skip"] == []
    assert resolved["encoding"] == {
        "type": "grid", "levels": 4, "features_per_level": 2, "base_resolution": 8,
        "max_resolution": 128, "log2_hashmap_size": 16, "bounds": [-1.0, 1.0],
        "interpolation": "linear"}
    assert resolve_field_config(resolved) == resolved
    assert resolve_field_config({})["preset"] == "paper"
    fourier = resolve_field_config({"encoding": {"type": "fourier"}})["encoding"]
    assert fourier["include_input"] is False and fourier["num_frequencies"] == 6


@pytest.mark.parametrize("config, named", [
    ({"preset": "fast", "hiden": 64}, "'hiden'"),
    ({"preset": "fast", "encoding": {"level": 4}}, "'encoding.level'"),
    ({"preset": "huge"}, "'huge'"),
    ({"encoding": {"type": "wavelet"}}, "'wavelet'"),
    ({"depth": 0}, "depth"),
])
def test_build_field_rejects_bad_config(config: dict, named: str) -> None:
    with pytest.raises(InputError, match=named):
        build_field(config)


def test_coarse_to_fine_masks_fine_levels_and_is_saved():
    from isofield.nn import set_active_levels
    from isofield.nn.encodings import MultiResolutionGrid

    grid = MultiResolutionGrid(levels=4, features_per_level=2, base_resolution=4, max_resolution=32,
                               log2_hashmap_size=12)
    with torch.no_grad():
        grid.table.uniform_(-1, 1)
    x = torch.rand(100, 3) * 2 - 1
    full = grid(x)
    set_active_levels(grid, 2)
    coarse = grid(x)
    assert torch.equal(coarse[:, :4], full[:, :4]) and torch.all(coarse[:, 4:] == 0)
    copy = MultiResolutionGrid(levels=4, features_per_level=2, base_resolution=4, max_resolution=32,
                               log2_hashmap_size=12)
    copy.load_state_dict(grid.state_dict())
    assert int(copy.active_levels) == 2 and torch.equal(copy(x), coarse)


# ------------------------------------------------------------------------------------- SIREN

@pytest.mark.parametrize("init, dim", [("geometric", 3), ("mfgi", 3), ("mfgi", 2)])
def test_siren_geometric_inits_approximate_a_signed_sphere(init: str, dim: int) -> None:
    from isofield.nn.siren import SirenField

    torch.manual_seed(0)
    field = SirenField(in_dim=dim, hidden=256, depth=4, init=init, radius=1.0)
    x, r = shell_points(4000, seed=1, dim=dim)
    x.requires_grad_(True)
    values = field(x)
    (grad,) = torch.autograd.grad(values.sum(), x)
    error = (values - (r - 1.0)).abs()
    # Measured: mean 0.008-0.021, max 0.04-0.13; ||∇f| - 1| 0.05-0.09 on average.
    assert error.mean() < 0.03 and error.max() < 0.2
    assert (grad.norm(dim=1) - 1).abs().mean() < 0.15
    far = 2.0 * x[:200].detach() / r[:200, None]                 # |x| = 2: still outside
    assert (field(far) > 0.5).all()
    radial = (grad * x).sum(1) / (grad.norm(dim=1) * r)
    assert radial.mean() > 0.98


def test_mfgi_high_frequencies_start_silent_but_learn() -> None:
    from isofield.nn.siren import SirenField

    torch.manual_seed(0)
    field = SirenField(in_dim=3, hidden=64, depth=3, init="mfgi", high_frequency_fraction=0.25)
    high = 16                                    # a quarter of the first layer's 64 neurons
    first = field.hidden_layers[0].weight
    assert first[:high].abs().max() > 3 * first[high:].abs().max()     # high vs low frequencies
    x, _ = shell_points(500, seed=2)
    before = field(x).detach()
    with torch.no_grad():
        field.hidden_layers[0].weight[:high] *= 3.0   # changing the high band changes nothing yet
    assert torch.equal(field(x).detach(), before)
    field(x).pow(2).sum().backward()
    reading_high = field.hidden_layers[1].weight.grad[:, :high]
    assert reading_high.abs().sum() > 0          # ... but their outgoing weights get gradients


def test_siren_paper_init_bounds() -> None:
    from isofield.nn.siren import SirenField

    field = SirenField(in_dim=3, hidden=128, depth=3, omega=30.0, init="siren")
    assert field.hidden_layers[0].weight.abs().max() <= 1 / 3
    for layer in [*field.hidden_layers[1:], field.output_layer]:
        bound = math.sqrt(6 / 128) / 30
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound        # uniform over the whole range
    x, _ = shell_points(4000, seed=3)
    h = field._hidden_features(x)
    # SIREN's init keeps activations arcsine-distributed: variance 1/2 in every layer.
    assert h.var().item() == pytest.approx(0.5, abs=0.05)


def test_siren_preset_builds_and_rejects_mlp_keys() -> None:
    from isofield.nn.siren import SirenField

    field = build_field({"preset": "siren", "hidden": 32, "depth": 2, "in_dim": 2})
    assert isinstance(field, SirenField) and field(torch.zeros(5, 2)).shape == (5,)
    resolved = resolve_field_config({"preset": "siren"})
    assert resolved["type"] == "siren" and resolve_field_config(resolved) == resolved
    with pytest.raises(InputError, match="unknown key 'skip' for a siren network"):
        build_field({"preset": "siren", "skip": [1]})
    with pytest.raises(InputError, match="preset 'fast' is a mlp network"):
        build_field({"preset": "fast", "type": "siren"})
    with pytest.raises(InputError, match="init must be one of"):
        build_field({"preset": "siren", "init": "xavier"})
