"""Multi-head self-attention on torch's fused `scaled_dot_product_attention`, and padding masks."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(N,) lengths -> (N, max_len) bool, True at real tokens, False at padding."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class MultiHeadSelfAttention(nn.Module):
    """Self-attention over (N, L, D) with `heads` heads; `keep` (N, L) bool marks the tokens that may be
    attended to (padding is False), so a padded batch gives each sequence what it would alone."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the model width {dim} does not split into {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if keep is None else keep[:, None, None, :]  # broadcast over heads and queries
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(n, length, dim))
