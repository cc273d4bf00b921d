"""An exponential moving average of a network's weights: the copy that generators sample from (DDPM's EMA
weights, the generator average of progressive GANs and StyleGAN), smoother than the last step's, and what
the engine validates and keeps under --ema (timm's model EMA, Ultralytics' default)."""

from __future__ import annotations

import functools

import torch.nn as nn

DECAY = 0.999


def ema_copy(net: nn.Module, decay: float = DECAY) -> nn.Module:
    """An AveragedModel of `net` (weights and buffers, so BatchNorm statistics too), frozen; call
    `.update_parameters(net)` after each optimizer step and sample from its `.module`."""
    from torch.optim.swa_utils import AveragedModel

    ema = AveragedModel(net, avg_fn=functools.partial(_with_warmup, decay=decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema


def _with_warmup(averaged, current, num_averaged, decay: float = DECAY):
    """min(decay, (1 + n) / (10 + n)) after n updates (TensorFlow's ExponentialMovingAverage with num_updates):
    the average forgets its random start within the first steps, and until the decay is reached (n = 8,991
    for 0.999) it spans about the last ninth of them."""
    decay = min(decay, (1 + float(num_averaged)) / (10 + float(num_averaged)))
    return decay * averaged + (1 - decay) * current
