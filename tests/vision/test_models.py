"""Every registered classifier, segmenter and detector builds, runs forward and backward on a tiny batch, and
gets gradients everywhere; classifiers also embed.

Torchvision networks of more than 20 M weights (alexnet, vgg11, resnet34, resnet50, fcn_resnet50,
deeplabv3_resnet50: seconds each just to initialise, while their `*_tiny` variants or smaller siblings run
the same code) are checked on the meta device, which propagates shapes and gradients without allocating or
computing, with one input channel: the layout our adapter changes. Every other model runs for real on the CPU.
"""

import contextlib

import pytest
import torch

from dltool.nn.activations import ACTIVATIONS, activation
from dltool.vision.models import (
    DETECTORS,
    MODELS,
    SEGMENTERS,
    create_model,
    list_models,
    model_meta,
)


def _heavy(registry, **kwargs) -> list[str]:
    """The registry's torchvision networks of more than 20 M weights (counted on the meta device: no allocation)."""
    with torch.device("meta"):
        return [n for n in registry.names() if registry.get(n).meta.get("torchvision")
                and sum(p.numel() for p in registry.create(n, **kwargs).parameters()) > 20e6]


HEAVY = _heavy(MODELS, num_classes=4)
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


# -- segmenters and detectors --------------------------------------------------------------------

HEAVY_SEGMENTERS = _heavy(SEGMENTERS, num_classes=3)


@pytest.mark.parametrize("name", SEGMENTERS.names())
def test_every_segmenter_forward_backward(name):
    """Logits at the input's size for every class; on the meta device for the heavy ones."""
    torch.manual_seed(0)
    with torch.device("meta") if name in HEAVY_SEGMENTERS else contextlib.nullcontext():
        model = SEGMENTERS.create(name, num_classes=3, in_channels=1)
        out = model(torch.randn(2, 1, 32, 32))
        assert out.shape == (2, 3, 32, 32)
        out.sum().backward()
    assert out.is_meta or torch.isfinite(out).all()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    assert hasattr(model, "head")


def test_the_heavy_segmenters_are_the_resnet50_ones():
    assert set(HEAVY_SEGMENTERS) == {"fcn_resnet50", "deeplabv3_resnet50"}


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_forward_backward_and_detect(name):
    """Training returns a finite loss with gradients everywhere; detect returns at most max_det boxes per image."""
    torch.manual_seed(0)
    kwargs = {"img_size": 64} if "img_size" in DETECTORS.takes(name) else {}
    model = DETECTORS.create(name, num_classes=3, **kwargs)
    x = torch.rand(2, 3, 64, 64)
    t = torch.tensor([[[0, 5, 5, 20, 20], [1, 30, 30, 60, 50]], [[2, 10, 10, 14, 14], [-1, 0, 0, 0, 0]]])
    model.train()
    if getattr(model, "masks", False):  # Mask R-CNN: instance masks beside the boxes, slot for slot
        masks = torch.zeros(2, 2, 64, 64, dtype=torch.uint8)
        for i, j in ((0, 0), (0, 1), (1, 0)):
            _, x1, y1, x2, y2 = t[i, j].tolist()
            masks[i, j, y1:y2, x1:x2] = 1
        loss = model(x, t.float(), masks)
    else:
        loss = model(x, t.float())
    assert torch.isfinite(loss)
    loss.backward()
    assert not [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.eval()
    out = model.detect(x, 0.0, 0.5, 10)
    assert len(out) == 2 and all(b.shape[1] == 4 and len(b) == len(s) == len(lab) <= 10 for b, s, lab in out)
    if getattr(model, "masks", False):
        assert all(m.shape == (len(b), 64, 64) for b, _, _, m in model.detect_masks(x, 0.0, 0.5, 10))
    assert hasattr(model, "head")
