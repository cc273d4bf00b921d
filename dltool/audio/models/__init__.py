"""Audio classifiers by name. Every model takes features (N, F, frames), log-mel or MFCC, computed on the
device by the task, and exposes forward_features(x) -> (N, D) and a `head`, so the same network
classifies and embeds (`predict --embed`).

Each entry's meta says the features it expects by default (`features`: "logmel" or "mfcc"); a builder's
signature says which of --activation/--dropout/--width it takes (dltool.core.registry.arch_options), a
`width` of None meaning the model's own.
"""

from __future__ import annotations

from dltool.core.registry import Registry

MODELS = Registry("model")


def create_model(name: str, **kwargs):
    return MODELS.create(name, **kwargs)


def model_meta(name: str) -> dict:
    return MODELS.get(name).meta


# importing the families registers them
from dltool.audio.models import cnn, resnet, seq  # noqa: E402,F401
