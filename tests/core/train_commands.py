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
    printed_once: Callable[[str, Path], None]     # (stdout, run_dir) -> asserts the result was printed once

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


def _one_summary(stdout: str, run: Path) -> None:
    assert json.loads(stdout)["run_dir"] == str(run)  # one JSON object, not one per rank


def _classifier_learned(cli, data: Path, run: Path) -> None:
    r = cli("vision", "classify", "eval", run / "model.pt", data.parent / "test", "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.8


VISION_CLASSIFY = TrainCommand(
    ("vision", "classify", "train"), _digits_folders,
    ("--model", "cnn", "--width", "8", "--epochs", "5", "--batch-size", "16", "--lr", "0.01", "--device", "cpu",
     "--quiet"),
    _classifier_learned, interrupt_at=10, printed_once=_one_summary)  # 108 images: 7 steps an epoch


# -- vision segment -----------------------------------------------------------------------------------

def _shapes_folder(base: Path) -> Path:
    from tests.vision.seg_data import write_shapes

    return write_shapes(base / "train", 24, seed=0)


def _segmenter_learned(cli, data: Path, run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]
    r = cli("vision", "segment", "eval", run / "model.pt", data, "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    assert 0 < json.loads(r.stdout)["pixel_accuracy"] <= 1  # a loadable model (few steps: no accuracy bar)


VISION_SEGMENT = TrainCommand(
    ("vision", "segment", "train"), _shapes_folder,
    ("--model", "unet", "--width", "8", "--depth", "2", "--epochs", "4", "--batch-size", "4", "--lr", "0.01",
     "--device", "cpu", "--quiet"),
    _segmenter_learned, interrupt_at=8, printed_once=_one_summary)  # 22 training images: 6 steps an epoch


# -- vision detect ------------------------------------------------------------------------------------

def _detect_folder(base: Path) -> Path:
    from tests.vision.seg_data import write_shapes

    return write_shapes(base / "train", 24, seed=0, size=64)


def _detector_learned(cli, data: Path, run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # 4 short epochs: the loss falls, slowly (see test_detect)
    r = cli("vision", "detect", "eval", run / "model.pt", data, "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    assert 0 <= json.loads(r.stdout)["map50"] <= 1  # a loadable model (few steps: no mAP bar)


VISION_DETECT = TrainCommand(
    ("vision", "detect", "train"), _detect_folder,
    ("--model", "yolo_tiny", "--epochs", "4", "--batch-size", "4", "--lr", "0.01", "--device", "cpu", "--quiet"),
    _detector_learned, interrupt_at=8, printed_once=_one_summary)  # 22 training images: 6 steps an epoch


# -- feature tables: reduce autoencoder, cluster deep ------------------------------------------------

def _write_table(path: Path, X, labels) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id," + ",".join(f"f{j}" for j in range(X.shape[1])) + ",label"]
    lines += [f"r{i}," + ",".join(repr(float(v)) for v in row) + f",c{labels[i]}" for i, row in enumerate(X)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_table(path: Path):
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return np.array([[float(v) for v in r[1:-1]] for r in rows]), np.array([r[-1] for r in rows])


def _one_table(n_rows: int):
    def check(stdout: str, run: Path) -> None:
        rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        assert len(rows) == n_rows and len({r["id"] for r in rows}) == n_rows  # every row once, not per rank
    return check


def _classification_table(base: Path) -> Path:
    from sklearn.datasets import make_classification

    X, y = make_classification(150, n_features=8, n_informative=3, n_redundant=2, random_state=0)
    return _write_table(base / "table.csv", X, y)


def _autoencoder_learned(cli, data: Path, run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert min(r["val_recon"] for r in rows) < 0.7 * rows[0]["val_recon"]  # the single-process test's bar


REDUCE_AUTOENCODER = TrainCommand(
    ("reduce", "autoencoder"), _classification_table,
    ("--hidden", "32,16", "--code-dim", "3", "--epochs", "12", "--batch-size", "32", "--lr", "0.005",
     "--val-split", "0.2", "--device", "cpu", "--format", "jsonl", "--quiet"),
    _autoencoder_learned, interrupt_at=6, printed_once=_one_table(150))  # 120 rows: 4 steps an epoch


def _blobs_table(base: Path) -> Path:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(120, centers=[[0.0, 0.0], [6.0, 6.0], [0.0, 8.0]], cluster_std=0.5, random_state=0)
    return _write_table(base / "blobs.csv", X, y)


def _clusters_learned(cli, data: Path, run: Path) -> None:
    from sklearn.metrics import adjusted_rand_score

    from dltool.cluster.deep import load

    X, y = _read_table(data)
    assert adjusted_rand_score(y, load(run / "model.pt").predict(X)) > 0.9


CLUSTER_DEEP = TrainCommand(
    ("cluster", "deep"), _blobs_table,
    ("-k", "3", "--hidden", "64,32", "--code-dim", "3", "--pretrain-epochs", "30", "--epochs", "3", "--tol", "0",
     "--batch-size", "16", "--lr", "0.001", "--device", "cpu", "--format", "jsonl", "--quiet"),
    # 120 rows: 8 steps an epoch; 240 pretraining steps, then step 3 of the clustering phase's epoch 2
    _clusters_learned, interrupt_at=251, printed_once=_one_table(120))


# -- audio classify ----------------------------------------------------------------------------------

def _audio_folders(base: Path) -> Path:
    from tests.audio.conftest import write_tone_classes

    write_tone_classes(base / "test", per_class=6, seed=100)
    return write_tone_classes(base / "train", per_class=16, seed=0)


def _audio_classifier_learned(cli, data: Path, run: Path) -> None:
    r = cli("audio", "classify", "eval", run / "model.pt", data.parent / "test", "--format", "json", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.8


AUDIO_CLASSIFY = TrainCommand(
    ("audio", "classify", "train"), _audio_folders,
    ("--model", "conv1d_tiny", "--sr", "8000", "--duration", "0.5", "--n-fft", "256", "--n-mels", "32",
     "--augment", "gain,noise,timemask", "--epochs", "4", "--batch-size", "8", "--lr", "0.01", "--device", "cpu",
     "--quiet"),
    _audio_classifier_learned, interrupt_at=8, printed_once=_one_summary)  # 43 clips: 6 steps an epoch


TRAIN_COMMANDS: dict[str, TrainCommand] = {c.name: c for c in (VISION_CLASSIFY, VISION_SEGMENT, VISION_DETECT,
                                                               REDUCE_AUTOENCODER, CLUSTER_DEEP, AUDIO_CLASSIFY)}
