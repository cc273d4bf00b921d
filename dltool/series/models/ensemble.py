"""An ensemble of forecasters of one recipe (`--ensemble N`): the median of the members' outputs.

As in N-BEATS (Oreshkin et al. 2019), the median is taken per output, so each quantile is the median of
the members' quantiles (order statistics keep the quantiles sorted). Each member reads the last
`member.lookback` points of the window, so members of different lookbacks combine (N-BEATS's own ensemble
looks back 2 to 7 horizons).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.lookback, self.horizon = max(m.lookback for m in members), members[0].horizon

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        outs = torch.stack([m(past[:, past.shape[1] - m.lookback:], future) for m in self.members])
        return torch.quantile(outs, 0.5, dim=0)  # numpy's median: the mean of the middle two for an even N


def build(registry, arch: str, arch_kwargs: dict) -> nn.Module:
    """The network of a model file: one member's arch_kwargs, or {"members": [each member's arch_kwargs]}."""
    if "members" in arch_kwargs:
        return Ensemble([registry.create(arch, **kw) for kw in arch_kwargs["members"]])
    return registry.create(arch, **arch_kwargs)
