"""nbeats: N-BEATS (Oreshkin et al. 2019), stacks of fully connected blocks with double residuals.

Each block reads what the blocks before it left unexplained of the lookback, subtracts its own
backcast from it and adds its forecast to the sum. `--stacks generic` (the default) learns each
block's basis; `--stacks interpretable` is the paper's trend stack (a cubic polynomial in time) then
seasonality stack (the harmonics of the season, or of the horizon where there is none), the blocks of
each stack sharing their weights. As in the other families, the window is taken relative to its last
value; several targets are read and forecast together, and known covariates (the lookback's and the
horizon's) join every block's input, as in N-BEATSx, without being backcast.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.core.errors import unknown_name
from dltool.series.models import MODELS
from dltool.series.models.base import check_sizes

STACKS = ("generic", "interpretable")
FC_LAYERS = 4  # the paper's fully connected layers per block


def _trend(t: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """(degree + 1, len(t)): 1, t, t^2, t^3."""
    return torch.stack([t ** p for p in range(degree + 1)])


def _harmonics(t: torch.Tensor, period: float) -> torch.Tensor:
    """(2 * floor(period / 2) + 1, len(t)): a constant and the cosines and sines of `period`'s harmonics,
    enough for any pattern that repeats every `period` steps."""
    rows = [torch.ones_like(t)]
    for k in range(1, int(period) // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * t / period), torch.sin(2 * math.pi * k * t / period)]
    return torch.stack(rows)


class _Block(nn.Module):
    """Fully connected layers -> the coefficients of a backcast and a forecast basis. A basis of None
    is the identity: the coefficients are the values (the generic block). The last block computes no
    backcast (`backcast=False`): nothing would read it."""

    def __init__(self, inputs: int, width: int, layers: int, dropout: float, *, n_targets: int, n_out: int,
                 lookback: int, horizon: int, basis_b: torch.Tensor | None = None,
                 basis_f: torch.Tensor | None = None, backcast: bool = True):
        super().__init__()
        fc, d = [], inputs
        for _ in range(layers):
            fc += [nn.Linear(d, width), nn.ReLU(), nn.Dropout(dropout)]
            d = width
        self.fc = nn.Sequential(*fc)
        self.n_targets, self.n_out = n_targets, n_out
        pb = lookback if basis_b is None else basis_b.shape[0]
        pf = horizon if basis_f is None else basis_f.shape[0]
        self.theta_b = nn.Linear(width, n_targets * pb) if backcast else None
        self.theta_f = nn.Linear(width, n_targets * n_out * pf)
        self.register_buffer("basis_b", basis_b, persistent=False)
        self.register_buffer("basis_f", basis_f, persistent=False)

    def forward(self, x: torch.Tensor, exog: torch.Tensor):
        """x: (N, T, L) the residual lookback -> (backcast (N, T, L), forecast (N, T * Q, H))."""
        n = len(x)
        h = self.fc(torch.cat([x.flatten(1), exog], dim=1))
        fore = self.theta_f(h).view(n, self.n_targets * self.n_out, -1)
        back = self.theta_b(h).view(n, self.n_targets, -1) if self.theta_b is not None else None
        if self.basis_f is not None:
            fore = fore @ self.basis_f
            back = back @ self.basis_b if back is not None else None
        return back, fore


class NBeats(nn.Module):
    """(N, L, targets + covariates), (N, H, covariates) -> (N, H, targets, quantiles), as every forecaster."""

    def __init__(self, *, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
                 season: int = 1, width: int, layers: int, dropout: float, stacks: str):
        super().__init__()
        if stacks not in STACKS:
            raise unknown_name("--stacks", stacks, STACKS)
        self.lookback, self.horizon, self.n_targets = lookback, horizon, n_targets
        self.n_covariates, self.n_quantiles = n_covariates, n_quantiles
        inputs = n_targets * lookback + n_covariates * (lookback + horizon)
        kw = dict(n_targets=n_targets, n_out=n_quantiles, lookback=lookback, horizon=horizon)
        if stacks == "generic":
            self.blocks = nn.ModuleList(_Block(inputs, width, FC_LAYERS, dropout, backcast=i < layers - 1, **kw)
                                        for i in range(layers))
            self.repeats = 1
        else:
            # one time axis in steps (the lookback before 0, the horizon from 0), so each basis continues
            past, ahead = torch.arange(-lookback, 0.0), torch.arange(0.0, horizon)
            period = season if season > 1 else horizon
            self.blocks = nn.ModuleList([
                _Block(inputs, width, FC_LAYERS, dropout, basis_b=_trend(past / horizon),
                       basis_f=_trend(ahead / horizon), **kw),
                _Block(inputs, width, FC_LAYERS, dropout, basis_b=_harmonics(past, period),
                       basis_f=_harmonics(ahead, period), backcast=layers > 1, **kw)])
            self.repeats = layers  # the paper's stacks: `layers` blocks sharing their weights

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        n, t = past.shape[0], self.n_targets
        level = past[:, -1:, :t]                                      # (N, 1, T)
        x = (past[..., :t] - level).transpose(1, 2)                   # (N, T, L)
        if future is None:
            future = past.new_zeros(n, self.horizon, self.n_covariates)
        exog = torch.cat([past[..., t:].flatten(1), future.flatten(1)], dim=1)
        forecast = 0
        for block in self.blocks:
            for _ in range(self.repeats):
                back, fore = block(x, exog)
                x = x - back if back is not None else x
                forecast = forecast + fore
        out = forecast.view(n, t, self.n_quantiles, self.horizon).permute(0, 3, 1, 2)  # (N, H, T, Q)
        if self.n_quantiles > 1:
            out = out.sort(dim=-1).values
        return level.unsqueeze(-1) + out


def _nbeats(*, width, layers, stacks, **kw):
    check_sizes(width=width, layers=layers)
    return NBeats(width=width, layers=layers, stacks=stacks, **kw)


@MODELS.register()
def nbeats(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
           season: int = 1, width: int | None = None, layers: int | None = None, dropout: float = 0.0,
           stacks: str = "generic"):
    """N-BEATS: generic (6 blocks) or interpretable (trend and seasonality stacks of 3 shared blocks)."""
    return _nbeats(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                   n_quantiles=n_quantiles, season=season, width=width or 256,
                   layers=layers or (6 if stacks == "generic" else 3), dropout=dropout, stacks=stacks)


@MODELS.register()
def nbeats_tiny(*, lookback: int, horizon: int, n_targets: int, n_covariates: int = 0, n_quantiles: int = 1,
                season: int = 1, width: int | None = None, layers: int | None = None, dropout: float = 0.0,
                stacks: str = "generic"):
    return _nbeats(lookback=lookback, horizon=horizon, n_targets=n_targets, n_covariates=n_covariates,
                   n_quantiles=n_quantiles, season=season, width=width or 16, layers=layers or 2, dropout=dropout,
                   stacks=stacks)
