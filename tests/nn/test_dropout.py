"""dltool.nn.Dropout: the share it drops and the expectation it keeps, in every byte of the random words."""

from __future__ import annotations

import pytest
import torch

from dltool.nn.dropout import Dropout, dropped_bytes


def test_drops_p_rounded_to_a_256th_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(1_000_003)  # not a multiple of 8: the last word is cut
    y = Dropout(0.2)(x)
    assert dropped_bytes(0.2) == 51
    assert abs(float((y == 0).float().mean()) - 51 / 256) < 0.002  # binomial sd 0.0004
    assert abs(float(y.mean()) - 1.0) < 0.005
    assert torch.unique(y).tolist() == pytest.approx([0.0, 256 / 205])


@pytest.mark.parametrize("p", [0.1, 0.6])
def test_every_byte_of_a_word_is_uniform(p):
    # each element reads one byte of a 64-bit word; a generator that leaves the top bit 0 would drop every
    # eighth element at p >= 0.5 and too few at p < 0.5
    torch.manual_seed(1)
    dropped = (Dropout(p)(torch.ones(800_000)) == 0).float().view(-1, 8).mean(0)
    assert torch.allclose(dropped, torch.full((8,), dropped_bytes(p) / 256), atol=0.006)


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(2)
    x = torch.randn(64, 32, requires_grad=True)
    y = Dropout(0.5)(x)
    y.sum().backward()
    kept = y != 0
    assert torch.equal(x.grad[kept], torch.full_like(x.grad[kept], 2.0))
    assert torch.all(x.grad[~kept] == 0)


def test_same_seed_same_mask_and_bfloat16_stays_bfloat16():
    x = torch.randn(4, 100).bfloat16()
    a = (torch.manual_seed(3), Dropout(0.3)(x))[1]
    b = (torch.manual_seed(3), Dropout(0.3)(x))[1]
    assert torch.equal(a, b) and a.dtype == torch.bfloat16


def test_identity_outside_training_and_at_zero():
    x = torch.randn(10, 10)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_refuses_a_probability_outside_0_1(p):
    with pytest.raises(ValueError, match="not in"):
        Dropout(p)
