"""GAN networks: a DCGAN generator and discriminator as submodules of one module, so the engine (and DDP)
trains them as one model with two optimizers. With num_classes > 0 both are conditioned on the label
(cGAN, Mirza & Osindero 2014): the generator gets a label embedding beside z, the discriminator a
projection term (Miyato & Koyama 2018). Samples come from `generator_ema`, the generator's moving
average (as progressive GANs and StyleGAN sample). The game itself (losses, penalty) is
dltool.generate.gan's."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.core.ema import ema_copy
from dltool.generate.models import NETWORKS
from dltool.generate.models.conv import ConvDecoder, ConvEncoder


class Generator(nn.Module):
    def __init__(self, out_channels: int, img_size: int, latent_dim: int, width: int, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.decoder = ConvDecoder(latent_dim * (2 if num_classes else 1), out_channels, img_size, width, refine=True)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return torch.tanh(self.decoder(z))


class Discriminator(nn.Module):
    def __init__(self, in_channels: int, img_size: int, width: int, num_classes: int, batch_norm: bool):
        super().__init__()
        self.encoder = ConvEncoder(in_channels, img_size, width, batch_norm=batch_norm)
        self.head = nn.Linear(self.encoder.out_dim, 1)
        self.embed = nn.Embedding(num_classes, self.encoder.out_dim) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(x)
        out = self.head(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out


class GAN(nn.Module):
    """forward(real, z, y, part=...) runs one update's forward pass in a single call (DDP needs one forward
    per backward): part "discriminator" -> (D(real), D(G(z)) with G frozen, and the gradient penalty of
    WGAN-GP when penalty is set); part "generator" -> D(G(z))."""

    def __init__(self, in_channels: int, img_size: int, latent_dim: int, width: int, num_classes: int = 0,
                 batch_norm: bool = True):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.generator = Generator(in_channels, img_size, latent_dim, width, num_classes)
        self.discriminator = Discriminator(in_channels, img_size, width, num_classes, batch_norm)
        # the weights samples come from: an average over the generator's steps, steadier than its last one
        # (the GAN game never settles); the task updates it after each generator step
        self.generator_ema = ema_copy(self.generator)

    def forward(self, real, z, y=None, *, part: str, penalty: bool = False):
        if part == "generator":
            return self.discriminator(self.generator(z, y), y)
        with torch.no_grad():
            fake = self.generator(z, y)
        d_real, d_fake = self.discriminator(real, y), self.discriminator(fake, y)
        if not penalty:
            return d_real, d_fake, None
        return d_real, d_fake, self.gradient_penalty(real, fake, y)

    def gradient_penalty(self, real, fake, y):
        """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 at random points between real and fake."""
        eps = torch.rand(len(real), 1, 1, 1, device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminator(x_hat, y).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@NETWORKS.register("dcgan", family="gan")
def dcgan(*, in_channels: int, img_size: int, num_classes: int = 0, latent_dim: int = 32, width: int = 32,
          batch_norm: bool = True) -> GAN:
    return GAN(in_channels, img_size, latent_dim, width, num_classes, batch_norm)


@NETWORKS.register("dcgan_tiny", family="gan")
def dcgan_tiny(*, in_channels: int, img_size: int, num_classes: int = 0, latent_dim: int = 8,
               batch_norm: bool = True) -> GAN:
    """For tests: width 4."""
    return GAN(in_channels, img_size, latent_dim, 4, num_classes, batch_norm)
