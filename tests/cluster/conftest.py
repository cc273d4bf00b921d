"""Tiny, well-separated data for the cluster commands, and an assertion for one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

CENTERS = np.array([[0.0, 0.0], [6.0, 6.0], [0.0, 8.0]])


def blobs(n=120, centers=CENTERS, std=0.5, seed=0):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n, centers=centers, cluster_std=std, random_state=seed)
    return X, y


def write_csv(path, X, y=None, *, names=None, path_col=True):
    names = names or [f"f{j}" for j in range(X.shape[1])]
    header = (["path"] if path_col else []) + names + (["label"] if y is not None else [])
    lines = [",".join(header)]
    for i, row in enumerate(X):
        cells = ([f"img{i:03d}.png"] if path_col else []) + [repr(float(v)) for v in row]
        if y is not None:
            cells.append(str(y[i]))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def blobs_table(tmp_path):
    """(path, X, y) of the blob table."""
    X, y = blobs()
    return write_csv(tmp_path / "blobs.csv", X), X, y


def read_out(text_or_path):
    """Parse a command's table output (a file path or JSON Lines text) with dltool's own reader."""
    from pathlib import Path

    from dltool.core.tables import _read_jsonl, read_table

    if isinstance(text_or_path, Path):
        return read_table(str(text_or_path))
    return _read_jsonl(text_or_path, "stdout")


def assert_error(r, *fragments, output=None):
    """Exit 1, exactly one `error: ...` line on stderr, no traceback, no output file left behind."""
    assert r.code == 1, (r.code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in errors[0], (f, errors[0])
    if output is not None:
        assert not output.exists(), f"{output} was left behind"
        leftovers = list(output.parent.glob(f".{output.name}.*"))
        assert not leftovers, leftovers
    return errors[0]
