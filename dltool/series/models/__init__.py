"""Forecasting networks by name. Every model maps a lookback window (N, L, targets + covariates) and the
known covariates of the horizon (N, H, covariates) to (N, H, targets, quantiles): see base.Forecaster.

A builder's signature says which of --width/--layers/--dropout/--kernel-size/--heads/--decoder/--stacks it takes
(dltool.core.registry.arch_options); `*_tiny` variants are for tests.
"""

from __future__ import annotations

from dltool.core.registry import Registry

MODELS = Registry("model")


def create_model(name: str, **kwargs):
    return MODELS.create(name, **kwargs)


# importing the families registers them
from dltool.series.models import mlp, nbeats, rnn, tcn, transformer  # noqa: E402,F401
