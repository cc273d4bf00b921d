"""`dltool cluster choose-k`: the elbow rule, silhouette choice, output shape, plot, bad ranges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cluster.conftest import assert_error, blobs, write_csv

FOUR = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])


def test_elbow_rule_on_a_known_curve():
    from dltool.cluster.choose_k import elbow

    ks = [1, 2, 3, 4, 5, 6]
    inertia = [100, 50, 20, 18, 16, 14]  # the knee is at k=3
    assert elbow(ks, inertia) == 3
    assert elbow(ks, [v * 1e6 for v in inertia]) == 3  # independent of units
    # by hand: scaled points (x, y), distance to the line from (0, 1) to (1, 0)
    x = (np.array(ks) - 1) / 5
    y = (np.array(inertia) - 14) / 86
    d = np.abs(x + y - 1) / np.sqrt(2)
    assert ks[int(np.argmax(d))] == 3
    assert elbow([2, 3, 4], [5.0, 5.0, 5.0]) == 2  # a flat curve: the smallest k


@pytest.mark.parametrize("text, ks", [("2..5", [2, 3, 4, 5]), ("2-4", [2, 3, 4]), ("6,2,4,4", [2, 4, 6]),
                                      ("3", [3])])
def test_parse_k_range(text, ks):
    from dltool.cluster.choose_k import parse_k_range

    assert parse_k_range(text) == ks


@pytest.mark.parametrize("method", ["elbow", "silhouette"])
def test_choose_k_finds_four_blobs(cli, tmp_path, method):
    X, _ = blobs(n=160, centers=FOUR, std=0.8, seed=2)
    path = write_csv(tmp_path / "t.csv", X)
    png = tmp_path / "k.png"
    r = cli("cluster", "choose-k", path, "--k", "2..8", "--method", method, "--plot", png, "--n-init", "3")
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == method and out["chosen_k"] == 4
    assert [s["k"] for s in out["scores"]] == list(range(2, 9))
    inertia = [s["inertia"] for s in out["scores"]]
    assert all(a >= b for a, b in zip(inertia, inertia[1:], strict=False))
    sil = [s["silhouette"] for s in out["scores"]]
    assert max(sil) == sil[2]
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG"


def test_choose_k_inertia_matches_sklearn_and_is_deterministic(cli, tmp_path):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    X, _ = blobs(n=90, std=1.0)
    path = write_csv(tmp_path / "t.csv", X)
    a, b = (cli("cluster", "choose-k", path, "--k", "2,3,5", "--method", "silhouette", "--seed", "4",
                   "--n-init", "3") for _ in range(2))
    assert a.code == 0, a.stderr
    assert a.stdout == b.stdout
    for s in json.loads(a.stdout)["scores"]:
        km = KMeans(s["k"], n_init=3, random_state=4).fit(X)
        assert s["inertia"] == pytest.approx(km.inertia_)
        assert s["silhouette"] == pytest.approx(silhouette_score(X, km.labels_))


@pytest.mark.parametrize("args, fragments", [
    (["--k", "1..5"], ["k=1", "at least 2"]),
    (["--k", "5..2"], ["backwards", "--k 2..5"]),
    (["--k", "two"], ["not a range"]),
    (["--k", "2..200"], ["up to 200", "rows - 1"]),
    (["--k", "2,3"], ["elbow needs at least 3"]),
    (["--method", "elbo"], ["--method", "did you mean 'elbow'"]),
])
def test_choose_k_bad_options(cli, tmp_path, args, fragments):
    X, _ = blobs(n=40)
    path = write_csv(tmp_path / "t.csv", X)
    png = tmp_path / "k.png"
    assert_error(cli("cluster", "choose-k", path, *args, "--plot", png), *fragments, output=png)
