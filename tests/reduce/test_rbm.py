"""dltool reduce rbm through the CLI: it learns, its features are the saved model's hidden probabilities,
stacked layers, Gibbs samples, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dltool.core.tables import read_table

from .conftest import digits, write_csv

FAST = ("--epochs", 8, "--batch-size", 20, "--lr", 0.5)


def _block(table, prefix="rbm"):
    names = [n for n in table.names if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return np.column_stack([table.columns[n] for n in names])


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """300 digits scaled to [0, 1] (pixel / 16), with an id and a text label passing through."""
    X, y = digits(300)
    X = X / 16.0
    cols = {"id": [f"img{i}" for i in range(len(X))]}
    cols.update({f"p{j}": X[:, j] for j in range(64)})
    cols["label"] = [f"d{v}" for v in y]
    return write_csv(tmp_path_factory.mktemp("rbm") / "pixels.csv", cols), X, y


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _free_energy(X, W, b, c):
    return -(X @ b) - np.logaddexp(0, X @ W.T + c).sum(1)


def test_rbm_learns_features_that_separate_digits_and_are_the_models_hidden_probabilities(cli, pixels, tmp_path):
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    path, X, y = pixels
    out, model, report = tmp_path / "rbm.csv", tmp_path / "rbm.pt", tmp_path / "rbm.json"
    r = cli("reduce", "rbm", path, "-n", 32, *FAST, "--save-model", model, "--report", report, "-o", out)
    assert r.code == 0, r.stderr
    assert "pseudo-likelihood per epoch" in r.stderr
    t = read_table(str(out))
    assert t.names == ["id", *[f"rbm{i}" for i in range(1, 33)], "label"]
    F = _block(t)
    assert F.shape == (300, 32) and F.min() >= 0 and F.max() <= 1
    # the features are sigmoid(X W^T + c) of the saved weights, computed here independently
    state = torch.load(model, weights_only=True)["state_dict"]
    W, b, c = (state[f"0.{k}"].double().numpy() for k in "Wbc")
    np.testing.assert_allclose(F, _sigmoid(X @ W.T + c), atol=1e-5)
    # it learned: a linear classifier on 32 hidden units is far above chance (0.1), and the model prefers
    # real digits to the same pixels shuffled within each row
    acc = cross_val_score(LogisticRegression(C=100, max_iter=3000), F, y, cv=3).mean()
    assert acc > 0.8, acc
    shuffled = np.random.default_rng(0).permuted(X, axis=1)
    assert _free_energy(X, W, b, c).mean() < _free_energy(shuffled, W, b, c).mean() - 5
    rep = json.loads(report.read_text())
    assert rep["layers"] == [32] and rep["cd_k"] == 1 and not rep["persistent"] and len(rep["pseudo_likelihood"][0]) == 8
    assert rep["train_free_energy"] == pytest.approx(_free_energy(X, W, b, c).mean(), rel=1e-4)
    # reduce transform embeds new rows the same way
    r = cli("reduce", "transform", model, path, "--format", "csv", "-q")
    assert r.code == 0, r.stderr
    np.testing.assert_allclose(np.loadtxt(r.stdout.splitlines()[1:], delimiter=",", usecols=range(1, 33)), F,
                               atol=1e-6)


def test_rbm_is_seeded_and_cd_k_and_persistent_change_the_fit(cli, pixels, tmp_path):
    path = pixels[0]

    def fit(*extra):
        r = cli("reduce", "rbm", path, "-n", 8, "--epochs", 2, "--batch-size", 50, *extra, "--format", "csv", "-q")
        assert r.code == 0, r.stderr
        return r.stdout

    first = fit("--seed", 3)
    assert fit("--seed", 3) == first
    assert fit("--seed", 4) != first
    assert fit("--seed", 3, "--cd-k", 3) != first
    assert fit("--seed", 3, "--persistent") != first


def test_dbn_stacks_layers_and_samples_images(cli, pixels, tmp_path):
    import torch
    from PIL import Image

    path, X, _ = pixels
    out, model, grid = tmp_path / "dbn.csv", tmp_path / "dbn.pt", tmp_path / "samples.png"
    r = cli("reduce", "rbm", path, "--layers", "24,6", *FAST, "--scale", "--save-model", model, "--sample", grid,
            "--sample-count", 9, "--gibbs-steps", 20, "-o", out)
    assert r.code == 0, r.stderr
    assert "layer 1/2 (64 -> 24)" in r.stderr and "layer 2/2 (24 -> 6)" in r.stderr
    F = _block(read_table(str(out)))
    assert F.shape == (300, 6)
    # --scale: min-max per column (constant columns stay 0), then the two layers' mean-field pass
    state = torch.load(model, weights_only=True)["state_dict"]
    lo, hi = X.min(0), X.max(0)
    Xs = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
    h = _sigmoid(Xs @ state["0.W"].double().numpy().T + state["0.c"].double().numpy())
    h = _sigmoid(h @ state["1.W"].double().numpy().T + state["1.c"].double().numpy())
    np.testing.assert_allclose(F, h, atol=1e-5)
    image = np.asarray(Image.open(grid))
    assert image.shape == (3 * 9 + 1, 3 * 9 + 1)  # 9 images of 8x8 in a 3x3 grid, 1-pixel borders
    assert image.std() > 0


@pytest.mark.parametrize("args,message", [
    ((), "column 'p2' has the value 5 (row 1), outside [0, 1]"),
    (("--scale", "--sample", "SAMPLE", "--features", "p0,p1,p2"), "the 3 feature columns are no square image"),
    (("-n", 5, "--layers", "8,4"), "-n 5 and --layers 8,4 disagree"),
    (("--gibbs-steps", 5), "--gibbs-steps applies only with --sample"),
    (("--cd-k", 0), "--cd-k 0 must be at least 1"),
    (("--layers", "8,x"), "--layers '8,x' must be comma-separated whole numbers"),
    pytest.param(("--scale", "--device", "cuda"), "--device cuda was asked for but CUDA is not available",
                 marks=pytest.mark.skipif("__import__('torch').cuda.is_available()")),
])
def test_rbm_bad_input_is_one_line_and_leaves_nothing(cli, tmp_path, args, message):
    X, y = digits(20)
    cols = {f"p{j}": X[:, j] for j in range(64)}
    path = write_csv(tmp_path / "raw.csv", cols)
    out, model, grid = tmp_path / "o.csv", tmp_path / "m.pt", tmp_path / "s.png"
    args = [grid if a == "SAMPLE" else a for a in args]
    r = cli("reduce", "rbm", path, *args, "--save-model", model, "-o", out)
    assert r.code == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not out.exists() and not model.exists() and not grid.exists()


@pytest.mark.gpu
def test_rbm_on_cuda_learns(cli, pixels, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    path, _, y = pixels
    r = cli("reduce", "rbm", path, "-n", 32, *FAST, "--layers", "32", "--device", "cuda", "--format", "csv", "-q")
    assert r.code == 0, r.stderr
    F = np.loadtxt(r.stdout.splitlines()[1:], delimiter=",", usecols=range(1, 33))
    assert cross_val_score(LogisticRegression(C=100, max_iter=3000), F, y, cv=3).mean() > 0.8
