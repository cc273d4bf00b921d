"""Every registered text classifier builds, runs forward and backward on a tiny padded batch, gets gradients
everywhere, embeds, and gives a text the same output alone and padded in a batch. bert_hf, built from a
folder's config, gets a tiny config (tests/text/test_classify_hf.py loads real folders). The bag models (mlp)
read n-gram ids and values instead: the same ids, each of value 1, the padding their own id of value 0."""

from __future__ import annotations

import pytest
import torch

from dltool.text.models import MODELS, create_model
from dltool.text.plan import BAG_MODELS

TINY_BERT_CONFIG = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "intermediate_size": 16, "max_position_embeddings": 16}


def _create(name: str, num_classes: int):
    if MODELS.get(name).meta.get("folder"):
        return create_model(name, config=TINY_BERT_CONFIG, num_classes=num_classes)
    return create_model(name, vocab_size=30, num_classes=num_classes)


def _inputs(name: str, ids: torch.Tensor, lengths: torch.Tensor) -> tuple:
    if name not in BAG_MODELS:
        return ids, lengths
    real = torch.arange(ids.shape[1]) < lengths[:, None]
    return ids.masked_fill(~real, 30), real.float()  # 30: the vocab_size, the bag's padding row


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    ids = torch.randint(4, 30, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    model = _create(name, num_classes=3)
    out = model(*_inputs(name, ids, lengths))
    assert out.shape == (3, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    assert model.forward_features(*_inputs(name, ids, lengths)).shape[0] == 3


@pytest.mark.parametrize("name", MODELS.names())
def test_padding_never_changes_a_texts_output(name):
    """The attention mask and packed sequences: a text gives the same result alone and padded in a batch."""
    torch.manual_seed(0)
    model = _create(name, num_classes=2).eval()
    short = torch.tensor([[2, 5, 6, 7]])
    padded = torch.tensor([[2, 5, 6, 7, 0, 0], [2, 8, 9, 10, 11, 12]])
    alone = model(*_inputs(name, short, torch.tensor([4])))
    batch = model(*_inputs(name, padded, torch.tensor([4, 6])))
    assert torch.allclose(alone[0], batch[0], atol=1e-5)
