"""Every forecasting network: forward and backward on a tiny batch, with covariates and quantiles."""

from __future__ import annotations

import pytest
import torch

from dltool.series.models import MODELS, create_model

#: (model, the option that picks a variant, its value): every decoder and every N-BEATS stack kind
CASES = [(name, option, value) for name in MODELS.names()
         for option, values in (("decoder", ("direct", "seq2seq")), ("stacks", ("generic", "interpretable")))
         if option in MODELS.takes(name) for value in values] + \
        [(name, None, None) for name in MODELS.names() if not {"decoder", "stacks"} & MODELS.takes(name)]


@pytest.mark.parametrize("name,option,value", CASES, ids=[f"{n}-{v}" if v else n for n, _, v in CASES])
def test_forward_backward(name, option, value):
    torch.manual_seed(0)
    kw = {option: value} if option else {}
    if "season" in MODELS.takes(name):
        kw["season"] = 4
    net = create_model(name, lookback=10, horizon=4, n_targets=2, n_covariates=1, n_quantiles=3,
                       **({"width": 8} if not name.endswith("_tiny") else {}), **kw)
    past, future = torch.randn(5, 10, 3), torch.randn(5, 4, 1)
    out = net(past, future)
    assert out.shape == (5, 4, 2, 3) and torch.isfinite(out).all()
    assert (out.diff(dim=-1) >= 0).all()  # quantiles never cross
    out.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


def test_the_forecast_follows_the_level():
    """Windows are taken relative to their last value: a shifted window gives a shifted forecast."""
    torch.manual_seed(0)
    net = create_model("mlp_tiny", lookback=6, horizon=3, n_targets=1).eval()
    past = torch.randn(2, 6, 1)
    # the head also reads the level, so the shift is not exact; the linear path and the level carry most of it
    with torch.no_grad():
        base, shifted = net(past), net(past + 100.0)
    assert torch.allclose(shifted - base, torch.full_like(base, 100.0), rtol=0.5)


def test_nbeats_interpretable_bases_are_a_trend_and_the_seasons_harmonics():
    """The trend stack forecasts a cubic in time, the seasonality stack a pattern repeating every season."""
    from dltool.series.models.nbeats import _harmonics, _trend

    t = torch.arange(0.0, 24)
    seasonal = torch.randn(1, 7) @ _harmonics(t, 6)  # any coefficients
    assert torch.allclose(seasonal[:, :18], seasonal[:, 6:], atol=1e-5)
    assert _harmonics(t, 6).shape == (7, 24) and torch.linalg.matrix_rank(_harmonics(t, 6)) == 6  # 6 free values
    assert torch.equal(_trend(t / 4)[2], (t / 4) ** 2)
