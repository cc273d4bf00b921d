"""Fully connected stacks, and when to keep their CPU work on one thread."""

from __future__ import annotations

import torch.nn as nn

from dltool.nn.activations import activation


def parse_hidden(value) -> tuple[int, ...]:
    """'64,32' (or a sequence) -> (64, 32); '' or 'none' -> () for a linear network."""
    from dltool.core.errors import OptionError

    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none"):
            return ()
        parts = [p.strip() for p in text.split(",")]
    else:
        parts = list(value)
    try:
        widths = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise OptionError(f"--hidden '{value}' is not a comma-separated list of layer widths",
                          "e.g. --hidden 64,32 (or --hidden none for a linear autoencoder)") from None
    if any(w < 1 for w in widths):
        raise OptionError(f"--hidden '{value}': every layer width must be at least 1", "e.g. --hidden 64,32")
    return widths


def mlp(widths: list[int], activation_name: str) -> nn.Sequential:
    """Linear layers through `widths`, the activation between them, none after the last."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(activation(activation_name))
    return nn.Sequential(*layers)


def one_thread_if_small(device, net: nn.Module, batch_size: int):
    """A context in which `net`'s CPU work on `batch_size` rows runs on one torch thread when it is small
    (dltool.core.threads' policy); the thread count is restored afterwards."""
    from dltool.core.threads import single_thread_below

    work = batch_size * sum(p.numel() for p in net.parameters() if p.dim() > 1)
    return single_thread_below(device, work)
