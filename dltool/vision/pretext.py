"""Self-supervised pretraining on unlabelled images: the rotation pretext task (Gidaris et al. 2018).

Every image is shown at 0, 90, 180 and 270 degrees and the network learns which: to tell, it has to
recognise what the image shows. The result is an ordinary vision-classify model whose classes are the
four angles, so `vision classify train --pretrained runs/pretext/model.pt` starts a classifier from its
backbone (the head, of another shape, starts afresh) and `predict` tells an image's rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dltool.core import images as vdata
from dltool.core import inputs
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, recipe, start
from dltool.core.train import Engine, EngineConfig
from dltool.vision import classify
from dltool.vision.models import MODELS, create_model, model_meta
from dltool.vision.models.cnn import check_pool

PRETEXTS = ("rotation",)
ANGLES = ["0", "90", "180", "270"]  # the classes: counter-clockwise degrees (torch.rot90's k x 90)


@dataclass(frozen=True)
class PretrainConfig:
    data: Path
    engine: EngineConfig
    pretext: str = "rotation"
    model: str = "cnn"
    img_size: int | None = None
    activation: str = "relu"
    dropout: float = 0.25
    batch_norm: bool = True
    width: int = 32
    pool: str = "avg"
    run: RunConfig = RunConfig()
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None

    def validate(self) -> None:
        self.engine.validate()
        if self.pretext not in PRETEXTS:
            raise unknown_name("pretext task", self.pretext, PRETEXTS)
        MODELS.get(self.model)
        meta = model_meta(self.model)
        check_pool(self.pool)
        if self.img_size is not None and self.img_size < meta["min_size"]:
            raise OptionError(f"--img-size {self.img_size} is too small for {self.model}",
                              f"use --img-size {meta['min_size']} or more")
        arch_options(self, MODELS, classify.ARCH_OPTIONS)


class RotationTask(classify.ClassifyTask):
    """Each batch of images becomes its four rotations, labelled by the angle (no labels are read)."""

    def forward(self, model, batch, train: bool = False):
        x = batch[0]
        rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
        y = torch.arange(4, device=x.device).repeat_interleave(len(x))
        return model(self.prepare(rotated, train=train)), y

    def payload(self, model) -> dict:
        return {**super().payload(model), "pretext": "rotation"}


def train(cfg: PretrainConfig) -> dict:
    cfg.validate()
    run = cfg.run
    device, run_dir = start(cfg, "vision-pretrain")
    items = inputs.scan_inputs([str(cfg.data)], vdata.IMAGES, labels=False)
    all_paths = [it.path for it in items]
    mode = vdata.decide_mode(all_paths)
    size = classify._image_size(cfg, all_paths)
    images, kept = vdata.decode(all_paths, size, mode, skip_bad=run.skip_bad)
    if len(kept) < 2:
        raise InputError(f"'{cfg.data}' has {len(kept)} readable image(s)", "pretraining needs at least two")
    in_channels = 1 if mode == "L" else 3
    from dltool.core.data import stratified_split

    tr_idx, va_idx = stratified_split(np.zeros(len(images), dtype=int), run.val_split, cfg.engine.seed)
    pixels = images[tr_idx].astype(np.float32).transpose(1, 0, 2, 3).reshape(in_channels, -1) / 255
    preprocess = {"img_size": size, "mode": mode, "mean": pixels.mean(1).tolist(),
                  "std": np.maximum(pixels.std(1), 1e-3).tolist()}
    info(f"data: {len(tr_idx)} unlabelled images x 4 rotations, {0 if va_idx is None else len(va_idx)} held out, "
         f"{mode} {size}x{size}")
    arch_kwargs = {"num_classes": 4, "in_channels": in_channels, **arch_options(cfg, MODELS, classify.ARCH_OPTIONS)}
    model = create_model(cfg.model, **arch_kwargs)
    zeros = np.zeros(len(images), dtype=int)  # no labels: the task makes its own
    # --batch-size counts images: a step sees each in its four rotations
    train_batches = classify._batches(images[tr_idx], zeros[tr_idx], run.batch_size, shuffle=True,
                                      seed=cfg.engine.seed, device=device)
    val_batches = None
    if va_idx is not None:
        val_batches = classify._batches(images[va_idx], zeros[va_idx], max(64, run.batch_size), shuffle=False,
                                        seed=0, device=device)
    task = RotationTask(cfg.model, arch_kwargs, ANGLES, preprocess, device)
    return Engine(task, model, cfg.engine, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)
