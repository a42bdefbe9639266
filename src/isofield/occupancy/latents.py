"""The latent space of a trained occupancy VAE (ONet's VAE, sald-vae): the training shapes'
posterior means, the Gaussian fitted to them, and the two shapes farthest apart.

A VAE's decoder only learns the codes its posteriors visit. On the procedural chairs (ONet's VAE,
``kl_weight`` 0.1, 7340 steps) the 170 posterior means lie around a centre 3.4 away from the
origin with a spread of 2.0, and a draw of the prior N(0, I) (radius sqrt(32) = 5.7) lies 6.1
from the nearest of them, where neighbouring codes are 0.5 apart: five of eight prior draws
decoded to a back floating above a seat. Draws of a Gaussian fitted to the posterior means lie
1.5 from the nearest code and all eight decoded to whole chairs ("ex-post density estimation",
Ghosh et al. 2020).
"""

from __future__ import annotations

import torch

from isofield.nn.latent import GaussianMixtureLatent, fit_gaussian_mixture
from isofield.occupancy.config import is_sdf
from isofield.occupancy.model import OccupancyModel
from isofield.occupancy.shapes import ShapeTensors, fixed_input


def posterior_mean(model: OccupancyModel, shapes: ShapeTensors, index: int) -> torch.Tensor | None:
    """(1, Z) μ of the VAE's posterior of a shape (sald-vae: from its input cloud, ONet: from a
    seeded draw of ``points_per_step`` occupancy samples, as many as its max-pools saw in
    training); None without a VAE."""
    if is_sdf(model.config):
        return model.condition(fixed_input(shapes, index, model.config.input, seed=index))
    if model.network.latent_encoder is None:
        return None
    generator = torch.Generator().manual_seed(index)
    picks = torch.randint(shapes.points.shape[1], (1, model.config.points_per_step), generator=generator)
    return model.posterior_mean(shapes.points[index][picks], shapes.occupancies[index][picks].float())


def posterior_means(model: OccupancyModel, shapes: ShapeTensors) -> torch.Tensor:
    """(S, Z) the posterior means of all S shapes (CPU)."""
    return torch.cat([posterior_mean(model, shapes, index).cpu() for index in range(len(shapes))])


def fit_latent_gaussian(means: torch.Tensor) -> GaussianMixtureLatent:
    """One full-covariance Gaussian fitted to the posterior means (S, Z), S >= 2; its
    covariance's diagonal grows by 1e-3 of each dimension's variance."""
    return fit_gaussian_mixture(means.numpy(), components=1, reg_covar=1e-3)


def most_distant_pair(means: torch.Tensor) -> tuple[int, int]:
    """The indices (i < j) of the two posterior means (S, Z) farthest apart (Euclidean), so that
    an interpolation between them crosses the latent space rather than joining two near twins."""
    first, second = divmod(int(torch.cdist(means, means).argmax()), len(means))
    return min(first, second), max(first, second)
