"""A wrong spec fails before any trial, naming the key and the value; nothing is left behind."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import assert_error
from tests.tune.conftest import kmeans_chain, write_spec

K = {"type": "int", "low": 2, "high": 4}


@pytest.mark.parametrize("change,fragments", [
    ({"space": {"k": {"type": "integer", "low": 1, "high": 3, "flag": "--n-clusters"}}},
     ("space.k.type", "unknown parameter type 'integer'", "did you mean 'int'")),
    ({"space": {"n_clusters": {"type": "int", "low": 5, "high": 2}}}, ("space.n_clusters", "low = 5 > high = 2")),
    ({"space": {"n_clusters": {"type": "float", "low": 0, "high": 1, "log": True}}}, ("log = true needs low > 0",)),
    ({"space": {"n_clustres": K}}, ("'--n-clustres' is not an option of 'dltool cluster kmeans", "--n-clusters")),
    ({"space": {"n_clusters": {**K, "when": {"tol": 1}}}}, ("space.n_clusters.when", "'tol' is not a parameter")),
    ({"metric": "silhouette:best"}, ("spec metric", "direction 'best'")),
    ({"trails": 3}, ("spec trails", "not a spec key", "did you mean 'trials'")),
    ({"sampler": "tpee"}, ("spec sampler", "unknown sampler 'tpee'", "did you mean 'tpe'")),
    ({"command": [["cluster", "kmean", "x.csv"]]}, ("'dltool cluster kmean' is not a dltool command", "kmeans")),
    ({"pruner": "median", "metric": ["silhouette:max", "dunn:max"]}, ("cannot prune a multi-objective",)),
    ({"sampler": "grid", "space": {"tol": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}},
     ("space.tol", "no grid points", "steps = N")),
])
def test_bad_spec_fails_before_any_trial(cli, tmp_path, blob_table, change, fragments):
    spec = {"command": kmeans_chain(blob_table), "metric": "silhouette", "trials": 2, "space": {"n_clusters": K}}
    path = write_spec(tmp_path / "s.toml", **{**spec, **change})
    r = cli("tune", "run", path, "--out", tmp_path / "study")
    assert_error(r, *fragments)
    assert not (tmp_path / "study").exists()


def test_cycle_and_flags_override_the_spec(cli, tmp_path, blob_table):
    cyc = {"a": {"type": "categorical", "choices": [1, 2], "when": {"b": 1}},
           "b": {"type": "categorical", "choices": [1, 2], "when": {"a": 1}}}
    path = write_spec(tmp_path / "s.toml", command=kmeans_chain(blob_table), metric="silhouette", trials=2, space=cyc)
    assert_error(cli("tune", "run", path), "the branches form a cycle (a -> b -> a)")
    # every key as a flag: a flag wins over the file, here a bad one over a good file
    good = write_spec(tmp_path / "g.toml", command=kmeans_chain(blob_table), metric="silhouette", trials=2,
                      space={"n_clusters": K})
    assert_error(cli("tune", "run", good, "--trials", "0"), "spec trials: 0 is not an integer at least 1")
    assert_error(cli("tune", "run", good, "--space", "n_clusters = { type = 'int', low = 3, high = 1 }"),
                 "low = 3 > high = 1")


def test_unreachable_storage_fails_clearly(cli, tmp_path, blob_table):
    path = write_spec(tmp_path / "s.toml", command=kmeans_chain(blob_table), metric="silhouette", trials=2,
                      space={"n_clusters": K})
    r = cli("tune", "run", path, "--out", tmp_path / "study",
            "--storage", "postgresql+psycopg://tune:secret@127.0.0.1:9/none")
    line = assert_error(r, "--storage postgresql+psycopg://tune:***@127.0.0.1:9/none: cannot open the database")
    assert "secret" not in line
