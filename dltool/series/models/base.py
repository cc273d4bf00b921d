"""What every forecasting network shares: window normalisation, a linear path and the output head.

The lookback's targets are taken relative to their last value (the level; N-BEATS and NLinear do the
same), so a network trained on one stretch of a trending series still forecasts the next. The forecast
is level + a linear map of the lookback (NLinear's one layer, per target) + the family's encoder read
by a head; the head also sees the level itself (where in its range the series is) and the covariates
known over the horizon. Quantile outputs share the level and linear path and get their own head outputs,
sorted so they never cross.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Forecaster(nn.Module):
    """`encoder`: (N, L, F) -> (N, dim) (a family's body). `decoder`, optional: (encoder state, future
    covariates (N, H, C)) -> (N, H, targets x quantiles), replacing the direct head (seq2seq)."""

    def __init__(self, encoder: nn.Module, dim: int, *, lookback: int, horizon: int, n_targets: int,
                 n_covariates: int = 0, n_quantiles: int = 1, decoder: nn.Module | None = None):
        super().__init__()
        self.lookback, self.horizon, self.n_targets = lookback, horizon, n_targets
        self.n_covariates, self.n_quantiles = n_covariates, n_quantiles
        self.encoder = encoder
        self.linear = nn.Linear(lookback, horizon)
        self.decoder = decoder
        out = horizon * n_targets * n_quantiles
        self.head = nn.Linear(dim + n_targets + horizon * n_covariates, out) if decoder is None else None

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        n, t = past.shape[0], self.n_targets
        level = past[:, -1:, :t]                                     # (N, 1, T)
        z = torch.cat([past[..., :t] - level, past[..., t:]], dim=-1)
        base = self.linear(z[..., :t].transpose(1, 2)).transpose(1, 2) + level  # (N, H, T)
        if future is None:
            future = past.new_zeros(n, self.horizon, self.n_covariates)
        if self.decoder is not None:
            out = self.decoder(self.encoder(z), future)
        else:
            h = torch.cat([self.encoder(z), level[:, 0], future.flatten(1)], dim=1)
            out = self.head(h)
        out = out.view(n, self.horizon, t, self.n_quantiles)
        if self.n_quantiles > 1:
            out = out.sort(dim=-1).values
        return base.unsqueeze(-1) + out


def check_sizes(**sizes) -> None:
    from dltool.core.errors import OptionError

    for name, v in sizes.items():
        if v is not None and v < 1:
            raise OptionError(f"--{name.replace('_', '-')} {v} must be at least 1")
