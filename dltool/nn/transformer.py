"""Transformer encoder parts: sinusoidal positional encoding and a pre-norm encoder block
(attention and feed-forward, each with a residual connection and layer norm)."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.nn.activations import activation
from dltool.nn.attention import MultiHeadSelfAttention
from dltool.nn.positional import sinusoidal


class SinusoidalPositions(nn.Module):
    """Adds "Attention is all you need"'s fixed sin/cos position codes (interleaved; dltool.nn.positional)
    to (N, L, D); a buffer, no weights."""

    def __init__(self, dim: int, max_len: int = 4096):
        super().__init__()
        table = sinusoidal(torch.arange(max_len), dim, interleaved=True)
        self.register_buffer("table", table, persistent=False)  # recomputed, so not in model files

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > len(self.table):
            raise ValueError(f"sequence of {x.shape[1]} tokens is longer than the {len(self.table)} positions")
        return x + self.table[: x.shape[1]]


class EncoderBlock(nn.Module):
    """x + attention(norm(x)), then x + feed_forward(norm(x)) (pre-norm: trains without warm-up tricks)."""

    def __init__(self, dim: int, heads: int, ff_dim: int | None = None, dropout: float = 0.1,
                 act: str = "gelu"):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim or 4 * dim), activation(act), nn.Dropout(dropout),
                                nn.Linear(ff_dim or 4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), keep))
        return x + self.drop(self.ff(self.norm2(x)))


class Encoder(nn.Module):
    """A stack of encoder blocks with a final layer norm."""

    def __init__(self, dim: int, heads: int, layers: int, ff_dim: int | None = None, dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x)
