"""Every `dltool cluster <method>` through the CLI on tiny blobs: real outcomes, outputs, plots, options."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.cluster.conftest import assert_error, blobs, read_out, write_csv, write_jsonl

# arguments under which each method should recover the three well-separated blobs
METHOD_ARGS = {
    "kmeans": ["-k", "3"],
    "kmedians": ["-k", "3"],
    "meanshift": [],
    "dbscan": ["--eps", "1.0", "--min-samples", "5"],
    "hdbscan": ["--min-cluster-size", "10"],
    "gmm": ["-k", "3"],
    "agglomerative": ["-k", "3"],
    "spectral": ["-k", "3"],
    "graph": ["--radius", "1.5"],
}


def test_every_registered_method_has_a_command_and_test_args():
    from dltool.cli.cluster import app
    from dltool.cluster.methods import METHODS

    commands = {c.name for c in app.registered_commands}
    assert set(METHODS.names()) <= commands
    assert set(METHODS.names()) == set(METHOD_ARGS)


@pytest.mark.parametrize("method", list(METHOD_ARGS))
def test_method_recovers_blobs(cli, blobs_table, tmp_path, method):
    path, X, y = blobs_table
    out, png = tmp_path / "out.csv", tmp_path / "plot.png"
    r = cli("cluster", method, path, *METHOD_ARGS[method], "-o", out, "--plot", png, "--device", "cpu")
    assert r.code == 0, r.stderr
    assert r.stdout == ""  # the table went to -o
    t = read_out(out)
    assert t.names[:3] == ["path", "f0", "f1"] and t.names[3] == "cluster"
    assert list(t.columns["path"]) == [f"img{i:03d}.png" for i in range(len(X))]  # pass-through, in order
    np.testing.assert_allclose(np.column_stack([t.columns["f0"], t.columns["f1"]]), X)
    labels = t.columns["cluster"]
    assert np.all(labels == np.round(labels))
    assert adjusted_rand_score(y, labels) > 0.9
    assert f"{method}:" in r.stderr  # the one-line summary for people

    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100


DETERMINISTIC = {"dbscan", "hdbscan", "agglomerative", "graph"}  # they draw no random numbers

# uniform noise, where nothing forces one answer, and one restart: the seed decides the clustering. meanshift
# draws only the rows it estimates its bandwidth on, and only from tables of more than 2,000 rows
SEEDED_ARGS = {"kmeans": ["-k", "4", "--n-init", "1"], "kmedians": ["-k", "4", "--n-init", "1"], "gmm": ["-k", "4"],
               "spectral": ["-k", "4", "--n-init", "1"], "meanshift": ["--bin-seeding", "--max-iter", "1"]}


@pytest.mark.parametrize("method", sorted(SEEDED_ARGS))
def test_same_seed_same_output_another_seed_another_clustering(cli, tmp_path, method):
    X = np.random.default_rng(0).uniform(size=(2001 if method == "meanshift" else 120, 2))
    path = write_csv(tmp_path / "noise.csv", X)
    a, b, c = (cli("cluster", method, path, *SEEDED_ARGS[method], "--seed", seed, "--device", "cpu",
                   "--format", "jsonl") for seed in (7, 7, 8))
    assert a.code == 0, a.stderr
    assert a.stdout == b.stdout
    labels = [[json.loads(line)["cluster"] for line in r.stdout.splitlines()] for r in (a, c)]
    if method == "meanshift":  # the bandwidth (its one-line summary), estimated on another sample of rows
        bandwidth = [r.stderr.split("bandwidth ")[1].split()[0] for r in (a, b, c)]
        assert bandwidth[0] == bandwidth[1] != bandwidth[2], bandwidth
    else:
        assert adjusted_rand_score(*labels) < 0.99, method


def test_every_method_that_draws_random_numbers_has_a_seed_test():
    from dltool.cluster.methods import METHODS

    assert set(METHODS.names(random=True)) == set(SEEDED_ARGS) == set(METHOD_ARGS) - DETERMINISTIC


@pytest.mark.parametrize("method", sorted(DETERMINISTIC))
def test_methods_without_randomness_have_no_seed_option(cli, blobs_table, method):
    """DESIGN §2: --seed only where random numbers are drawn; elsewhere it is a usage error, not ignored."""
    from dltool.cluster.methods import METHODS

    assert not METHODS.get(method).meta["random"]
    assert cli("cluster", method, blobs_table[0], *METHOD_ARGS[method], "--seed", "1").code == 2
    assert all(METHODS.get(m).meta["random"] for m in set(METHOD_ARGS) - DETERMINISTIC)


def test_output_is_jsonl_on_a_pipe_with_integer_cluster(cli, blobs_table):
    path, X, _ = blobs_table
    r = cli("cluster", "kmeans", path, "-k", "3")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == len(X)
    assert all(isinstance(row["cluster"], int) for row in rows)
    assert rows[0]["path"] == "img000.png"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_format_option(cli, blobs_table, fmt):
    path, X, _ = blobs_table
    r = cli("cluster", "kmeans", path, "-k", "3", "--format", fmt, "-q")
    assert r.code == 0, r.stderr
    if fmt == "csv":
        assert r.stdout.splitlines()[0] == "path,f0,f1,cluster"
    else:
        assert len(json.loads(r.stdout)) == len(X)


def test_stdin_table(cli, blobs_table):
    path, X, y = blobs_table
    r = cli("cluster", "kmeans", "-", "-k", "3", input=path.read_text())
    assert r.code == 0, r.stderr
    assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) > 0.9


def test_dbscan_labels_outliers_noise(cli, tmp_path):
    X, y = blobs()
    X = np.vstack([X, [[30.0, -30.0], [-25.0, 40.0]]])  # two far-away points
    path = write_csv(tmp_path / "t.csv", X)
    r = cli("cluster", "dbscan", path, "--eps", "1.0", "--min-samples", "5")
    assert r.code == 0, r.stderr
    labels = read_out(r.stdout).columns["cluster"]
    assert list(labels[-2:]) == [-1, -1]
    assert adjusted_rand_score(y, labels[:-2]) > 0.9
    assert "noise point" in r.stderr


def test_hdbscan_and_graph_mark_small_groups_noise(cli, tmp_path):
    X, y = blobs()
    X = np.vstack([X, [[30.0, -30.0]]])
    path = write_csv(tmp_path / "t.csv", X)
    r = cli("cluster", "hdbscan", path, "--min-cluster-size", "10")
    assert r.code == 0, r.stderr
    assert read_out(r.stdout).columns["cluster"][-1] == -1
    r = cli("cluster", "graph", path, "--radius", "1.5", "--min-size", "3")
    assert r.code == 0, r.stderr
    labels = read_out(r.stdout).columns["cluster"]
    assert labels[-1] == -1 and set(labels[:-1]) >= {0, 1, 2}


def test_graph_needs_radius(cli, blobs_table):
    assert_error(cli("cluster", "graph", blobs_table[0]), "--radius")


@pytest.mark.parametrize("covariance", ["full", "diag", "tied", "spherical"])
def test_gmm_probabilities_sum_to_one(cli, blobs_table, covariance):
    path, X, y = blobs_table
    r = cli("cluster", "gmm", path, "-k", "3", "--covariance", covariance)
    assert r.code == 0, r.stderr
    t = read_out(r.stdout)
    probs = np.column_stack([t.columns[f"prob_{j}"] for j in range(3)])
    assert "prob_3" not in t.columns
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    assert np.all(probs >= 0)
    np.testing.assert_array_equal(probs.argmax(1), t.columns["cluster"])
    assert adjusted_rand_score(y, t.columns["cluster"]) > 0.9


def test_reclustering_an_output_table_ignores_old_output_columns(cli, blobs_table, tmp_path):
    path, X, y = blobs_table
    first = tmp_path / "gmm.jsonl"
    assert cli("cluster", "gmm", path, "-k", "3", "-o", first).code == 0
    r = cli("cluster", "kmeans", first, "-k", "2", "--plot", tmp_path / "p.png")
    assert r.code == 0, r.stderr
    t = read_out(r.stdout)
    assert t.names == ["path", "f0", "f1", "cluster"]  # stale prob_* columns dropped
    assert set(t.columns["cluster"]) == {0, 1}


@pytest.mark.parametrize("linkage", ["single", "complete", "average", "ward"])
def test_agglomerative_linkages_and_dendrogram(cli, blobs_table, tmp_path, linkage):
    path, X, y = blobs_table
    png = tmp_path / "tree.png"
    r = cli("cluster", "agglomerative", path, "-k", "3", "--linkage", linkage, "--dendrogram", png)
    assert r.code == 0, r.stderr
    assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) > 0.9
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG"


def test_agglomerative_distance_cut_matches_scipy(cli, blobs_table):
    from scipy.cluster.hierarchy import fcluster, linkage

    path, X, y = blobs_table
    r = cli("cluster", "agglomerative", path, "--distance", "4.0", "--linkage", "average")
    assert r.code == 0, r.stderr
    labels = read_out(r.stdout).columns["cluster"]
    ref = fcluster(linkage(X, "average"), t=4.0, criterion="distance")
    assert adjusted_rand_score(ref, labels) == 1.0
    assert adjusted_rand_score(y, labels) > 0.9


@pytest.mark.parametrize("args, fragment", [([], "neither"), (["-k", "3", "--distance", "2"], "both")])
def test_agglomerative_needs_exactly_one_cut(cli, blobs_table, args, fragment):
    assert_error(cli("cluster", "agglomerative", blobs_table[0], *args), fragment, "-k N")


def test_meanshift_explicit_bandwidth(cli, blobs_table):
    path, X, y = blobs_table
    r = cli("cluster", "meanshift", path, "--bandwidth", "2.0", "--bin-seeding")
    assert r.code == 0, r.stderr
    assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) > 0.9
    r = cli("cluster", "meanshift", path)
    assert "bandwidth" in r.stderr  # the estimated bandwidth is reported


def test_spectral_rbf(cli, blobs_table):
    path, X, y = blobs_table
    r = cli("cluster", "spectral", path, "-k", "3", "--affinity", "rbf", "--gamma", "0.5")
    assert r.code == 0, r.stderr
    assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) > 0.9


def test_standardize_puts_features_on_one_scale(cli, tmp_path):
    # blobs separated along f0 only; f1 is pure noise in much larger units
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    X = np.column_stack([y * 10 + rng.normal(0, 0.5, 120), rng.normal(0, 1000, 120)])
    path = write_csv(tmp_path / "t.csv", X)
    raw = read_out(cli("cluster", "kmeans", path, "-k", "2").stdout).columns["cluster"]
    std = cli("cluster", "kmeans", path, "-k", "2", "--standardize")
    assert adjusted_rand_score(y, raw) < 0.5
    assert adjusted_rand_score(y, read_out(std.stdout).columns["cluster"]) == 1.0
    # the table keeps the original (unscaled) values
    np.testing.assert_allclose(read_out(std.stdout).columns["f1"], X[:, 1])


def test_features_and_exclude(cli, tmp_path):
    X, y = blobs()
    noise = np.random.default_rng(0).normal(0, 100, size=(len(X), 1))
    path = write_csv(tmp_path / "t.csv", np.hstack([X, noise]), names=["a", "b", "junk"])
    for args in (["--features", "a,b"], ["--exclude", "junk"]):
        r = cli("cluster", "kmeans", path, "-k", "3", *args)
        assert r.code == 0, r.stderr
        assert adjusted_rand_score(y, read_out(r.stdout).columns["cluster"]) > 0.9
    assert_error(cli("cluster", "kmeans", path, "--features", "a,bb"), "no column 'bb'", "did you mean 'b'")


def test_config_file_supplies_defaults(cli, blobs_table, tmp_path):
    path, X, y = blobs_table
    cfg = tmp_path / "c.toml"
    cfg.write_text("n_clusters = 2\nseed = 3\n")
    r = cli("cluster", "kmeans", path, "--config", cfg)
    assert r.code == 0, r.stderr
    assert len(set(read_out(r.stdout).columns["cluster"])) == 2
    r = cli("cluster", "kmeans", path, "--config", cfg, "-k", "3")  # the command line wins
    assert len(set(read_out(r.stdout).columns["cluster"])) == 3


def test_dropna_drops_rows(cli, tmp_path):
    X, y = blobs()
    X[5, 1] = np.nan
    path = write_csv(tmp_path / "t.csv", X)
    r = cli("cluster", "kmeans", path, "-k", "3", "--dropna")
    assert r.code == 0, r.stderr
    t = read_out(r.stdout)
    assert len(t) == len(X) - 1 and "img005.png" not in set(t.columns["path"])
    assert "dropped 1" in r.stderr


def test_plot_with_more_than_two_features_uses_pca(cli, tmp_path):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(90, n_features=5, centers=3, random_state=1)
    path = write_jsonl(tmp_path / "t.jsonl", [{"id": str(i), **{f"x{j}": float(v) for j, v in enumerate(row)}}
                                              for i, row in enumerate(X)])
    png = tmp_path / "p.png"
    r = cli("cluster", "kmeans", path, "-k", "3", "--plot", png, "-q")
    assert r.code == 0, r.stderr
    assert read_out(r.stdout).columns["id"][0] == "0"  # a JSON string id stays a string
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG"


COMMANDS = [[m, *a] for m, a in METHOD_ARGS.items()] + [["evaluate"], ["choose-k", "--k", "2..4"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_device_cuda_without_cuda_fails(cli, blobs_table, tmp_path, cmd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "o.csv"
    extra = ["-o", out] if cmd[0] not in ("evaluate", "choose-k") else []
    r = cli("cluster", cmd[0], blobs_table[0], *cmd[1:], *extra, "--device", "cuda")
    assert_error(r, "CUDA is not available", output=out)


def test_cpu_only_method_says_so_once_on_a_gpu(cli, blobs_table, monkeypatch):
    import torch

    import dltool.core.device as device

    monkeypatch.setattr(device, "resolve_device", lambda name=None: torch.device("cuda"))
    r = cli("cluster", "dbscan", blobs_table[0], "--eps", "1.0", "--device", "cuda")
    assert r.code == 0, r.stderr
    assert r.stderr.count("no GPU implementation; running on CPU") == 1


def test_commands_document_an_example():
    from dltool.cli.cluster import app

    for c in app.registered_commands:
        last = c.callback.__doc__.strip().splitlines()[-1].strip()
        assert last.startswith(f"Example: dltool cluster {c.name} "), (c.name, last)


@pytest.mark.parametrize("path", [["cluster"], ["cluster", "kmeans"], ["cluster", "evaluate"]])
def test_help_imports_no_torch_or_sklearn(path):
    # the CLI reads its defaults from dltool.cluster.config (plain dataclasses), and nothing heavier
    code = ("import sys; from dltool.cli import main\n"
            "try:\n    main({args!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('torch', 'sklearn', 'numpy', 'dltool.cluster.methods') if m in sys.modules]\n"
            "assert not heavy, heavy").format(args=path + ["--help"])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Example: dltool cluster" in r.stdout or path == ["cluster"]


def test_library_warnings_come_through_once_as_our_lines(cli, blobs_table):
    """A warning dltool does not handle itself reaches the user: once, as one `warning:` line."""
    r = cli("cluster", "spectral", blobs_table[0], "-k", "3", "--n-neighbors", "3")
    assert r.code == 0, r.stderr
    assert r.stderr.count("warning: Graph is not fully connected") == 1
    assert "UserWarning" not in r.stderr
