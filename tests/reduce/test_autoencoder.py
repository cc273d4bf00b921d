"""`dltool reduce autoencoder` through the CLI on a small table, plus the contractive penalty's gradient check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from .conftest import classification_table, write_csv

FAST = ["--hidden", "32,16", "--batch-size", "32", "--quiet"]


@pytest.fixture
def table_csv(tmp_path):
    """id, f0..f7, label (text): 150 rows."""
    return classification_table(tmp_path / "t.csv", n=150, n_features=8)


def _read(path):
    from dltool.core.tables import read_table

    return read_table(str(path))


def _history(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind,extra", [
    ("undercomplete", []),
    ("sparse", ["--sparsity", "0.01"]),
    ("denoising", ["--noise", "0.3"]),
    ("denoising", ["--corruption", "mask", "--noise", "0.2"]),
    ("contractive", ["--contractive", "0.05"]),
])
def test_each_kind_learns_and_writes_codes(cli, table_csv, tmp_path, kind, extra):
    run, out = tmp_path / "run", tmp_path / "codes.csv"
    r = cli("reduce", "autoencoder", table_csv, "--kind", kind, *extra, "--code-dim", 3, "--epochs", 12,
            "--lr", "0.005", "--val-split", "0.2", "--out", run, "-o", out, "--device", "cpu", *FAST)
    assert r.code == 0, r.stderr
    assert r.stdout == ""  # the table went to -o
    hist = _history(run)
    assert len(hist) == 12
    first, last = hist[0]["val_recon"], min(h["val_recon"] for h in hist)
    assert last < 0.7 * first, (kind, first, last)  # reconstruction clearly below its first-epoch value
    if kind in ("sparse", "contractive"):
        assert hist[-1]["val_penalty"] > 0
    t = _read(out)
    assert t.names == ["id", "ae1", "ae2", "ae3", "label"]  # codes where the features were, the rest passes through
    assert list(t.columns["id"]) == [f"r{i}" for i in range(150)]
    assert np.isfinite(np.column_stack([t.columns[f"ae{j}"] for j in (1, 2, 3)])).all()
    for name in ("model.pt", "best.pt", "last.pt", "config.toml", "summary.json", "curves.png"):
        assert (run / name).exists(), name
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert (ckpt["task"], ckpt["arch"], ckpt["arch_kwargs"]["kind"]) == ("reduce", "autoencoder", kind)
    pre = ckpt["preprocess"]
    assert pre["features"] == [f"f{j}" for j in range(8)] and pre["scaling"] == "standard"
    X = np.column_stack([_read(table_csv).columns[f"f{j}"] for j in range(8)])
    np.testing.assert_allclose(pre["shift"], X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pre["scale"], X.std(0), rtol=1e-12)


def test_transform_reproduces_the_training_embedding(cli, tmp_path):
    from .conftest import classification

    X, y = classification(n=120, n_features=6)
    cols = {"id": [f"r{i}" for i in range(120)], **{f"f{j}": X[:, j] for j in range(6)},
            "label": [f"c{v}" for v in y]}
    table = write_csv(tmp_path / "t.csv", cols)
    run, out = tmp_path / "run", tmp_path / "codes.csv"
    r = cli("reduce", "autoencoder", table, "--epochs", 5, "--out", run, "-o", out, "--device", "cpu", *FAST)
    assert r.code == 0, r.stderr
    # new rows: a subset, columns in another order, through `reduce transform` like a PCA model
    idx = np.arange(0, 120, 7)
    sub = {"label": [cols["label"][i] for i in idx], **{f"f{j}": X[idx, j] for j in reversed(range(6))},
           "id": [cols["id"][i] for i in idx]}
    sub_csv = write_csv(tmp_path / "new.csv", sub)
    r = cli("reduce", "transform", run / "model.pt", sub_csv, "--format", "jsonl", "--device", "cpu")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    trained = _read(out)
    assert [row["id"] for row in rows] == [f"r{i}" for i in idx]
    for k in ("ae1", "ae2"):
        np.testing.assert_array_equal([row[k] for row in rows], trained.columns[k][idx])


def test_contractive_penalty_matches_numerical_jacobian():
    """Gradient check: the exact Jacobian norm equals central differences, and its gradient passes gradcheck."""
    from dltool.nn.autoencoder import AutoencoderNet, AutoencoderTask, jacobian_sq_norm

    torch.manual_seed(0)
    for act in ("tanh", "sigmoid", "softplus"):
        net = AutoencoderNet(in_features=5, code_dim=3, hidden=(7, 4), activation=act).double()
        x = torch.randn(6, 5, dtype=torch.float64)
        exact = jacobian_sq_norm(net.encoder, x)
        eps = 1e-6
        numeric = []
        for row in x:
            cols = [(net.encoder(row + eps * e) - net.encoder(row - eps * e)) / (2 * eps)
                    for e in torch.eye(5, dtype=torch.float64)]
            numeric.append(torch.stack(cols, 1).pow(2).sum())
        torch.testing.assert_close(exact, torch.stack(numeric), rtol=1e-6, atol=1e-9)
        # the task's penalty is weight x the batch mean of exactly that
        task = AutoencoderTask("contractive", contractive=0.5)
        recon, penalty = task.terms(net, x, train=True)
        torch.testing.assert_close(penalty, 0.5 * torch.stack(numeric).mean(), rtol=1e-6, atol=1e-9)
        # its gradient with respect to the input, against finite differences
        assert torch.autograd.gradcheck(lambda inp, enc=net.encoder: jacobian_sq_norm(enc, inp),
                                        (x.clone().requires_grad_(),))
        # and with respect to the weights, as training takes it (backward through the captured parameters)
        w = net.encoder[0].weight
        net.zero_grad()
        jacobian_sq_norm(net.encoder, x).sum().backward()
        numeric_grad = torch.zeros_like(w)
        with torch.no_grad():
            for i in range(w.shape[0]):
                for j in range(w.shape[1]):
                    w[i, j] += eps
                    up = jacobian_sq_norm(net.encoder, x).sum()
                    w[i, j] -= 2 * eps
                    down = jacobian_sq_norm(net.encoder, x).sum()
                    w[i, j] += eps
                    numeric_grad[i, j] = (up - down) / (2 * eps)
        torch.testing.assert_close(w.grad, numeric_grad, rtol=1e-5, atol=1e-7)


def test_same_seed_same_output(cli, table_csv):
    args = ("reduce", "autoencoder", table_csv, "--epochs", 3, "--kind", "denoising", "--format", "jsonl",
            "--device", "cpu", *FAST)
    runs = [cli(*args, "--seed", seed, "--out", f"{table_csv}.run{i}") for i, seed in enumerate((7, 7, 8))]
    assert all(r.code == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout != runs[2].stdout


def test_resume_continues_a_run(cli, table_csv, tmp_path):
    run = tmp_path / "run"
    base = ("reduce", "autoencoder", table_csv, "--out", run, "-o", tmp_path / "codes.csv", "--device", "cpu", *FAST)
    assert cli(*base, "--epochs", 2).code == 0
    r = cli(*base, "--epochs", 4, "--resume")
    assert r.code == 0, r.stderr
    assert [h["epoch"] for h in _history(run)] == [1, 2, 3, 4]
    r = cli(*base, "--epochs", 2)
    assert r.code == 1 and "already exists" in r.stderr  # a trained model is never replaced by accident
    r = cli(*base, "--epochs", 4, "--resume", "--lr", "0.5")  # the run used the optimizer's default: named
    assert r.code == 1 and "--lr (was 0.001, adam's default, now 0.5)" in r.stderr, r.stderr


def _assert_error(r, fragment, *leftovers):
    assert r.code == 1, (r.code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith(("warning:", "note:"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert fragment in lines[0], lines[0]
    for path in leftovers:
        assert not path.exists(), f"{path} was left behind"


@pytest.mark.parametrize("args,fragment", [
    (["--code-dim", "0"], "--code-dim 0"),
    (["--code-dim", "8"], "not smaller than the 8 feature columns"),
    (["--kind", "sparce"], "did you mean 'sparse'"),
    (["--hidden", "64,x"], "--hidden '64,x'"),
    (["--activation", "rleu"], "did you mean 'relu'"),
    (["--kind", "denoising", "--noise", "-1"], "--noise -1.0"),
    (["--noise", "0.1"], "--noise does not apply to --kind undercomplete"),
    (["--kind", "sparse", "--contractive", "0.01"], "--contractive does not apply to --kind sparse"),
    (["--val-split", "1.5"], "--val-split 1.5"),
    (["--epochs", "0"], "--epochs 0"),
])
def test_bad_options_fail_cleanly(cli, table_csv, tmp_path, args, fragment):
    run, out = tmp_path / "run", tmp_path / "codes.csv"
    r = cli("reduce", "autoencoder", table_csv, *args, "--out", run, "-o", out, "--device", "cpu", "--quiet")
    _assert_error(r, fragment, run, out)


def test_table_without_numeric_columns_fails_cleanly(cli, tmp_path):
    table = write_csv(tmp_path / "words.csv", {"id": ["a", "b", "c"], "word": ["x", "y", "z"]})
    run, out = tmp_path / "run", tmp_path / "codes.csv"
    r = cli("reduce", "autoencoder", table, "--out", run, "-o", out, "--device", "cpu")
    _assert_error(r, "no numeric feature columns", run, out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_fails_cleanly(cli, table_csv, tmp_path):
    run, out = tmp_path / "run", tmp_path / "codes.csv"
    r = cli("reduce", "autoencoder", table_csv, "--device", "cuda", "--out", run, "-o", out)
    _assert_error(r, "CUDA is not available", run, out)


@pytest.mark.gpu
def test_trains_and_transforms_on_cuda(cli, table_csv, tmp_path):
    run = tmp_path / "run"
    r = cli("reduce", "autoencoder", table_csv, "--kind", "contractive", "--epochs", 3, "--device", "cuda",
            "--out", run, "--format", "jsonl", "--quiet")
    assert r.code == 0, r.stderr
    trained = [json.loads(line) for line in r.stdout.splitlines()]
    r = cli("reduce", "transform", run / "model.pt", table_csv, "--device", "cuda", "--format", "jsonl")
    assert r.code == 0, r.stderr
    again = [json.loads(line) for line in r.stdout.splitlines()]
    np.testing.assert_allclose([t["ae1"] for t in again], [t["ae1"] for t in trained], atol=1e-5)
