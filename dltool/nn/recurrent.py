"""A multi-layer LSTM/GRU/RNN whose dropout between layers is dltool.nn.Dropout.

torch's `nn.LSTM(..., num_layers=L, dropout=p)` draws its inter-layer masks one Bernoulli sample an element
(dltool.nn.dropout explains the cost on a CPU). `StackedRNN` is the same network as L one-layer modules
with dltool's dropout between them: same arguments (batch_first), inputs (a padded batch or a
PackedSequence, an optional initial state of (L * directions, N, H)), outputs, and state_dict keys
(`weight_ih_l1_reverse`, ...), so a model file written with the torch module loads into it and back. The
layers run one after another in torch too, so nothing is lost by calling them one at a time.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence

from dltool.nn.dropout import Dropout

_TORCH_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_LAYER_KEY = re.compile(r"layers\.(\d+)\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?$")


class StackedRNN(nn.Module):
    """`cell(input_size, hidden_size, num_layers, dropout=dropout, bidirectional, batch_first=True)`, layer by
    layer (see the module's doc)."""

    def __init__(self, cell: type[nn.RNNBase], input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            cell(input_size if i == 0 else hidden_size * self.directions, hidden_size, batch_first=True,
                 bidirectional=bidirectional) for i in range(num_layers))
        self.drop = Dropout(dropout)
        self.lstm = issubclass(cell, nn.LSTM)
        self.register_state_dict_post_hook(_to_torch_keys)
        self.register_load_state_dict_pre_hook(_from_torch_keys)

    def forward(self, x, state=None):
        """(output, final state) as torch's module returns them: the state is h, or (h, c) for an LSTM."""
        finals, d = [], self.directions
        for i, layer in enumerate(self.layers):
            if i:
                x = x._replace(data=self.drop(x.data)) if isinstance(x, PackedSequence) else self.drop(x)
            layer_state = None if state is None else (
                tuple(s[i * d:(i + 1) * d] for s in state) if self.lstm else state[i * d:(i + 1) * d])
            x, final = layer(x, layer_state)
            finals.append(final)
        if self.lstm:
            return x, tuple(torch.cat(parts) for parts in zip(*finals))
        return x, torch.cat(finals)


def _to_torch_keys(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix)]:
        m = _LAYER_KEY.fullmatch(key[len(prefix):])
        if m:
            layer, name, reverse = m.groups()
            state_dict[f"{prefix}{name}_l{layer}{reverse or ''}"] = state_dict.pop(key)


def _from_torch_keys(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                     error_msgs):
    for key in [k for k in state_dict if k.startswith(prefix)]:
        m = _TORCH_KEY.fullmatch(key[len(prefix):])
        if m:
            name, layer, reverse = m.groups()
            state_dict[f"{prefix}layers.{layer}.{name}_l0{reverse or ''}"] = state_dict.pop(key)
