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
    variant: str = ""                             # a second entry of one command (another kind of model)

    @property
    def name(self) -> str:
        return " ".join(self.command) + (f" [{self.variant}]" if self.variant else "")


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


# -- text classify ----------------------------------------------------------------------------------

def _two_topic_texts(base: Path) -> Path:
    from tests.text.conftest import write_two_topic_csv

    base.mkdir(parents=True, exist_ok=True)
    write_two_topic_csv(base / "test.csv", n_per_topic=20, seed=100)
    return write_two_topic_csv(base / "train.csv", n_per_topic=40, seed=0)


def _text_classifier_learned(cli, data: Path, run: Path) -> None:
    r = cli("text", "classify", "eval", run / "model.pt", data.parent / "test.csv", "--format", "json", "--device",
            "cpu", "--quiet")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.9


TEXT_CLASSIFY = TrainCommand(
    ("text", "classify", "train"), _two_topic_texts,
    # mlp_tiny: the default family, whose batches are rows of a sparse matrix (dltool.core.data.SparseRowBatches)
    ("--model", "mlp_tiny", "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--quiet"),
    _text_classifier_learned, interrupt_at=7, printed_once=_one_summary)  # 72 training texts: 5 steps an epoch


def _masked_loss_fell(cli, data: Path, run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # from ln(vocabulary) (3.34 here) to about 2.5 in 20 epochs, under --nproc 2 too; 4 epochs moved it by noise
    assert rows[-1]["val_loss"] < 0.9 * rows[0]["val_loss"]


TEXT_PRETRAIN = TrainCommand(
    ("text", "classify", "pretrain"), _two_topic_texts,
    ("--model", "bert_tiny", "--epochs", "20", "--batch-size", "16", "--lr", "0.01", "--device", "cpu", "--quiet"),
    _masked_loss_fell, interrupt_at=7, printed_once=_one_summary)  # 72 training texts: 5 steps an epoch


# -- generate ----------------------------------------------------------------------------------------

def _generate_digits(base: Path) -> Path:
    from tests.vision.conftest import write_digits

    return write_digits(base / "train", 16)  # 48 real 8x8 digits in 3 class folders


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _samples_drawn(cli, run: Path) -> np.ndarray:
    """The model file samples: 16 images at the training size, not all alike."""
    from PIL import Image

    r = cli("generate", "sample", run / "model.pt", "-n", "16", "--out", run / "drawn", "--device", "cpu",
            "--format", "json")
    assert r.code == 0, r.stderr
    images = np.stack([np.array(Image.open(p)) for p in sorted((run / "drawn").glob("*.png"))])
    assert images.shape == (16, 8, 8) and images.std(0).mean() > 1
    return images


def _vae_learned(cli, data: Path, run: Path) -> None:
    rows = _metrics(run)
    assert rows[-1]["val_loss"] < 0.9 * rows[0]["val_loss"]
    _samples_drawn(cli, run)


def _gan_trained(cli, data: Path, run: Path) -> None:
    """A few steps teach a GAN nothing measurable (the learning bar is pipelines/generate.mk); this checks
    that both optimizers stepped and that the generator samples."""
    last = torch_load(run / "last.pt")["train_state"]
    assert set(last["optimizers"]) == {"discriminator", "generator"}
    assert all(opt["state"] for opt in last["optimizers"].values())  # Adam moments: both optimizers stepped
    _samples_drawn(cli, run)


def _diffusion_learned(cli, data: Path, run: Path) -> None:
    rows = _metrics(run)
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]
    _samples_drawn(cli, run)


def _pixelcnn_learned(cli, data: Path, run: Path) -> None:
    rows = _metrics(run)
    assert rows[-1]["val_bpd"] < 0.8 * rows[0]["val_bpd"] and rows[-1]["val_bpd"] < 6  # uniform: 8 bits/dim
    _samples_drawn(cli, run)


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)


_GENERATE_FAST = ("--img-size", "8", "--batch-size", "8", "--sample-every", "2", "--device", "cpu", "--quiet")

GENERATE_VAE = TrainCommand(
    ("generate", "vae", "train"), _generate_digits,
    ("--model", "vae_tiny", "--epochs", "3", "--lr", "0.03", "--val-split", "0.25", *_GENERATE_FAST),
    _vae_learned, interrupt_at=6, printed_once=_one_summary)  # 36 training images: 5 steps an epoch
GENERATE_GAN = TrainCommand(  # wgan-gp: two optimizers, --d-steps, the penalty's double backward under DDP
    ("generate", "gan", "train"), _generate_digits,
    ("--model", "dcgan_tiny", "--kind", "wgan-gp", "--d-steps", "2", "--epochs", "2", *_GENERATE_FAST),
    _gan_trained, interrupt_at=9, printed_once=_one_summary)  # 6 steps an epoch; stops after a D-only step
GENERATE_DIFFUSION = TrainCommand(
    ("generate", "diffusion", "train"), _generate_digits,
    ("--model", "unet_tiny", "--timesteps", "20", "--epochs", "4", "--lr", "0.005", *_GENERATE_FAST),
    _diffusion_learned, interrupt_at=10, printed_once=_one_summary)
GENERATE_PIXELCNN = TrainCommand(
    ("generate", "pixelcnn", "train"), _generate_digits,
    ("--model", "pixelcnn_tiny", "--epochs", "3", "--lr", "0.03", "--val-split", "0.25", *_GENERATE_FAST),
    _pixelcnn_learned, interrupt_at=6, printed_once=_one_summary)


# -- text lm ----------------------------------------------------------------------------------------

def _pattern_lines(base: Path) -> Path:
    from tests.text.test_lm import pattern_lines, write_lines

    write_lines(base / "val.txt", pattern_lines(30, 1))
    return write_lines(base / "train.txt", pattern_lines(96, 0))


def _lm_learned(cli, data: Path, run: Path) -> None:
    r = cli("text", "lm", "eval", run / "model.pt", data.parent / "val.txt", "--format", "json", "--device", "cpu")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["loss"] < 0.6 * np.log(6)  # uniform over the 6 tokens: ln 6


TEXT_LM = TrainCommand(  # --accumulate and --warmup: resume stays exact with both
    ("text", "lm", "train"), _pattern_lines,
    ("--model", "gpt_tiny", "--epochs", "4", "--batch-size", "16", "--lr", "0.02", "--warmup", "5", "--accumulate", "2",
     "--val-split", "0.2", "--device", "cpu", "--quiet"),
    _lm_learned, interrupt_at=7, printed_once=_one_summary)  # 77 training lines: 5 steps an epoch




# -- text tag -----------------------------------------------------------------------------------------

def _bio_sentences(base: Path) -> Path:
    from tests.text.test_tag import bio_corpus, write_jsonl

    base.mkdir(parents=True, exist_ok=True)
    write_jsonl(base / "test.jsonl", bio_corpus(30, 1))
    return write_jsonl(base / "train.jsonl", bio_corpus(60, 0))


def _tagger_learned(cli, data: Path, run: Path) -> None:
    r = cli("text", "tag", "eval", run / "model.pt", data.parent / "test.jsonl", "--format", "json", "--device",
            "cpu", "--quiet")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] > 0.8


TEXT_TAG = TrainCommand(
    ("text", "tag", "train"), _bio_sentences,
    ("--model", "bilstm-crf_tiny", "--epochs", "5", "--batch-size", "16", "--lr", "0.03", "--min-count", "1",
     "--device", "cpu", "--quiet"),
    _tagger_learned, interrupt_at=6, printed_once=_one_summary)  # 54 training sentences: 4 steps an epoch
# -- series forecast ---------------------------------------------------------------------------------

def _seasonal_panel(base: Path) -> Path:
    from tests.series.conftest import seasonal, write_panel

    return write_panel(base / "series.csv", {f"s{i}": seasonal(60, phase=i, noise=0.1, seed=i) for i in range(3)})


def _forecaster_learned(cli, data: Path, run: Path) -> None:
    r = cli("series", "forecast", "eval", run / "model.pt", data, "--baselines", "naive", "--format", "json",
            "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mae"] < out["baselines"]["naive"]["mae"]  # it beats repeating the last value


SERIES_FORECAST = TrainCommand(
    ("series", "forecast", "train"), _seasonal_panel,
    ("--time", "step", "--id", "id", "--season", "12", "--lookback", "12", "--horizon", "6", "--model", "mlp_tiny",
     "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--val-split", "0.2", "--device", "cpu", "--quiet"),
    _forecaster_learned, interrupt_at=8, printed_once=_one_summary)  # 3 x 31 training windows: 6 steps an epoch


# -- vision classify prune ----------------------------------------------------------------------------

def _model_to_prune(base: Path) -> Path:
    """A run folder holding an untrained digits classifier (its config.toml names the data), so the
    fine-tuning after pruning has all to learn."""
    import torch

    from dltool.core.modelfile import save_model
    from dltool.vision.models import create_model

    data = _digits_folders(base)
    kwargs = {"num_classes": 3, "in_channels": 1, "width": 8}
    torch.manual_seed(0)
    save_model(base / "run" / "model.pt", task="vision-classify", arch="cnn", arch_kwargs=kwargs,
               state_dict=create_model("cnn", **kwargs).state_dict(), classes=["0", "1", "7"],
               preprocess={"img_size": 8, "mode": "L", "mean": [0.3], "std": [0.4]})
    (base / "run" / "config.toml").write_text(f'data = "{data}"\n')
    return base / "run"


def _pruned_classifier_learned(cli, data: Path, run: Path) -> None:
    _classifier_learned(cli, data.parent / "train", run)
    assert json.loads((run / "prune.json").read_text())["sparsity"]["zero_share"] > 0.49


VISION_PRUNE = TrainCommand(
    ("vision", "classify", "prune"), _model_to_prune,
    ("--amount", "0.5", "--schedule", "2", "--epochs", "5", "--batch-size", "16", "--lr", "0.01", "--device", "cpu",
     "--quiet"),
    _pruned_classifier_learned, interrupt_at=10, printed_once=_one_summary)


# -- text seq2seq -------------------------------------------------------------------------------------

def _reverse_pairs(base: Path) -> Path:
    from tests.text.test_seq2seq import reverse_pairs, write_tsv

    write_tsv(base / "test.tsv", reverse_pairs(30, 1))
    return write_tsv(base / "train.tsv", reverse_pairs(96, 0))


def _seq2seq_learned(cli, data: Path, run: Path) -> None:
    r = cli("text", "seq2seq", "eval", run / "model.pt", data.parent / "test.tsv", "--beam", "1", "--format", "json",
            "--device", "cpu", "--quiet")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["ter"] < 0.6, r.stdout  # few steps: well under a guess of the 5 letters


TEXT_SEQ2SEQ = TrainCommand(  # --warmup and --label-smoothing: resume stays exact with both
    ("text", "seq2seq", "train"), _reverse_pairs,
    ("--model", "gru_tiny", "--epochs", "10", "--batch-size", "16", "--lr", "0.01", "--warmup", "4",
     "--label-smoothing", "0.1", "--val-split", "0.2", "--device", "cpu", "--quiet"),
    _seq2seq_learned, interrupt_at=7, printed_once=_one_summary)  # 77 training pairs: 5 steps an epoch


# -- vision classify pretrain -------------------------------------------------------------------------

def _rotation_learned(cli, data: Path, run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_accuracy"] > 0.6  # which of four rotations: chance is 0.25


VISION_PRETRAIN = TrainCommand(
    ("vision", "classify", "pretrain"), _digits_folders,
    ("--model", "cnn", "--width", "8", "--epochs", "4", "--batch-size", "12", "--lr", "0.01", "--val-split", "0.2",
     "--device", "cpu", "--quiet"),
    _rotation_learned, interrupt_at=5, printed_once=_one_summary)  # 120 images, 96 to train: 8 steps an epoch


# -- vision detect --model maskrcnn (instance masks travel beside the boxes; mask mAP combines over ranks) --

def _instance_folder(base: Path) -> Path:
    from tests.vision.seg_data import write_instances, write_shapes

    return write_instances(write_shapes(base / "train", 10, seed=0, size=64))


def _mask_detector_learned(cli, data: Path, run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    r = cli("vision", "detect", "eval", run / "model.pt", data, "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    assert 0 <= json.loads(r.stdout)["mask_map50"] <= 1  # a loadable mask model (few steps: no mAP bar)


VISION_DETECT_MASKS = TrainCommand(
    ("vision", "detect", "train"), _instance_folder,
    ("--model", "maskrcnn_tiny", "--epochs", "2", "--batch-size", "2", "--lr", "0.01", "--val-split", "0.2",
     "--device", "cpu", "--quiet"),
    _mask_detector_learned, interrupt_at=6, printed_once=_one_summary, variant="maskrcnn")  # 8 to train: 4 steps an epoch

TRAIN_COMMANDS: dict[str, TrainCommand] = {c.name: c for c in (
    VISION_CLASSIFY, VISION_SEGMENT, VISION_DETECT, REDUCE_AUTOENCODER, CLUSTER_DEEP, AUDIO_CLASSIFY, TEXT_CLASSIFY,
    TEXT_PRETRAIN, GENERATE_VAE, GENERATE_GAN, GENERATE_DIFFUSION, GENERATE_PIXELCNN, TEXT_LM,
    TEXT_TAG, SERIES_FORECAST, VISION_PRUNE, TEXT_SEQ2SEQ, VISION_PRETRAIN, VISION_DETECT_MASKS)}
