"""PixelCNN (van den Oord et al. 2016): masked convolutions make pixel (i, j), channel c depend only on the
pixels above and to the left, and on the channels before c at (i, j). The first layer is type A (the
pixel itself hidden), the rest type B (its earlier channels visible). Outputs 256-way logits for every
sub-pixel: a discrete likelihood, so the NLL is exact in bits/dim."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.generate.models import NETWORKS

LEVELS = 256


class MaskedConv2d(nn.Conv2d):
    """A conv whose kernel is masked: rows below the centre, and right of the centre, are zero; at the centre,
    output channel group g sees input group h only when h < g (type A) or h <= g (type B). Channels are
    split into `colors` contiguous groups (R, G, B)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, mask_type: str, colors: int):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type {mask_type!r} must be 'A' or 'B'")
        mask = torch.ones_like(self.weight)
        k = kernel // 2
        mask[:, :, k, k + 1:] = 0
        mask[:, :, k + 1:] = 0
        g_out = torch.arange(c_out) * colors // c_out
        g_in = torch.arange(c_in) * colors // c_in
        visible = g_in[None] < g_out[:, None] if mask_type == "A" else g_in[None] <= g_out[:, None]
        mask[:, :, k, k] = visible.float()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    def __init__(self, in_channels: int, width: int, layers: int):
        super().__init__()
        if width % in_channels:
            raise ValueError(f"width {width} must be a multiple of the {in_channels} channels")
        self.colors = in_channels
        blocks = [MaskedConv2d(in_channels, width, 7, "A", in_channels), nn.ReLU()]
        for _ in range(layers):
            blocks += [MaskedConv2d(width, width, 3, "B", in_channels), nn.ReLU()]
        blocks += [MaskedConv2d(width, width, 1, "B", in_channels), nn.ReLU(),
                   MaskedConv2d(width, in_channels * LEVELS, 1, "B", in_channels)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8-valued images (N, C, H, W) -> logits (N, 256, C, H, W)."""
        n, c, h, w = x.shape
        out = self.net(x.float() / 127.5 - 1)  # channel groups: all of channel 0's logits, then channel 1's
        return out.view(n, c, LEVELS, h, w).transpose(1, 2)


@NETWORKS.register("pixelcnn", family="pixelcnn")
def pixelcnn(*, in_channels: int, img_size: int, width: int = 48, layers: int = 5) -> PixelCNN:
    return PixelCNN(in_channels, width - width % in_channels, layers)


@NETWORKS.register("pixelcnn_tiny", family="pixelcnn")
def pixelcnn_tiny(*, in_channels: int, img_size: int) -> PixelCNN:
    """For tests: width 6, one hidden layer."""
    return PixelCNN(in_channels, 6, 1)
