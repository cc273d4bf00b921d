"""The planned defaults of `generate vae train` (dltool.core.plan): a fingerprint of the training images
(count, classes, side, channels) and the values it plans for the options the user did not set.

- epochs (not under --time-limit, where the budget sets them): about STEPS optimizer steps. The fixed 30
  epochs were 630 steps on the sample digits, and the VAE's samples were still blurred into "1" and "8"
  (issue 22); README, Generative models, has the figures.
"""

from __future__ import annotations

import math

#: optimizer steps a run is planned for (200 epochs of the sample digits' 21 batches)
STEPS = 4200


def fingerprint(images) -> dict:
    """`images` a dltool.generate.data.ImageSet."""
    return {"images": len(images.images), "classes": len(images.classes), "side": int(images.images.shape[-1]),
            "channels": images.channels}


def plan_vae(fp: dict, cfg) -> dict:
    """Proposed values (the user's flags win over them: dltool.core.plan)."""
    if cfg.engine.time_limit is not None:  # the budget sets the epochs (dltool.core.budget)
        return {}
    steps_per_epoch = math.ceil(fp["images"] * (1 - cfg.run.val_split) / cfg.run.batch_size)
    return {"epochs": max(30, min(500, round(STEPS / max(1, steps_per_epoch))))}
