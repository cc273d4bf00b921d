"""Kim's (2014) convolutional text classifier: word embeddings, 1-D convolutions of several widths
(`kernel_sizes`, `filters` of each) with ReLU, the maximum of each filter over time, dropout, a linear head.

Convolutions are wide (padded by width - 1 on each side), so a text shorter than the widest filter still
has windows; padding tokens are zeroed before the convolution and the windows that see only padding are
left out of the maximum, so a text gives the same output alone and padded in a batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dltool.nn.attention import padding_mask
from dltool.text.models import MODELS
from dltool.text.vocab import PAD


class CNNClassifier(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, filters: int,
                 kernel_sizes: tuple[int, ...], dropout: float):
        super().__init__()
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes {kernel_sizes} must be one or more widths >= 1")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, k, padding=k - 1) for k in kernel_sizes)
        self.kernel_sizes = kernel_sizes
        self.drop = nn.Dropout(dropout)
        self.feature_dim = filters * len(kernel_sizes)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = padding_mask(lengths, ids.shape[1])  # (N, L) True on real tokens
        x = (self.embedding(ids) * keep.unsqueeze(-1)).transpose(1, 2)  # (N, D, L), padding zeroed
        pooled = []
        for k, conv in zip(self.kernel_sizes, self.convs):
            h = torch.relu(conv(x))  # (N, F, L + k - 1): window j covers tokens j-k+1 .. j
            real = padding_mask(lengths + k - 1, h.shape[-1])  # windows that reach a real token
            pooled.append(h.masked_fill(~real.unsqueeze(1), float("-inf")).amax(-1))
        return torch.cat(pooled, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(ids, lengths)))


@MODELS.register("cnn")
def cnn(*, vocab_size, num_classes, embed_dim=64, filters=100, kernel_sizes=(3, 4, 5), dropout=0.5):
    return CNNClassifier(vocab_size, num_classes, embed_dim, filters, kernel_sizes, dropout)


@MODELS.register("cnn_tiny")
def cnn_tiny(*, vocab_size, num_classes, embed_dim=16, filters=8, kernel_sizes=(2, 3), dropout=0.1):
    return CNNClassifier(vocab_size, num_classes, embed_dim, filters, kernel_sizes, dropout)
