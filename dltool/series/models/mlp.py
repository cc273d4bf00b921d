"""mlp: a fully connected network over the flattened lookback window."""

from __future__ import annotations

import torch.nn as nn

from dltool.series.models import MODELS
from dltool.series.models.base import Forecaster, check_sizes


class _Flat(nn.Module):
    def __init__(self, inputs: int, width: int, layers: int, dropout: float):
        super().__init__()
        blocks, d = [], inputs
        for _ in range(layers):
            blocks += [nn.Linear(d, width), nn.ReLU(), nn.Dropout(dropout)]
            d = width
        self.net = nn.Sequential(nn.Flatten(), *blocks)

    def forward(self, x):
        return self.net(x)


def _mlp(*, lookback, horizon, n_targets, n_covariates=0, n_quantiles=1, width, layers, dropout):
    check_sizes(width=width, layers=layers)
    features = n_targets + n_covariates
    return Forecaster(_Flat(lookback * features, width, layers, dropout), width, lookback=lookback,
                      horizon=horizon, n_targets=n_targets, n_covariates=n_covariates, n_quantiles=n_quantiles)


@MODELS.register()
def mlp(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
        width: int | None = None, layers: int | None = None, dropout: float = 0.1):
    return _mlp(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                n_quantiles=n_quantiles, width=width or 128, layers=layers or 2, dropout=dropout)


@MODELS.register()
def mlp_tiny(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
             width: int | None = None, layers: int | None = None, dropout: float = 0.0):
    return _mlp(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                n_quantiles=n_quantiles, width=width or 16, layers=layers or 1, dropout=dropout)
