"""The occupancy network of a run: encoder, decoder and (for a VAE) the latent encoder, as one
module so that DDP wraps a single forward pass.

    c        = E(input)                       (B, C), a dict of ConvONet feature maps, or None
    μ, log σ = q(points, occupancies, c)      VAE only
    z        = μ + σ ε                        VAE only, ε given by the caller (the step's generator)
    logits   = D(points, c, z)                (B, T); occupancy probability = sigmoid(logits)
"""

from __future__ import annotations

import torch
from torch import nn

from isofield.losses import gaussian_kl
from isofield.nn.convonet import LocalDecoder, LocalPoolPointNet
from isofield.nn.image import ImageEncoder
from isofield.nn.occupancy import LatentEncoder, OccupancyDecoder, ResNetPointNet
from isofield.nn.pointnet import PointNetEncoder
from isofield.occupancy.config import OccupancyConfig, is_vae

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
        """A training pass: (logits (B, T), KL (B,)); KL is zero without a VAE.

        Args:
            inputs: what :meth:`encode` takes, or None.
            points: (B, T, 3) occupancy sample points; occupancies: (B, T) float labels.
            noise: (B, Z) standard normal ε of the reparameterised z (VAE only).
        """
        condition = self.encode(inputs)
        if self.latent_encoder is None:
            return self.decode(points, condition), points.new_zeros(len(points))
        mean, log_std = self.latent_encoder(points, occupancies, condition)
        latent = mean + log_std.exp() * noise
        return self.decode(points, condition, latent), gaussian_kl(mean, log_std)


def build_network(config: OccupancyConfig) -> OccupancyNetwork:
    """The untrained network ``config`` describes (method, input, encoder, decoder, VAE)."""
    latent_dim = config.latent_dim
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
    encoder = _global_encoder(config)
    condition_dim = 0 if encoder is None else config.encoder.condition_dim
    decoder = OccupancyDecoder(condition_dim, latent_dim, hidden=config.decoder.hidden,
                               blocks=config.decoder.blocks)
    latent_encoder = LatentEncoder(latent_dim, condition_dim) if is_vae(config) else None
    return OccupancyNetwork(encoder, decoder, latent_encoder, local=False)


def _global_encoder(config: OccupancyConfig) -> nn.Module | None:
    encoder = config.encoder
    if config.input.kind == "none":
        return None
    if encoder.kind == "image":
        return ImageEncoder(encoder.condition_dim, base=encoder.hidden)
    if encoder.kind == "pointnet":
        return PointNetEncoder(encoder.condition_dim, widths=(encoder.hidden,) * 3 + (2 * encoder.hidden,),
                               head=(encoder.hidden,))
    return ResNetPointNet(encoder.condition_dim, hidden=encoder.hidden)
