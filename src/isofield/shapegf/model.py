"""A trained ShapeGF model: encode point clouds, sample points by Langevin dynamics, generate new
shapes from the latent model, and mesh the surface that the gradient field points to.

    >>> model = load_gradient_field("runs/chairs-gf")
    >>> codes = model.encode(clouds)                       # (B, N, 3) canonical -> (B, L)
    >>> points = model.sample(codes, 10_000, seed=0).points  # (B, 10000, 3): upsampling
    >>> new = model.sample(model.generate_codes(16, seed=0), 2048, seed=0).points

Surface from the field: near a surface the blurred density's score at level σ is
g ≈ −(x − p) / σ², so d_σ(x) = σ² ‖g(x, σ)‖ estimates the distance to the surface, but only
where level σ was trained (within a few σ of the surface), and it vanishes wherever the blurred
density is stationary: on the medial axis between two sheets, at the centre of a sphere. So
:meth:`GradientFieldModel.distance` takes points on the surface (the shape's own points when
known, else ``surface.gate_points`` Langevin samples without the isolated ones); farther than
``surface.band`` from them, d is the distance to those points. Within the band it takes, per point, the estimate of the smallest level σ that is
self-consistent, d_σ <= ``surface.reach · σ`` (the point lies where that level was trained),
and the largest level's where none is. The mesh is the level set {d = surface.level}: a
thin closed shell around the surface (both sides), found by the shared sparse extractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from torch import nn

from isofield.errors import InputError
from isofield.extract.api import extract_mesh
from isofield.geometry.frames import scan_frame
from isofield.geometry.normalization import Normalization
from isofield.nn.latent import LatentModel, latent_model_from_state
from isofield.nn.pointnet import PointNetEncoder
from isofield.nn.score import ScoreNetwork
from isofield.shapegf.config import ShapeGFConfig, sigma_levels
from isofield.shapegf.langevin import LangevinResult, ScoreFunction, annealed_langevin
from isofield.shapegf.rundir import ShapeGFRun
from isofield.train.shapes import TrainingShape


def build_networks(config: ShapeGFConfig) -> tuple[PointNetEncoder, ScoreNetwork]:
    """The encoder and score network of ``config`` (fresh weights from torch's global generator)."""
    encoder = PointNetEncoder(config.latent_dim, config.encoder.widths, config.encoder.head)
    score = ScoreNetwork(config.latent_dim, config.score.hidden, config.score.blocks)
    return encoder, score


@dataclass
class GradientFieldModel:
    """A ShapeGF auto-encoder (and its latent model once fitted).

    Attributes:
        encoder: clouds (B, N, 3) -> codes (B, L); eval mode.
        score: g(points (B, N, 3), sigma (B,), codes (B, L)) -> (B, N, 3); eval mode.
        config: the run's configuration.
        shapes: the training shapes (names, frames), in order.
        data_dir: the data directory trained on.
        step: training steps behind the weights.
        latent_model: the second stage over the codes, or None before it is fitted.
    """

    encoder: nn.Module
    score: nn.Module
    config: ShapeGFConfig
    shapes: list[TrainingShape]
    data_dir: Path
    step: int
    latent_model: LatentModel | None = None

    @property
    def sigmas(self) -> list[float]:
        return sigma_levels(self.config.noise)

    @property
    def device(self) -> torch.device:
        return next(self.score.parameters()).device

    @torch.no_grad()
    def encode(self, clouds: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Codes (B, L) of clouds (B, N, 3) in the canonical frame."""
        points = torch.as_tensor(np.asarray(clouds, dtype=np.float32), device=self.device)
        if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] == 0:
            raise InputError(f"point clouds must have shape (B, N, 3) with N > 0, got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise InputError("point clouds contain NaN or Inf")
        return self.encoder(points)

    def encode_user_points(self, points: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, Normalization]:
        """(code (L,), frame) of one point cloud (N, 3) in user coordinates: the frame maps it
        into the unit sphere as preprocessing does (DeepSDF's padding), and ``input_points`` of
        its points (all of them when fewer) are encoded."""
        points = np.asarray(points, dtype=np.float64)
        frame = scan_frame(points)
        count = min(len(points), self.config.input_points)
        chosen = np.random.default_rng(seed).choice(len(points), count, replace=False)
        return self.encode(frame.to_canonical(points[chosen])[None])[0], frame

    def score_function(self, codes: torch.Tensor) -> ScoreFunction:
        """g(·, σ) of the shapes with codes (B, L), for :func:`annealed_langevin`."""
        codes = codes.to(self.device)

        def score(points: torch.Tensor, sigma: float) -> torch.Tensor:
            levels = torch.full((len(codes),), sigma, device=self.device)
            return self.score(points, levels, codes)
        return score

    @torch.no_grad()
    def sample(self, codes: torch.Tensor, count: int, seed: int = 0,
               record: bool = False) -> LangevinResult:
        """``count`` points on each of the shapes with codes (B, L), by annealed Langevin
        dynamics from N(0, σ_max² I); ``record`` keeps the points after each level."""
        if count < 1:
            raise InputError(f"the number of points must be positive, got {count}")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        start = self.sigmas[0] * torch.randn((len(codes), count, 3), generator=generator,
                                             device=self.device)
        langevin = self.config.langevin
        return annealed_langevin(self.score_function(codes), start, self.sigmas,
                                 steps_per_level=langevin.steps_per_level,
                                 step_ratio=langevin.step_ratio, denoise=langevin.denoise,
                                 generator=generator, record=record)

    def generate_codes(self, count: int, seed: int = 0) -> torch.Tensor:
        """``count`` new codes (count, L) drawn from the latent model."""
        if self.latent_model is None:
            raise InputError("this run has no latent model yet (it is fitted when training ends)")
        return torch.from_numpy(self.latent_model.sample(count, seed)).to(self.device)

    def distance(self, code: torch.Tensor, points: np.ndarray, surface: np.ndarray) -> np.ndarray:
        """The distance estimate d (P,) of the shape with code (L,) at points (P, 3), given
        points sampled on its surface (M, 3) (see the module notes)."""
        return self.distance_field(code, surface)(points)

    def distance_field(self, code: torch.Tensor, surface: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`distance` as a field of the points alone, the KD-tree of ``surface`` built once."""
        tree = cKDTree(surface)

        def field(points: np.ndarray) -> np.ndarray:
            gate, _ = tree.query(np.asarray(points, dtype=np.float64), workers=-1)
            band = gate < self.config.surface.band
            estimate = gate.astype(np.float32)
            if band.any():
                estimate[band] = self._field_distance(code, np.asarray(points, dtype=np.float32)[band])
            return estimate
        return field

    @torch.no_grad()
    def _field_distance(self, code: torch.Tensor, points: np.ndarray) -> np.ndarray:
        """σ²‖g(x, σ)‖ (P,) at the smallest self-consistent level, points (P, 3)."""
        x = torch.as_tensor(points, device=self.device)[None]
        score = self.score_function(code.reshape(1, -1))
        estimate = torch.empty(x.shape[1], device=self.device)
        pending = torch.ones(x.shape[1], dtype=torch.bool, device=self.device)
        for sigma in reversed(self.sigmas):
            if not pending.any():
                break
            estimate[pending] = sigma ** 2 * score(x[:, pending], sigma)[0].norm(dim=1)
            pending &= estimate > self.config.surface.reach * sigma
        return estimate.cpu().numpy()

    def surface_mesh(self, code: torch.Tensor, resolution: int | None = None,
                     normalization: Normalization | None = None, seed: int = 0,
                     points: np.ndarray | None = None) -> trimesh.Trimesh:
        """The shell {d = surface.level} of the shape with code (L,): canonical frame, or the
        user frame of ``normalization``. ``points`` (M, 3), canonical, are the shape's own
        points when known (the encoder's input); else the band comes from Langevin samples
        with the isolated ones dropped (:func:`dense_points`)."""
        surface = self.config.surface
        if points is None:
            sampled = self.sample(code.reshape(1, -1), surface.gate_points, seed=seed).points[0]
            points = dense_points(sampled.cpu().numpy())
        half = 1.0 + surface.padding
        mesh, _ = extract_mesh(self.distance_field(code, points), ((-half,) * 3, (half,) * 3),
                               resolution or surface.resolution, level=surface.level,
                               method="sparse", normalization=normalization)
        return mesh


def dense_points(points: np.ndarray, neighbours: int = 8, spread: float = 3.0) -> np.ndarray:
    """The points (M, 3) whose ``neighbours``-th nearest neighbour is within ``spread`` times the
    median such distance: Langevin samples left between parts of a shape, where the field was
    never trained, are isolated and dropped. Returns (M', 3)."""
    distances, _ = cKDTree(points).query(points, k=neighbours + 1, workers=-1)
    reach = distances[:, -1]
    return points[reach <= spread * np.median(reach)]


def load_gradient_field(run_dir: str | Path) -> GradientFieldModel:
    """The networks of a run's latest checkpoint (CPU, eval mode), and its latent model if fitted."""
    run = ShapeGFRun.open(run_dir)
    config, data_dir, shapes, checkpoint = run.load_trained()
    encoder, score = build_networks(config)
    try:
        encoder.load_state_dict(checkpoint.weights_to_use("encoder"))
        score.load_state_dict(checkpoint.weights_to_use("score"))
    except (KeyError, RuntimeError) as exc:
        raise InputError(f"{run.checkpoint_path}: does not hold this run's networks "
                         f"({str(exc).splitlines()[0]})") from None
    latent = None
    if run.latent_model_path.is_file():
        latent = latent_model_from_state(torch.load(run.latent_model_path, weights_only=True))
    return GradientFieldModel(encoder.eval(), score.eval(), config, shapes, data_dir,
                              checkpoint.step, latent)
