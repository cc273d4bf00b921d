"""lstm, gru: a recurrent encoder over the lookback, read by a direct multi-step head (the default) or
by a seq2seq decoder that unrolls the horizon from the encoder's state, fed the known covariates."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.core.errors import unknown_name
from dltool.series.models import MODELS
from dltool.series.models.base import Forecaster, check_sizes

DECODERS = ("direct", "seq2seq")


class _Encoder(nn.Module):
    def __init__(self, cell: str, features: int, width: int, layers: int, dropout: float):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(features, width, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.state = None

    def forward(self, x):
        out, state = self.rnn(x)
        self.state = state  # the seq2seq decoder starts from it
        return out[:, -1]


class _Decoder(nn.Module):
    def __init__(self, encoder: _Encoder, cell: str, covariates: int, horizon: int, width: int, layers: int,
                 outputs: int):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.encoder = [encoder]  # a plain list: not a second registration of its parameters
        self.steps = nn.Parameter(torch.zeros(horizon, width))  # where in the horizon each step is
        self.inputs = nn.Linear(covariates, width) if covariates else None
        self.rnn = rnn(width, width, num_layers=layers, batch_first=True)
        self.out = nn.Linear(width, outputs)

    def forward(self, encoded, future):
        x = self.steps.expand(len(encoded), -1, -1)
        if self.inputs is not None:
            x = x + self.inputs(future)
        out, _ = self.rnn(x, self.encoder[0].state)
        return self.out(out)


def _rnn(cell, *, lookback, horizon, n_targets, n_covariates, n_quantiles, width, layers, dropout, decoder):
    check_sizes(width=width, layers=layers)
    if decoder not in DECODERS:
        raise unknown_name("--decoder", decoder, DECODERS)
    encoder = _Encoder(cell, n_targets + n_covariates, width, layers, dropout)
    dec = _Decoder(encoder, cell, n_covariates, horizon, width, layers, n_targets * n_quantiles) \
        if decoder == "seq2seq" else None
    return Forecaster(encoder, width, lookback=lookback, horizon=horizon, n_targets=n_targets,
                      n_covariates=n_covariates, n_quantiles=n_quantiles, decoder=dec)


def _register(cell: str, tiny: bool):
    name = f"{cell}_tiny" if tiny else cell

    @MODELS.register(name)
    def build(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
              width: int | None = None, layers: int | None = None, dropout: float = 0.0 if tiny else 0.1,
              decoder: str = "direct"):
        return _rnn(cell, lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                    n_quantiles=n_quantiles, width=width or (8 if tiny else 64), layers=layers or 1,
                    dropout=dropout, decoder=decoder)

    build.__doc__ = f"{cell}{' (tiny, for tests)' if tiny else ''}: a recurrent encoder, direct or seq2seq head."
    return build


for _cell in ("lstm", "gru"):
    for _tiny in (False, True):
        _register(_cell, _tiny)
