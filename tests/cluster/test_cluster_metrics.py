"""`dltool cluster evaluate`: every metric against scikit-learn or a brute-force reference written here."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from tests.cluster.conftest import assert_error, blobs, write_jsonl

# -- brute-force references: pair loops and direct definitions ------------------------------------

def ref_pairs(truth, labels):
    tp = fp = fn = tn = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        same_t, same_c = truth[i] == truth[j], labels[i] == labels[j]
        tp += same_t and same_c
        fp += same_c and not same_t
        fn += same_t and not same_c
        tn += not same_t and not same_c
    return tp, fp, fn, tn


def ref_jaccard(truth, labels):
    tp, fp, fn, _ = ref_pairs(truth, labels)
    return tp / (tp + fp + fn)


def ref_rand(truth, labels):
    tp, fp, fn, tn = ref_pairs(truth, labels)
    return (tp + tn) / (tp + fp + fn + tn)


def ref_purity(truth, labels):
    total = 0
    for c in set(labels):
        members = [t for t, lab in zip(truth, labels, strict=True) if lab == c]
        total += max(members.count(t) for t in set(members))
    return total / len(truth)


def ref_vi(truth, labels):
    n = len(truth)
    vi = 0.0
    for t in set(truth):
        for c in set(labels):
            nij = sum(1 for a, b in zip(truth, labels, strict=True) if a == t and b == c)
            if nij == 0:
                continue
            ni, nj = list(truth).count(t), list(labels).count(c)
            vi -= nij / n * (math.log(nij / ni) + math.log(nij / nj))
    return vi


def ref_dunn(X, labels):
    within, between = 0.0, math.inf
    for i, j in itertools.combinations(range(len(X)), 2):
        d = math.dist(X[i], X[j])
        if labels[i] == labels[j]:
            within = max(within, d)
        else:
            between = min(between, d)
    return between / within


def ref_cohesion_separation(X, labels):
    mean = X.mean(0)
    coh = sep = 0.0
    for c in set(labels):
        members = X[np.asarray(labels) == c]
        centroid = members.mean(0)
        coh += sum(float(((x - centroid) ** 2).sum()) for x in members)
        sep += len(members) * float(((centroid - mean) ** 2).sum())
    return coh, sep


@pytest.fixture(scope="module")
def scored():
    """Overlapping blobs, an imperfect clustering of them, and the truth."""
    X, truth = blobs(n=80, std=2.5, seed=3)
    rng = np.random.default_rng(0)
    labels = truth.copy()
    flip = rng.choice(len(X), 15, replace=False)
    labels[flip] = rng.integers(0, 4, size=15)  # some points wrong, one extra cluster
    return X, truth, labels


def test_domain_metrics_match_references(scored):
    from dltool.cluster import metrics

    X, truth, labels = scored
    internal = metrics.internal_metrics(X, labels)
    assert internal["silhouette"] == pytest.approx(skm.silhouette_score(X, labels))
    assert internal["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(X, labels))
    assert internal["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(X, labels))
    assert internal["dunn"] == pytest.approx(ref_dunn(X, labels))
    coh, sep = ref_cohesion_separation(X, labels)
    assert internal["cohesion"] == pytest.approx(coh)
    assert internal["separation"] == pytest.approx(sep)
    assert coh + sep == pytest.approx(float(((X - X.mean(0)) ** 2).sum()))  # total SS splits in two
    assert metrics.dunn_index(X, labels, chunk_elems=100) == pytest.approx(ref_dunn(X, labels))  # chunked

    external = metrics.external_metrics(truth, labels)
    assert external["rand"] == pytest.approx(skm.rand_score(truth, labels))
    assert external["rand"] == pytest.approx(ref_rand(truth, labels))
    assert external["adjusted_rand"] == pytest.approx(skm.adjusted_rand_score(truth, labels))
    assert external["fowlkes_mallows"] == pytest.approx(skm.fowlkes_mallows_score(truth, labels))
    assert external["nmi"] == pytest.approx(skm.normalized_mutual_info_score(truth, labels))
    assert external["jaccard"] == pytest.approx(ref_jaccard(truth, labels))
    assert external["purity"] == pytest.approx(ref_purity(truth, labels))
    assert external["variation_of_information"] == pytest.approx(ref_vi(truth, labels))


def test_perfect_and_degenerate_partitions():
    from dltool.cluster import metrics

    t = np.array([0, 0, 1, 1, 2, 2])
    perfect = metrics.external_metrics(t, np.array([5, 5, 3, 3, 9, 9]))  # names do not matter
    for k in ("rand", "adjusted_rand", "jaccard", "fowlkes_mallows", "purity", "nmi"):
        assert perfect[k] == pytest.approx(1.0)
    assert perfect["variation_of_information"] == pytest.approx(0.0, abs=1e-12)
    singletons = np.arange(6)
    assert metrics.jaccard_pairs(singletons, singletons) == 1.0  # no pair together in either
    X = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert metrics.internal_metrics(X, np.array([0, 0, 1, 1]))["dunn"] is None  # zero-width clusters


def _table(tmp_path, X, truth, labels, *, truth_as_string=False, extra=None):
    rows = []
    for i, x in enumerate(X):
        row = {"path": f"img{i}.png", "x": float(x[0]), "y": float(x[1]),
               "truth": str(int(truth[i])) if truth_as_string else int(truth[i]), "cluster": int(labels[i])}
        row.update({k: float(v[i]) for k, v in (extra or {}).items()})
        rows.append(row)
    return write_jsonl(tmp_path / "scored.jsonl", rows)


@pytest.mark.parametrize("truth_as_string", [False, True])
def test_evaluate_cli_matches_references(cli, tmp_path, scored, truth_as_string):
    X, truth, labels = scored
    # prob_* columns and the numeric truth column must not be taken as features
    extra = {"prob_0": np.full(len(X), 0.5), "prob_1": np.full(len(X), 0.5)}
    path = _table(tmp_path, X, truth, labels, truth_as_string=truth_as_string, extra=extra)
    r = cli("cluster", "evaluate", path, "--truth", "truth", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["n_samples"] == len(X) and m["n_clusters"] == len(set(labels)) and m["n_noise"] == 0
    assert m["n_classes"] == 3
    assert m["silhouette"] == pytest.approx(skm.silhouette_score(X, labels))
    assert m["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(X, labels))
    assert m["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(X, labels))
    assert m["dunn"] == pytest.approx(ref_dunn(X, labels))
    coh, sep = ref_cohesion_separation(X, labels)
    assert (m["cohesion"], m["separation"]) == (pytest.approx(coh), pytest.approx(sep))
    assert m["rand"] == pytest.approx(skm.rand_score(truth, labels))
    assert m["adjusted_rand"] == pytest.approx(skm.adjusted_rand_score(truth, labels))
    assert m["fowlkes_mallows"] == pytest.approx(skm.fowlkes_mallows_score(truth, labels))
    assert m["nmi"] == pytest.approx(skm.normalized_mutual_info_score(truth, labels))
    assert m["jaccard"] == pytest.approx(ref_jaccard(truth, labels))
    assert m["purity"] == pytest.approx(ref_purity(truth, labels))
    assert m["variation_of_information"] == pytest.approx(ref_vi(truth, labels))


def test_noise_is_left_out_of_internal_and_kept_in_external(cli, tmp_path, scored):
    X, truth, labels = scored
    labels = labels.copy()
    labels[:7] = -1
    path = _table(tmp_path, X, truth, labels)
    r = cli("cluster", "evaluate", path, "--truth", "truth")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)  # one JSON line on a pipe
    assert m["n_noise"] == 7 and m["n_clusters"] == len(set(labels) - {-1})
    kept = labels != -1
    assert m["silhouette"] == pytest.approx(skm.silhouette_score(X[kept], labels[kept]))
    assert m["dunn"] == pytest.approx(ref_dunn(X[kept], labels[kept]))
    coh, _ = ref_cohesion_separation(X[kept], labels[kept])
    assert m["cohesion"] == pytest.approx(coh)
    assert m["adjusted_rand"] == pytest.approx(skm.adjusted_rand_score(truth, labels))  # -1 is one more label
    assert m["purity"] == pytest.approx(ref_purity(truth, labels))


def test_evaluate_after_a_method(cli, tmp_path):
    from tests.cluster.conftest import write_csv

    X, y = blobs()
    path = write_csv(tmp_path / "t.csv", X, y)
    out = tmp_path / "gmm.csv"
    assert cli("cluster", "gmm", path, "-k", "3", "--exclude", "label", "-o", out).code == 0
    r = cli("cluster", "evaluate", out, "--truth", "label")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["adjusted_rand"] > 0.9 and m["silhouette"] > 0.7


def test_single_cluster_gives_nulls_not_a_crash(cli, tmp_path, scored):
    X, truth, _ = scored
    path = _table(tmp_path, X, truth, np.zeros(len(X), dtype=int))
    r = cli("cluster", "evaluate", path, "--truth", "truth")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["silhouette"] is None and m["dunn"] is None and m["davies_bouldin"] is None
    assert m["separation"] == pytest.approx(0.0, abs=1e-9)
    assert m["adjusted_rand"] == pytest.approx(0.0)


def test_sample_limits_the_pairwise_metrics(cli, tmp_path, scored):
    X, truth, labels = scored
    path = _table(tmp_path, X, truth, labels)
    a, b = (json.loads(cli("cluster", "evaluate", path, "--sample", "30", "--seed", "1").stdout) for _ in range(2))
    assert a == b and a["pairwise_rows"] == 30
    full = json.loads(cli("cluster", "evaluate", path, "--sample", "0").stdout)
    assert full["pairwise_rows"] == len(X)
    assert full["cohesion"] == pytest.approx(a["cohesion"])  # the O(n) metrics use every row


def test_external_only_table(cli, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"id": str(i), "cluster": i % 3, "label": "abc"[i % 3]}
                                              for i in range(12)])
    r = cli("cluster", "evaluate", path, "--truth", "label")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["adjusted_rand"] == pytest.approx(1.0) and m["silhouette"] is None
    assert_error(cli("cluster", "evaluate", path), "no numeric feature columns", "--truth")


def test_evaluate_errors(cli, tmp_path, scored):
    X, truth, labels = scored
    path = _table(tmp_path, X, truth, labels)
    assert_error(cli("cluster", "evaluate", path, "--labels", "clustr"), "no column 'clustr'", "did you mean 'cluster'")
    assert_error(cli("cluster", "evaluate", path, "--truth", "truht"), "--truth", "did you mean 'truth'")
    assert_error(cli("cluster", "evaluate", path, "--truth", "cluster"), "same column")
    assert_error(cli("cluster", "evaluate", path, "--sample", "-1"), "--sample -1")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[4]["truth"] = None
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert_error(cli("cluster", "evaluate", bad, "--truth", "truth"), "row 5", "'truth'")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npz"])
def test_what_one_command_writes_the_next_reads_the_same(cli, tmp_path, fmt):
    """A zero-padded id and a digit label survive a CSV/npz round trip as text, so neither becomes a feature: the
    silhouette over the read-back table is the one over the two features alone."""
    from sklearn.metrics import silhouette_score

    from dltool.core.tables import read_table

    X, y = blobs()
    rows = [{"id": f"{i:04d}", "label": str(y[i]), "f0": X[i, 0], "f1": X[i, 1]} for i in range(len(X))]
    out = tmp_path / f"k3.{fmt}"
    assert cli("cluster", "kmeans", write_jsonl(tmp_path / "t.jsonl", rows), "-k", "3", "-o", out).code == 0
    back = read_table(str(out))
    assert set(back.numeric_names()) == {"f0", "f1", "cluster"}
    assert list(back.columns["id"][:2]) == ["0000", "0001"] and list(back.columns["label"][:3]) == list(map(str, y[:3]))
    r = cli("cluster", "evaluate", out, "--truth", "label", "--format", "json")
    assert r.code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["silhouette"] == pytest.approx(silhouette_score(X, back.columns["cluster"].astype(int)))
    assert m["adjusted_rand"] == pytest.approx(1.0)
