"""Bad input fails with exit 1, one `error:` line and no output file; same seed, same output."""

from __future__ import annotations

import pytest

from .conftest import write_csv

METHOD_ARGS = {
    "pca": ["reduce", "pca"],
    "kpca": ["reduce", "kpca"],
    "ica": ["reduce", "ica"],
    "mds": ["reduce", "mds", "--max-iter", 50],
    "tsne": ["reduce", "tsne", "--perplexity", 8, "--max-iter", 260],
}
DETERMINISTIC = {"pca", "mds"}  # exact SVD; SMACOF from the classical-MDS start: no --seed
SELECT_ARGS = {
    "pearson": [], "spearman": [], "chi2": [], "mi": [], "anova": [], "permutation": ["--n-repeats", 3],
    "forest": [], "l1": [], "rfe": ["--k", 3], "sfs": ["--k", 2, "--cv", 3], "sbe": ["--k", 6, "--cv", 3],
    "genetic": ["--population", 6, "--generations", 3, "--cv", 3], "hybrid": ["--k", 2, "--pre-k", 3, "--cv", 3],
}


def _one_error_line(r):
    assert r.code == 1, (r.code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith(("warning:", "note:"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture
def small_csv(tmp_path):
    from .conftest import classification_table

    return classification_table(tmp_path / "small.csv", n=60, n_features=7)


@pytest.mark.parametrize("method", list(METHOD_ARGS) + [f"select-{m}" for m in SELECT_ARGS])
def test_same_seed_same_output(cli, small_csv, method):
    if method.startswith("select-"):
        name = method.split("-", 1)[1]
        args = ["reduce", "select", small_csv, "--target", "label", "--method", name, *SELECT_ARGS[name]]
    else:
        args = [*METHOD_ARGS[method], small_csv]
    seed = [] if method in DETERMINISTIC else ["--seed", 3]
    a = cli(*args, *seed, "--format", "csv", "-q")
    b = cli(*args, *seed, "--format", "csv", "-q")
    assert a.code == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.count("\n") == 61


BAD = {
    "no numeric columns": ({"name": ["a", "b", "c"], "kind": ["x", "y", "z"]}, [], "no numeric feature columns"),
    "nan": ({"a": [1.0, 2.0, float("nan"), 4.0], "b": [1.0, 0.0, 1.0, 3.0]}, [], "row 3, column 'a'"),
    "n too large": ({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 1.0, 3.0]}, ["-n", 3], "-n 3 is more than the 2 feature columns"),
    "single row": ({"a": [1.0], "b": [2.0], "c": [3.0]}, ["-n", 1], "1 row"),
    "string in numeric column": ({"a": ["1", "2", "oops", "4", "5"], "b": [1.0, 2.0, 3.0, 4.0, 5.0]}, [],
                                 "row 3, column 'a': 'oops' is not a number"),
    "variance zero": ({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 1.0, 3.0]}, ["--variance", 0], "--variance 0.0 is outside (0, 1]"),
    "variance above one": ({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 1.0, 3.0]}, ["--variance", 1.5], "outside (0, 1]"),
    "variance negative": ({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 1.0, 3.0]}, ["--variance=-0.2"], "outside (0, 1]"),
}


@pytest.mark.parametrize(("method", "case"), [(m, c) for m in ("pca", "ica") for c in BAD
                                               if m == "pca" or not c.startswith("variance")])
def test_bad_tables_and_options(cli, tmp_path, case, method):
    columns, extra, message = BAD[case]
    path = write_csv(tmp_path / "bad.csv", columns)
    out = tmp_path / "out.csv"
    line = _one_error_line(cli("reduce", method, path, *extra, "-o", out, "--save-model", tmp_path / "m.pt"))
    assert message in line
    assert not out.exists() and not (tmp_path / "m.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]  # no temporary files either


def test_dropna_drops_the_bad_rows(cli, tmp_path):
    path = write_csv(tmp_path / "nan.csv", {"id": ["a", "b", "c", "d", "e"], "x": [1.0, float("nan"), 3.0, 4.0, 6.0],
                                            "y": [2.0, 1.0, 0.0, 5.0, 1.0]})
    r = cli("reduce", "pca", path, "-n", 1, "--dropna", "--format", "csv")
    assert r.code == 0, r.stderr
    assert "dropped 1 of 5 rows" in r.stderr
    assert [ln.split(",")[0] for ln in r.stdout.splitlines()] == ["id", "a", "c", "d", "e"]


def test_missing_file_and_wrong_model_task(cli, tmp_path, small_csv):
    from dltool.core.modelfile import save_model

    out = tmp_path / "out.csv"
    line = _one_error_line(cli("reduce", "pca", tmp_path / "nope.csv", "-o", out))
    assert "'" + str(tmp_path / "nope.csv") + "' does not exist" in line
    line = _one_error_line(cli("reduce", "transform", tmp_path / "nope.pt", small_csv, "-o", out))
    assert "does not exist" in line
    import torch

    other = tmp_path / "cluster.pt"
    save_model(other, task="cluster", arch="kmeans", arch_kwargs={}, state_dict={"centers": torch.zeros(2, 2)})
    line = _one_error_line(cli("reduce", "transform", other, small_csv, "-o", out))
    assert "is a 'cluster' model, not a 'reduce' model" in line
    assert not out.exists()


def test_select_target_errors(cli, small_csv, tmp_path):
    out = tmp_path / "out.csv"
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "lable", "-o", out))
    assert "--target: no column 'lable'" in line and "did you mean 'label'" in line
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "label", "--k", 99, "-o", out))
    assert "--k 99 is more than the 7 feature columns" in line
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "f6", "--method", "chi2", "-o", out))
    assert "chi2 needs class labels" in line
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "label", "--k", 2, "--elbow", "-o", out))
    assert "alternative cut-off rules" in line
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "label", "--method", "sfs", "--elbow",
                               "-o", out))
    assert "--elbow does not apply to --method sfs" in line
    line = _one_error_line(cli("reduce", "select", small_csv, "--target", "label", "--method", "frest", "-o", out))
    assert "did you mean 'forest'" in line
    assert not out.exists()


def test_device_cuda_without_cuda_fails(cli, small_csv, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out.csv"
    for args in (["reduce", "pca", small_csv], ["reduce", "tsne", small_csv],
                 ["reduce", "select", small_csv, "--target", "label"]):
        line = _one_error_line(cli(*args, "--device", "cuda", "-o", out))
        assert "CUDA is not available" in line
    assert not out.exists()


def test_cpu_only_methods_say_so_on_another_device(cli, small_csv, monkeypatch):
    import torch

    from dltool.core import device as core_device

    monkeypatch.setattr(core_device, "resolve_device", lambda name=None: torch.device("cuda"))
    r = cli("reduce", "kpca", small_csv, "--device", "cuda", "--format", "csv")
    assert r.code == 0, r.stderr
    assert r.stderr.count("kpca has no GPU implementation; running on CPU") == 1
