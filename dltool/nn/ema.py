"""An exponential moving average of a network's weights: the copy that generators sample from (DDPM's EMA
weights, the generator average of progressive GANs and StyleGAN), smoother than the last step's."""

from __future__ import annotations

import torch.nn as nn

DECAY = 0.999


def ema_copy(net: nn.Module) -> nn.Module:
    """An AveragedModel of `net` (weights and buffers, so BatchNorm statistics too), frozen; call
    `.update_parameters(net)` after each optimizer step and sample from its `.module`."""
    from torch.optim.swa_utils import AveragedModel

    ema = AveragedModel(net, avg_fn=_with_warmup, use_buffers=True)
    ema.requires_grad_(False)
    return ema


def _with_warmup(averaged, current, num_averaged):
    """decay = min(0.999, (1 + n) / (10 + n)): the average forgets its random start within the first steps."""
    decay = min(DECAY, (1 + float(num_averaged)) / (10 + float(num_averaged)))
    return decay * averaged + (1 - decay) * current
