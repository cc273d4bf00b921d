"""Text classifiers by name. Every model takes token ids (N, L) and their lengths (N,) (PAD after the
end, CLS first: see dltool.text.vocab), returns logits, and exposes `forward_features(ids, lengths)` ->
(N, D), an `embedding` (nn.Embedding: --embeddings fills it from word2vec vectors) and a `head`, so the
same network classifies and embeds (`predict --embed`).

Families: rnn.py (rnn, lstm, gru), cnn.py (cnn: Kim 2014), fasttext.py (fasttext: Joulin 2017),
transformer.py (transformer), bert.py (bert, with its masked-language model for `pretrain`), bag.py (mlp:
Galke & Scherp 2022). Each has a `*_tiny` for tests. `mlp` is the one exception to the token ids: it reads
a text's TF-IDF n-grams (ids and values; dltool.text.classify.BagTask), and its `bag` stands where the
others' `embedding` is. bert_hf.py (bert_hf) wraps transformers' BertModel for `train --model bert
--pretrained DIR`: built from a folder's config, not by name (meta `folder`).
"""

from __future__ import annotations

from dltool.core.registry import Registry

MODELS = Registry("model")


def create_model(name: str, **kwargs):
    return MODELS.create(name, **kwargs)


# importing the families registers them
from dltool.text.models import bag, bert, bert_hf, cnn, fasttext, rnn, transformer  # noqa: E402,F401
