"""A trained occupancy network: encode an input, evaluate occupancy probabilities, mesh the
surface by MISE, sample the VAE's prior.

    >>> model = load_occupancy_model("runs/chairs-onet")
    >>> condition = model.condition(cloud[None])            # (1, N, 3) canonical, noisy points
    >>> mesh, stats = model.mesh(condition)                  # MISE at the configured threshold
    >>> meshes = [model.mesh(None, z)[0] for z in model.sample_latents(8, seed=0)]   # a VAE
    >>> condition, frame = model.encode_points(scan)         # (N, 3) user coordinates
    >>> mesh, _ = model.mesh(condition, normalization=frame) # the mesh in the scan's frame

The field lives in the canonical unit-cube frame of the training data; meshes are extracted on
the cube grown by ``padding`` (ONet's padded box) with the level set at logit(threshold) of the
network's logits, MISE from ``extract.coarse_resolution`` to ``extract.resolution`` cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh

from isofield.errors import InputError
from isofield.extract.api import ExtractionStats, extract_mesh
from isofield.geometry.normalization import Normalization
from isofield.nn.latent import GaussianMixtureLatent, latent_model_from_state
from isofield.occupancy.config import OccupancyConfig, is_sdf, is_vae
from isofield.occupancy.network import Condition, OccupancyNetwork, SignAgnosticVAE, build_network
from isofield.occupancy.rundir import OccupancyRun
from isofield.occupancy.shapes import resize_images
from isofield.train.shapes import TrainingShape

QUERY_CHUNK = 65_536
"""points per decoder call"""


@dataclass
class OccupancyModel:
    """An occupancy network in eval mode with what it was trained on.

    Attributes:
        network: the encoder / decoder / latent encoder.
        config: the run's resolved config.
        shapes: the training shapes, in order.
        data_dir: the data directory it was trained on.
        step: training steps of the loaded checkpoint.
        latent_fit: a VAE's Gaussian over its training shapes' posterior means (or None).
    """

    network: OccupancyNetwork | SignAgnosticVAE
    config: OccupancyConfig
    shapes: list[TrainingShape]
    data_dir: Path
    step: int
    latent_fit: GaussianMixtureLatent | None = None

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) the padded cube the field is meshed in."""
        half = 0.5 * (1.0 + self.config.padding)
        return np.array([[-half] * 3, [half] * 3])

    @torch.no_grad()
    def condition(self, inputs: torch.Tensor | None) -> Condition:
        """inputs (B, N, 3) noisy clouds or (B, 3, H, W) images in [0, 1] -> the encodings."""
        return self.network.encode(None if inputs is None else inputs.to(self.device))

    def encode_points(self, points: np.ndarray, frame: Normalization | None = None,
                      seed: int = 0) -> tuple[Condition, Normalization]:
        """The encoding of one point cloud (N, 3) in user coordinates, and the frame it was mapped
        to the unit cube with: ``frame``, or ONet's fitted to the points' bounding box (the
        training shapes' frame when the cloud covers the whole shape). At most ``input.points``
        of the points (a seeded choice) are encoded, as in training; no noise is added.

        Raises:
            InputError: the run does not read point clouds, or the points are not (N, 3) finite.
        """
        if self.config.input.kind != "pointcloud":
            raise InputError(f"this run reads {self.config.input.kind!r} inputs, not point clouds")
        points = np.asarray(points, dtype=np.float64)
        frame = Normalization.fit(points, "cube") if frame is None else frame
        count = min(len(points), self.config.input.points)
        chosen = np.random.default_rng(seed).choice(len(points), count, replace=False)
        cloud = torch.from_numpy(frame.to_canonical(points[chosen]).astype(np.float32))
        return self.condition(cloud[None]), frame

    def encode_image(self, image: np.ndarray) -> Condition:
        """The encoding of one picture (H, W, 3) uint8, resized to ``input.image_size`` (views
        like the training ones: the object centred, on a white background)."""
        if self.config.input.kind != "image":
            raise InputError(f"this run reads {self.config.input.kind!r} inputs, not images")
        return self.condition(resize_images(image[None], self.config.input.image_size).float() / 255.0)

    @torch.no_grad()
    def logits(self, points: torch.Tensor, condition: Condition,
               latent: torch.Tensor | None = None) -> torch.Tensor:
        """points (B, T, 3) canonical -> logits (B, T) (sald-vae: signed distances), in chunks."""
        return torch.cat([self.network.decode(chunk.to(self.device), condition, latent)
                          for chunk in points.split(QUERY_CHUNK, dim=1)], dim=1)

    def field(self, condition: Condition, latent: torch.Tensor | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """One shape's logits as a field f(points (N, 3)) -> (N,) float32 (batch of one)."""
        def logits(points: np.ndarray) -> np.ndarray:
            query = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))[None]
            return self.logits(query, condition, latent)[0].cpu().numpy()
        return logits

    def mesh(self, condition: Condition, latent: torch.Tensor | None = None, *,
             threshold: float | None = None, resolution: int | None = None,
             normalization: Normalization | None = None) -> tuple[trimesh.Trimesh, ExtractionStats]:
        """The surface {probability = threshold} (sald-vae: {f = 0}) of one shape by MISE.

        Args:
            condition: the shape's encoding (batch of one), or None for a VAE without input.
            latent: (1, Z) the VAE's z, or None.
            threshold: probability of the surface; default ``extract.threshold`` (not used by
                sald-vae).
            resolution: final grid cells per axis; default ``extract.resolution``.
            normalization: if given, vertices in the user's frame.

        Raises:
            InputError: the probability never crosses ``threshold`` in the padded cube (an empty
                prediction).
        """
        threshold = self.config.extract.threshold if threshold is None else threshold
        if not 0 < threshold < 1:
            raise InputError(f"threshold must lie in (0, 1), got {threshold}")
        level, inside = (0.0, "negative") if is_sdf(self.config) else (math.log(threshold / (1 - threshold)), "positive")
        return extract_mesh(self.field(condition, latent), self.bounds,
                            resolution or self.config.extract.resolution, level=level, inside=inside,
                            method="mise", normalization=normalization,
                            coarse_resolution=self.config.extract.coarse_resolution)

    @torch.no_grad()
    def posterior_mean(self, points: torch.Tensor, occupancies: torch.Tensor,
                       condition: Condition = None) -> torch.Tensor:
        """The VAE's μ of q(z | points (B, T, 3), occupancies (B, T)) -> (B, Z)."""
        if not isinstance(self.network, OccupancyNetwork) or self.network.latent_encoder is None:
            raise InputError("this run has no occupancy VAE (latent_dim: 0, or sald-vae: encode its cloud)")
        mean, _ = self.network.latent_encoder(points.to(self.device), occupancies.to(self.device), condition)
        return mean

    def sample_latents(self, count: int, seed: int = 0, source: str = "prior") -> torch.Tensor:
        """(count, 1, Z) draws of z, one batch-of-one latent per shape: from the prior N(0, I)
        (``source="prior"``), or from the Gaussian fitted to the training shapes' posterior means
        at the end of training (``"fitted"``, :attr:`latent_fit`; see
        :mod:`isofield.occupancy.latents` for why)."""
        if not is_vae(self.config):
            raise InputError("this run is not a VAE (latent_dim: 0): it cannot sample new shapes")
        if source == "prior":
            generator = torch.Generator().manual_seed(seed)
            draws = torch.randn((count, self.config.latent_dim), generator=generator)
        elif source == "fitted":
            if self.latent_fit is None:
                raise InputError("this run has no fitted latent Gaussian (it is written when training "
                                 "ends; for an older run: isofield train --resume RUN --steps <its step>)")
            draws = torch.from_numpy(self.latent_fit.sample(count, seed))
        else:
            raise InputError(f"latents must be 'prior' or 'fitted', got {source!r}")
        return draws[:, None].to(self.device)


def load_occupancy_model(run_dir: str | Path) -> OccupancyModel:
    """The network of a run's latest checkpoint (CPU, eval mode)."""
    run = OccupancyRun.open(run_dir)
    config, data_dir, shapes, checkpoint = run.load_trained()
    network = build_network(config)
    try:
        network.load_state_dict(checkpoint.weights_to_use("network"))
    except (KeyError, RuntimeError) as exc:
        raise InputError(f"{run.checkpoint_path}: does not hold this run's network "
                         f"({str(exc).splitlines()[0]})") from None
    latent_fit = None
    if run.latent_fit_path.is_file():
        latent_fit = latent_model_from_state(torch.load(run.latent_fit_path, weights_only=True))
    return OccupancyModel(network.eval(), config, shapes, data_dir, checkpoint.step, latent_fit)
