"""torchvision's classic architectures (weights=None: nothing is downloaded), adapted to any number
of input channels and classes. The final linear layer becomes our `head`; everything before it is
`forward_features`, so --pretrained with a torchvision state_dict fills the backbone.

`*_tiny` variants (for quick runs and tests) are the same torchvision classes in a small
configuration. AlexNet, VGG and GoogLeNet have none: torchvision fixes their widths (the 4096-wide
classifiers of AlexNet and VGG alone hold most of their weights); tests/vision/test_models.py runs
the networks over 20 M weights on the meta device instead.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.vision.models import MODELS


def _replace_first_conv(module: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one taking `in_channels` (grayscale input without copying channels)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            if child.in_channels != in_channels:
                setattr(module, name, nn.Conv2d(in_channels, child.out_channels, child.kernel_size, child.stride,
                                                child.padding, child.dilation, child.groups, child.bias is not None))
            return
        if any(isinstance(m, nn.Conv2d) for m in child.modules()):
            _replace_first_conv(child, in_channels)
            return


def _pop_last_linear(module: nn.Module) -> nn.Linear:
    """Replace the last nn.Linear inside `module` by Identity and return it."""
    parent, name, last = None, None, None
    for mod in module.modules():
        for child_name, child in mod.named_children():
            if isinstance(child, nn.Linear):
                parent, name, last = mod, child_name, child
    setattr(parent, name, nn.Identity())
    return last


class TorchvisionClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, in_channels: int):
        super().__init__()
        _replace_first_conv(backbone, in_channels)
        last = _pop_last_linear(backbone)
        self.backbone = backbone
        self.num_features = last.in_features
        self.head = nn.Linear(last.in_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _register(name: str, min_size: int, build, size: int = 224):
    @MODELS.register(name, min_size=min_size, size=size, torchvision=True)
    def builder(*, num_classes: int, in_channels: int = 3):
        return TorchvisionClassifier(build(), num_classes, in_channels)

    builder.__name__ = name
    return builder


def _tv(fn_name: str, **kw):
    def build():
        import torchvision.models as tvm

        return getattr(tvm, fn_name)(weights=None, **kw)

    return build


def _resnet_tiny():
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1])  # resnet18 with one block per stage instead of two


alexnet = _register("alexnet", 63, _tv("alexnet"))
vgg11 = _register("vgg11", 32, _tv("vgg11"))
googlenet = _register("googlenet", 32, _tv("googlenet", aux_logits=False, init_weights=True))
resnet18 = _register("resnet18", 32, _tv("resnet18"))
resnet34 = _register("resnet34", 32, _tv("resnet34"))
resnet50 = _register("resnet50", 32, _tv("resnet50"))
mobilenet_v3_small = _register("mobilenet_v3_small", 32, _tv("mobilenet_v3_small"))
resnet_tiny = _register("resnet_tiny", 32, _resnet_tiny, size=32)
mobilenet_v3_tiny = _register("mobilenet_v3_tiny", 32, _tv("mobilenet_v3_small", width_mult=0.25), size=32)
