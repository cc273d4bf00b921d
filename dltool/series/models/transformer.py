"""transformer: a Transformer encoder (dltool.nn.transformer) over the lookback's time steps, each step
projected to the model width with sinusoidal positions; the last step's output is read."""

from __future__ import annotations

import torch.nn as nn

from dltool.core.errors import OptionError
from dltool.nn.transformer import Encoder, SinusoidalPositions
from dltool.series.models import MODELS
from dltool.series.models.base import Forecaster, check_sizes


class _Body(nn.Module):
    def __init__(self, features: int, width: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.inputs = nn.Linear(features, width)
        self.positions = SinusoidalPositions(width)
        self.encoder = Encoder(width, heads, layers, dropout=dropout)

    def forward(self, x):
        return self.encoder(self.positions(self.inputs(x)))[:, -1]


def _transformer(*, lookback, horizon, n_targets, n_covariates, n_quantiles, width, heads, layers, dropout):
    check_sizes(width=width, heads=heads, layers=layers)
    if width % heads:
        raise OptionError(f"--width {width} must be a multiple of --heads {heads}")
    body = _Body(n_targets + n_covariates, width, heads, layers, dropout)
    return Forecaster(body, width, lookback=lookback, horizon=horizon, n_targets=n_targets,
                      n_covariates=n_covariates, n_quantiles=n_quantiles)


@MODELS.register()
def transformer(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
                width: int | None = None, heads: int = 4, layers: int | None = None, dropout: float = 0.1):
    return _transformer(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                        n_quantiles=n_quantiles, width=width or 32, heads=heads, layers=layers or 2, dropout=dropout)


@MODELS.register()
def transformer_tiny(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
                     width: int | None = None, heads: int = 2, layers: int | None = None, dropout: float = 0.0):
    return _transformer(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                        n_quantiles=n_quantiles, width=width or 8, heads=heads, layers=layers or 1, dropout=dropout)
