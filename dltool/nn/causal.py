"""Decoder-only (causal) Transformer parts: masked self-attention on torch's `scaled_dot_product_attention`
with a key/value cache, and a pre-norm decoder block (GPT-2's, as nanoGPT writes it).

The cache makes generation linear in its length: each new token attends to the keys and values of the
earlier ones, kept from the steps before, instead of running the whole sequence again.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

#: one layer's cache: keys and values of the positions so far, each (N, heads, P, head_dim)
KV = tuple[torch.Tensor, torch.Tensor]


class CausalSelfAttention(nn.Module):
    """Self-attention over (N, L, D) where position i sees positions <= i; given `cache` (the keys and values
    of P earlier positions) the L new positions come after them. Returns (output, the cache extended)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the model width {dim} does not split into {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cache: KV | None = None) -> tuple[torch.Tensor, KV]:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        past = 0 if cache is None else cache[0].shape[2]
        if past:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        drop = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        elif length == 1:  # one new token: it sees every cached position
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:  # new query i sits at position past + i
            mask = torch.ones(length, past + length, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(n, length, dim)), (k, v)


class DecoderBlock(nn.Module):
    """x + attention(norm(x)), then x + mlp(norm(x)): GPT-2's pre-norm block."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KV | None = None) -> tuple[torch.Tensor, KV]:
        a, cache = self.attn(self.norm1(x), cache)
        x = x + self.drop(a)
        return x + self.mlp(self.norm2(x)), cache
