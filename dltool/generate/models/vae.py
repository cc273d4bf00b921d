"""A convolutional VAE (Kingma & Welling 2014): encoder to a diagonal Gaussian q(z|x), decoder to Bernoulli
logits p(x|z) per pixel (images scaled to [0, 1])."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.generate.models import NETWORKS
from dltool.generate.models.conv import ConvDecoder, ConvEncoder


class ConvVAE(nn.Module):
    def __init__(self, in_channels: int, img_size: int, latent_dim: int, width: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = ConvEncoder(in_channels, img_size, width)
        self.to_stats = nn.Linear(self.encoder.out_dim, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim, in_channels, img_size, width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [-1, 1] -> (mean, log-variance) of q(z|x)."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 12)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z -> pixel logits (sigmoid: the decoder's mean in [0, 1])."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar), with z drawn by the reparameterisation z = mu + sigma * eps."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar


@NETWORKS.register("vae", family="vae")
def vae(*, in_channels: int, img_size: int, latent_dim: int = 16, width: int = 32) -> ConvVAE:
    return ConvVAE(in_channels, img_size, latent_dim, width)


@NETWORKS.register("vae_tiny", family="vae")
def vae_tiny(*, in_channels: int, img_size: int, latent_dim: int = 4) -> ConvVAE:
    """For tests: width 4."""
    return ConvVAE(in_channels, img_size, latent_dim, 4)
