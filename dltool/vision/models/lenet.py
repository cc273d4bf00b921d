"""LeNet-5 (LeCun et al. 1998) at 32x32: conv5-pool-conv5-pool-fc120-fc84-head."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.vision.models import MODELS


class LeNet5(nn.Module):
    """`mlp_head`: the fully-connected layers fc120-fc84 belong to the head, so forward_features is the
    convolutional output (400 values). Metric learning builds it so: trained on a few classes, fc120-fc84
    fold onto them and transfer badly to new ones, the conv output does not (benchmarks/few_shot.py)."""

    def __init__(self, *, num_classes: int, in_channels: int = 1, mlp_head: bool = False):
        super().__init__()
        conv = [nn.Conv2d(in_channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
                nn.Flatten()]
        mlp = [nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh()]
        if mlp_head:
            self.features = nn.Sequential(*conv)
            self.head = _MLPHead(nn.Sequential(*mlp), nn.Linear(84, num_classes))
            self.num_features = 16 * 5 * 5
        else:
            self.features = nn.Sequential(*conv, *mlp)
            self.head = nn.Linear(84, num_classes)
            self.num_features = 84

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class _MLPHead(nn.Module):
    """fc120-fc84 then the output layer; a Module of its own (not a Sequential), so that a loss attached
    to the head (metric.py's ArcFace weights) is not run as one more layer."""

    def __init__(self, mlp: nn.Module, out: nn.Module):
        super().__init__()
        self.mlp, self.out = mlp, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(x))


@MODELS.register("lenet", min_size=32, size=32, max_size=32)
def lenet(*, num_classes: int, in_channels: int = 1, mlp_head: bool = False) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels, mlp_head=mlp_head)
