"""Every registered classifier builds, runs forward and backward, embeds, and gets gradients everywhere.

Networks of more than 20 M weights (alexnet, vgg11, resnet34, resnet50: seconds each just to
initialise, while their `*_tiny` variants or smaller siblings run the same code) are checked on the
meta device, which propagates shapes and gradients without allocating or computing, with one input
channel: the layout our adapter changes. Every other model runs for real on the CPU.
"""

import pytest
import torch

from dltool.nn.activations import ACTIVATIONS, activation
from dltool.vision.models import create_model, list_models, model_meta


def _weights(name: str) -> int:
    with torch.device("meta"):  # counts without allocating
        return sum(p.numel() for p in create_model(name, num_classes=4).parameters())


HEAVY = [n for n in list_models() if model_meta(n).get("torchvision") and _weights(n) > 20e6]
REAL = [n for n in list_models() if n not in HEAVY]


def _forward_backward_embed(name: str, channels: int) -> torch.Tensor:
    size = model_meta(name)["min_size"]
    size = max(size, 32) if channels == 3 else size
    model = create_model(name, num_classes=4, in_channels=channels)
    x = torch.randn(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 4)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:3]
    model.eval()
    assert model.forward_features(x).shape == (2, model.num_features)
    return out


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_backward_embed(name, channels):
    torch.manual_seed(0)
    out = _forward_backward_embed(name, channels)
    assert torch.isfinite(out).all()


def test_the_heavy_ones_are_the_big_torchvision_networks():
    assert {"alexnet", "vgg11", "resnet50"} <= set(HEAVY) and not any(n.endswith("_tiny") for n in HEAVY)


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_networks_shapes_on_meta(name):
    with torch.device("meta"):
        _forward_backward_embed(name, channels=1)


def test_every_torchvision_family_with_width_settings_has_a_tiny_variant():
    assert {"resnet_tiny", "mobilenet_v3_tiny", "cnn_tiny"} <= set(list_models())
    assert sum(p.numel() for p in create_model("resnet_tiny", num_classes=2).parameters()) < 6e6
    assert sum(p.numel() for p in create_model("mobilenet_v3_tiny", num_classes=2).parameters()) < 5e5


_ACTIVATION_TYPES = tuple({type(activation(a)) for a in ACTIVATIONS})


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("name,depth", [("cnn", 3), ("cnn_tiny", 1)])
def test_activation_option_builds_that_activation(name, depth, act):
    m = create_model(name, num_classes=3, in_channels=1, activation=act)
    used = [type(mod) for mod in m.modules() if isinstance(mod, _ACTIVATION_TYPES)]
    assert used == [type(activation(act))] * (2 * depth)  # conv-act twice per block
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.parametrize("name", ["cnn_tiny", "lenet", "resnet_tiny"])
def test_builders_refuse_options_they_do_not_use(name):
    with pytest.raises(TypeError, match="width"):
        create_model(name, num_classes=2, width=64)


def test_unknown_model_suggests():
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match="did you mean 'resnet18'"):
        create_model("resnet81", num_classes=2)
