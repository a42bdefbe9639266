"""The network of a run as one module, so that DDP wraps a single forward pass: an occupancy
network (encoder, decoder and, for a VAE, the latent encoder), or SALD's VAE (:class:`SignAgnosticVAE`).

    c        = E(input)                       (B, C), a dict of ConvONet feature maps, or None
    μ, log σ = q(points, occupancies, c)      VAE only
    z        = μ + σ ε                        VAE only, ε given by the caller (the step's generator)
    logits   = D(points, c, z)                (B, T); occupancy probability = sigmoid(logits)
"""

from __future__ import annotations

import torch
from torch import nn

from isofield.losses import gaussian_kl
from isofield.nn import build_field
from isofield.nn.convonet import LocalDecoder, LocalPoolPointNet
from isofield.nn.image import ImageEncoder
from isofield.nn.occupancy import LatentEncoder, OccupancyDecoder, ResNetPointNet
from isofield.nn.pointnet import PointNetEncoder
from isofield.occupancy.config import OccupancyConfig, has_input, is_sdf, is_vae

Condition = torch.Tensor | dict[str, torch.Tensor] | None


class OccupancyNetwork(nn.Module):
    """Encoder (or None), decoder and latent encoder (or None) of an occupancy network.

    ``local``: the decoder reads ConvONet feature maps (a dict) instead of a global code.
    """

    def __init__(self, encoder: nn.Module | None, decoder: nn.Module,
                 latent_encoder: nn.Module | None, local: bool) -> None:
        super().__init__()
        self.encoder, self.decoder, self.latent_encoder, self.local = encoder, decoder, latent_encoder, local

    def encode(self, inputs: torch.Tensor | None) -> Condition:
        """inputs (B, N, 3) clouds or (B, 3, H, W) images -> c; None without an encoder."""
        return None if self.encoder is None else self.encoder(inputs)

    def decode(self, points: torch.Tensor, condition: Condition,
               latent: torch.Tensor | None = None) -> torch.Tensor:
        """points (B, T, 3) canonical -> logits (B, T)."""
        if self.local:
            return self.decoder(points, condition)
        return self.decoder(points, condition, latent)

    def forward(self, inputs: torch.Tensor | None, points: torch.Tensor, occupancies: torch.Tensor,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pass: (logits (B, T), KL per latent dimension (B, Z)); Z = 0 without a VAE.

        Args:
            inputs: what :meth:`encode` takes, or None.
            points: (B, T, 3) occupancy sample points; occupancies: (B, T) float labels.
            noise: (B, Z) standard normal ε of the reparameterised z (VAE only).
        """
        condition = self.encode(inputs)
        if self.latent_encoder is None:
            return self.decode(points, condition), points.new_zeros(len(points), 0)
        mean, log_std = self.latent_encoder(points, occupancies, condition)
        latent = mean + log_std.exp() * noise
        return self.decode(points, condition, latent), gaussian_kl(mean, log_std)


class SignAgnosticVAE(nn.Module):
    """SALD's shape space: a PointNet gives μ and log σ of z from a cloud, an SDF MLP decodes
    f(x, z). The "condition" of this network is μ (what a test input decodes with).

    Args:
        encoder: clouds (B, N, 3) -> (B, 2Z): μ then log σ.
        decoder: an MLPField with latent_dim Z: f(points (M, 3), latents (M, Z)) -> (M,).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def posterior(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, N, 3) -> (μ (B, Z), log σ (B, Z))."""
        mean, log_std = self.encoder(inputs).chunk(2, dim=1)
        return mean, log_std

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, N, 3) -> μ (B, Z)."""
        return self.posterior(inputs)[0]

    def decode(self, points: torch.Tensor, condition: torch.Tensor,
               latent: torch.Tensor | None = None) -> torch.Tensor:
        """points (B, T, 3), z (B, Z) (``latent`` if given, else ``condition``) -> SDF (B, T)."""
        code = condition if latent is None else latent
        batch, count, _ = points.shape
        codes = code[:, None, :].expand(batch, count, code.shape[1])
        return self.decoder(points.reshape(-1, 3), codes.reshape(batch * count, -1)).reshape(batch, count)

    def forward(self, inputs: torch.Tensor, points: torch.Tensor, occupancies: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pass: (SDF (B, T) at points (B, T, 3), KL per latent dimension (B, Z));
        ``noise`` (B, Z) is ε."""
        mean, log_std = self.posterior(inputs)
        return self.decode(points, mean + log_std.exp() * noise), gaussian_kl(mean, log_std)


def build_network(config: OccupancyConfig) -> OccupancyNetwork | SignAgnosticVAE:
    """The untrained network ``config`` describes (method, input, encoder, decoder, VAE)."""
    latent_dim = config.latent_dim
    if is_sdf(config):
        decoder = build_field({"preset": "paper", "hidden": config.decoder.hidden, "depth": config.decoder.blocks,
                               "skip": [config.decoder.blocks // 2], "latent_dim": latent_dim,
                               "radius": config.sign_agnostic.radius})
        return SignAgnosticVAE(_global_encoder(config, 2 * latent_dim), decoder)
    if config.method == "convonet":
        features = config.features
        encoder = LocalPoolPointNet(
            feature_dim=features.feature_dim, hidden=config.encoder.hidden, planes=tuple(features.planes),
            grid=features.grid, plane_resolution=features.plane_resolution,
            grid_resolution=features.grid_resolution, padding=config.padding,
            unet={"depth": features.unet_depth, "base": features.unet_base})
        decoder = LocalDecoder(feature_dim=features.feature_dim, hidden=config.decoder.hidden,
                               blocks=config.decoder.blocks, padding=config.padding)
        return OccupancyNetwork(encoder, decoder, None, local=True)
    encoder = _global_encoder(config, config.encoder.condition_dim)
    condition_dim = 0 if encoder is None else config.encoder.condition_dim
    decoder = OccupancyDecoder(condition_dim, latent_dim, hidden=config.decoder.hidden,
                               blocks=config.decoder.blocks)
    latent_encoder = LatentEncoder(latent_dim, condition_dim) if is_vae(config) else None
    return OccupancyNetwork(encoder, decoder, latent_encoder, local=False)


def _global_encoder(config: OccupancyConfig, outputs: int) -> nn.Module | None:
    """The encoder of ``config.input`` to ``outputs`` numbers, None without input."""
    encoder = config.encoder
    if not has_input(config):
        return None
    if encoder.kind == "image":
        return ImageEncoder(outputs, base=encoder.hidden)
    if encoder.kind == "pointnet":
        return PointNetEncoder(outputs, widths=(encoder.hidden,) * 3 + (2 * encoder.hidden,),
                               head=(encoder.hidden,))
    return ResNetPointNet(outputs, hidden=encoder.hidden)
