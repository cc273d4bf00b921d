"""torchvision's ResNet on log-mel spectrograms, its first convolution taking one channel. No weights
are downloaded: train from scratch, or start from a file with --pretrained."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.audio.models import MODELS


class MelResNet(nn.Module):
    def __init__(self, builder, *, num_classes: int, in_features: int):
        super().__init__()
        self.backbone = builder(weights=None)
        self.backbone.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        width = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x.unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@MODELS.register("resnet18", features="logmel")
def resnet18(*, num_classes: int, in_features: int) -> MelResNet:
    from torchvision.models import resnet18 as tv_resnet18

    return MelResNet(tv_resnet18, num_classes=num_classes, in_features=in_features)


@MODELS.register("resnet_tiny", features="logmel")
def resnet_tiny(*, num_classes: int, in_features: int) -> MelResNet:
    """For tests: torchvision's ResNet with one basic block per stage."""
    from torchvision.models.resnet import BasicBlock, ResNet

    return MelResNet(lambda weights: ResNet(BasicBlock, [1, 1, 1, 1]), num_classes=num_classes,
                     in_features=in_features)
