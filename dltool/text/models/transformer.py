"""A Transformer encoder classifier: embeddings scaled by sqrt(dim) plus sinusoidal positions, pre-norm
encoder blocks (dltool.nn.transformer) with padding masked out, the mean over real tokens pooled."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.nn.attention import padding_mask
from dltool.nn.transformer import Encoder, SinusoidalPositions
from dltool.text.models import MODELS
from dltool.text.vocab import PAD


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, heads: int, layers: int, dropout: float,
                 max_len: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.positions = SinusoidalPositions(embed_dim, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(embed_dim, heads, layers, dropout=dropout)
        self.scale = math.sqrt(embed_dim)
        self.feature_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes)

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(lengths, ids.shape[1])
        x = self.encoder(self.drop(self.positions(self.embedding(ids) * self.scale)), keep)
        weights = keep.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


@MODELS.register("transformer")
def transformer(*, vocab_size, num_classes, embed_dim=64, heads=4, layers=2, dropout=0.1, max_len=512):
    return TransformerClassifier(vocab_size, num_classes, embed_dim, heads, layers, dropout, max_len)


@MODELS.register("transformer_tiny")
def transformer_tiny(*, vocab_size, num_classes, embed_dim=16, heads=2, layers=1, dropout=0.1, max_len=512):
    return TransformerClassifier(vocab_size, num_classes, embed_dim, heads, layers, dropout, max_len)
