"""Models over the sequence of MFCC frames: a 1-D convolution over time (the coefficients as channels),
and a bidirectional GRU."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.audio.models import MODELS
from dltool.core.errors import OptionError
from dltool.nn.activations import activation


def _check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise OptionError(f"--dropout {dropout} must be in [0, 1)")


class Conv1dNet(nn.Module):
    def __init__(self, *, num_classes: int, in_features: int, width: int = 64, depth: int = 3,
                 activation_name: str = "relu", dropout: float = 0.25):
        super().__init__()
        _check_dropout(dropout)
        layers, c_in = [], in_features
        for _ in range(depth):
            layers += [nn.Conv1d(c_in, width, 5, padding=2, bias=False), nn.BatchNorm1d(width),
                       activation(activation_name), nn.MaxPool1d(2, ceil_mode=True)]
            c_in = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


class GRUNet(nn.Module):
    """A bidirectional GRU over frames; the mean of its outputs over time is the embedding."""

    def __init__(self, *, num_classes: int, in_features: int, width: int = 64, dropout: float = 0.25):
        super().__init__()
        _check_dropout(dropout)
        self.rnn = nn.GRU(in_features, width, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.transpose(1, 2))
        return out.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))


@MODELS.register("conv1d", features="mfcc")
def conv1d(*, num_classes: int, in_features: int, width: int | None = None, activation: str = "relu",
           dropout: float = 0.25) -> Conv1dNet:
    return Conv1dNet(num_classes=num_classes, in_features=in_features, width=64 if width is None else width, depth=3,
                     activation_name=activation, dropout=dropout)


@MODELS.register("conv1d_tiny", features="mfcc")
def conv1d_tiny(*, num_classes: int, in_features: int, activation: str = "relu", dropout: float = 0.25) -> Conv1dNet:
    """For tests: one block of width 8 (fixed: it takes no --width)."""
    return Conv1dNet(num_classes=num_classes, in_features=in_features, width=8, depth=1,
                     activation_name=activation, dropout=dropout)


@MODELS.register("gru", features="mfcc")
def gru(*, num_classes: int, in_features: int) -> GRUNet:
    return GRUNet(num_classes=num_classes, in_features=in_features, width=64)


@MODELS.register("gru_tiny", features="mfcc")
def gru_tiny(*, num_classes: int, in_features: int) -> GRUNet:
    return GRUNet(num_classes=num_classes, in_features=in_features, width=8, dropout=0.0)
