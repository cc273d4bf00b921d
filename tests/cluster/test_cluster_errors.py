"""Bad input and impossible options: exit 1, one `error: ...` line, no output file left behind."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cluster.conftest import assert_error, blobs, write_csv, write_jsonl

# a few methods of each kind: with -k, density-based, graph-based
CASES = [("kmeans", ["-k", "3"]), ("gmm", ["-k", "3"]), ("dbscan", []), ("agglomerative", ["-k", "3"]),
         ("graph", ["--radius", "1"])]


def run_with_output(cli, tmp_path, method, path, *args):
    out, png = tmp_path / "out.csv", tmp_path / "out.png"
    r = cli("cluster", method, path, *args, "-o", out, "--plot", png)
    assert not png.exists()
    return r, out


@pytest.mark.parametrize("method, args", CASES, ids=[c[0] for c in CASES])
def test_no_numeric_columns(cli, tmp_path, method, args):
    path = write_jsonl(tmp_path / "t.jsonl", [{"path": f"a{i}.png", "label": "x"} for i in range(5)])
    r, out = run_with_output(cli, tmp_path, method, path, *args)
    assert_error(r, "no numeric feature columns", output=out)


@pytest.mark.parametrize("bad", ["nan", "inf"])
@pytest.mark.parametrize("method, args", CASES, ids=[c[0] for c in CASES])
def test_nan_and_inf_name_row_and_column(cli, tmp_path, method, args, bad):
    X, _ = blobs(n=30)
    path = write_csv(tmp_path / "t.csv", X)
    text = path.read_text().splitlines()
    cells = text[8].split(",")
    cells[2] = bad  # row 7, column f1
    text[8] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    r, out = run_with_output(cli, tmp_path, method, path, *args)
    assert_error(r, "row 8", "'f1'", "--dropna", output=out)


@pytest.mark.parametrize("method", ["kmeans", "kmedians", "gmm", "spectral", "agglomerative"])
def test_more_clusters_than_rows(cli, tmp_path, method):
    X, _ = blobs(n=12)
    path = write_csv(tmp_path / "t.csv", X)
    r, out = run_with_output(cli, tmp_path, method, path, "-k", "50")
    assert_error(r, "-k 50 is more than the 12 rows", "use -k <= 12", output=out)


@pytest.mark.parametrize("method, args", CASES, ids=[c[0] for c in CASES])
def test_single_row(cli, tmp_path, method, args):
    path = write_csv(tmp_path / "t.csv", np.array([[1.0, 2.0]]))
    r, out = run_with_output(cli, tmp_path, method, path, *[a if a != "3" else "1" for a in args])
    assert_error(r, "1 row", "at least 2", output=out)


@pytest.mark.parametrize("method, args", CASES, ids=[c[0] for c in CASES])
def test_string_in_a_numeric_column(cli, tmp_path, method, args):
    X, _ = blobs(n=20)
    path = write_csv(tmp_path / "t.csv", X)
    path.write_text(path.read_text().replace(repr(float(X[3, 0])), "oops", 1))
    r, out = run_with_output(cli, tmp_path, method, path, *args)
    assert_error(r, "row 4", "'f0'", "'oops' is not a number", output=out)


@pytest.mark.parametrize("command", ["kmeans", "hdbscan", "evaluate", "choose-k"])
def test_missing_file(cli, tmp_path, command):
    r = cli("cluster", command, tmp_path / "nope.csv")
    assert_error(r, "'", "nope.csv", "does not exist")


@pytest.mark.parametrize("method, args, fragments", [
    ("kmeans", ["-k", "0"], ["-k 0 is too small"]),
    ("kmeans", ["-k", "3", "--n-init", "0"], ["--n-init 0 must be positive"]),
    ("kmeans", ["-k", "3", "--tol", "-1"], ["--tol -1.0"]),
    ("dbscan", ["--eps", "-0.5"], ["--eps -0.5 must be positive", "--eps 0.5"]),
    ("dbscan", ["--min-samples", "0"], ["--min-samples 0"]),
    ("hdbscan", ["--min-cluster-size", "1"], ["--min-cluster-size 1 is too small"]),
    ("meanshift", ["--bandwidth", "0"], ["--bandwidth 0.0 must be positive"]),
    ("meanshift", ["--quantile", "2"], ["--quantile 2.0"]),
    ("gmm", ["-k", "3", "--covariance", "fulll"], ["--covariance 'fulll'", "did you mean 'full'"]),
    ("agglomerative", ["-k", "3", "--linkage", "wards"], ["--linkage 'wards'", "did you mean 'ward'"]),
    ("spectral", ["-k", "3", "--affinity", "knn"], ["--affinity 'knn'", "nearest_neighbors"]),
    ("spectral", ["-k", "3", "--n-neighbors", "500"], ["--n-neighbors 500", "fewer than the 120 rows"]),
    ("graph", ["--radius", "0"], ["--radius 0.0 must be positive"]),
    ("kmeans", ["-k", "3", "--format", "xml"], ["--format 'xml'", "npz"]),
    ("kmeans", ["-k", "3", "--format", "table"], ["--format table", "cannot be written"]),
    ("kmeans", ["-k", "3", "--device", "tpu"], ["--device 'tpu'"]),
])
def test_impossible_options(cli, tmp_path, method, args, fragments):
    X, _ = blobs()
    path = write_csv(tmp_path / "t.csv", X)
    r, out = run_with_output(cli, tmp_path, method, path, *args)
    assert_error(r, *fragments, output=out)


def test_unknown_method_is_a_usage_error(cli, tmp_path):
    assert cli("cluster", "kmeens", tmp_path / "t.csv").code == 2
