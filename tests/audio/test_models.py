"""Every registered audio classifier builds, runs forward and backward on a tiny batch of features, gets
gradients everywhere, and embeds."""

from __future__ import annotations

import pytest
import torch

from dltool.audio.models import MODELS, create_model


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_features=20)
    x = torch.randn(2, 20, 33)  # (N, features, frames)
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert not [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert model.forward_features(x).ndim == 2
    assert hasattr(model, "head")
