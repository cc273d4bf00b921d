"""A decoder-only Transformer (GPT-2 as nanoGPT and makemore write it): token and learned position
embeddings, pre-norm causal blocks (dltool.nn.causal), a final norm, and an output layer tied to the
token embedding."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.nn.causal import DecoderBlock
from dltool.text.models.lm import LM_MODELS


class GPT(nn.Module):
    def __init__(self, vocab_size: int, context: int, dim: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(context, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied: one matrix reads and writes tokens
        self.apply(_init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(self, ids: torch.Tensor, state: list | None = None):
        past = 0 if state is None else state[0][0].shape[2]
        if past + ids.shape[1] > self.context:
            raise ValueError(f"{past + ids.shape[1]} positions exceed the model's context of {self.context}")
        positions = torch.arange(past, past + ids.shape[1], device=ids.device)
        x = self.drop(self.tok(ids) + self.pos(positions))
        new_state = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if state is None else state[i])
            new_state.append(kv)
        return self.head(self.norm(x)), new_state


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)


@LM_MODELS.register("gpt")
def gpt(*, vocab_size, context=128, dim=64, heads=4, layers=4, dropout=0.0):
    """makemore's default Transformer: 4 layers, 4 heads, 64 wide."""
    return GPT(vocab_size, context, dim, heads, layers, dropout)


@LM_MODELS.register("gpt_tiny")
def gpt_tiny(*, vocab_size, context=32, dim=16, heads=2, layers=1, dropout=0.0):
    return GPT(vocab_size, context, dim, heads, layers, dropout)
