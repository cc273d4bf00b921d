"""Sinusoidal codes ("Attention is all you need" §3.5): the one definition behind the Transformer's
position table (dltool.nn.transformer) and the diffusion U-Net's time embedding (dltool.nn.unet)."""

from __future__ import annotations

import math

import torch


def sinusoidal(positions: torch.Tensor, dim: int, *, max_period: float = 10_000.0,
               interleaved: bool = False) -> torch.Tensor:
    """Positions (N,) -> (N, dim) float32: sines and cosines of the positions times ceil(dim / 2) frequencies
    spaced geometrically from 1 down to 1 / max_period. Laid out as halves [sin | cos] (DDPM's time
    embedding), or interleaved sin, cos, sin, ... (the Transformer's table); an odd dim drops the last cosine.
    The layout is part of a trained model, so each caller keeps its own."""
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(max_period) / dim))
    angles = positions.float()[:, None] * freqs[None]
    sin, cos = angles.sin(), angles.cos()[:, : dim // 2]
    if not interleaved:
        return torch.cat([sin, cos], dim=1)
    codes = angles.new_zeros(len(positions), dim)
    codes[:, 0::2], codes[:, 1::2] = sin, cos
    return codes
