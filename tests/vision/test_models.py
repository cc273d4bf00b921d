"""Every registered classifier builds, runs forward and backward, embeds, and gets gradients everywhere."""

import pytest
import torch

from dltool.vision.models import create_model, list_models, model_meta


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_backward_embed(name, channels):
    torch.manual_seed(0)
    size = model_meta(name)["min_size"]
    size = max(size, 32) if channels == 3 else size
    model = create_model(name, num_classes=4, in_channels=channels)
    x = torch.randn(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:3]
    model.eval()
    assert model.forward_features(x).shape == (2, model.num_features)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "sigmoid", "tanh",
                                 "softplus", "softsign"])
def test_cnn_activations(act):
    m = create_model("cnn", num_classes=3, in_channels=1, width=4, activation=act, batch_norm=False, dropout=0.0)
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_unknown_model_suggests():
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match="did you mean 'resnet18'"):
        create_model("resnet81", num_classes=2)
