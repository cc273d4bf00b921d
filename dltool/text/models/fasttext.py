"""fastText's classifier (Joulin et al. 2017, "Bag of Tricks"; subwords as Bojanowski et al. 2017): a text is
the mean of the vectors of its words and of its word bigrams; a word's vector is its own embedding plus the
mean of the embeddings of its character n-grams ("<word>", 2 to 5 characters), so an unseen or misspelt
word still has one. Bigrams and n-grams share one table of `buckets` rows, indexed by a hash (no n-gram
vocabulary is kept). Dropout and a linear head follow; no order beyond bigrams, no convolution.

The bigram ids are hashed from the word ids inside the model, and each word's n-gram rows are a buffer
filled once from the vocabulary (`set_words`, saved in the model file), so it takes the same inputs as the
other classifiers (token ids with CLS first, PAD after the end); a text gives the same output alone and
padded in a batch.
"""

from __future__ import annotations

import zlib

import torch
import torch.nn as nn

from dltool.nn.attention import padding_mask
from dltool.text.models import MODELS
from dltool.text.vocab import PAD, SPECIALS

#: a large prime: bigram (a, b) hashes to (a * PRIME + b) mod buckets
PRIME = 1_000_003
#: character n-grams of "<word>": lengths, and the most kept per word (a 12-letter word has 50)
NGRAMS, MAX_NGRAMS = (2, 5), 48


class FastTextClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, buckets: int, dropout: float):
        super().__init__()
        if buckets < 1:
            raise ValueError(f"buckets {buckets} must be >= 1")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        # row `buckets` is the empty n-gram (zero, never trained): a word's unused n-gram slots point to it
        self.ngram_embedding = nn.Embedding(buckets + 1, embed_dim, padding_idx=buckets)
        self.register_buffer("subwords", torch.full((vocab_size, MAX_NGRAMS), buckets, dtype=torch.long))
        self.buckets = buckets
        self.drop = nn.Dropout(dropout)
        self.feature_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes)
        with torch.no_grad():  # fastText's: small vectors, a zero head, so the means start near 0 and learn
            for table in (self.embedding, self.ngram_embedding):
                nn.init.uniform_(table.weight, -1 / embed_dim, 1 / embed_dim)
                table.weight[table.padding_idx].zero_()
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def set_words(self, tokens: list[str]) -> None:
        """Each word's character n-gram rows (hashed with CRC-32, stable across runs and machines)."""
        rows = torch.full_like(self.subwords, self.buckets)
        low, high = NGRAMS
        for i, token in enumerate(tokens):
            if token in SPECIALS:
                continue
            w = f"<{token}>"
            grams = [w[j:j + n] for n in range(low, high + 1) for j in range(len(w) - n + 1)][:MAX_NGRAMS]
            if grams:
                rows[i, :len(grams)] = torch.tensor([zlib.crc32(g.encode()) % self.buckets for g in grams])
        self.subwords.copy_(rows)

    def word_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        grams = self.subwords[ids]  # (..., MAX_NGRAMS)
        count = (grams != self.buckets).sum(-1, keepdim=True)
        return (self.embedding(ids) + self.ngram_embedding(grams).sum(-2)) / (1 + count)

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(lengths, ids.shape[1]).unsqueeze(-1)  # (N, L, 1) True on real tokens
        present, where = ids.unique(return_inverse=True)  # each word's n-grams summed once a batch, not per position
        words = (self.word_vectors(present)[where] * keep).sum(1)
        pairs = (ids[:, :-1] * PRIME + ids[:, 1:]) % self.buckets  # the bigram that ends at each token
        both = keep[:, 1:]  # a pair of two real tokens
        bigrams = (self.ngram_embedding(pairs) * both).sum(1)
        count = keep.sum(1) + both.sum(1)
        return (words + bigrams) / count.clamp(min=1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


def _buckets(vocab_size: int) -> int:
    """Eight rows per word of the vocabulary (its bigrams and n-grams are a few times its words), 4,096 to 131,072."""
    return max(4096, min(2**17, 8 * vocab_size))


@MODELS.register("fasttext")
def fasttext(*, vocab_size, num_classes, embed_dim=64, dropout=0.5, buckets=None):
    return FastTextClassifier(vocab_size, num_classes, embed_dim, buckets or _buckets(vocab_size), dropout)


@MODELS.register("fasttext_tiny")
def fasttext_tiny(*, vocab_size, num_classes, embed_dim=16, dropout=0.1, buckets=256):
    return FastTextClassifier(vocab_size, num_classes, embed_dim, buckets, dropout)
