"""A BERT-style encoder (Devlin et al. 2019): token and learned position embeddings, layer norm, pre-norm
encoder blocks (dltool.nn.transformer), the CLS token's state through a tanh pooler as the representation.

`bert` classifies; `bert_mlm` is the same encoder with the masked-language-model head (a transform, then
a decoder tied to the token embeddings) that `text classify pretrain` trains. Both keep the encoder under
`bert.`, so `train --init-from PRETRAINED` loads those weights by name.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.nn.attention import padding_mask
from dltool.nn.transformer import Encoder
from dltool.text.models import MODELS
from dltool.text.vocab import PAD


class BertEncoder(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, heads: int, layers: int, dropout: float, max_len: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.positions = nn.Embedding(max_len, embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(embed_dim, heads, layers, dropout=dropout)
        # BERT's initialisation: small embeddings, so the tied MLM decoder starts with near-uniform logits
        for table in (self.embedding, self.positions):
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, L) ids -> (N, L, D) states; padding is never attended to."""
        if ids.shape[1] > self.positions.num_embeddings:
            raise ValueError(f"{ids.shape[1]} tokens exceed the model's {self.positions.num_embeddings} positions")
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.norm(self.embedding(ids) + self.positions(pos)))
        return self.encoder(x, padding_mask(lengths, ids.shape[1]))


class BertClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, heads: int, layers: int, dropout: float,
                 max_len: int):
        super().__init__()
        self.bert = BertEncoder(vocab_size, embed_dim, heads, layers, dropout, max_len)
        self.pooler = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.Tanh())
        self.drop = nn.Dropout(dropout)
        self.feature_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes)

    @property
    def embedding(self) -> nn.Embedding:
        return self.bert.embedding

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.pooler(self.bert(ids, lengths)[:, 0])  # CLS

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


class BertForMaskedLM(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, heads: int, layers: int, dropout: float, max_len: int):
        super().__init__()
        self.bert = BertEncoder(vocab_size, embed_dim, heads, layers, dropout, max_len)
        self.transform = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.LayerNorm(embed_dim))
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, picked: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over the vocabulary of every position (N, L, vocab), or with `picked` (N, L) bool only of
        the picked positions (M, vocab): the decoder (tied to the token embeddings) is most of the cost."""
        states = self.bert(ids, lengths)
        if picked is not None:
            states = states[picked]
        return self.transform(states) @ self.bert.embedding.weight.T + self.bias


@MODELS.register("bert", mlm="bert_mlm")
def bert(*, vocab_size, num_classes, embed_dim=64, heads=4, layers=2, dropout=0.1, max_len=512):
    return BertClassifier(vocab_size, num_classes, embed_dim, heads, layers, dropout, max_len)


@MODELS.register("bert_tiny", mlm="bert_mlm")
def bert_tiny(*, vocab_size, num_classes, embed_dim=16, heads=2, layers=1, dropout=0.1, max_len=512):
    return BertClassifier(vocab_size, num_classes, embed_dim, heads, layers, dropout, max_len)


def bert_mlm(*, vocab_size, embed_dim, heads, layers, dropout, max_len):
    """The pretraining network of `bert`/`bert_tiny` (not a classifier, so not in the registry)."""
    return BertForMaskedLM(vocab_size, embed_dim, heads, layers, dropout, max_len)
