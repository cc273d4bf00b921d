"""Language models by name (`text lm train --model`). Every model maps token ids (N, L) and a state to
next-token logits (N, L, V) and the state after them: `logits, state = model(ids, state)`. The state is
what generation carries from one step to the next (a GPT's key/value cache, an RNN's hidden state; the
bigram needs none), so sampling feeds only the new token. `model.context` is the most positions the
model can see at once (None: no limit).

Families: lm_gpt.py (gpt), lm_rnn.py (rnn, lstm, gru), lm_bigram.py (bigram: counts, not trained by
gradient). Each has a `*_tiny` for tests. A Hugging Face GPT-2 folder (`--pretrained DIR`) is wrapped by
lm_hf.py (gpt2_hf, meta `folder`: built from the folder's config, not by name).
"""

from __future__ import annotations

from dltool.core.registry import Registry

LM_MODELS = Registry("model")

# importing the families registers them
from dltool.text.models import lm_bigram, lm_gpt, lm_rnn  # noqa: E402,F401
