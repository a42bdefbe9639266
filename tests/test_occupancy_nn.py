"""Occupancy-network modules: conditional batch norm, the ONet decoder and encoders, ConvONet's
local encoder, feature sampling and decoder, the image encoder, the Gaussian KL term, and a small
fit of two spheres."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from isofield.losses import free_bits_kl, gaussian_kl
from isofield.nn.batch_norm import recompute_batch_norm_statistics
from isofield.nn.convonet import AXES, LocalDecoder, LocalPoolPointNet, UNet2d, UNet3d, sample_features
from isofield.nn.image import ImageEncoder
from isofield.nn.occupancy import CBatchNorm1d, LatentEncoder, OccupancyDecoder, ResNetPointNet

PADDING = 0.1


def test_cbatchnorm_starts_as_plain_batch_norm():
    torch.manual_seed(0)
    norm = CBatchNorm1d(condition_dim=5, features=8)
    x, condition = 3.0 * torch.randn(4, 8, 10) + 1.0, torch.randn(4, 5)
    out = norm(x, condition)
    assert out.shape == (4, 8, 10)
    plain = F.batch_norm(x, None, None, training=True)
    assert torch.allclose(out, plain, atol=1e-5)
    assert not torch.allclose(out, x, atol=0.1)                  # it does normalise


def test_cbatchnorm_gradients_reach_the_condition_and_every_parameter():
    torch.manual_seed(0)
    norm = CBatchNorm1d(condition_dim=5, features=8)
    x, condition = torch.randn(4, 8, 10), torch.randn(4, 5, requires_grad=True)
    weights = torch.randn(4, 8, 10)
    (norm(x, condition) * weights).sum().backward()
    for name, parameter in norm.named_parameters():
        assert parameter.grad.abs().sum() > 0, name
    # γ and β start independent of c, so c gets its gradient once they have moved
    assert condition.grad.abs().sum() == 0
    torch.optim.SGD(norm.parameters(), lr=0.1).step()
    condition.grad = None
    (norm(x, condition) * weights).sum().backward()
    assert condition.grad.abs().min() > 0


def test_cbatchnorm_in_eval_mode_treats_each_sample_on_its_own():
    torch.manual_seed(0)
    norm = CBatchNorm1d(condition_dim=3, features=6)
    with torch.no_grad():
        norm.gamma.weight.normal_()
        for _ in range(5):                                      # running statistics away from (0, 1)
            norm(2.0 * torch.randn(8, 6, 20) + 1.0, torch.randn(8, 3))
    first, condition = torch.randn(1, 6, 20), torch.randn(3, 3)
    batch_a = torch.cat([first, torch.randn(2, 6, 20)])
    batch_b = torch.cat([first, 10.0 * torch.randn(2, 6, 20)])
    norm.train()
    assert not torch.allclose(norm(batch_a, condition)[0], norm(batch_b, condition)[0], atol=1e-3)
    norm.eval()
    assert torch.allclose(norm(batch_a, condition)[0], norm(batch_b, condition)[0], atol=1e-6)


@pytest.mark.parametrize("condition_dim, latent_dim", [(16, 0), (16, 4), (0, 4), (0, 0)])
def test_occupancy_decoder_shapes(condition_dim, latent_dim):
    decoder = OccupancyDecoder(condition_dim, latent_dim, hidden=32, blocks=2)
    condition = torch.randn(2, condition_dim) if condition_dim else None
    latent = torch.randn(2, latent_dim) if latent_dim else None
    assert decoder(torch.randn(2, 50, 3), condition, latent).shape == (2, 50)


def test_occupancy_decoder_names_the_expected_shapes():
    decoder = OccupancyDecoder(16, latent_dim=4, hidden=32, blocks=2)
    points = torch.randn(2, 50, 3)
    with pytest.raises(ValueError, match=r"points \(B, T, 3\)"):
        decoder(torch.randn(2, 50, 2), torch.randn(2, 16), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"condition \(2, 16\), got None"):
        decoder(points, None, torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"latent \(2, 4\), got \(2, 5\)"):
        decoder(points, torch.randn(2, 16), torch.randn(2, 5))
    with pytest.raises(ValueError, match="expects latent None"):
        OccupancyDecoder(16, hidden=32, blocks=2)(points, torch.randn(2, 16), torch.randn(2, 4))


@pytest.mark.parametrize("condition_dim, latent_dim", [(16, 0), (0, 4), (16, 4)])
def test_occupancy_decoder_gradients_reach_condition_and_latent(condition_dim, latent_dim):
    torch.manual_seed(0)
    points, labels = torch.randn(2, 50, 3), (torch.rand(2, 50) > 0.5).float()
    decoder = OccupancyDecoder(condition_dim, latent_dim, hidden=32, blocks=2)
    condition = torch.randn(2, condition_dim, requires_grad=True) if condition_dim else None
    latent = torch.randn(2, latent_dim, requires_grad=True) if latent_dim else None
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    F.binary_cross_entropy_with_logits(decoder(points, condition, latent), labels).backward()
    optimizer.step()                                            # CBN starts independent of c and z
    for vector in (condition, latent):
        if vector is not None:
            vector.grad = None
    decoder(points, condition, latent).sum().backward()
    for vector in (condition, latent):
        if vector is not None:
            assert vector.grad.abs().sum(dim=1).min() > 0


def _shuffled(tensor: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    return tensor[:, order]


def test_point_encoders_are_order_invariant():
    torch.manual_seed(0)
    points, occupancies, condition = torch.rand(2, 300, 3) - 0.5, (torch.rand(2, 300) > 0.5).float(), torch.randn(2, 8)
    order = torch.randperm(300)

    encoder = ResNetPointNet(16, hidden=32, blocks=3).eval()
    code = encoder(points)
    assert code.shape == (2, 16)
    assert torch.allclose(encoder(_shuffled(points, order)), code, atol=1e-5)

    latent_encoder = LatentEncoder(4, condition_dim=8, hidden=32).eval()
    mean, log_std = latent_encoder(points, occupancies, condition)
    assert mean.shape == log_std.shape == (2, 4)
    shuffled = latent_encoder(_shuffled(points, order), _shuffled(occupancies, order), condition)
    assert torch.allclose(shuffled[0], mean, atol=1e-5) and torch.allclose(shuffled[1], log_std, atol=1e-5)
    # the occupancies matter: shuffling them alone changes the posterior
    assert not torch.allclose(latent_encoder(points, _shuffled(occupancies, order), condition)[0], mean, atol=1e-4)

    local = LocalPoolPointNet(feature_dim=8, hidden=16, blocks=3, grid=True, plane_resolution=16,
                              grid_resolution=8, unet={"depth": 2, "base": 8}).eval()
    maps, shuffled_maps = local(points), local(_shuffled(points, order))
    for name in ("xy", "xz", "yz", "grid"):
        assert torch.allclose(shuffled_maps[name], maps[name], atol=1e-5), name


def test_convonet_shapes_and_gradients():
    torch.manual_seed(0)
    encoder = LocalPoolPointNet(feature_dim=8, hidden=16, blocks=3, grid=True, plane_resolution=16,
                                grid_resolution=8, padding=PADDING, unet={"depth": 3, "base": 8})
    decoder = LocalDecoder(feature_dim=8, hidden=16, blocks=3, padding=PADDING)
    points = torch.rand(2, 100, 3) - 0.5
    maps = encoder(points)
    assert {name: tuple(m.shape) for name, m in maps.items()} == {
        "xy": (2, 8, 16, 16), "xz": (2, 8, 16, 16), "yz": (2, 8, 16, 16), "grid": (2, 8, 8, 8, 8)}
    alone = encoder(points[1:])                                 # group norm: no batch statistics, even in training
    for name in maps:
        assert torch.allclose(alone[name][0], maps[name][1], atol=1e-5), name
    logits = decoder(torch.rand(2, 70, 3) - 0.5, maps)
    assert logits.shape == (2, 70)
    logits.sum().backward()
    assert encoder.fc_pos.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="divisible by 4"):
        LocalPoolPointNet(plane_resolution=10, unet={"depth": 3, "base": 8})(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="8 channels"):
        decoder(torch.zeros(1, 5, 3), {"xy": torch.zeros(1, 4, 16, 16)})


def test_unets_keep_the_spatial_size():
    assert UNet2d(4, 6, depth=3, base=8)(torch.randn(2, 4, 16, 16)).shape == (2, 6, 16, 16)
    assert UNet3d(4, 6, depth=2, base=8)(torch.randn(2, 4, 8, 8, 8)).shape == (2, 6, 8, 8, 8)


def _centres(resolution: int) -> torch.Tensor:
    """Canonical coordinates of the cell centres along one axis, (R,)."""
    return ((torch.arange(resolution) + 0.5) / resolution - 0.5) * (1.0 + PADDING)


def test_points_are_scattered_into_the_cell_around_them_and_nowhere_else():
    torch.manual_seed(0)
    resolution, half_cell = 8, (1.0 + PADDING) / 16
    encoder = LocalPoolPointNet(feature_dim=4, hidden=8, blocks=2, grid=True, plane_resolution=resolution,
                                grid_resolution=resolution, padding=PADDING)
    points = torch.rand(1, 6, 3) - 0.5
    maps = encoder(points)
    centres = _centres(resolution)
    for name, axes in AXES.items():
        occupied = {tuple(cell.tolist()) for cell in maps[name][0].abs().sum(dim=0).nonzero()}
        # the map's index order is reversed (…, b, a): find each point's cell by its centre
        expected = {tuple(int(((centres - p[axis]).abs() <= half_cell).nonzero()[0]) for axis in reversed(axes))
                    for p in points[0]}
        assert occupied == expected, name


def test_local_decoder_sees_only_points_near_the_query():
    """Without U-Nets, a logit depends on the points whose cells are near the query's only."""
    torch.manual_seed(0)
    encoder = LocalPoolPointNet(feature_dim=8, hidden=16, blocks=3, grid=True, plane_resolution=16,
                                grid_resolution=16, padding=PADDING)
    decoder = LocalDecoder(feature_dim=8, hidden=16, blocks=3, padding=PADDING)
    near, far = 0.05 * torch.randn(1, 40, 3) - 0.3, 0.05 * torch.randn(1, 40, 3).clamp(-1, 1) + 0.3
    query = torch.full((1, 1, 3), -0.3)

    def logit(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return decoder(query, encoder(points))

    reference = logit(torch.cat([near, far], dim=1))
    moved_far = logit(torch.cat([near, 0.05 * torch.rand(1, 40, 3) + 0.275], dim=1))
    moved_near = logit(torch.cat([near + 0.02, far], dim=1))
    assert (moved_far - reference).abs().max() < 1e-6
    assert (moved_near - reference).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["xy", "xz", "yz", "grid"])
def test_sample_features_interpolates_linear_maps_exactly(name):
    """Maps holding each cell centre's coordinates give back the query's coordinates (held at the
    outer centres beyond them, up to the padded cube's faces)."""
    torch.manual_seed(0)
    axes, resolution = AXES[name], 8
    centres = _centres(resolution)
    # the last map axis (width) runs along axes[0], the one before along axes[1], ...
    grids = torch.meshgrid(*[centres] * len(axes), indexing="ij")
    maps = torch.stack([grids[len(axes) - 1 - channel] for channel in range(len(axes))])
    maps = maps[None].repeat(2, 1, *[1] * len(axes))
    limit = float(centres[-1])
    points = (2 * torch.rand(2, 100, 3) - 1) * (0.5 + PADDING / 2)
    sampled = sample_features(points, {name: maps}, PADDING)
    assert sampled.shape == (2, 100, len(axes))
    assert torch.allclose(sampled, points[..., list(axes)].clamp(-limit, limit), atol=1e-4)


def test_sample_features_sums_over_the_maps():
    torch.manual_seed(0)
    maps = {"xy": torch.randn(2, 5, 8, 8), "yz": torch.randn(2, 5, 8, 8), "grid": torch.randn(2, 5, 8, 8, 8)}
    points = torch.rand(2, 30, 3) - 0.5
    total = sample_features(points, maps, PADDING)
    parts = sum(sample_features(points, {name: m}, PADDING) for name, m in maps.items())
    assert torch.allclose(total, parts, atol=1e-6)


@pytest.mark.parametrize("size", [64, 128])
def test_image_encoder_shapes(size):
    encoder = ImageEncoder(16, base=8)
    assert encoder(torch.rand(2, 3, size, size)).shape == (2, 16)
    with pytest.raises(ValueError, match=r"images \(B, 3, H, W\)"):
        encoder(torch.rand(2, 1, size, size))


def test_gaussian_kl_by_hand():
    assert torch.equal(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3, 4))
    mean, log_std = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(0.5)]])
    # ½ (1 + 1 − 1 − 0) and ½ (4 + 0.25 − 1 − 2 log 0.5)
    expected = [0.5, 0.5 * (3.25 - 2 * math.log(0.5))]
    assert torch.allclose(gaussian_kl(mean, log_std), torch.tensor([expected]))
    torch.manual_seed(0)
    mean, log_std = torch.randn(5, 8), 0.5 * torch.randn(5, 8)
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mean, log_std.exp()),
                                                  torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(gaussian_kl(mean, log_std), reference, atol=1e-5)


def test_free_bits_leave_the_first_nats_of_each_dimension_unpenalised():
    kl = torch.tensor([[0.1, 0.7, 2.0], [0.0, 0.0, 0.0]], requires_grad=True)
    penalty = free_bits_kl(kl, 0.5)
    assert torch.allclose(penalty, torch.tensor([0.5 + 0.7 + 2.0, 1.5]))
    penalty.sum().backward()
    assert torch.equal(kl.grad, torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(free_bits_kl(kl, 0.0), kl.sum(dim=1))
    assert free_bits_kl(torch.zeros(4, 0), 0.5).tolist() == [0.0] * 4      # no latent code


def test_onet_tells_two_spheres_apart_from_their_surface_points():
    """A point cloud encoder + CBN decoder learn the occupancy of spheres of radius 0.2 and 0.4.

    Between the radii (23% of the cube) the answer depends on the shape: a decoder that ignored
    its condition could not pass 95%.
    """
    torch.manual_seed(0)
    radii = torch.tensor([0.2, 0.4])
    directions = F.normalize(torch.randn(2, 256, 3), dim=-1)
    surfaces = directions * radii[:, None, None]
    encoder, decoder = ResNetPointNet(16, hidden=32, blocks=3), OccupancyDecoder(16, hidden=32, blocks=2)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=3e-3)
    # decaying to 0 lets the running BN statistics used in eval mode catch up with the network
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 200)

    def batch(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        points = torch.rand(2, count, 3) - 0.5
        return points, (points.norm(dim=-1) < radii[:, None]).float()

    for _ in range(200):
        points, labels = batch(512)
        logits = decoder(points, encoder(surfaces))
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    encoder.eval(), decoder.eval()
    points, labels = batch(4096)
    with torch.no_grad():
        accuracy = ((decoder(points, encoder(surfaces)) > 0).float() == labels).float().mean(dim=1)
    assert accuracy.min() > 0.95, accuracy


def test_batch_norm_statistics_are_the_plain_average_over_the_batches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    batches = [torch.randn(32, 3) * 2 + 1 for _ in range(5)]
    feed = iter(batches)
    assert recompute_batch_norm_statistics(model, lambda: model(next(feed)), 5) == 1
    norm = model[1]
    with torch.no_grad():
        features = [model[0](batch) for batch in batches]
    assert torch.allclose(norm.running_mean, torch.stack([f.mean(0) for f in features]).mean(0), atol=1e-6)
    assert torch.allclose(norm.running_var, torch.stack([f.var(0) for f in features]).mean(0), atol=1e-5)
    assert norm.momentum == 0.1 and not model.training and int(norm.num_batches_tracked) == 5
    assert recompute_batch_norm_statistics(torch.nn.Linear(3, 4), lambda: None, 5) == 0


def test_image_encoder_trains_on_channels_last_batches_with_two_threads():
    """A permuted (B, H, W, 3) batch once crashed oneDNN's convolution backward on two threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        encoder = ImageEncoder(8, base=8)
        images = torch.rand(5, 32, 32, 3).permute(0, 3, 1, 2)
        encoder(images).square().sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)
    finally:
        torch.set_num_threads(threads)
