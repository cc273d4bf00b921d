"""Recurrent classifiers: an embedding, a (bidirectional, stacked) RNN, LSTM or GRU over packed
sequences (padding never enters the recurrence), the last layer's final states as the representation."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from dltool.text.models import MODELS
from dltool.text.vocab import PAD

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    def __init__(self, cell: str, vocab_size: int, num_classes: int, embed_dim: int, hidden: int, layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = CELLS[cell](embed_dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                               dropout=dropout if layers > 1 else 0.0)
        self.directions = 2 if bidirectional else 1
        self.drop = nn.Dropout(dropout)
        self.feature_dim = hidden * self.directions
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.drop(self.embedding(ids)), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        # h: (layers x directions, N, hidden); the last layer's directions, side by side
        return h[-self.directions:].transpose(0, 1).reshape(len(ids), self.feature_dim)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


def _recurrent(cell, *, vocab_size, num_classes, embed_dim, hidden, layers, bidirectional, dropout):
    return RecurrentClassifier(cell, vocab_size, num_classes, embed_dim, hidden, layers, bidirectional, dropout)


@MODELS.register("rnn")
def rnn(*, vocab_size, num_classes, embed_dim=64, hidden=64, layers=1, bidirectional=True, dropout=0.3):
    return _recurrent("rnn", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)


@MODELS.register("lstm")
def lstm(*, vocab_size, num_classes, embed_dim=64, hidden=64, layers=1, bidirectional=True, dropout=0.3):
    return _recurrent("lstm", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)


@MODELS.register("gru")
def gru(*, vocab_size, num_classes, embed_dim=64, hidden=64, layers=1, bidirectional=True, dropout=0.3):
    return _recurrent("gru", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)


@MODELS.register("rnn_tiny")
def rnn_tiny(*, vocab_size, num_classes, embed_dim=16, hidden=16, layers=1, bidirectional=True, dropout=0.1):
    return _recurrent("rnn", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)


@MODELS.register("lstm_tiny")
def lstm_tiny(*, vocab_size, num_classes, embed_dim=16, hidden=16, layers=1, bidirectional=True, dropout=0.1):
    return _recurrent("lstm", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)


@MODELS.register("gru_tiny")
def gru_tiny(*, vocab_size, num_classes, embed_dim=16, hidden=16, layers=1, bidirectional=True, dropout=0.1):
    return _recurrent("gru", vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, hidden=hidden,
                      layers=layers, bidirectional=bidirectional, dropout=dropout)
