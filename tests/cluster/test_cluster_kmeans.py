"""The torch k-means, the engine choice, k-medians, and the digits bar."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.cluster.conftest import blobs, read_out, write_csv


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def test_torch_kmeans_matches_sklearn_inertia(digits):
    from sklearn.cluster import KMeans

    from dltool.cluster.kmeans import TorchKMeans

    X, _ = digits
    ours = TorchKMeans(10, n_init=4, seed=0).fit(X)
    ref = KMeans(10, n_init=4, random_state=0).fit(X)
    assert ours.inertia_ <= ref.inertia_ * 1.02
    # the reported inertia and labels belong to the reported centres
    d = ((X[:, None, :] - ours.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ours.labels_, d.argmin(1))
    assert ours.inertia_ == pytest.approx(d.min(1).sum(), rel=1e-9)
    np.testing.assert_array_equal(ours.predict(X), ours.labels_)


def test_torch_kmeans_is_deterministic_and_keeps_the_best_restart(digits):
    from dltool.cluster.kmeans import TorchKMeans

    X, _ = digits
    a, b = TorchKMeans(10, n_init=3, seed=5).fit(X), TorchKMeans(10, n_init=3, seed=5).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    one = TorchKMeans(10, n_init=1, seed=5).fit(X)  # the first of the three restarts
    assert a.inertia_ <= one.inertia_
    assert TorchKMeans(10, n_init=1, seed=6).fit(X).inertia_ != one.inertia_  # the seed matters


def test_torch_kmeans_max_iter_tol_and_chunking(digits):
    from dltool.cluster.kmeans import TorchKMeans

    X, _ = digits
    assert TorchKMeans(10, n_init=1, max_iter=1).fit(X).n_iter_ == 1
    full = TorchKMeans(10, n_init=1, tol=0).fit(X)
    chunked = TorchKMeans(10, n_init=1, tol=0, chunk_elems=1000).fit(X)  # 100-row chunks
    np.testing.assert_array_equal(full.labels_, chunked.labels_)
    assert TorchKMeans(10, n_init=1, tol=10.0).fit(X).n_iter_ < full.n_iter_


def test_torch_kmeans_duplicate_points_and_empty_clusters():
    from dltool.cluster.kmeans import TorchKMeans

    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    est = TorchKMeans(3, n_init=2).fit(X)
    assert est.inertia_ == pytest.approx(0.0, abs=1e-9)
    assert len(set(est.labels_)) == 3
    est = TorchKMeans(4, n_init=1).fit(X)  # more clusters than distinct points: no crash, no NaN
    assert np.isfinite(est.cluster_centers_).all()


def test_engine_choice():
    from dltool.cluster.kmeans import KMeans

    X, _ = blobs()
    assert KMeans(3).fit(X).engine_ == "sklearn"  # on CPU, measured faster (see kmeans.py)
    assert KMeans(3, engine="torch").fit(X).engine_ == "torch"
    from dltool.core.errors import OptionError

    with pytest.raises(OptionError, match="--engine sklearn runs on CPU only"):
        KMeans(3, engine="sklearn", device="cuda").fit(X)
    with pytest.raises(OptionError, match="did you mean 'torch'"):
        KMeans(3, engine="troch").fit(X)


@pytest.mark.parametrize("engine", ["torch", "sklearn"])
def test_kmeans_engines_through_the_cli(cli, tmp_path, engine):
    X, y = blobs()
    path = write_csv(tmp_path / "t.csv", X)
    runs = [cli("cluster", "kmeans", path, "-k", "3", "--engine", engine, "--n-init", "2") for _ in range(2)]
    assert runs[0].code == 0, runs[0].stderr
    assert f"engine {engine}" in runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert adjusted_rand_score(y, read_out(runs[0].stdout).columns["cluster"]) == 1.0


def test_digits_bar_pca30_then_kmeans(cli, tmp_path, digits):
    """The DESIGN bar for `reduce pca -n 30 | cluster kmeans -k 10`: adjusted Rand >= 0.6 (PCA by sklearn)."""
    from sklearn.decomposition import PCA

    X, y = digits
    Z = PCA(30, random_state=0).fit_transform(X)
    path = write_csv(tmp_path / "digits_pca.csv", Z, y, path_col=False)
    r = cli("cluster", "kmeans", path, "-k", "10", "--exclude", "label", "--seed", "0")
    assert r.code == 0, r.stderr
    t = read_out(r.stdout)
    ari = adjusted_rand_score(t.columns["label"], t.columns["cluster"])
    assert ari >= 0.6, ari
    # and on the raw pixels, with the torch engine
    path = write_csv(tmp_path / "digits.csv", X, y, path_col=False)
    r = cli("cluster", "kmeans", path, "-k", "10", "--exclude", "label", "--engine", "torch", "--n-init", "4")
    assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) >= 0.6


@pytest.mark.gpu
def test_torch_kmeans_on_cuda_matches_cpu(digits):
    from dltool.cluster.kmeans import KMeans

    X, y = digits
    gpu = KMeans(10, n_init=4, device="cuda").fit(X)
    cpu = KMeans(10, n_init=4, engine="torch", device="cpu").fit(X)
    assert gpu.engine_ == "torch"
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=0.02)
    assert adjusted_rand_score(y, gpu.labels_) >= 0.6


# -- k-medians -------------------------------------------------------------------------------------

def test_kmedians_reaches_a_fixed_point():
    """Brute-force check of the definition: labels = nearest centre in L1, centres = coordinate-wise medians."""
    from dltool.cluster.kmeans import KMedians

    X, _ = blobs(n=60, std=1.5)
    est = KMedians(3, n_init=3, seed=1).fit(X)
    for i, x in enumerate(X):
        d = [np.abs(x - c).sum() for c in est.cluster_centers_]
        assert d[est.labels_[i]] == pytest.approx(min(d))
    for j, c in enumerate(est.cluster_centers_):
        members = X[est.labels_ == j]
        np.testing.assert_allclose(c, [np.median(members[:, f]) for f in range(X.shape[1])])
    cost = sum(np.abs(x - est.cluster_centers_[est.labels_[i]]).sum() for i, x in enumerate(X))
    assert est.inertia_ == pytest.approx(cost)


def test_kmedians_resists_an_outlier_that_pulls_kmeans():
    from sklearn.cluster import KMeans

    from dltool.cluster.kmeans import KMedians

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.3, (30, 2)), rng.normal(5, 0.3, (30, 2)), [[5.0, 65.0]]])
    med = KMedians(2, seed=0).fit(X)
    km = KMeans(2, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(np.r_[np.zeros(30), np.ones(31)], med.labels_) == 1.0
    assert adjusted_rand_score(np.r_[np.zeros(30), np.ones(31)], km.labels_) < 0.5
    best = KMedians(2, n_init=5, seed=0).fit(X)
    assert best.inertia_ <= KMedians(2, n_init=1, seed=0).fit(X).inertia_
