"""Tiny studies for dltool tune: a k-means + evaluate chain on a blob table (a trial takes well under a
second in-process), and a tiny digits classifier for pruning and for killing a worker mid-trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_spec(path: Path, **spec) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(spec), encoding="utf-8")
    return path


def kmeans_chain(table: Path, *extra: str) -> list[list[str]]:
    """Cluster the table, then score the clustering: the metric comes from `cluster evaluate`'s JSON."""
    return [["cluster", "kmeans", str(table), "--n-init", "1", "-o", "{out}/clusters.csv", "--quiet", *extra],
            ["cluster", "evaluate", "{out}/clusters.csv", "--quiet"]]


@pytest.fixture(scope="session")
def blob_table(tmp_path_factory) -> Path:
    from tests.cluster.conftest import blobs, write_csv

    X, _ = blobs(n=60)
    return write_csv(tmp_path_factory.mktemp("tune-data") / "blobs.csv", X, path_col=False)


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    from tests.core.train_commands import VISION_CLASSIFY

    return VISION_CLASSIFY.make_data(tmp_path_factory.mktemp("tune-digits"))


def vision_command(data: Path, epochs: int) -> list[str]:
    return ["vision", "classify", "train", str(data), "--model", "cnn", "--width", "8", "--epochs", str(epochs),
            "--batch-size", "16", "--device", "cpu", "--quiet"]


def trials_of(folder: Path):
    """The study's trials, read back with Optuna itself."""
    from dltool.tune.study import load_study, read_study_file

    ref = read_study_file(folder)
    return load_study(ref.storage, ref.name).get_trials(deepcopy=False)


def trials_run(folder: Path):
    """trials_of without the trials a worker gave up unrun (marked `lost`: two workers asked for the last
    trial of the budget at once, see dltool.tune.study.work)."""
    return [t for t in trials_of(folder) if not str(t.user_attrs.get("lost", "")).startswith("over the budget")]


def one_json(stdout: str) -> dict:
    return json.loads(stdout)
