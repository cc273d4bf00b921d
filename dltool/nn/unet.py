"""U-Net parts (Ronneberger et al. 2015): double conv, down, up by transposed convolution, and the
encoder-decoder with skip connections built from them.

Generic on purpose: segmentation uses `UNet` as it is; diffusion adds a time embedding by passing a
per-sample vector `emb` that every DoubleConv adds to its features (`emb_dim` > 0; `SinusoidalEmbedding`
turns timesteps into such vectors), and normalises with GroupNorm (`groups` > 0) rather than BatchNorm,
whose batch statistics mix the noise levels of a batch; so the same blocks serve both.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.nn.activations import activation
from dltool.nn.positional import sinusoidal


class SinusoidalEmbedding(nn.Module):
    """Timesteps (N,) -> (N, dim) sinusoidal codes, [sin | cos] halves (dltool.nn.positional; the DDPM
    U-Net's time embedding)."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"SinusoidalEmbedding needs an even dim >= 2 (got {dim})")
        self.dim, self.max_period = dim, max_period

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal(t, self.dim, max_period=self.max_period)


class DoubleConv(nn.Module):
    """(conv3x3 -> [norm] -> act) x 2; with emb_dim, a projected embedding is added between the two convs.
    The norm is BatchNorm (batch_norm), GroupNorm with `groups` groups (groups > 0), or none."""

    def __init__(self, c_in: int, c_out: int, *, batch_norm: bool = True, act: str = "relu", emb_dim: int = 0,
                 groups: int = 0):
        super().__init__()
        normed = batch_norm or groups > 0

        def norm():
            if groups:
                return nn.GroupNorm(math.gcd(groups, c_out), c_out)
            return nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()

        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not normed)
        self.norm1, self.act1 = norm(), activation(act)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not normed)
        self.norm2, self.act2 = norm(), activation(act)
        self.emb = nn.Linear(emb_dim, c_out) if emb_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        x = self.act1(self.norm1(self.conv1(x)))
        if self.emb is not None:
            x = x + self.emb(emb)[:, :, None, None]
        return self.act2(self.norm2(self.conv2(x)))


class Down(nn.Module):
    """Max-pool by 2, then a double conv."""

    def __init__(self, c_in: int, c_out: int, **kw):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(c_in, c_out, **kw)

    def forward(self, x, emb=None):
        return self.conv(self.pool(x), emb)


class Up(nn.Module):
    """Transposed convolution doubling the size, concatenation with the skip, then a double conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, **kw):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2)
        self.conv = DoubleConv(c_in // 2 + c_skip, c_out, **kw)

    def forward(self, x, skip, emb=None):
        return self.conv(torch.cat([self.up(x), skip], dim=1), emb)


class UNet(nn.Module):
    """`depth` downsamplings; channels width, 2*width, ... 2**depth * width at the bottom. Inputs need
    sides divisible by 2**depth (`multiple`). forward(x) -> features of `width` channels at the input's
    size; `head` (a 1x1 conv to out_channels) makes the output."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 32, depth: int = 4,
                 batch_norm: bool = True, dropout: float = 0.0, act: str = "relu", emb_dim: int = 0,
                 groups: int = 0):
        super().__init__()
        if width < 2 or depth < 1:
            raise ValueError(f"UNet needs width >= 2 and depth >= 1 (got width={width}, depth={depth})")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout {dropout} must be in [0, 1)")
        kw = {"batch_norm": batch_norm and not groups, "act": act, "emb_dim": emb_dim, "groups": groups}
        chans = [width * 2**i for i in range(depth + 1)]
        self.multiple = 2**depth
        self.stem = DoubleConv(in_channels, chans[0], **kw)
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], **kw) for i in range(depth))
        self.dropout = nn.Dropout2d(dropout)  # at the bottleneck, where the features are most abstract
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i], chans[i], **kw) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward_features(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        skips = [self.stem(x, emb)]
        for down in self.downs:
            skips.append(down(skips[-1], emb))
        x = self.dropout(skips.pop())
        for up in self.ups:
            x = up(x, skips.pop(), emb)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.forward_features(x, emb))
