"""Studies of a k-means + evaluate chain: grid, tree-shaped spaces, resume, several metrics, show,
ask/tell, failures, and two workers on one journal file."""

from __future__ import annotations

import json

import pytest

from tests.cluster.conftest import assert_error
from tests.tune.conftest import kmeans_chain, one_json, trials_of, trials_run, write_spec

#: algorithm selection: the command word is a parameter, and each algorithm has its own branch
TREE = {"algorithm": {"type": "categorical", "choices": ["kmeans", "gmm"]},
        "n_clusters": {"type": "int", "low": 2, "high": 4, "when": {"algorithm": "kmeans"}},
        "covariance": {"type": "categorical", "choices": ["full", "diag"], "when": {"algorithm": "gmm"}}}


def tree_chain(table):
    return [["cluster", "{algorithm}", str(table), "-o", "{out}/clusters.csv", "--quiet"],
            ["cluster", "evaluate", "{out}/clusters.csv", "--quiet"]]


@pytest.fixture
def grid_study(tmp_path_factory, blob_table):
    """A grid spec over the tree: 3 k-means points + 2 GMM points."""
    base = tmp_path_factory.mktemp("grid")
    spec = write_spec(base / "tree.toml", command=tree_chain(blob_table), metric="silhouette", sampler="grid",
                      space=TREE)
    return base, spec


def test_grid_visits_every_point_of_the_tree_once_and_show_reports_it(cli, grid_study, blob_table):
    from dltool.tune.space import grid_points
    from dltool.tune.spec import build_spec, read_spec_file

    base, spec = grid_study
    out = base / "study"
    r = cli("tune", "run", spec, "--out", out, "--quiet")
    assert r.code == 0, r.stderr
    summary = one_json(r.stdout)
    assert (summary["trials"], summary["complete"], summary["failed"]) == (5, 5, 0)
    trials = trials_of(out)
    expected = grid_points(build_spec(read_spec_file(spec)).space)
    assert sorted(map(repr, (t.params for t in trials))) == sorted(map(repr, expected))  # each point once
    for t in trials:  # a branch's parameters, and only them, reach the command
        args = t.user_attrs["commands"][0]
        assert args[1] == t.params["algorithm"]
        assert ("--n-clusters" in args) == (t.params["algorithm"] == "kmeans") == ("n_clusters" in t.params)
        assert ("--covariance" in args) == (t.params["algorithm"] == "gmm") == ("covariance" in t.params)
    # the best is the true k of the blobs, and its command reproduces its value
    best = summary["best"]
    assert best["params"] == {"algorithm": "kmeans", "n_clusters": 3}
    assert best["command"].startswith(f"dltool cluster kmeans {blob_table} -o {out}/best/clusters.csv")
    # running it again resumes: the grid is done, so nothing more runs
    again = cli("tune", "run", spec, "--out", out, "--quiet")
    assert again.code == 0 and one_json(again.stdout)["trials"] == 5
    # show: everything in one JSON object, plots on disk
    r = cli("tune", "show", out, "--format", "json")
    assert r.code == 0, r.stderr
    shown = one_json(r.stdout)
    assert [row["trial"] for row in shown["trial_table"]] == [0, 1, 2, 3, 4]
    assert shown["best"]["silhouette"] == max(row["silhouette"] for row in shown["trial_table"])
    assert set(shown["importances"]["silhouette"]) == {"algorithm"}  # the one parameter every trial has
    assert {p.rsplit("/", 1)[-1] for p in shown["plots"]} == {"history.png", "importances.png", "parallel.png"}
    for p in shown["plots"]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    table = cli("tune", "show", out, "--format", "csv", "--no-plots")
    assert table.stdout.splitlines()[0] == "trial,state,silhouette,algorithm,n_clusters,covariance,seconds,note"
    line = cli("tune", "show", out, "--best-command").stdout.strip()
    assert line == best["command"] and f"{out}/best/clusters.csv" in line


def test_random_tree_never_samples_off_its_branch_ask_and_tell(cli, tmp_path, blob_table):
    spec = write_spec(tmp_path / "s.toml", command=tree_chain(blob_table), metric="silhouette", space=TREE,
                      sampler="random")
    seen = set()
    for _ in range(8):
        r = cli("tune", "ask", spec, "--out", tmp_path / "st", "--format", "json")
        assert r.code == 0, r.stderr
        asked = one_json(r.stdout)
        p = asked["params"]
        branch = {"kmeans": {"algorithm", "n_clusters"}, "gmm": {"algorithm", "covariance"}}[p["algorithm"]]
        assert set(p) == branch
        seen.add(p["algorithm"])
    assert seen == {"kmeans", "gmm"}
    # a shell loop evaluates trial 0 itself and pipes the command's JSON into tell
    asked = one_json(cli("tune", "ask", spec, "--out", tmp_path / "st", "--format", "json").stdout)
    for args in asked["args"]:
        r = cli(*args, "--format", "json") if args[1] == "evaluate" else cli(*args)
        assert r.code == 0, r.stderr
    told = cli("tune", "tell", tmp_path / "st", str(asked["trial"]), "-", "--format", "json", input=r.stdout)
    assert told.code == 0, told.stderr
    assert one_json(told.stdout)["values"] == [json.loads(r.stdout)["silhouette"]]
    assert_error(cli("tune", "tell", tmp_path / "st", str(asked["trial"]), "0.5"), "already complete")
    assert_error(cli("tune", "tell", tmp_path / "st", "0", '{"dunn": 1}'), "no number 'silhouette'")
    assert cli("tune", "tell", tmp_path / "st", "0", "--state", "fail").code == 0


def test_several_metrics_make_a_pareto_front(cli, tmp_path, blob_table):
    spec = write_spec(tmp_path / "s.toml", command=kmeans_chain(blob_table), trials=4, sampler="nsga2",
                      metric=["silhouette:max", "davies_bouldin:min"],
                      space={"n_clusters": {"type": "int", "low": 2, "high": 6}})
    r = cli("tune", "run", spec, "--out", tmp_path / "st", "--quiet")
    assert r.code == 0, r.stderr
    front = one_json(r.stdout)["pareto_front"]
    assert front and all({"silhouette", "davies_bouldin", "command"} <= set(t) for t in front)
    trials = trials_of(tmp_path / "st")
    assert all("NSGAIISampler:generation" in t.system_attrs for t in trials)  # NSGA-II, not TPE, sampled them
    for t in front:  # nothing in the study dominates a front member
        assert not any(o.values[0] >= t["silhouette"] and o.values[1] <= t["davies_bouldin"]
                       and o.values != [t["silhouette"], t["davies_bouldin"]] for o in trials)
    shown = one_json(cli("tune", "show", tmp_path / "st", "--format", "json").stdout)
    assert any(p.endswith("pareto.png") for p in shown["plots"])


def test_resume_adds_trials_and_refuses_another_space(cli, tmp_path, blob_table):
    spec = dict(command=kmeans_chain(blob_table), metric="silhouette", trials=2, sampler="random",
                space={"n_clusters": {"type": "int", "low": 2, "high": 6}})
    path = write_spec(tmp_path / "s.toml", **spec)
    assert cli("tune", "run", path, "--out", tmp_path / "st", "--quiet").code == 0
    r = cli("tune", "run", path, "--out", tmp_path / "st", "--trials", "3", "--isolate", "--quiet")
    assert r.code == 0, r.stderr
    assert one_json(r.stdout)["complete"] == 3
    # the third trial ran in a subprocess (python -m dltool.cli.tune) and left the same outputs
    assert (tmp_path / "st" / "trials" / "0002" / "clusters.csv").is_file()
    assert "$ dltool cluster kmeans" in (tmp_path / "st" / "trials" / "0002.log").read_text()
    other = write_spec(tmp_path / "s2.toml", **{**spec, "space": {"n_clusters": {"type": "int", "low": 2, "high": 9}}})
    assert_error(cli("tune", "run", other, "--study", "s", "--out", tmp_path / "st"), "searches another space")


def test_metric_never_reported_and_command_failing_every_time(cli, tmp_path, blob_table):
    space = {"n_clusters": {"type": "int", "low": 2, "high": 4}}
    path = write_spec(tmp_path / "m.toml", command=kmeans_chain(blob_table), metric="val_accuracy", trials=3, space=space)
    assert_error(cli("tune", "run", path, "--out", tmp_path / "m"),
                 "metric 'val_accuracy': the command never reports it (it reports: ", "silhouette")
    assert len(trials_of(tmp_path / "m")) == 1  # it stopped at the first trial
    path = write_spec(tmp_path / "f.toml", command=kmeans_chain(tmp_path / "missing.csv"), metric="silhouette",
                      trials=2, space=space)
    r = cli("tune", "run", path, "--out", tmp_path / "f")
    assert_error(r, "all 2 trials of study 'f' failed; trial 0:", "missing.csv", "run it by hand")
    assert [t.state.name for t in trials_of(tmp_path / "f")] == ["FAIL", "FAIL"]


def test_two_workers_on_one_journal_complete_twenty_distinct_trials(cli, tmp_path, blob_table):
    spec = write_spec(tmp_path / "w.toml", command=kmeans_chain(blob_table, "--n-clusters", "3"), metric="silhouette",
                      trials=20, sampler="random",
                      space={"tol": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True}})
    r = cli("tune", "run", spec, "--out", tmp_path / "w", "--workers", "2", "--quiet")
    assert r.code == 0, r.stderr
    assert "not reproducible" in r.stderr
    trials = trials_run(tmp_path / "w")
    assert len(trials) == 20 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.params["tol"] for t in trials}) == 20
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both worked
    assert sorted(int(p.name) for p in (tmp_path / "w" / "trials").iterdir() if p.is_dir()) == list(range(20))
