"""Encoder-decoder models by name (`text seq2seq train --model`). Every model has three methods:

    memory, state = model.encode(src, src_len)        # source ids (N, S) padded, their lengths (N,)
    logits, state, attn = model.decode(ids, memory, state)
    logits = model(src, src_len, tgt_in)              # teacher forcing: encode, then decode the whole target

`memory` (a dict) and `state` (nested tuples of tensors, or None) hold every tensor with the batch first, so
beam search reorders them all by one index. `decode` takes the target ids so far (N, L) after `state` (the
decoder's hidden state, or a Transformer's self-attention cache) and returns next-token logits (N, L, V),
the state after them, and the attention over the source (N, L, S), or None for a model without attention.

Families: seq2seq_rnn.py (lstm, gru: --attention none|bahdanau|luong), seq2seq_transformer.py
(transformer). Each has a `*_tiny` for tests.
"""

from __future__ import annotations

from dltool.core.registry import Registry

SEQ2SEQ_MODELS = Registry("model")

# importing the families registers them
from dltool.text.models import seq2seq_rnn, seq2seq_transformer  # noqa: E402,F401
