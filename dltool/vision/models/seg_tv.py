"""torchvision's segmenters (weights=None: nothing is downloaded): FCN, DeepLabV3 and LR-ASPP.

torchvision's classifier part becomes our `head` (what --freeze-backbone trains alone); its
backbone stays `backbone`, so --pretrained with a torchvision state_dict (keys `backbone.*`,
`classifier.*`) fills it. The auxiliary classifier is left out (aux_loss=False). The output is
upsampled to the input's size, as torchvision does.

`lraspp_mobilenet_v3_tiny` (for tests) is torchvision's LRASPP on a MobileNetV3-Large of a quarter
width, assembled as torchvision's own builder assembles the full one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.vision.models import SEGMENTERS
from dltool.vision.models.tv import _replace_first_conv


class TorchvisionSegmenter(nn.Module):
    def __init__(self, net: nn.Module, in_channels: int):
        super().__init__()
        _replace_first_conv(net.backbone, in_channels)
        self.backbone = net.backbone
        self.head = net.classifier
        # LRASPP's head reads the backbone's "low" and "high" features; FCN's and DeepLab's its "out"
        self.head_takes_all = not hasattr(net, "aux_classifier")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        out = self.head(features if self.head_takes_all else features["out"])
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _register(name: str, build, size: int = 224):
    @SEGMENTERS.register(name, min_size=32, size=size, torchvision=True)
    def builder(*, num_classes: int, in_channels: int = 3):
        return TorchvisionSegmenter(build(num_classes), in_channels)

    builder.__name__ = name
    return builder


def _tv(fn_name: str):
    def build(num_classes: int):
        import torchvision.models.segmentation as seg

        kw = {"aux_loss": False} if fn_name != "lraspp_mobilenet_v3_large" else {}
        return getattr(seg, fn_name)(weights=None, weights_backbone=None, num_classes=num_classes, **kw)

    return build


def _lraspp_tiny(num_classes: int):
    from torchvision.models import mobilenet_v3_large
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation import LRASPP

    features = mobilenet_v3_large(weights=None, width_mult=0.25, dilated=True).features
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
    low, high = stages[-4], stages[-1]  # output strides 8 and 16, as in torchvision's builder
    backbone = IntermediateLayerGetter(features, return_layers={str(low): "low", str(high): "high"})
    return LRASPP(backbone, features[low].out_channels, features[high].out_channels, num_classes, inter_channels=32)


fcn_resnet50 = _register("fcn_resnet50", _tv("fcn_resnet50"))
deeplabv3_resnet50 = _register("deeplabv3_resnet50", _tv("deeplabv3_resnet50"))
deeplabv3_mobilenet_v3_large = _register("deeplabv3_mobilenet_v3_large", _tv("deeplabv3_mobilenet_v3_large"))
lraspp_mobilenet_v3_large = _register("lraspp_mobilenet_v3_large", _tv("lraspp_mobilenet_v3_large"))
lraspp_mobilenet_v3_tiny = _register("lraspp_mobilenet_v3_tiny", _lraspp_tiny, size=32)
