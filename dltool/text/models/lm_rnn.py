"""Recurrent language models: an embedding, a stacked RNN, LSTM or GRU, and a linear read-out of every
step's output (makemore's RNN and GRU; Karpathy's char-rnn). The state is the recurrent hidden state."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.nn.dropout import Dropout
from dltool.nn.recurrent import StackedRNN
from dltool.text.models.lm import LM_MODELS

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentLM(nn.Module):
    context = None  # no limit on positions

    def __init__(self, cell: str, vocab_size: int, dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.rnn = StackedRNN(CELLS[cell], dim, hidden, layers, dropout)
        self.drop = Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.rnn(self.drop(self.embedding(ids)), state)
        return self.head(self.drop(out)), state


def _builder(cell: str):
    def build(*, vocab_size, dim=64, hidden=256, layers=2, dropout=0.1):
        return RecurrentLM(cell, vocab_size, dim, hidden, layers, dropout)

    def tiny(*, vocab_size, dim=16, hidden=32, layers=1, dropout=0.0):
        return RecurrentLM(cell, vocab_size, dim, hidden, layers, dropout)

    LM_MODELS.register(cell)(build)
    LM_MODELS.register(f"{cell}_tiny")(tiny)


for _cell in CELLS:
    _builder(_cell)
