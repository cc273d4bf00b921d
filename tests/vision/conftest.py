"""Small real data: a few classes of sklearn's handwritten digits, as PNG class folders."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = ("0", "1", "7")


def write_digits(root: Path, per_class: int, offset: int = 0, classes=CLASSES) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.round(d.images * (255 / 16)).astype(np.uint8)
    for c in classes:
        idx = np.flatnonzero(d.target == int(c))[offset:offset + per_class]
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in idx:
            Image.fromarray(imgs[i], mode="L").save(root / c / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    base = tmp_path_factory.mktemp("digits")
    return write_digits(base / "train", 40), write_digits(base / "test", 20, offset=60)


FAST = ["--model", "cnn", "--width", "8", "--epochs", "6", "--batch-size", "16", "--lr", "0.01", "--quiet"]


@pytest.fixture(scope="session")
def trained(digits, tmp_path_factory):
    """One trained model shared by the eval/predict/export tests."""
    from dltool.cli import main

    out = tmp_path_factory.mktemp("run") / "r"
    try:
        main(["vision", "classify", "train", str(digits[0]), "--out", str(out), *FAST])
    except SystemExit as e:
        assert e.code == 0
    return out
