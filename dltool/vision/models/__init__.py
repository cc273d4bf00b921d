"""Image classifiers (MODELS) and segmenters (SEGMENTERS) by name. Every model exposes forward_features(x) -> (N, D) and a `head`,
so the same network classifies and embeds (`predict --embed`).

Each entry's meta says its input size: `min_size` (smallest that works) and `size` (the usual one);
`dltool vision classify train` uses the data's own size clamped to that range unless --img-size.
"""

from __future__ import annotations

from dltool.core.registry import Registry

MODELS = Registry("model")
#: segmentation networks: forward(x) -> logits (N, classes, H, W) at the input's size; a `head` submodule
SEGMENTERS = Registry("segmentation model")
#: detectors: forward(x, targets) -> training loss; detect(x, conf, iou, max_det) -> per image (boxes, scores,
#: labels) in pixels of x; a `head` submodule (everything else is the backbone, for --freeze-backbone)
DETECTORS = Registry("detection model")


def create_model(name: str, **kwargs):
    return MODELS.create(name, **kwargs)


def model_meta(name: str) -> dict:
    return MODELS.get(name).meta


def list_models() -> list[str]:
    return MODELS.names()


# importing the families registers them
from dltool.vision.models import cnn, det_frcnn, det_mrcnn, det_yolo, lenet, seg_tv, seg_unet, tv  # noqa: E402,F401
