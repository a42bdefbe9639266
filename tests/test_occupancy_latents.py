"""The latent-space helpers of occupancy VAEs: the farthest pair and the fitted Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isofield.errors import InputError
from isofield.occupancy.config import resolve_config
from isofield.occupancy.latents import fit_latent_gaussian, most_distant_pair
from isofield.occupancy.model import OccupancyModel


def test_most_distant_pair_is_the_farthest_of_all_pairs():
    means = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [-1.0, -1.0]])
    assert most_distant_pair(means) == (2, 3)            # |(6, 6)| = 8.49 > |(5, 5)| = 7.07


def test_fitted_gaussian_recovers_the_codes_mean_and_covariance():
    rng = np.random.default_rng(0)
    covariance = np.array([[4.0, 1.0], [1.0, 0.5]])
    codes = rng.multivariate_normal([3.0, -2.0], covariance, size=4000).astype(np.float32)
    fit = fit_latent_gaussian(torch.from_numpy(codes))
    assert np.allclose(fit.means[0], [3.0, -2.0], atol=0.08)
    assert np.allclose(fit.covariances[0], covariance, rtol=0.08, atol=0.04)   # + 1e-3 of each variance
    draws = fit.sample(4000, seed=1)
    assert np.allclose(draws.mean(0), [3.0, -2.0], atol=0.1)


def test_sample_latents_needs_a_vae_and_a_fit_for_fitted_draws(tmp_path):
    config = resolve_config([{"method": "onet", "data": str(tmp_path), "input": {"kind": "none"}, "latent_dim": 3}])
    model = OccupancyModel(torch.nn.Linear(1, 1), config, [], tmp_path, 0)
    prior = model.sample_latents(5, seed=0)
    assert prior.shape == (5, 1, 3) and torch.equal(prior, model.sample_latents(5, seed=0))
    with pytest.raises(InputError, match="no fitted latent Gaussian"):
        model.sample_latents(5, source="fitted")
    with pytest.raises(InputError, match="'prior' or 'fitted'"):
        model.sample_latents(5, source="posterior")
    model.latent_fit = fit_latent_gaussian(torch.randn(50, 3) + 10)
    assert float(model.sample_latents(100, source="fitted").mean()) == pytest.approx(10, abs=0.5)
