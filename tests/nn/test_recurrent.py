"""dltool.nn.StackedRNN is torch's multi-layer module with another dropout: same outputs, states and keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dltool.nn.recurrent import StackedRNN


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_same_network_as_torchs_module(cell, bidirectional):
    torch.manual_seed(0)
    theirs = cell(5, 7, num_layers=3, batch_first=True, dropout=0.3, bidirectional=bidirectional).eval()
    ours = StackedRNN(cell, 5, 7, 3, 0.3, bidirectional).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())  # a model file of the torch module loads
    x, lengths = torch.randn(4, 6, 5), torch.tensor([6, 2, 4, 1])
    d = 2 if bidirectional else 1
    h0 = torch.randn(3 * d, 4, 7)
    state = (h0, torch.randn_like(h0)) if cell is nn.LSTM else h0
    for args in ((x,), (x, state)):
        (a, fa), (b, fb) = theirs(*args), ours(*args)
        assert torch.allclose(a, b, atol=1e-6)
        for u, v in zip(fa if cell is nn.LSTM else (fa,), fb if cell is nn.LSTM else (fb,)):
            assert u.shape == v.shape == (3 * d, 4, 7) and torch.allclose(u, v, atol=1e-6)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    a, b = (pad_packed_sequence(m(packed)[0], batch_first=True)[0] for m in (theirs, ours))
    assert torch.allclose(a, b, atol=1e-6)
    theirs.load_state_dict(ours.state_dict())  # and back


def test_drops_between_layers_in_training_only():
    torch.manual_seed(1)
    net = StackedRNN(nn.LSTM, 4, 8, 2, 0.5)
    x = torch.randn(3, 5, 4)
    train_out = net(x)[0]
    net.eval()
    eval_out = net(x)[0]
    assert not torch.allclose(train_out, eval_out)
    assert torch.equal(net(x)[0], eval_out)
    one_layer = StackedRNN(nn.GRU, 4, 8, 1, 0.5)  # no layer to drop between: training changes nothing
    assert torch.equal(one_layer(x)[0], one_layer.eval()(x)[0])
