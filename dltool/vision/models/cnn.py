"""A configurable small CNN: blocks of conv-BN-act x2 + max-pool, global average or max pool, dropout, linear head."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.core.errors import OptionError, unknown_name
from dltool.nn.activations import activation
from dltool.vision.models import MODELS

# max: whether a feature fires anywhere, which a small object needs (an average over the map dilutes it);
# avg stays the builder's default so model files saved before `pool` existed load as they were trained
POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}


def check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise unknown_name("pooling", pool, POOLS)


class SmallCNN(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int = 3, width: int = 32, depth: int = 3,
                 activation_name: str = "relu", dropout: float = 0.25, batch_norm: bool = True, pool: str = "avg"):
        super().__init__()
        check_pool(pool)
        if not 0 <= dropout < 1:
            raise OptionError(f"--dropout {dropout} must be in [0, 1)")
        if width < 1 or depth < 1:
            raise OptionError("--width and depth must be positive")
        layers, c_in = [], in_channels
        for i in range(depth):
            c_out = width * 2**i
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(activation(activation_name))
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, POOLS[pool](1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)
        self.num_features = c_in

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


@MODELS.register("cnn", min_size=8, size=64)
def cnn(*, num_classes: int, in_channels: int = 3, width: int = 32, depth: int = 3, activation: str = "relu",
        dropout: float = 0.25, batch_norm: bool = True, pool: str = "avg") -> SmallCNN:
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width, depth=depth,
                    activation_name=activation, dropout=dropout, batch_norm=batch_norm, pool=pool)


@MODELS.register("cnn_tiny", min_size=8, size=16)
def cnn_tiny(*, num_classes: int, in_channels: int = 3, activation: str = "relu", dropout: float = 0.0,
             batch_norm: bool = True) -> SmallCNN:
    """For tests: one block of width 8. Width and depth are fixed, so it takes no `width` (nor `depth`)."""
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=8, depth=1,
                    activation_name=activation, dropout=dropout, batch_norm=batch_norm)
