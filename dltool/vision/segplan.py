"""The planned defaults of `vision segment train` (dltool.core.plan): a fingerprint of the training images
and masks (count, the median sides, how much of the pixels the rarest class holds) and the values it
plans for the options the user did not set. Training cuts square patches at the images' own resolution
(dltool.vision.segment.PatchBatches), the scale that eval and predict see, so the plan is nnU-Net's:

- img_size, the patch side: the median shorter side, at most PATCH_CAP, a multiple of 2**depth;
- depth (U-Net): downsamplings until the bottleneck keeps BOTTLENECK pixels of the patch, 3 to 5;
- width (U-Net): 32 from 128-px patches on (the budget's figure: README, Planned defaults), else 16;
- batch_size: PIXELS_PER_BATCH pixels a batch, 2 to 16 patches;
- epochs (not under --time-limit, where the budget sets them): about PATCHES patches seen, 30 to 150
  epochs (patches, not optimizer steps: a recipe of larger patches has smaller batches, and a U-Net
  learns from the patches it sees: on the horses 25 epochs of 256-px patches in batches of 4 reached a
  mean IoU of 0.71, 196 epochs of 64-px ones in batches of 16 0.89);
- resize, the shorter side every image is resized to (0: their own size): where the objects (connected
  regions of the classes other than the commonest) are larger than the patch at the images' own size,
  the images shrink until the typical object fits in one patch (`object_side` in the fingerprint: the
  extent of the object a typical foreground pixel lies in, over its image's shorter side). Photos, where
  the object fills the frame, are seen whole; cells and other small objects keep every pixel. On the
  Weizmann horses (a horse spans its photo, object_side 1.02) in 10 CPU minutes with 64-px patches: mean
  IoU 0.535 cut from the photos at their own size, 0.887 resized to a shorter side of 64 (README, Planned
  defaults); resized to 128, the horse two patches long, about 0.80.

Under --time-limit the U-Net is also sized for the budget: the fingerprint holds the seconds one training
step of the REFERENCE U-Net takes on the run's device (`step_s`, timed before training), and the plan takes
the largest of the recipes above and their smaller variants (width 16, half the patch) that shows
BUDGET_PATCHES patches in the budget, each step's time scaled from the reference by `step_cost`.

On the shapes set (64 px, 240 images) this gives the recipe measured there before plans existed: patches
of 64, depth 3, width 16, batches of 16, 150 epochs.
"""

from __future__ import annotations

import math

import numpy as np

from dltool.core.budget import RESERVE

#: the largest planned patch side: a 256-px U-Net step of 4 patches takes seconds on a CPU
PATCH_CAP = 256
#: the bottleneck's side at the patch size (nnU-Net stops downsampling at 4-8 px)
BOTTLENECK = 8
PIXELS_PER_BATCH = 2 ** 18   # 16 patches of 128 px, 4 of 256
#: patches a run is planned to see: the shapes set's 150 epochs of 240 images
PATCHES = 36_000
#: the options a U-Net takes that the plan sets (a torchvision segmenter has its own shape)
UNET_OPTIONS = ("width", "depth")
#: the U-Net timed for a --time-limit plan: the shapes recipe (about 0.1 s a step on the idle 2-core CPU)
REFERENCE = {"img_size": 64, "depth": 3, "width": 16, "batch_size": 16}
#: the fewest patches a --time-limit plan shows in the budget, when a smaller U-Net allows it (1,000
#: steps of the reference's 16)
BUDGET_PATCHES = 16_000
#: the smallest patch a --time-limit plan cuts down to
MIN_PATCH = 64


def fingerprint(images: list[np.ndarray], masks: list[np.ndarray], n_classes: int, ignore: int) -> dict:
    """What the plan is made from: images (C, H, W) at their own size and their masks of class ids."""
    short = sorted(min(m.shape) for m in masks)
    long = sorted(max(m.shape) for m in masks)
    counts = np.zeros(n_classes, dtype=np.int64)
    for m in masks:
        counts += np.bincount(m[m != ignore].ravel(), minlength=n_classes)[:n_classes]
    shares = counts / max(1, counts.sum())
    return {"images": len(images), "side_median": short[len(short) // 2], "long_side_median": long[len(long) // 2],
            "classes": n_classes, "rarest_class": round(float(shares.min()), 4),
            "commonest_class": round(float(shares.max()), 4),
            "object_side": object_side(masks, int(np.argmax(counts)), ignore)}


def object_side(masks: list[np.ndarray], background: int, ignore: int) -> float:
    """How large the objects are against their images: each connected region of pixels of the classes
    other than `background` (and `ignore`) measured by its bounding box's longer side over its image's
    shorter side; the median over the foreground pixels (so a large object counts by its area, and stray
    pixels of compression noise count for next to nothing). 0 when no mask has a foreground pixel."""
    from scipy import ndimage

    extents, areas = [], []
    for m in masks:
        labels, n = ndimage.label((m != background) & (m != ignore))
        if not n:
            continue
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        for box, area in zip(ndimage.find_objects(labels), sizes):
            extents.append(max(box[0].stop - box[0].start, box[1].stop - box[1].start) / min(m.shape))
            areas.append(area)
    if not extents:
        return 0.0
    order = np.argsort(extents)
    cumulative = np.cumsum(np.asarray(areas, dtype=np.float64)[order])
    return round(float(np.asarray(extents)[order][np.searchsorted(cumulative, cumulative[-1] / 2)]), 3)


def planned_resize(patch: int, fp: dict) -> int:
    """The shorter side that makes the typical object fit in a patch (never below the patch), or 0 (the
    images' own size) when it already does there or the images are smaller."""
    share = fp.get("object_side", 0.0)
    if share <= 0:
        return 0
    side = max(patch, round(patch / share))
    return side if side < fp["side_median"] else 0


def plan_segment(fp: dict, cfg) -> dict:
    """Proposed values (the user's flags win over them: dltool.core.plan)."""
    from dltool.core.plan import user_set
    from dltool.vision.models import SEGMENTERS

    given = user_set(cfg)
    meta = SEGMENTERS.get(cfg.model).meta
    shorter = cfg.resize if "resize" in given and cfg.resize else fp["side_median"]  # the images as trained on
    side = cfg.img_size if "img_size" in given else max(meta["min_size"], min(shorter, PATCH_CAP))
    if all(o in SEGMENTERS.takes(cfg.model) for o in UNET_OPTIONS):
        recipes = unet_recipes(side, cfg, given)
        plan = recipes[0]
        if "step_s" in fp:  # --time-limit: the largest that shows BUDGET_PATCHES in it, else the smallest
            seconds = cfg.engine.time_limit * 60 * (1 - RESERVE)
            plan = next((r for r in recipes
                         if seconds / (fp["step_s"] * step_cost(r)) * r["batch_size"] >= BUDGET_PATCHES), recipes[-1])
    else:
        if meta.get("torchvision"):
            multiple = 32  # their backbones downsample up to 32-fold
        else:  # a fixed-shape test model
            multiple = getattr(SEGMENTERS.create(cfg.model, num_classes=2, in_channels=1), "multiple", 1)
        plan = {"img_size": side if "img_size" in given else max(multiple, side // multiple * multiple)}
        plan["batch_size"] = _batch(plan["img_size"])
    plan["resize"] = cfg.resize if "resize" in given else planned_resize(plan["img_size"], fp)
    if cfg.engine.time_limit is None:  # with --time-limit the budget sets the epochs (dltool.core.budget)
        plan["epochs"] = max(30, min(150, round(PATCHES / max(1, fp["images"] * (1 - cfg.run.val_split)))))
    return plan


def unet_recipes(side: int, cfg, given: frozenset) -> list[dict]:
    """The U-Net recipes for a patch side, the data's own first and then, for a budget, those of half the
    patch and of width 16 (the options the user set kept), from the most work a step to the least."""
    sides = [side] if "img_size" in given else [side >> k for k in range(8) if (side >> k) >= MIN_PATCH or k == 0]
    recipes = []
    for s in sides:
        depth = cfg.depth if "depth" in given else max(3, min(5, int(math.log2(max(1, s // BOTTLENECK)))))
        patch = s if "img_size" in given else max(2 ** depth, s // 2 ** depth * 2 ** depth)
        planned_width = 32 if s >= 128 else 16
        for width in ([cfg.width] if "width" in given else sorted({planned_width, 16}, reverse=True)):
            batch = cfg.run.batch_size if "batch_size" in given else _batch(patch)
            recipes.append({"depth": depth, "width": width, "img_size": patch, "batch_size": batch})
    first = recipes[0]
    return [first] + sorted((r for r in recipes[1:] if step_cost(r) < step_cost(first)), key=step_cost, reverse=True)


def step_cost(recipe: dict) -> float:
    """A U-Net training step's work relative to REFERENCE's: each level does about the same work (the
    channels double as the pixels quarter), so it grows with the batch's pixels, width^2 and depth + 1
    (README: 89 GFLOP a 256-px patch at depth 5, width 32; 18 at 128 px, depth 4; 4.5 at width 16)."""
    def work(r):
        return r["batch_size"] * r["img_size"] ** 2 * r["width"] ** 2 * (r["depth"] + 1)
    return work(recipe) / work(REFERENCE)


def _batch(patch: int) -> int:
    return max(2, min(16, PIXELS_PER_BATCH // (patch * patch)))
