"""Our U-Net segmenter (dltool.nn.unet): encoder-decoder with skips, transposed-convolution upsampling."""

from __future__ import annotations

from dltool.core.errors import OptionError
from dltool.nn.unet import UNet
from dltool.vision.models import SEGMENTERS


def _unet(num_classes: int, in_channels: int, width: int, depth: int, batch_norm: bool, dropout: float) -> UNet:
    if width < 2:
        raise OptionError(f"--width {width} must be at least 2")
    if not 1 <= depth <= 6:
        raise OptionError(f"--depth {depth} must be between 1 and 6")
    if not 0 <= dropout < 1:
        raise OptionError(f"--dropout {dropout} must be in [0, 1)")
    return UNet(in_channels, num_classes, width=width, depth=depth, batch_norm=batch_norm, dropout=dropout)


@SEGMENTERS.register("unet", min_size=16, size=128)
def unet(*, num_classes: int, in_channels: int = 3, width: int = 16, depth: int = 3, batch_norm: bool = True,
         dropout: float = 0.1) -> UNet:
    return _unet(num_classes, in_channels, width, depth, batch_norm, dropout)


@SEGMENTERS.register("unet_tiny", min_size=8, size=32)
def unet_tiny(*, num_classes: int, in_channels: int = 3, batch_norm: bool = True, dropout: float = 0.0) -> UNet:
    """For tests: width 4, depth 2 (fixed, so it takes neither --width nor --depth)."""
    return _unet(num_classes, in_channels, 4, 2, batch_norm, dropout)
