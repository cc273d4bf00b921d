"""--seed: same seed, same result on the same machine."""

from __future__ import annotations

import random


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch with `seed`, plus the process's rank in a distributed run: dropout
    masks and augmentation draws then differ across ranks (DDP gives every rank rank 0's initial
    weights anyway). Whatever must agree across ranks (splits, data order) takes the seed explicitly."""
    import numpy as np
    import torch

    from dltool.core.distributed import rank

    seed = seed + rank()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
