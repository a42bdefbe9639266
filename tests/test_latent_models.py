"""Latent models of ShapeGF's second stage: moments and modes of samples, determinism, save and
load, errors, and which of the GAN and the Gaussian mixture fits better."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.nn.latent import (
    GaussianMixtureLatent,
    LatentGAN,
    fit_gaussian_mixture,
    fit_latent_gan,
    fit_latent_model,
    latent_model_from_state,
)
from isofield.train.checkpoint import check_weights_only_safe

# A latent GAN small enough for a test (about 7 s on one CPU thread); the defaults are bigger.
FAST_GAN = {"steps": 500, "batch_size": 128, "noise_dim": 16, "hidden": (64, 64),
            "critic_hidden": (64, 64), "lr": 2e-3}
WEIGHT = 0.7                                                    # of the second mode


def two_modes(n: int, seed: int) -> np.ndarray:
    """(n, 8) codes: 30 % from N(m0, C0), 70 % from N(m1, C1), m1 − m0 = 5 u (|u| = 1)."""
    means, covariances, _ = _two_modes_law()
    rng = np.random.default_rng(seed)
    mode = (rng.random(n) < WEIGHT).astype(int)
    noise = rng.standard_normal((n, 8))
    return (means[mode] + np.einsum("nij,nj->ni", np.linalg.cholesky(covariances)[mode],
                                    noise)).astype(np.float32)


def _two_modes_law() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means (2, 8), covariances (2, 8, 8) and the unit direction u (8,) between the modes."""
    rng = np.random.default_rng(1234)
    direction = rng.standard_normal(8)
    direction /= np.linalg.norm(direction)
    means = np.stack([-2.5 * direction, 2.5 * direction]) + 0.5
    factors = rng.standard_normal((2, 8, 8)) * 0.35 / np.sqrt(8)
    return means, factors @ factors.transpose(0, 2, 1) + 0.05 * np.eye(8), direction


def helix_arc(n: int, seed: int) -> np.ndarray:
    """(n, 16) codes near a curved 1-D manifold: a Fourier curve of t ~ U(0, 1) in a random
    6-D subspace of R^16, plus isotropic noise of std 0.02."""
    basis, _ = np.linalg.qr(np.random.default_rng(4321).standard_normal((16, 6)))
    rng = np.random.default_rng(seed)
    t = np.pi * rng.random(n)
    curve = np.stack([np.cos(t), np.sin(t), np.cos(2 * t), np.sin(2 * t),
                      0.5 * np.cos(3 * t), 0.5 * np.sin(3 * t)], axis=1)
    return (curve @ basis.T + 0.02 * rng.standard_normal((n, 16))).astype(np.float32)


def mmd2(samples: np.ndarray, data: np.ndarray) -> float:
    """Unbiased squared MMD between samples (n, D) and data (m, D); the kernel is the mean of
    RBF kernels of bandwidths h/8, h/4, h/2, h, with h the median pairwise distance of data."""
    x, y = samples.astype(np.float64), data.astype(np.float64)

    def squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)

    median = np.median(np.sqrt(squared(y, y))[np.triu_indices(len(y), 1)])

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = squared(a, b)
        return sum(np.exp(-d2 / (2 * (median * f) ** 2)) for f in (1 / 8, 1 / 4, 1 / 2, 1)) / 4

    kxx, kyy = kernel(x, x), kernel(y, y)
    n, m = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kernel(x, y).mean())


def nn_distance(samples: np.ndarray, data: np.ndarray) -> float:
    """Mean Euclidean distance from each sample (n, D) to its nearest data point (m, D)."""
    return float(cKDTree(data).query(samples)[0].mean())


@pytest.fixture(scope="module")
def two_mode_models() -> dict:
    """Both kinds fitted to 500 codes of :func:`two_modes`."""
    codes = two_modes(500, seed=1)
    return {"gmm": fit_gaussian_mixture(codes, components=2, seed=0),
            "gan": fit_latent_gan(codes, seed=0, **FAST_GAN)}


@pytest.mark.parametrize("kind, mean_tol, cov_tol, weight_tol, gap_max", [
    ("gmm", 0.1, 0.05, 0.02, 0.005), ("gan", 0.6, 0.25, 0.06, 0.2)])
def test_samples_match_moments_and_modes(two_mode_models, kind, mean_tol, cov_tol, weight_tol,
                                         gap_max):
    """4000 samples against the 500 training codes: |mean error|, relative Frobenius error of
    the covariance, share of the second mode, and share of samples in the gap between the
    modes (within 1 of the midpoint along u; the modes' std along u is about 0.2).

    Measured: Gaussian mixture 0.03, 0.014, 0.006, 0.0005 (another 4000 codes of the law:
    0.04, 0.047, 0.003, 0.0003); latent GAN (FAST_GAN) 0.38, 0.13, 0.023, 0.12: a continuous
    generator of unimodal noise cannot split its mass, and leaves a bridge between the modes
    (0.08 with fit_latent_gan's defaults)."""
    codes = two_modes(500, seed=1)
    means, _, direction = _two_modes_law()
    midpoint = means.mean(axis=0)
    samples = two_mode_models[kind].sample(4000, seed=5)
    assert samples.shape == (4000, 8) and samples.dtype == np.float32
    assert np.linalg.norm(samples.mean(axis=0) - codes.mean(axis=0)) < mean_tol
    target = np.cov(codes.T)
    assert np.linalg.norm(np.cov(samples.T) - target) / np.linalg.norm(target) < cov_tol
    along = (samples - midpoint) @ direction
    assert abs((along > 0).mean() - ((codes - midpoint) @ direction > 0).mean()) < weight_tol
    assert np.mean(np.abs(along) < 1.0) < gap_max


@pytest.mark.parametrize("kind", ["gmm", "gan"])
def test_save_load_round_trip(two_mode_models, tmp_path, kind):
    model = two_mode_models[kind]
    state = model.to_state()
    check_weights_only_safe(state)
    torch.save(state, tmp_path / "latent.pt")
    rebuilt = latent_model_from_state(torch.load(tmp_path / "latent.pt", weights_only=True))
    assert type(rebuilt) is type(model) and rebuilt.latent_dim == 8
    np.testing.assert_array_equal(rebuilt.sample(300, seed=3), model.sample(300, seed=3))


@pytest.mark.parametrize("kind, options", [
    ("gmm", {"components": 3}), ("gan", {**FAST_GAN, "steps": 5})])
def test_equal_seeds_give_equal_models(kind, options):
    codes = two_modes(200, seed=2)
    first, again = (fit_latent_model(kind, codes, options, seed=4) for _ in range(2))
    other = fit_latent_model(kind, codes, options, seed=5)
    np.testing.assert_array_equal(first.sample(50, seed=1), again.sample(50, seed=1))
    assert not np.array_equal(first.sample(50, seed=1), first.sample(50, seed=2))
    assert not np.array_equal(first.sample(50, seed=1), other.sample(50, seed=1))
    assert first.sample(0, seed=1).shape == (0, 8)


def test_gan_standardises_codes_and_keeps_global_rng():
    codes = 100.0 + 5.0 * two_modes(200, seed=3)
    codes[:, 3] = 7.0                                            # a constant dimension
    before = torch.random.get_rng_state()
    model = fit_latent_gan(codes, seed=0, **{**FAST_GAN, "steps": 2})
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_allclose(model.mean.numpy(), codes.mean(axis=0), rtol=1e-5)
    expected_std = codes.std(axis=0)
    expected_std[3] = 1.0
    np.testing.assert_allclose(model.std.numpy(), expected_std, rtol=1e-4)
    assert np.allclose(model.sample(20, seed=0)[:, 3], 7.0, atol=0.5)


def test_gmm_is_fitted_in_code_units():
    """EM on well-separated modes: each component is its mode's codes' weight, mean and (biased)
    covariance, plus reg_covar times each dimension's variance on the diagonal."""
    codes = 100.0 + 5.0 * two_modes(500, seed=1).astype(np.float64)
    model = fit_gaussian_mixture(codes, components=2, reg_covar=1e-3, seed=0)
    means, _, direction = _two_modes_law()
    second = (codes - (100 + 5 * means.mean(axis=0))) @ direction > 0
    order = np.argsort(model.means @ direction)
    regularised = 1e-3 * np.diag(codes.var(axis=0))
    for component, mode in zip(order, (codes[~second], codes[second])):
        assert model.weights[component] == pytest.approx(len(mode) / len(codes), abs=1e-4)
        np.testing.assert_allclose(model.means[component], mode.mean(axis=0), atol=1e-3)
        np.testing.assert_allclose(model.covariances[component],
                                   np.cov(mode.T, bias=True) + regularised, atol=1e-3)


def test_gmm_fits_more_dimensions_than_codes():
    codes = np.random.default_rng(0).standard_normal((40, 128)).astype(np.float32)
    samples = fit_latent_model("gmm", codes, {"components": 4}, seed=0).sample(10, seed=0)
    assert samples.shape == (10, 128) and np.isfinite(samples).all()


def test_gmm_beats_gan_on_both_distributions(two_mode_models):
    """The measured comparison (numbers in isofield.nn.latent's notes): 2000 samples
    against 2000 held-out codes."""
    arc = helix_arc(500, seed=1)
    arc_models = {"gmm": fit_gaussian_mixture(arc, components=8, seed=0),
                  "gan": fit_latent_gan(arc, seed=0, **FAST_GAN)}
    results = {}
    for name, models, held_out, train in [
            ("two_modes", two_mode_models, two_modes(2000, seed=2), two_modes(500, seed=1)),
            ("helix_arc", arc_models, helix_arc(2000, seed=2), arc)]:
        for kind, model in models.items():
            samples = model.sample(2000, seed=7)
            results[name, kind] = (mmd2(samples, held_out), nn_distance(samples, train))
    print({key: tuple(round(value, 4) for value in values) for key, values in results.items()})
    for name in ("two_modes", "helix_arc"):
        (gmm_mmd, gmm_nn), (gan_mmd, gan_nn) = results[name, "gmm"], results[name, "gan"]
        assert gmm_mmd < 0.003 and gan_mmd < 0.03
        assert gmm_mmd < gan_mmd and gmm_nn < gan_nn


@pytest.mark.parametrize("codes, message", [
    (np.full((10, 4), np.nan), "NaN"),
    (np.zeros(10), r"array \(N, L\)"),
    (np.zeros((4, 3, 2)), r"array \(N, L\)"),
    (np.zeros((10, 0)), r"array \(N, L\)"),
    (np.zeros((1, 4)), r"at least \d codes"),
])
@pytest.mark.parametrize("kind", ["gan", "gmm"])
def test_bad_codes(kind, codes, message):
    with pytest.raises(InputError, match=message):
        fit_latent_model(kind, codes, {"steps": 1} if kind == "gan" else {}, seed=0)


def test_bad_arguments():
    codes = two_modes(20, seed=0)
    with pytest.raises(InputError, match="at least 30 codes"):
        fit_gaussian_mixture(codes, components=30)
    with pytest.raises(InputError, match="unknown latent model kind 'vae'"):
        fit_latent_model("vae", codes, {}, seed=0)
    with pytest.raises(InputError, match=r"unknown gmm latent model option\(s\) \['steps'\]"):
        fit_latent_model("gmm", codes, {"steps": 3}, seed=0)
    with pytest.raises(InputError, match="steps must be >= 1"):
        fit_latent_gan(codes, steps=0)
    with pytest.raises(InputError, match="reg_covar must be > 0"):
        fit_gaussian_mixture(codes, reg_covar=0.0)
    with pytest.raises(InputError, match="widths must be >= 1"):
        LatentGAN(8, hidden=(0,))
    with pytest.raises(InputError, match="must be >= 0"):
        GaussianMixtureLatent(np.ones(1), np.zeros((1, 2)), np.eye(2)[None]).sample(-1, seed=0)


def test_bad_states():
    good = GaussianMixtureLatent(np.ones(1), np.zeros((1, 2)), np.eye(2)[None]).to_state()
    with pytest.raises(InputError, match="not a latent model state"):
        latent_model_from_state({"kind": "vae"})
    with pytest.raises(InputError, match="not a latent model state"):
        latent_model_from_state([1, 2])
    with pytest.raises(InputError, match="corrupt gmm latent model state"):
        latent_model_from_state({"kind": "gmm", "weights": good["weights"]})
    with pytest.raises(InputError, match="positive definite"):
        latent_model_from_state({**good, "covariances": -good["covariances"]})
    gan = LatentGAN(4, noise_dim=2, hidden=(3,), critic_hidden=(3,)).to_state()
    with pytest.raises(InputError, match="corrupt gan latent model state"):
        latent_model_from_state({**gan, "hidden": [5]})
