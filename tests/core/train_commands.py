"""Every train command built on the shared engine, registered once with tiny data and its learning bar.

The engine tests (scale-out, exact resume) run over this table; a new train command joins them by
adding an entry here (tests/core/test_train_commands.py fails while a command with --nproc is missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TrainCommand:
    command: tuple[str, ...]                      # e.g. ("vision", "classify", "train")
    make_data: Callable[[Path], Path]             # writes tiny data under a folder, returns the input path
    args: tuple[str, ...]                         # options that make it fast (never --out)
    learned: Callable[[Callable, Path, Path], None]  # (cli, data, run_dir) -> asserts the model learned
    interrupt_at: int                             # an optimizer step in the middle of an epoch (not its end)

    @property
    def name(self) -> str:
        return " ".join(self.command)


# -- vision classify ---------------------------------------------------------------------------------

def _digits_folders(base: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.round(d.images * (255 / 16)).astype(np.uint8)
    for split, offset, n in (("train", 0, 40), ("test", 60, 20)):
        for c in ("0", "1", "7"):
            folder = base / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(d.target == int(c))[offset:offset + n]:
                Image.fromarray(imgs[i], mode="L").save(folder / f"{i:04d}.png")
    return base / "train"


def _classifier_learned(cli, data: Path, run: Path) -> None:
    r = cli("vision", "classify", "eval", run / "model.pt", data.parent / "test", "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.8


VISION_CLASSIFY = TrainCommand(
    ("vision", "classify", "train"), _digits_folders,
    ("--model", "cnn", "--width", "8", "--epochs", "5", "--batch-size", "16", "--lr", "0.01", "--device", "cpu",
     "--quiet"),
    _classifier_learned, interrupt_at=10)  # 108 training images: 7 steps an epoch, step 3 of epoch 2


TRAIN_COMMANDS: dict[str, TrainCommand] = {c.name: c for c in (VISION_CLASSIFY,)}
