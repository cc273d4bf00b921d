"""Recurrent encoder-decoders (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015): an LSTM or
GRU encoder, bidirectional or not, whose final state starts the decoder (through a tanh layer), and a
decoder that reads its own previous token and, with attention, the source states:

- none: the decoder sees the source only through the encoder's final state (the course's baseline);
- bahdanau: at each step the previous decoder state attends to the source (additive score); the context
  joins the input of the step; the step runs in a Python loop over the target;
- luong: the decoder runs over the target, then each output attends to the source (general score), in
  parallel over the target.
With attention, the output layer reads tanh(W [decoder output; context]) (Luong's attentional vector).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dltool.nn.attention import padding_mask
from dltool.nn.dropout import Dropout
from dltool.nn.recurrent import StackedRNN
from dltool.nn.seq2seq import AdditiveAttention, LuongAttention
from dltool.text.models.seq2seq import SEQ2SEQ_MODELS

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
ATTENTIONS = ("none", "bahdanau", "luong")


class RecurrentSeq2Seq(nn.Module):
    def __init__(self, cell: str, src_vocab: int, tgt_vocab: int, dim: int, hidden: int, layers: int,
                 dropout: float, attention: str, bidirectional: bool):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention {attention!r} is not one of {'|'.join(ATTENTIONS)}")
        self.cell, self.attention, self.layers, self.hidden = cell, attention, layers, hidden
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, dim), nn.Embedding(tgt_vocab, dim)
        self.encoder = StackedRNN(CELLS[cell], dim, hidden, layers, dropout, bidirectional)
        enc_width = hidden * (2 if bidirectional else 1)
        self.bridge = nn.Linear(enc_width, hidden)  # encoder's final state -> decoder's first, per layer
        self.decoder = StackedRNN(CELLS[cell], dim + (hidden if attention == "bahdanau" else 0), hidden, layers,
                                  dropout)
        if attention != "none":
            self.memory = nn.Linear(enc_width, hidden)
            self.attn = (AdditiveAttention(hidden, hidden, hidden) if attention == "bahdanau"
                         else LuongAttention(hidden, hidden, "general"))
            self.combine = nn.Linear(2 * hidden, hidden)
        self.drop = Dropout(dropout)
        self.head = nn.Linear(hidden, tgt_vocab)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor):
        emb = self.drop(self.src_emb(src))
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        out = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0]
        finals = final if self.cell == "lstm" else (final,)
        n = src.shape[0]
        # (layers * directions, N, H) -> (N, layers, directions * H) -> the decoder's (N, layers, H)
        state = tuple(torch.tanh(self.bridge(f.view(self.layers, -1, n, self.hidden).permute(2, 0, 1, 3)
                                             .reshape(n, self.layers, -1))) for f in finals)
        memory = {"keep": padding_mask(src_len, src.shape[1])}
        if self.attention != "none":
            memory["out"] = self.memory(self.drop(out))
            memory["keys"] = self.attn.keys(memory["out"])
        return memory, state

    def _rnn_state(self, state):
        h = tuple(s.transpose(0, 1).contiguous() for s in state)
        return h if self.cell == "lstm" else h[0]

    def _batch_first(self, h):
        return tuple(s.transpose(0, 1) for s in (h if self.cell == "lstm" else (h,)))

    def _attend(self, query, memory):
        return self.attn(query, memory["out"], memory["keep"], memory["keys"])

    def decode(self, ids: torch.Tensor, memory: dict, state):
        emb = self.drop(self.tgt_emb(ids))
        h = self._rnn_state(state)
        attn = None
        if self.attention == "bahdanau":
            outs, weights = [], []
            for t in range(ids.shape[1]):
                top = (h[0] if self.cell == "lstm" else h)[-1][:, None]  # the previous state of the top layer
                context, w = self._attend(top, memory)
                out, h = self.decoder(torch.cat([emb[:, t:t + 1], context], -1), h)
                outs.append(torch.tanh(self.combine(torch.cat([out, context], -1))))
                weights.append(w)
            out, attn = torch.cat(outs, 1), torch.cat(weights, 1)
        else:
            out, h = self.decoder(emb, h)
            if self.attention == "luong":
                context, attn = self._attend(out, memory)
                out = torch.tanh(self.combine(torch.cat([out, context], -1)))
        return self.head(self.drop(out)), self._batch_first(h), attn

    def forward(self, src, src_len, tgt_in):
        memory, state = self.encode(src, src_len)
        return self.decode(tgt_in, memory, state)[0]


def _builder(cell: str):
    def build(*, src_vocab, tgt_vocab, dim=128, hidden=256, layers=2, dropout=0.2, attention="luong",
              bidirectional=True):
        return RecurrentSeq2Seq(cell, src_vocab, tgt_vocab, dim, hidden, layers, dropout, attention, bidirectional)

    def tiny(*, src_vocab, tgt_vocab, dim=16, hidden=32, layers=1, dropout=0.0, attention="luong",
             bidirectional=True):
        return RecurrentSeq2Seq(cell, src_vocab, tgt_vocab, dim, hidden, layers, dropout, attention, bidirectional)

    SEQ2SEQ_MODELS.register(cell)(build)
    SEQ2SEQ_MODELS.register(f"{cell}_tiny")(tiny)


for _cell in CELLS:
    _builder(_cell)
