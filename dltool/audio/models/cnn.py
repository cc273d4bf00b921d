"""The course's small CNN on log-mel spectrograms: the (mel x time) picture as a one-channel image, blocks
of conv-BN-act + max-pool, an average over time, dropout, linear head.

Pooling over time only keeps where in frequency a pattern sits (a global average pool would not: a
3x3 convolution cannot tell 300 Hz from 3 kHz, so the head must see the bands)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dltool.audio.models import MODELS
from dltool.core.errors import OptionError
from dltool.nn.activations import activation


class MelCNN(nn.Module):
    def __init__(self, *, num_classes: int, in_features: int, width: int = 16, depth: int = 3,
                 activation_name: str = "relu", dropout: float = 0.25):
        super().__init__()
        if not 0 <= dropout < 1:
            raise OptionError(f"--dropout {dropout} must be in [0, 1)")
        if width < 1:
            raise OptionError(f"--width {width} must be positive")
        layers, c_in = [], 1
        for i in range(depth):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       activation(activation_name), nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in * math.ceil(in_features / 2**depth), num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.unsqueeze(1)).mean(-1).flatten(1)  # (N, C, bands, frames) -> (N, C * bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


@MODELS.register("cnn", features="logmel")
def cnn(*, num_classes: int, in_features: int, width: int | None = None, activation: str = "relu",
        dropout: float = 0.25) -> MelCNN:
    return MelCNN(num_classes=num_classes, in_features=in_features, width=16 if width is None else width, depth=3,
                  activation_name=activation, dropout=dropout)


@MODELS.register("cnn_tiny", features="logmel")
def cnn_tiny(*, num_classes: int, in_features: int, activation: str = "relu", dropout: float = 0.25) -> MelCNN:
    """For tests: one narrow block (width 4, fixed: it takes no --width)."""
    return MelCNN(num_classes=num_classes, in_features=in_features, width=4, depth=1,
                  activation_name=activation, dropout=dropout)
