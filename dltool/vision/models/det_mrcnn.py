"""torchvision's Mask R-CNN (weights=None: nothing is downloaded; --pretrained PATH loads weights the user
has): Faster R-CNN plus a mask head, wrapped as dltool.vision.models.det_frcnn wraps Faster R-CNN.

Training takes instance masks (N, M, S, S) beside the targets (N, M, 5), slot for slot; `detect_masks`
returns each detection's mask probabilities at the input's size (torchvision pastes the 28x28 head
output into its box).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.vision.models import DETECTORS
from dltool.vision.models.det_frcnn import FasterRCNN, _transform_kwargs, tiny_parts


class MaskRCNN(FasterRCNN):
    masks = True

    def forward(self, x, targets=None, masks=None):
        """Training (with targets (N, M, 5), cls -1 padding, and masks (N, M, H, W)): the sum of the RPN,
        box-head and mask-head losses."""
        if targets is None or not self.training:
            return self.net(list(x))
        keep = [t[:, 0] >= 0 for t in targets]
        wanted = [{"boxes": t[k, 1:], "labels": t[k, 0].long() + 1, "masks": m[k]}
                  for t, m, k in zip(targets, masks, keep)]
        return sum(self.net(list(x), wanted).values())

    @torch.no_grad()
    def detect_masks(self, x, conf: float, iou: float, max_det: int = 100):
        """Per image (boxes, scores, labels, masks (D, H, W) probabilities at x's size)."""
        heads = self.net.roi_heads
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = conf, iou, max_det
        return [(d["boxes"], d["scores"], d["labels"] - 1, d["masks"][:, 0]) for d in self.net(list(x))]


def _mobilenet_maskrcnn(num_classes: int, **kwargs):
    """torchvision's fasterrcnn_mobilenet_v3_large_fpn backbone and anchors under a Mask R-CNN (torchvision
    builds no such model itself): much lighter than ResNet-50 on a CPU."""
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection import MaskRCNN as TVMaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor

    backbone = _mobilenet_extractor(mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d), True, 6)
    anchors = ((32, 64, 128, 256, 512),) * 3
    return TVMaskRCNN(backbone, num_classes, rpn_anchor_generator=AnchorGenerator(anchors, ((0.5, 1.0, 2.0),) * 3),
                      **kwargs)


@DETECTORS.register("maskrcnn", min_size=64, small=128, size=512, masks=True)
def maskrcnn(*, num_classes: int, in_channels: int = 3, img_size: int = 512, backbone: str = "resnet50_fpn") -> MaskRCNN:
    from torchvision.models import detection

    builders = {"resnet50_fpn": lambda n, **kw: detection.maskrcnn_resnet50_fpn(
                    weights=None, weights_backbone=None, num_classes=n, **kw),
                "mobilenet_v3_large_fpn": _mobilenet_maskrcnn}
    if backbone not in builders:
        from dltool.core.errors import unknown_name

        raise unknown_name("--backbone for maskrcnn", backbone, builders)
    return MaskRCNN(builders[backbone](num_classes + 1, **_transform_kwargs(img_size, in_channels)))


@DETECTORS.register("maskrcnn_tiny", min_size=32, size=64, masks=True)
def maskrcnn_tiny(*, num_classes: int, in_channels: int = 3, img_size: int = 64) -> MaskRCNN:
    """For tests: torchvision's MaskRCNN on fasterrcnn_tiny's 3-conv stride-8 backbone, small heads."""
    from torchvision.models.detection import MaskRCNN as TVMaskRCNN
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    body, kwargs = tiny_parts(num_classes, in_channels, img_size)
    c = body.out_channels
    return MaskRCNN(TVMaskRCNN(body, mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2), mask_head=MaskRCNNHeads(c, (c, c), 1),
                               mask_predictor=MaskRCNNPredictor(c, c, num_classes + 1), **kwargs))
