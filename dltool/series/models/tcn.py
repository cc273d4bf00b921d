"""tcn: a temporal convolutional network (Bai et al. 2018): residual blocks of dilated causal 1-D
convolutions, the dilation doubling per block, read at the last time step."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from dltool.series.models import MODELS
from dltool.series.models.base import Forecaster, check_sizes


class _Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation  # on the left only: the output at t sees no later input
        self.conv1 = nn.Conv1d(channels_in, channels, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(channels_in, channels, 1) if channels_in != channels else nn.Identity()

    def forward(self, x):
        h = self.drop(F.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        h = self.drop(F.relu(self.conv2(F.pad(h, (self.pad, 0)))))
        return F.relu(h + self.skip(x))


class _TCN(nn.Module):
    def __init__(self, features: int, width: int, layers: int, kernel_size: int, dropout: float):
        super().__init__()
        self.blocks = nn.Sequential(*[_Block(features if i == 0 else width, width, kernel_size, 2 ** i, dropout)
                                      for i in range(layers)])

    def forward(self, x):
        return self.blocks(x.transpose(1, 2))[:, :, -1]


def _tcn(*, lookback, horizon, n_targets, n_covariates, n_quantiles, width, layers, kernel_size, dropout):
    check_sizes(width=width, layers=layers, kernel_size=kernel_size)
    body = _TCN(n_targets + n_covariates, width, layers, kernel_size, dropout)
    return Forecaster(body, width, lookback=lookback, horizon=horizon, n_targets=n_targets,
                      n_covariates=n_covariates, n_quantiles=n_quantiles)


@MODELS.register()
def tcn(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
        width: int | None = None, layers: int | None = None, kernel_size: int = 3, dropout: float = 0.1):
    return _tcn(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                n_quantiles=n_quantiles, width=width or 32, layers=layers or 4, kernel_size=kernel_size,
                dropout=dropout)


@MODELS.register()
def tcn_tiny(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
             width: int | None = None, layers: int | None = None, kernel_size: int = 2, dropout: float = 0.0):
    return _tcn(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                n_quantiles=n_quantiles, width=width or 8, layers=layers or 2, kernel_size=kernel_size,
                dropout=dropout)
