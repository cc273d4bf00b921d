"""`dltool cluster deep` (DEC) through the CLI: blobs, outputs, the model file, resume, determinism, bad input,
and the digits bar against k-means on the raw pixels."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from tests.cluster.conftest import assert_error, read_out, write_csv

# a small network that is plenty for two-feature blobs
FAST = ["--hidden", "64,32", "--code-dim", "3", "--pretrain-epochs", "30", "--batch-size", "16", "--device", "cpu",
        "--quiet"]


def _history(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_recovers_blobs_with_soft_assignments(cli, blobs_table, tmp_path):
    path, X, y = blobs_table
    run, out, png = tmp_path / "run", tmp_path / "out.csv", tmp_path / "plot.png"
    r = cli("cluster", "deep", path, "-k", 3, *FAST, "--out", run, "-o", out, "--plot", png)
    assert r.code == 0, r.stderr
    assert r.stdout == ""
    t = read_out(out)
    assert t.names == ["path", "f0", "f1", "cluster", "prob_0", "prob_1", "prob_2"]
    assert list(t.columns["path"]) == [f"img{i:03d}.png" for i in range(len(X))]
    np.testing.assert_allclose(np.column_stack([t.columns["f0"], t.columns["f1"]]), X)
    labels = t.columns["cluster"]
    assert adjusted_rand_score(y, labels) > 0.9
    P = np.column_stack([t.columns[f"prob_{j}"] for j in range(3)])
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(P.argmax(1), labels)
    for name in ("model.pt", "metrics.jsonl", "curves.png", "config.toml", "summary.json", "pretrain/model.pt",
                 "pretrain/metrics.jsonl"):
        assert (run / name).exists(), name
    assert png.exists()
    # the model file alone reproduces the assignments (feature scaling travels inside it)
    from dltool.cluster.deep import load

    est = load(run / "model.pt")
    np.testing.assert_array_equal(est.predict(X), labels)
    np.testing.assert_allclose(est.predict_proba(X), P, atol=1e-6)
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert (ckpt["task"], ckpt["arch"]) == ("cluster", "deep")
    assert ckpt["preprocess"]["features"] == ["f0", "f1"]


def test_target_updates_and_tolerance(cli, blobs_table, tmp_path):
    """--tol 0 runs every epoch and logs the changed share; --update-interval N updates within epochs."""
    path, _, _ = blobs_table
    for interval in (0, 2):
        run = tmp_path / f"run{interval}"
        r = cli("cluster", "deep", path, "-k", 3, *FAST, "--epochs", 3, "--tol", 0, "--update-interval", interval,
                "--out", run, "-o", tmp_path / "out.csv")
        assert r.code == 0, r.stderr
        hist = _history(run)
        assert [h["epoch"] for h in hist] == [1, 2, 3]
        assert all(0 <= h["changed"] <= 1 for h in hist)
    r = cli("cluster", "deep", path, "-k", 3, *FAST, "--epochs", 50, "--tol", 0.5, "--out", tmp_path / "run_tol",
            "-o", tmp_path / "out.csv")
    assert r.code == 0 and len(_history(tmp_path / "run_tol")) == 1  # converged: under half the rows moved


def test_same_seed_same_output_another_seed_another_result(cli, blobs_table, tmp_path):
    """Another seed starts the network elsewhere: the blobs' clusters stay, the soft assignments move (compared
    as each row's largest probability, which does not depend on how the clusters are numbered)."""
    path, _, _ = blobs_table
    args = ("cluster", "deep", path, "-k", 3, *FAST, "--pretrain-epochs", 5, "--epochs", 3, "--tol", 0,
            "--format", "jsonl")
    a, b, c = (cli(*args, "--seed", seed, "--out", tmp_path / f"run{i}") for i, seed in enumerate((5, 5, 6)))
    assert a.code == b.code == c.code == 0, a.stderr
    assert a.stdout == b.stdout
    top = [np.array([max(v for k, v in json.loads(line).items() if k.startswith("prob_"))
                     for line in r.stdout.splitlines()]) for r in (a, c)]
    assert not np.allclose(*top, atol=1e-4)


def test_resume_after_pretraining_gives_the_same_result(cli, blobs_table, tmp_path):
    """A run stopped between the phases resumes without pretraining again and ends where a full run does."""
    path, _, _ = blobs_table
    run = tmp_path / "run"
    args = ("cluster", "deep", path, "-k", 3, *FAST, "--epochs", 3, "--tol", 0, "--format", "jsonl", "--out", run)
    full = cli(*args)
    assert full.code == 0, full.stderr
    pretrain_model = (run / "pretrain" / "model.pt").stat().st_mtime_ns
    for name in ("last.pt", "best.pt", "model.pt", "metrics.jsonl", "summary.json", "config.toml", "curves.png"):
        (run / name).unlink()  # as if interrupted right after pretraining
    resumed = cli(*args, "--resume")
    assert resumed.code == 0, resumed.stderr
    assert resumed.stdout == full.stdout
    assert (run / "pretrain" / "model.pt").stat().st_mtime_ns == pretrain_model


@pytest.mark.parametrize("args,fragment", [
    (["-k", "1"], "-k 1"),
    (["-k", "3", "--code-dim", "0"], "--code-dim 0"),
    (["-k", "3", "--hidden", "64,-1"], "--hidden"),
    (["-k", "3", "--tol", "-0.1"], "--tol -0.1"),
    (["-k", "3", "--scaling", "minmx"], "--scaling 'minmx'"),
    (["-k", "500"], "-k 500 is more than the 120 rows"),
])
def test_bad_options_fail_cleanly(cli, blobs_table, tmp_path, args, fragment):
    path, _, _ = blobs_table
    run, out = tmp_path / "run", tmp_path / "out.csv"
    r = cli("cluster", "deep", path, *args, "--out", run, "-o", out, "--device", "cpu")
    assert_error(r, fragment, output=out)
    assert not run.exists()


def test_table_without_numeric_columns_fails_cleanly(cli, tmp_path):
    table = tmp_path / "words.csv"
    table.write_text("id,word\na,x\nb,y\nc,z\n")
    run, out = tmp_path / "run", tmp_path / "out.csv"
    assert_error(cli("cluster", "deep", table, "-k", 2, "--out", run, "-o", out), "no numeric feature columns",
                 output=out)
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_fails_cleanly(cli, blobs_table, tmp_path):
    path, _, _ = blobs_table
    run, out = tmp_path / "run", tmp_path / "out.csv"
    assert_error(cli("cluster", "deep", path, "-k", 3, "--device", "cuda", "--out", run, "-o", out),
                 "CUDA is not available", output=out)
    assert not run.exists()


@pytest.mark.gpu
def test_clusters_blobs_on_cuda(cli, blobs_table, tmp_path):
    path, _, y = blobs_table
    gpu_args = [a if a != "cpu" else "cuda" for a in FAST]
    r = cli("cluster", "deep", path, "-k", 3, *gpu_args, "--out", tmp_path / "run", "--format", "jsonl")
    assert r.code == 0, r.stderr
    assert adjusted_rand_score(y, [json.loads(line)["cluster"] for line in r.stdout.splitlines()]) > 0.9


@pytest.mark.slow
def test_digits_bar(cli, tmp_path):
    """With its defaults, deep clustering of the 1,797 digits matches or beats k-means on the raw pixels."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    table = write_csv(tmp_path / "digits.csv", X, y, names=[f"p{j}" for j in range(64)])
    kmeans_ari = adjusted_rand_score(y, KMeans(10, n_init=10, random_state=0).fit_predict(X))
    t0 = time.perf_counter()
    r = cli("cluster", "deep", table, "-k", 10, "--exclude", "label", "--device", "cpu", "--out", tmp_path / "run",
            "-o", tmp_path / "out.csv", "--quiet")
    seconds = time.perf_counter() - t0
    assert r.code == 0, r.stderr
    deep_ari = adjusted_rand_score(y, read_out(tmp_path / "out.csv").columns["cluster"])
    print(f"digits ARI: cluster deep {deep_ari:.3f} in {seconds:.1f} s; k-means on raw pixels {kmeans_ari:.3f}")
    assert deep_ari >= kmeans_ari, (deep_ari, kmeans_ari)
    assert seconds < 60


