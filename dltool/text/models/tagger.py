"""Sequence taggers (`text tag`): a label for every token. Every tagger takes word ids (N, L), lengths (N,)
and character ids (N, L, C) (ignored where `char_dim` is 0), and returns per-token tag scores (N, L, T)
("emissions"), or given the tags (N, L) too, the training loss; `decode(emissions, lengths)` gives the best
tag sequences and `marginals` each token's tag probabilities. With `crf` a linear-chain CRF (pytorch-crf's, the implementation people
use) scores whole sequences: the loss is its negative log-likelihood per token and decoding is Viterbi;
without it each token is classified on its own (cross-entropy, argmax).

Word features: a word embedding (words seen too rarely in training share UNK, so UNK is trained) and,
with `char_dim` > 0, a character CNN per word (Ma & Hovy 2016: embed characters, convolve with width 3,
max over the word), which gives unknown words a representation from their spelling.

Families: `bilstm` (a bidirectional LSTM over the words), `bilstm-crf` (the same with a CRF), `transformer`
(pre-norm encoder blocks of dltool.nn with sinusoidal positions); `*_tiny` each for tests. `bert`
(tagger_bert.py) is a local Hugging Face BERT folder's, built from its config (meta `folder`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dltool.core.registry import Registry
from dltool.nn.attention import padding_mask
from dltool.nn.transformer import Encoder, SinusoidalPositions

TAGGERS = Registry("model")
PAD = 0  # word and character id of padding (id 1 is UNK)


class SequenceScoring:
    """What every tagger does with its emissions, through its CRF (`self.crf`) or token by token (None)."""

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The mean loss per real token: the CRF's negative log-likelihood, or cross-entropy."""
        mask = padding_mask(lengths, emissions.shape[1])
        if self.crf is not None:
            return -self.crf(emissions.float(), tags, mask=mask, reduction="sum") / mask.sum()
        return F.cross_entropy(emissions[mask].float(), tags[mask])

    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each sentence: Viterbi through the CRF, or each token's argmax."""
        if self.crf is not None:
            return self.crf.decode(emissions.float(), mask=padding_mask(lengths, emissions.shape[1]))
        best = emissions.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths.tolist())]

    def marginals(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """P(tag of token t = k) (N, L, T): the CRF's marginals (the gradient of log Z with respect to the
        emissions, i.e. forward-backward), or the softmax of each token's scores."""
        if self.crf is None:
            return emissions.float().softmax(-1)
        mask = padding_mask(lengths, emissions.shape[1])
        with torch.enable_grad():
            e = emissions.detach().float().clone().requires_grad_(True)
            # pytorch-crf's normaliser (log Z, by the forward algorithm) takes time-major inputs
            log_z = self.crf._compute_normalizer(e.transpose(0, 1), mask.transpose(0, 1))
            (grad,) = torch.autograd.grad(log_z.sum(), e)
        return grad


class CharCNN(nn.Module):
    """A word's characters (N, L, C) -> (N, L, filters): embed, convolve (width 3), max over real characters."""

    def __init__(self, n_chars: int, char_dim: int, filters: int):
        super().__init__()
        self.embedding = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.conv = nn.Conv1d(char_dim, filters, 3, padding=1)
        self.out_dim = filters

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        n, length, c = chars.shape
        x = self.embedding(chars.reshape(n * length, c)).transpose(1, 2)  # (N*L, D, C)
        h = self.conv(x).masked_fill((chars.reshape(n * length, 1, c) == PAD), float("-inf")).amax(-1)
        return torch.nan_to_num(h, neginf=0.0).reshape(n, length, -1)  # padding words have no characters


class Tagger(SequenceScoring, nn.Module):
    def __init__(self, encoder: str, vocab_size: int, num_tags: int, n_chars: int, embed_dim: int, hidden: int,
                 layers: int, heads: int, char_dim: int, char_filters: int, dropout: float, crf: bool):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.chars = CharCNN(n_chars, char_dim, char_filters) if char_dim else None
        width = embed_dim + (char_filters if char_dim else 0)
        self.drop = nn.Dropout(dropout)
        self.kind = encoder
        if encoder == "lstm":
            self.rnn = nn.LSTM(width, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                               dropout=dropout if layers > 1 else 0.0)
            out = 2 * hidden
        else:
            if width % heads:
                raise ValueError(f"the word features' width {width} does not split into {heads} heads")
            self.positions = SinusoidalPositions(width)
            self.encoder = Encoder(width, heads, layers, dropout=dropout)
            self.scale = math.sqrt(width)
            out = width
        self.head = nn.Linear(out, num_tags)
        self.crf = make_crf(num_tags) if crf else None

    def forward(self, words: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor,
                tags: torch.Tensor | None = None) -> torch.Tensor:
        """The emissions (N, L, T), or with `tags` the training loss: one forward either way, as DDP wants."""
        emissions = self.emissions(words, lengths, chars)
        return emissions if tags is None else self.loss(emissions, tags, lengths)

    def emissions(self, words: torch.Tensor, lengths: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        x = self.embedding(words)
        if self.chars is not None:
            x = torch.cat([x, self.chars(chars)], -1)
        x = self.drop(x)
        if self.kind == "lstm":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=words.shape[1])
        else:
            h = self.encoder(self.positions(x * self.scale), padding_mask(lengths, words.shape[1]))
        return self.head(self.drop(h))

def make_crf(num_tags: int):
    from torchcrf import CRF

    return CRF(num_tags, batch_first=True)


def _tagger(encoder, crf, *, vocab_size, num_tags, n_chars, embed_dim, hidden=0, layers, heads=1, char_dim,
            char_filters, dropout):
    return Tagger(encoder, vocab_size, num_tags, n_chars, embed_dim, hidden, layers, heads, char_dim,
                  char_filters, dropout, crf)


@TAGGERS.register("bilstm")
def bilstm(*, vocab_size, num_tags, n_chars, embed_dim=64, hidden=64, layers=1, char_dim=16, char_filters=32,
           dropout=0.3):
    return _tagger("lstm", False, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars, embed_dim=embed_dim,
                   hidden=hidden, layers=layers, char_dim=char_dim, char_filters=char_filters, dropout=dropout)


@TAGGERS.register("bilstm-crf")
def bilstm_crf(*, vocab_size, num_tags, n_chars, embed_dim=64, hidden=64, layers=1, char_dim=16, char_filters=32,
               dropout=0.3):
    return _tagger("lstm", True, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars, embed_dim=embed_dim,
                   hidden=hidden, layers=layers, char_dim=char_dim, char_filters=char_filters, dropout=dropout)


@TAGGERS.register("transformer")
def transformer(*, vocab_size, num_tags, n_chars, embed_dim=64, layers=2, heads=4, char_dim=16, char_filters=32,
                dropout=0.1):
    return _tagger("transformer", False, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars,
                   embed_dim=embed_dim, layers=layers, heads=heads, char_dim=char_dim, char_filters=char_filters,
                   dropout=dropout)


@TAGGERS.register("bilstm_tiny")
def bilstm_tiny(*, vocab_size, num_tags, n_chars, embed_dim=16, hidden=16, layers=1, char_dim=8, char_filters=8,
                dropout=0.1):
    return _tagger("lstm", False, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars, embed_dim=embed_dim,
                   hidden=hidden, layers=layers, char_dim=char_dim, char_filters=char_filters, dropout=dropout)


@TAGGERS.register("bilstm-crf_tiny")
def bilstm_crf_tiny(*, vocab_size, num_tags, n_chars, embed_dim=16, hidden=16, layers=1, char_dim=8,
                    char_filters=8, dropout=0.1):
    return _tagger("lstm", True, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars, embed_dim=embed_dim,
                   hidden=hidden, layers=layers, char_dim=char_dim, char_filters=char_filters, dropout=dropout)


@TAGGERS.register("transformer_tiny")
def transformer_tiny(*, vocab_size, num_tags, n_chars, embed_dim=16, layers=1, heads=2, char_dim=8, char_filters=8,
                     dropout=0.1):
    return _tagger("transformer", False, vocab_size=vocab_size, num_tags=num_tags, n_chars=n_chars,
                   embed_dim=embed_dim, layers=layers, heads=heads, char_dim=char_dim, char_filters=char_filters,
                   dropout=dropout)


# a Hugging Face BERT folder's tagger (--model bert --pretrained DIR) registers itself
from dltool.text.models import tagger_bert  # noqa: E402,F401
