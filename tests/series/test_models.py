"""Every forecasting network: forward and backward on a tiny batch, with covariates and quantiles."""

from __future__ import annotations

import pytest
import torch

from dltool.series.models import MODELS, create_model

CASES = [(name, decoder) for name in MODELS.names() for decoder in
         (("direct", "seq2seq") if "decoder" in MODELS.takes(name) else (None,))]


@pytest.mark.parametrize("name,decoder", CASES, ids=[f"{n}-{d}" if d else n for n, d in CASES])
def test_forward_backward(name, decoder):
    torch.manual_seed(0)
    kw = {"decoder": decoder} if decoder else {}
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
