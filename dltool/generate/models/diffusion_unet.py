"""The denoising network of DDPM (Ho et al. 2020): the shared U-Net (dltool.nn.unet) with a sinusoidal time
embedding fed to every block, GroupNorm and SiLU. It predicts the noise in x_t; the process that uses it
(noise schedule, training target, samplers) is dltool.generate.diffusion.GaussianDiffusion."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.generate.models import NETWORKS
from dltool.nn.unet import SinusoidalEmbedding, UNet


class TimeUNet(nn.Module):
    def __init__(self, in_channels: int, width: int, depth: int):
        super().__init__()
        emb_dim = 4 * width
        self.time = nn.Sequential(SinusoidalEmbedding(width), nn.Linear(width, emb_dim), nn.SiLU(),
                                  nn.Linear(emb_dim, emb_dim))
        self.unet = UNet(in_channels, in_channels, width=width, depth=depth, act="silu", emb_dim=emb_dim,
                         groups=8)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, self.time(t))


def _check(img_size: int, depth: int) -> None:
    from dltool.core.errors import OptionError

    if img_size % 2**depth:
        raise OptionError(f"--img-size {img_size} must be divisible by {2**depth} for this U-Net",
                          f"use a multiple of {2**depth}, such as 16 or 32")


@NETWORKS.register("unet", family="diffusion")
def unet(*, in_channels: int, img_size: int, width: int = 32, depth: int = 2) -> TimeUNet:
    _check(img_size, depth)
    return TimeUNet(in_channels, width, depth)


@NETWORKS.register("unet_tiny", family="diffusion")
def unet_tiny(*, in_channels: int, img_size: int) -> TimeUNet:
    """For tests: width 8, depth 1."""
    _check(img_size, 1)
    return TimeUNet(in_channels, 8, 1)
