"""vision classify pretrain --pretext rotation through the CLI: it learns the angle without labels, its model
file tells rotations, train --pretrained starts a classifier from its backbone, and bad input fails cleanly.
(Resume and --nproc 2: tests/core/train_commands.py.)"""

import json

import numpy as np
import torch
from PIL import Image

from tests.vision.conftest import FAST

PRE = ["--model", "cnn", "--width", "8", "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--val-split", "0.2",
       "--quiet", "--device", "cpu"]


def test_rotation_pretraining_then_fine_tuning(cli, digits, tmp_path):
    run = tmp_path / "rot"
    r = cli("vision", "classify", "pretrain", digits[0], "--pretext", "rotation", "--out", run, *PRE)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["val_accuracy"] > 0.6  # four angles: chance is 0.25
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["classes"] == ["0", "90", "180", "270"] and ckpt["pretext"] == "rotation"

    # the model tells the rotation of images it never saw: the test digits turned by 90 degrees
    turned = tmp_path / "turned"
    turned.mkdir()
    for p in sorted(digits[1].rglob("*.png"))[:30]:
        Image.fromarray(np.rot90(np.asarray(Image.open(p)))).save(turned / f"{p.parent.name}-{p.name}")
    pr = cli("vision", "classify", "predict", run, turned, "--format", "jsonl", "--device", "cpu")
    assert pr.code == 0, pr.stderr
    labels = [json.loads(line)["label"] for line in pr.stdout.splitlines()]
    assert np.mean([label == "90" for label in labels]) > 0.5

    ft = tmp_path / "ft"
    r = cli("vision", "classify", "train", digits[0], "--pretrained", run / "model.pt", "--out", ft, *FAST,
            "--epochs", "1")
    assert r.code == 0, r.stderr
    first = torch.load(ft / "last.pt", weights_only=True)["state_dict"]
    assert not torch.equal(first["head.weight"][:3], ckpt["state_dict"]["head.weight"][:3])
    # one epoch from the pretrained backbone: its first convolution moved little, not from a fresh init
    w0 = ckpt["state_dict"]["features.0.weight"]
    assert torch.norm(first["features.0.weight"] - w0) < 0.5 * torch.norm(w0)


def test_bad_input(cli, digits, tmp_path):
    run = tmp_path / "run"
    r = cli("vision", "classify", "pretrain", digits[0], "--pretext", "rotatoin", "--out", run, *PRE)
    assert r.code == 1 and r.stderr.startswith("error: unknown pretext task 'rotatoin'") and "rotation" in r.stderr
    assert not run.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("vision", "classify", "pretrain", empty, "--out", run, *PRE)
    assert r.code == 1 and len(r.stderr.strip().splitlines()) == 1 and "no images" in r.stderr
    assert not run.exists()
    r = cli("vision", "classify", "pretrain", digits[0], "--model", "cnn_tiny", "--width", "16", "--out", run,
            "--quiet")
    assert r.code == 1 and "--width does not apply to --model cnn_tiny" in r.stderr and not run.exists()
