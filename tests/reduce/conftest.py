"""Tiny, fixed data for the reduce tests: digits subsets and make_classification tables."""

from __future__ import annotations

import csv

import numpy as np
import pytest

INFORMATIVE = ["f0", "f1", "f2"]


def write_csv(path, columns: dict) -> str:
    names = list(columns)
    n = len(next(iter(columns.values())))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(n):
            w.writerow([repr(float(columns[c][i])) if isinstance(columns[c][i], (float, np.floating))
                        else columns[c][i] for c in names])
    return str(path)


def digits(n: int, offset: int = 0):
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[offset:offset + n].astype(np.float64), d.target[offset:offset + n]


def digits_table(path, n=120, offset=0) -> tuple[str, np.ndarray]:
    """id, p0..p63, label (text: 'd3'), note: pass-through columns on both sides of the features."""
    X, y = digits(n, offset)
    cols = {"id": [f"img{offset + i}" for i in range(n)]}
    cols.update({f"p{j}": X[:, j] for j in range(X.shape[1])})
    cols["label"] = [f"d{v}" for v in y]
    cols["note"] = ["x"] * n
    return write_csv(path, cols), X


def classification(n=150, n_features=8, n_classes=3, seed=0, class_sep=1.0):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n, n_features=n_features, n_informative=3, n_redundant=0,
                               n_repeated=0, n_classes=n_classes, n_clusters_per_class=1, class_sep=class_sep,
                               flip_y=0.0, shuffle=False, random_state=seed)


def classification_table(path, **kw) -> str:
    X, y = classification(**kw)
    cols = {"id": [f"r{i}" for i in range(len(X))]}
    cols.update({f"f{j}": X[:, j] for j in range(X.shape[1])})
    cols["label"] = [f"class{v}" for v in y]
    return write_csv(path, cols)


@pytest.fixture
def digits_csv(tmp_path):
    return digits_table(tmp_path / "digits.csv")[0]


@pytest.fixture
def classes_csv(tmp_path):
    return classification_table(tmp_path / "classes.csv")
