"""Dropout whose mask costs little on a CPU.

torch draws a CPU dropout mask one Bernoulli sample per element (`bernoulli_`, about 8 ns each on this
machine's cores): in the G2P lstm the six dropout masks of a training step took 13% of it. Here the mask
comes from 64-bit random words, eight one-byte uniforms in each, so the generator runs an eighth as often
(benchmarks/dropout.py). The price is resolution: the drop probability is rounded to a multiple of 1/256
(0.2 drops 51/256 = 0.199 of the elements), and the kept ones are scaled by the inverse of the rounded keep
share, so the expectation is kept (to the rounding of that scale in a bfloat16 tensor: 205/256's inverse,
1.2488, is 1.25 there). On other devices, or outside training, it is `F.dropout`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def dropped_bytes(p: float) -> int:
    """p as the number of the 256 byte values that drop an element (at most 255: something is kept)."""
    return min(255, round(p * 256))


def byte_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """x with each element zeroed at probability dropped_bytes(p) / 256 and the rest scaled up to keep the
    expectation; x on a CPU."""
    drop = dropped_bytes(p)
    if drop == 0:
        return x
    n = x.numel()
    # random_ over the whole int64 range: without a lower bound the top bit of every word would be 0
    words = torch.empty((n + 7) // 8, dtype=torch.int64).random_(-(2 ** 63), None)
    keep = words.view(torch.uint8)[:n].view(x.shape) >= drop
    # the mask in x's dtype before the product: a float times a bool tensor takes a slow path (6x)
    return x * keep.to(x.dtype).mul_(256 / (256 - drop))


class Dropout(nn.Module):
    """nn.Dropout(p), the mask drawn eight elements a random word on a CPU (see the module's doc)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return byte_dropout(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
