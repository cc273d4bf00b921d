"""Generative networks by name (NETWORKS). Each entry's meta names its `family` (vae|gan|diffusion|pixelcnn),
the training module that uses it; every builder takes `in_channels` and `img_size` (and `num_classes` where
it conditions on a label), so tests can build them all."""

from __future__ import annotations

from dltool.core.registry import Registry

NETWORKS = Registry("generative network")

# importing the families registers them
from dltool.generate.models import diffusion_unet, gan, pixelcnn, vae  # noqa: E402,F401
