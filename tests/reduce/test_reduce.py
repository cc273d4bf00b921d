"""dltool reduce pca|kpca|ica|mds|tsne|transform through the CLI, against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dltool.core.tables import read_table

from .conftest import digits, digits_table


def _block(table, prefix):
    names = [n for n in table.names if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return np.column_stack([table.columns[n] for n in names])


def _same_up_to_sign(A, B, atol=1e-6):
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A, B * signs, atol=atol)


def test_pca_matches_sklearn_up_to_sign_and_keeps_passthrough(cli, digits_csv, tmp_path):
    from sklearn.decomposition import PCA

    out = tmp_path / "pca.csv"
    r = cli("reduce", "pca", digits_csv, "-n", 5, "-o", out)
    assert r.code == 0, r.stderr
    assert r.stdout == ""
    t = read_table(str(out))
    assert t.names == ["id", "pc1", "pc2", "pc3", "pc4", "pc5", "label", "note"]
    X, y = digits(120)
    assert list(t.columns["id"]) == [f"img{i}" for i in range(120)]
    assert list(t.columns["label"]) == [f"d{v}" for v in y]
    _same_up_to_sign(_block(t, "pc"), PCA(5).fit_transform(X))
    assert "E(k)" in r.stderr and "<- kept" in r.stderr


def test_pca_variance_picks_sklearns_k_and_reports_variance(cli, digits_csv, tmp_path):
    from sklearn.decomposition import PCA

    report = tmp_path / "pca.json"
    r = cli("reduce", "pca", digits_csv, "--variance", 0.95, "--report", report, "--format", "csv")
    assert r.code == 0, r.stderr
    X, _ = digits(120)
    sk = PCA(n_components=0.95, svd_solver="full").fit(X)
    rep = json.loads(report.read_text())
    k = rep["n_components"]
    assert k == sk.n_components_
    assert r.stdout.splitlines()[0].split(",")[1:k + 1] == [f"pc{i}" for i in range(1, k + 1)]
    ratio = np.array(rep["explained_variance_ratio"])
    assert ratio.sum() == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(ratio[:k], sk.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(rep["lost_share"], np.clip(1 - np.cumsum(ratio), 0, 1), atol=1e-12)
    assert rep["variance_kept"] > 0.95 >= sum(ratio[:k - 1])
    assert rep["variance_lost"] == pytest.approx(1 - rep["variance_kept"], abs=1e-12)
    r = cli("reduce", "pca", digits_csv, "--variance", 1.0, "--report", report, "-q", "-o", tmp_path / "all.csv")
    assert r.code == 0 and r.stderr == ""
    assert json.loads(report.read_text())["variance_kept"] == pytest.approx(1.0)


def test_torch_svd_path_matches_sklearn():
    """The CUDA code path (exact torch SVD, sklearn's sign rule), run here on CPU tensors."""
    from sklearn.decomposition import PCA

    from dltool.reduce.pca import _torch_full_svd

    X, _ = digits(80)
    mean, S, Vt = _torch_full_svd(X, "cpu")
    sk = PCA(svd_solver="full").fit(X)
    np.testing.assert_allclose(mean, sk.mean_, atol=1e-12)
    np.testing.assert_allclose(S, sk.singular_values_, rtol=1e-8, atol=1e-8)
    k = int(np.sum(sk.singular_values_ > 1e-6 * sk.singular_values_[0]))
    np.testing.assert_allclose(Vt[:k], sk.components_[:k], atol=1e-8)


@pytest.mark.gpu
def test_pca_on_cuda_equals_cpu(cli, digits_csv, tmp_path):
    a = cli("reduce", "pca", digits_csv, "-n", 4, "--device", "cpu", "--format", "csv")
    b = cli("reduce", "pca", digits_csv, "-n", 4, "--device", "cuda", "--format", "csv")
    assert a.code == b.code == 0
    ta, tb = (read_table_text(x.stdout) for x in (a, b))
    np.testing.assert_allclose(_block(tb, "pc"), _block(ta, "pc"), atol=1e-8)


def read_table_text(text):
    from dltool.core.tables import _read_csv

    return _read_csv(text, "stdout")


SKLEARN_TWINS = {
    "pca": (["-n", 4], lambda: __import__("sklearn.decomposition", fromlist=["PCA"]).PCA(4, svd_solver="full")),
    "kpca": (["-n", 3, "--kernel", "rbf", "--gamma", 0.002],
             lambda: __import__("sklearn.decomposition", fromlist=["KernelPCA"]).KernelPCA(
                 3, kernel="rbf", gamma=0.002, random_state=0)),
    "kpca-poly": (["-n", 3, "--kernel", "poly", "--gamma", 0.001, "--degree", 2],
                  lambda: __import__("sklearn.decomposition", fromlist=["KernelPCA"]).KernelPCA(
                      3, kernel="poly", gamma=0.001, degree=2, random_state=0)),
    # digits have constant pixels; dltool's ICA gives them weight 0 = sklearn on the varying ones
    "ica": (["-n", 3], lambda: _varying(__import__("sklearn.decomposition", fromlist=["FastICA"]).FastICA(
        3, whiten="unit-variance", max_iter=400, random_state=0))),
    "pca-standardized": (["-n", 4, "--standardize"], lambda: _scaled(
        __import__("sklearn.decomposition", fromlist=["PCA"]).PCA(4, svd_solver="full"))),
}


def _varying(est):
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.pipeline import make_pipeline

    return make_pipeline(VarianceThreshold(0.0), est)


def _scaled(est):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), est)


@pytest.mark.parametrize("case", list(SKLEARN_TWINS))
def test_saved_model_transform_reproduces_sklearn(cli, tmp_path, case):
    import torch

    method = case.split("-")[0]
    args, make = SKLEARN_TWINS[case]
    train, Xtr = digits_table(tmp_path / "train.csv", 100, 0)
    test, Xte = digits_table(tmp_path / "test.csv", 40, 500)
    model = tmp_path / "m.pt"
    r = cli("reduce", method, train, *args, "--save-model", model, "-o", tmp_path / "fit.csv")
    assert r.code == 0, r.stderr
    r = cli("reduce", "transform", model, test, "-o", tmp_path / "new.csv")
    assert r.code == 0, r.stderr
    prefix = {"pca": "pc", "kpca": "kpc", "ica": "ic"}[method]
    new = read_table(str(tmp_path / "new.csv"))
    assert new.names[0] == "id" and new.names[-2:] == ["label", "note"]
    sk = make().fit(Xtr)
    expected = sk.transform(Xte)
    fitted = _block(read_table(str(tmp_path / "fit.csv")), prefix)
    if method == "pca":  # our fit equals sklearn's exactly; only the sign convention could differ
        _same_up_to_sign(_block(new, prefix), expected)
    else:
        np.testing.assert_allclose(_block(new, prefix), expected, atol=1e-6)
        np.testing.assert_allclose(fitted, sk.transform(Xtr) if method == "ica" else sk.fit_transform(Xtr),
                                   atol=1e-6)
    # the model file holds tensors and plain data only
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["task"] == "reduce" and ckpt["arch"] == method
    assert ckpt["preprocess"]["features"] == [f"p{j}" for j in range(64)]
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())


def test_transform_needs_the_fitted_columns(cli, digits_csv, tmp_path):
    model = tmp_path / "pca.pt"
    assert cli("reduce", "pca", digits_csv, "--save-model", model, "-q", "-o", tmp_path / "a.csv").code == 0
    t = read_table(digits_csv)
    cols = {n: c for n, c in t.columns.items() if n != "p12"}
    cols["p_12"] = t.columns["p12"]
    from dltool.core.tables import Table, write_table

    bad = tmp_path / "renamed.csv"
    write_table(Table(cols), str(bad), "csv")
    out = tmp_path / "out.csv"
    r = cli("reduce", "transform", model, bad, "-o", out)
    assert r.code == 1
    assert r.stderr.startswith("error: the table has no column 'p12'") and "p_12" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("method", ["mds", "tsne"])
def test_mds_and_tsne_cannot_be_saved(cli, digits_csv, tmp_path, method):
    r = cli("reduce", method, digits_csv, "--save-model", tmp_path / "m.pt", "-o", tmp_path / "o.csv")
    assert r.code == 1
    assert "has no transform for new rows" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "o.csv").exists()


def _pixels(png, colour, alpha: float = 1.0) -> int:
    """Pixels of the PNG in `colour` drawn with `alpha` over white, after checking the file is a drawn figure:
    a plot's size (6.4 x 5.6 or 7 x 4.2 inches at 110 dpi, trimmed to what is drawn), and not blank."""
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    rgb = imread(png)[..., :3]
    h, w = rgb.shape[:2]
    assert 450 < w < 800 and 300 < h < 700, (w, h)
    assert (rgb.min(-1) < 0.95).mean() > 0.02, "a blank figure"
    return int((np.abs(rgb - (alpha * np.array(to_rgb(colour)) + 1 - alpha)).max(-1) < 0.03).sum())


def _scatter_colours(png) -> list[int]:
    """Pixels of a --plot scatter in each of its ten colours (tab10, points at alpha 0.8); the points spread
    over the axes, as autoscaling puts them."""
    from matplotlib import colormaps
    from matplotlib.image import imread

    counts = [_pixels(png, colormaps["tab10"](i), alpha=0.8) for i in range(10)]
    rgb = imread(png)[..., :3]
    ys, xs = np.nonzero(rgb.max(-1) - rgb.min(-1) > 0.15)  # coloured pixels: points, not axes or text
    assert np.ptp(xs) > 0.5 * rgb.shape[1] and np.ptp(ys) > 0.5 * rgb.shape[0]
    return counts


def test_manifold_methods_embed_and_plot(cli, digits_csv, tmp_path):
    for method, prefix, extra in (("mds", "mds", ["--max-iter", 100]),
                                  ("tsne", "tsne", ["--perplexity", 10, "--max-iter", 300])):
        plot = tmp_path / f"{method}.png"
        r = cli("reduce", method, digits_csv, *extra, "--plot", plot, "-o", tmp_path / f"{method}.csv")
        assert r.code == 0, r.stderr
        t = read_table(str(tmp_path / f"{method}.csv"))
        assert t.names == ["id", f"{prefix}1", f"{prefix}2", "label", "note"]
        Y = _block(t, prefix)
        assert Y.shape == (120, 2) and np.isfinite(Y).all() and Y.std(axis=0).min() > 0
        assert min(_scatter_colours(plot)) > 200, method  # coloured by the label column: ten digits


def test_plots_and_color_by(cli, digits_csv, tmp_path):
    plot, vplot = tmp_path / "s.png", tmp_path / "v.png"
    r = cli("reduce", "pca", digits_csv, "--plot", plot, "--variance-plot", vplot, "--color-by", "note",
            "-o", tmp_path / "o.csv")
    assert r.code == 0, r.stderr
    one = _scatter_colours(plot)  # 'note' holds one value: every point in the first colour
    assert one[0] > 2000 and sum(one[1:7] + one[8:]) < 50, one  # (colour 7 is grey, as the axes' text is)
    r = cli("reduce", "pca", digits_csv, "--plot", tmp_path / "d.png", "-o", tmp_path / "d.csv")
    assert r.code == 0, r.stderr
    assert min(_scatter_colours(tmp_path / "d.png")) > 200  # by default, by the label column: each digit in its colour
    bars, cumulative = _pixels(vplot, "#4c72b0"), _pixels(vplot, "#dd8452")
    assert bars > 2000 and cumulative > 200, (bars, cumulative)
    r = cli("reduce", "pca", digits_csv, "--plot", tmp_path / "x.png", "--color-by", "lable",
            "-o", tmp_path / "x.csv")
    assert r.code == 1 and "did you mean 'label'" in r.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.csv").exists()


def test_reads_stdin_and_writes_jsonl(cli, digits_csv):
    text = open(digits_csv).read()
    r = cli("reduce", "pca", "-", "-n", 2, input=text)
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 120 and list(rows[0]) == ["id", "pc1", "pc2", "label", "note"]


def test_tsne_embed_api():
    from dltool.reduce.tsne import tsne_embed

    X, _ = digits(60)
    a = tsne_embed(X, n_components=2, perplexity=10.0, init="pca", seed=0, max_iter=300)
    b = tsne_embed(X, 2, 10.0, "pca", 0, max_iter=300)
    assert a.shape == (60, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    c = tsne_embed(X, 2, 10.0, "random", 1, backend="sklearn", max_iter=300)  # the baseline backend
    assert c.shape == (60, 2) and np.isfinite(c).all()


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom dltool.cli import main\n"
            "for path in (['reduce'], ['reduce', 'pca'], ['reduce', 'select'], ['reduce', 'transform']):\n"
            "    try:\n        main(path + ['--help'])\n    except SystemExit as e:\n        assert e.code == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Example: dltool reduce") == 3


def test_cli_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys\nimport dltool.cli.reduce\n"
            "heavy = [m for m in ('numpy', 'sklearn', 'torch', 'scipy', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_tsne_says_when_it_caps_the_perplexity(cli, tmp_path):
    path, _ = digits_table(tmp_path / "d.csv", n=40)
    r = cli("reduce", "tsne", path, "--perplexity", 20, "--max-iter", 260, "--format", "csv")
    assert r.code == 0, r.stderr
    assert "warning: --perplexity 20 is more than (rows - 1) / 3 = 13 for 40 rows; using 13" in r.stderr
    r = cli("reduce", "tsne", path, "--perplexity", 10, "--max-iter", 260, "--format", "csv")
    assert "perplexity" not in r.stderr


def test_ica_non_convergence_is_one_line(cli, digits_csv):
    r = cli("reduce", "ica", digits_csv, "-n", 3, "--max-iter", 1, "--format", "csv")
    assert r.code == 0, r.stderr
    assert r.stderr.count("warning: ica did not converge in 1 iterations") == 1
    assert "ConvergenceWarning" not in r.stderr
