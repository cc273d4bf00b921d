"""The Transformer encoder-decoder ("Attention is all you need", pre-norm as most code now writes it):
token embeddings scaled by sqrt(dim) plus sinusoidal positions; an encoder of self-attention blocks
(dltool.nn.transformer); a decoder of causal self-attention, attention over the encoder's output and
feed-forward (dltool.nn.seq2seq); an output layer tied to the target embedding. Decoding feeds one token a
step: the self-attention keys and values of earlier steps are cached, and the encoder's keys and values
are projected once per source."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.nn.attention import padding_mask
from dltool.nn.positional import sinusoidal
from dltool.nn.seq2seq import CrossDecoderBlock
from dltool.nn.transformer import Encoder
from dltool.text.models.seq2seq import SEQ2SEQ_MODELS

POSITIONS = 1024


class TransformerSeq2Seq(nn.Module):
    def __init__(self, src_vocab: int, tgt_vocab: int, dim: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.positions = POSITIONS
        self.scale = math.sqrt(dim)
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, dim), nn.Embedding(tgt_vocab, dim)
        nn.init.normal_(self.src_emb.weight, 0.0, dim ** -0.5)
        nn.init.normal_(self.tgt_emb.weight, 0.0, dim ** -0.5)
        self.register_buffer("pos", sinusoidal(torch.arange(POSITIONS), dim, interleaved=True), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(dim, heads, layers, dropout=dropout)
        self.blocks = nn.ModuleList(CrossDecoderBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, tgt_vocab, bias=False)
        self.head.weight = self.tgt_emb.weight  # tied: one matrix reads and writes target tokens

    def _embed(self, emb: nn.Embedding, ids: torch.Tensor, past: int = 0) -> torch.Tensor:
        if past + ids.shape[1] > self.positions:
            raise ValueError(f"{past + ids.shape[1]} positions exceed the model's {self.positions}")
        return self.drop(emb(ids) * self.scale + self.pos[past:past + ids.shape[1]])

    def encode(self, src: torch.Tensor, src_len: torch.Tensor):
        keep = padding_mask(src_len, src.shape[1])
        out = self.encoder(self._embed(self.src_emb, src), keep)
        return {"keep": keep, "kv": tuple(block.cross.memory_kv(out) for block in self.blocks)}, None

    def decode(self, ids: torch.Tensor, memory: dict, state):
        past = 0 if state is None else state[0][0].shape[2]
        x = self._embed(self.tgt_emb, ids, past)
        caches, weights = [], None
        for i, block in enumerate(self.blocks):
            x, cache, weights = block(x, memory["kv"][i], memory["keep"], None if state is None else state[i])
            caches.append(cache)
        return self.head(self.norm(x)), tuple(caches), weights  # the last layer's attention

    def forward(self, src, src_len, tgt_in):
        memory, state = self.encode(src, src_len)
        return self.decode(tgt_in, memory, state)[0]


@SEQ2SEQ_MODELS.register("transformer")
def transformer(*, src_vocab, tgt_vocab, dim=128, heads=4, layers=3, dropout=0.1):
    """3 + 3 layers, 128 wide (1.4M weights): small enough to train on a CPU in minutes; G2P papers use 3-4
    layers of 128-256."""
    return TransformerSeq2Seq(src_vocab, tgt_vocab, dim, heads, layers, dropout)


@SEQ2SEQ_MODELS.register("transformer_tiny")
def transformer_tiny(*, src_vocab, tgt_vocab, dim=32, heads=2, layers=1, dropout=0.0):
    return TransformerSeq2Seq(src_vocab, tgt_vocab, dim, heads, layers, dropout)
