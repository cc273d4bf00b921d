"""torchvision's Faster R-CNN (weights=None: nothing is downloaded; --pretrained PATH loads weights the
user has), wrapped to the detector interface of dltool.vision.models.DETECTORS.

Our images arrive letterboxed to the training size and normalised, so torchvision's own transform is
told to neither resize (min_size = max_size = that size) nor normalise (mean 0, std 1). Class 0 of
torchvision's head is its background; our class ids are shifted by one on the way in and out.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.vision.models import DETECTORS


class FasterRCNN(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.head = net.roi_heads  # --freeze-backbone trains the box head alone

    def forward(self, x, targets=None):
        """Training (with targets (N, M, 5), cls -1 padding): the sum of the RPN and box-head losses."""
        if targets is None or not self.training:
            return self.net(list(x))
        wanted = [{"boxes": t[t[:, 0] >= 0, 1:], "labels": t[t[:, 0] >= 0, 0].long() + 1} for t in targets]
        return sum(self.net(list(x), wanted).values())

    def torchvision_keys(self, state_dict: dict) -> dict:
        """load_pretrained's mapping for a plain state_dict: torchvision's own Faster R-CNN names (e.g. its
        COCO weights) are ours under `net.`, and the box head's again under `head.` (the same modules)."""
        if not any(k.startswith(("backbone.", "rpn.", "roi_heads.")) for k in state_dict):
            return state_dict
        out = {"net." + k: v for k, v in state_dict.items()}
        out.update({"head." + k.removeprefix("roi_heads."): v for k, v in state_dict.items()
                    if k.startswith("roi_heads.")})
        return out

    @torch.no_grad()
    def detect(self, x, conf: float, iou: float, max_det: int = 100):
        heads = self.net.roi_heads
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = conf, iou, max_det
        return [(d["boxes"], d["scores"], d["labels"] - 1) for d in self.net(list(x))]


def _transform_kwargs(img_size: int, in_channels: int) -> dict:
    return {"min_size": img_size, "max_size": img_size, "image_mean": [0.0] * in_channels,
            "image_std": [1.0] * in_channels}


@DETECTORS.register("fasterrcnn", min_size=64, small=128, size=512)
def fasterrcnn(*, num_classes: int, in_channels: int = 3, img_size: int = 512,
               backbone: str = "mobilenet_v3_large_fpn") -> FasterRCNN:
    from torchvision.models import detection

    builders = {"mobilenet_v3_large_fpn": detection.fasterrcnn_mobilenet_v3_large_fpn,
                "resnet50_fpn": detection.fasterrcnn_resnet50_fpn}
    if backbone not in builders:
        from dltool.core.errors import unknown_name

        raise unknown_name("--backbone for fasterrcnn", backbone, builders)
    net = builders[backbone](weights=None, weights_backbone=None, num_classes=num_classes + 1,
                             **_transform_kwargs(img_size, in_channels))
    return FasterRCNN(net)


def tiny_parts(num_classes: int, in_channels: int, img_size: int) -> tuple[nn.Module, dict]:
    """The tiny detectors' backbone (3 convs, stride 8, 16 channels) and the keyword arguments of
    torchvision's FasterRCNN / MaskRCNN that give it small anchors and a small box head."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    c = 16
    body = nn.Sequential(*[nn.Sequential(nn.Conv2d(cin, c, 3, 2, 1), nn.ReLU()) for cin in (in_channels, c, c)])
    body.out_channels = c
    return body, dict(rpn_anchor_generator=AnchorGenerator(((8, 16, 32),), ((0.5, 1.0, 2.0),)),
                      box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), box_head=TwoMLPHead(c * 49, 64),
                      box_predictor=FastRCNNPredictor(64, num_classes + 1), rpn_batch_size_per_image=64,
                      box_batch_size_per_image=64, **_transform_kwargs(img_size, in_channels))


@DETECTORS.register("fasterrcnn_tiny", min_size=32, size=64)
def fasterrcnn_tiny(*, num_classes: int, in_channels: int = 3, img_size: int = 64) -> FasterRCNN:
    """For tests: torchvision's FasterRCNN on a 3-conv stride-8 backbone with small anchors and heads."""
    from torchvision.models.detection import FasterRCNN as TVFasterRCNN

    body, kwargs = tiny_parts(num_classes, in_channels, img_size)
    return FasterRCNN(TVFasterRCNN(body, **kwargs))
