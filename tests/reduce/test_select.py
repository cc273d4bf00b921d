"""dltool reduce select: every method recovers the informative features of make_classification."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from dltool.core.tables import read_table

from .conftest import INFORMATIVE, classification_table, write_csv

# make_classification(shuffle=False): f0, f1, f2 informative, f3.. noise
METHODS = {
    "pearson": [], "spearman": [], "chi2": [], "mi": [], "anova": [], "permutation": ["--n-repeats", 5],
    "forest": [], "l1": [], "rfe": [], "sfs": ["--cv", 3], "sbe": ["--cv", 3],
    "hybrid": ["--pre-k", 5, "--cv", 3],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return classification_table(tmp_path_factory.mktemp("select") / "classes.csv", n=150, n_features=8,
                                class_sep=1.0)


@pytest.mark.parametrize("method", list(METHODS))
def test_recovers_informative_features_first(cli, data, tmp_path, method):
    ranking = tmp_path / "ranking.jsonl"
    out = tmp_path / "selected.csv"
    r = cli("reduce", "select", data, "--target", "label", "--method", method, "--k", 3, *METHODS[method],
            "--ranking", ranking, "-o", out)
    assert r.code == 0, r.stderr
    recs = [json.loads(line) for line in ranking.read_text().splitlines()]
    assert [x["rank"] for x in recs] == list(range(1, 9))
    assert sorted(x["feature"] for x in recs[:3]) == INFORMATIVE
    assert [x["selected"] for x in recs] == [True] * 3 + [False] * 5
    assert set(recs[0]) == {"feature", "score", "rank", "selected"}
    t = read_table(str(out))
    assert t.names == ["id", "f0", "f1", "f2", "label"]
    assert len(t) == 150 and t.columns["id"][0] == "r0"
    assert "kept 3 of 8 features" in r.stderr


def test_genetic_search_finds_the_informative_subset(cli, data, tmp_path):
    ranking = tmp_path / "ranking.csv"
    r = cli("reduce", "select", data, "--target", "label", "--method", "genetic", "--population", 10,
            "--generations", 6, "--cv", 3, "--ranking", ranking, "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(ranking.read_text())))
    selected = {row["feature"] for row in rows if row["selected"] == "True"}
    assert set(INFORMATIVE) <= selected
    assert sorted(row["feature"] for row in rows[:3]) == INFORMATIVE  # largest contributions
    assert r.stdout.splitlines()[0].split(",")[0] == "id"


def test_elbow_and_threshold_cutoffs(cli, data):
    r = cli("reduce", "select", data, "--target", "label", "--method", "anova", "--format", "csv")
    assert r.code == 0, r.stderr
    assert "elbow" in r.stderr
    assert r.stdout.splitlines()[0] == "id,f0,f1,f2,label"
    r = cli("reduce", "select", data, "--target", "label", "--method", "pearson", "--threshold", 0.3,
            "--format", "csv")
    assert r.code == 0, r.stderr
    assert set(r.stdout.splitlines()[0].split(",")) <= {"id", "f0", "f1", "f2", "label"}
    r = cli("reduce", "select", data, "--target", "label", "--method", "pearson", "--threshold", 5.0)
    assert r.code == 1 and "keeps no feature" in r.stderr


def test_elbow_rule():
    from dltool.reduce.select import elbow_keep

    assert elbow_keep(np.array([10, 9, 8, 0.5, 0.4, 0.3, 0.2, 0.1])) == 3   # drop, then a flat tail
    assert elbow_keep(np.array([10, 9.5, 9, 8.5, 1.0])) == 4                # plateau, then a drop
    assert elbow_keep(np.array([5.0, 5.0, 5.0])) == 3                       # flat: keep all
    assert elbow_keep(np.array([3.0])) == 1
    assert elbow_keep(np.array([3.0, 1.0])) == 1


def test_regression_target(cli, tmp_path):
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=120, n_features=8, n_informative=3, noise=1.0, shuffle=False, random_state=0)
    cols = {f"f{j}": X[:, j] for j in range(8)}
    cols["y"] = y
    path = write_csv(tmp_path / "reg.csv", cols)
    for method in ("pearson", "anova", "mi", "l1", "forest", "rfe"):
        r = cli("reduce", "select", path, "--target", "y", "--method", method, "--k", 3, "--format", "csv")
        assert r.code == 0, (method, r.stderr)
        assert "(regression," in r.stderr
        assert r.stdout.splitlines()[0] == "f0,f1,f2,y", method


def test_task_detection_and_override(tmp_path):
    from dltool.reduce.select import infer_task

    assert infer_task(np.array(["a", "b"], dtype=object)) == "classification"
    assert infer_task(np.array([0.0, 1.0, 2.0, 1.0])) == "classification"
    assert infer_task(np.arange(50, dtype=float)) == "regression"      # > 20 distinct integers
    assert infer_task(np.array([0.5, 1.0, 2.0])) == "regression"       # not integers


def test_numeric_class_target_and_task_flag(cli, tmp_path):
    from .conftest import classification

    X, y = classification(n=90, n_features=6)
    cols = {f"f{j}": X[:, j] for j in range(6)}
    cols["target"] = y.astype(float)
    path = write_csv(tmp_path / "num.csv", cols)
    r = cli("reduce", "select", path, "--target", "target", "--k", 3, "--format", "csv")
    assert r.code == 0 and "(classification," in r.stderr
    r = cli("reduce", "select", path, "--target", "target", "--k", 3, "--task", "regression", "--format", "csv")
    assert r.code == 0 and "(regression," in r.stderr


def test_l1_drops_the_noise_features(cli, data):
    """An L1 fit zeroes the noise coefficients (an L2 fit, which scikit-learn < 1.8 silently made of
    l1_ratio=1 without penalty, would keep all eight)."""
    r = cli("reduce", "select", data, "--target", "label", "--method", "l1", "--alpha", 5, "--format", "csv")
    assert r.code == 0, r.stderr
    assert "kept 3 of 8 features — non-zero coefficients" in r.stderr
    assert r.stdout.splitlines()[0] == "id,f0,f1,f2,label"

