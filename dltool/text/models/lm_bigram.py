"""The bigram model: the next token's probability given the previous one, from counts with add-one
(Laplace) smoothing. Not trained by gradient: `fit` counts. The floor every language model must beat."""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.text.models.lm import LM_MODELS


class Bigram(nn.Module):
    context = None

    def __init__(self, vocab_size: int, smoothing: float = 1.0):
        super().__init__()
        self.smoothing = smoothing
        self.logprobs = nn.Parameter(torch.full((vocab_size, vocab_size), -float(torch.log(torch.tensor(vocab_size)))),
                                     requires_grad=False)

    @torch.no_grad()
    def fit(self, pairs: torch.Tensor) -> None:
        """Count (previous, next) id pairs (M, 2) into log-probabilities."""
        v = self.logprobs.shape[0]
        counts = torch.zeros(v * v, dtype=torch.float64)
        counts.index_add_(0, pairs[:, 0] * v + pairs[:, 1], torch.ones(len(pairs), dtype=torch.float64))
        counts = counts.view(v, v) + self.smoothing
        self.logprobs.copy_((counts / counts.sum(1, keepdim=True)).log().float())

    def forward(self, ids: torch.Tensor, state=None):
        return self.logprobs[ids], None


@LM_MODELS.register("bigram")
def bigram(*, vocab_size):
    return Bigram(vocab_size)
