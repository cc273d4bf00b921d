"""series forecast train|eval|predict through the CLI: known answers, intervals, piping, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.series.conftest import seasonal, write_monthly, write_panel

FAST = ("--device", "cpu", "--quiet")


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    """A noiseless monthly seasonal series (amplitude 10) and a network trained on all but its last 12 points."""
    from dltool.cli import main

    base = tmp_path_factory.mktemp("sine")
    data = write_monthly(base / "sine.csv", seasonal(240))
    run = base / "run"
    try:
        main([str(a) for a in ("series", "forecast", "train", data, "--time", "month", "--holdout", 12,
                               "--model", "mlp_tiny", "--lookback", 24, "--epochs", 60, "--scheduler", "cosine", "--lr", 0.01,
                               "--out", run,
                               "--format", "json", *FAST)])
    except SystemExit as e:
        assert e.code in (0, None)
    return data, run


def test_a_noiseless_seasonal_series_is_forecast_within_one_percent_of_its_amplitude(cli, sine):
    data, run = sine
    r = cli("series", "forecast", "eval", run, data, "--baselines", "seasonal_naive,naive", "--format", "json", *FAST)
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mae"] < 0.01 * 10, out
    assert out["baselines"]["seasonal_naive"]["mae"] == pytest.approx(0, abs=1e-9)  # the exact answer
    y = seasonal(240)  # naive repeats the last value
    assert out["baselines"]["naive"]["mae"] == pytest.approx(np.abs(y[-12:] - y[-13]).mean())
    assert out["mase"] is None  # the in-sample seasonal naive error is zero: MASE is undefined, not infinite
    assert out["best_baseline"] == "seasonal_naive" and out["series"] == 1 and out["horizon"] == 12


def test_predict_continues_the_calendar_and_pipes(cli, sine, tmp_path):
    data, run = sine
    png = tmp_path / "f.png"
    r = cli("series", "forecast", "predict", run, data, "--plot", png, "--format", "jsonl", *FAST)
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["month"] for row in rows[:2]] == ["2020-01-01", "2020-02-01"] and len(rows) == 12
    assert np.allclose([row["yhat"] for row in rows], seasonal(252)[240:], atol=0.5)
    assert png.stat().st_size > 1000
    # --origin: the forecast after an earlier time, written to a CSV that reads back as a table
    out = tmp_path / "f.csv"
    r = cli("series", "forecast", "predict", run, data, "--origin", "2018-12-01", "-o", out, *FAST)
    assert r.code == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "month,yhat" and lines[1].startswith("2019-01-01,")


def test_quantiles_cover_gaussian_noise_at_their_nominal_rate(cli, tmp_path):
    series = {f"s{i}": seasonal(160, noise=1.0, amplitude=3, phase=i, seed=i) for i in range(12)}
    data = write_panel(tmp_path / "noise.csv", series)
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", data, "--time", "step", "--id", "id", "--season", 12, "--horizon", 6,
            "--lookback", 24, "--holdout", 30, "--quantiles", "0.1,0.9", "--model", "mlp_tiny", "--epochs", 12,
            "--lr", 0.01, "--out", run, *FAST)
    assert r.code == 0, r.stderr
    r = cli("series", "forecast", "eval", run, data, "--folds", 5, "--step", 6, "--baselines", "seasonal_naive",
            "--format", "json", *FAST)
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["forecasts"] == 60 and out["series"] == 12
    assert abs(out["coverage"] - 0.8) <= 0.05, out
    assert out["pinball"] > 0 and "coverage" in out["baselines"]["seasonal_naive"]
    r = cli("series", "forecast", "predict", run, data, "--format", "jsonl", *FAST)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 12 * 6 and set(rows[0]) == {"id", "step", "yhat", "q10", "q90"}
    assert rows[0]["step"] == 160 and all(row["q10"] <= row["yhat"] <= row["q90"] for row in rows)


def test_a_short_series_is_skipped_by_name(cli, tmp_path):
    data = write_panel(tmp_path / "p.csv", {"long": seasonal(80), "short": seasonal(20)})
    r = cli("series", "forecast", "train", data, "--time", "step", "--id", "id", "--lookback", 12, "--horizon", 12,
            "--model", "mlp_tiny", "--epochs", 1, "--out", tmp_path / "run", "--device", "cpu", "--format", "json")
    assert r.code == 0, r.stderr
    assert "series 'short' has 20 points, fewer than lookback + horizon (12 + 12 = 24): skipped" in r.stderr
    assert json.loads(r.stdout)["series"] == 1


BAD = {
    "unsorted": ("month,y\n2000-01-01,1\n2000-03-01,2\n2000-02-01,3\n",
                 "row 3 (time 2000-02-01) comes before row 2 (time 2000-03-01)"),
    "duplicate": ("month,y\n2000-01-01,1\n2000-02-01,2\n2000-02-01,3\n",
                  "time 2000-02-01 appears twice (rows 2 and 3)"),
    "gap": ("month,y\n" + "".join(f"2000-{m:02d}-01,{m}\n" for m in (1, 2, 3, 5, 6, 7, 8)),
            "a gap at 2000-04-01"),
    "text target": ("month,y\n2000-01-01,a\n2000-02-01,b\n2000-03-01,c\n", "--target y: the column is not numeric"),
    "too short": ("month,y\n" + "".join(f"2000-{m:02d}-01,{m}\n" for m in range(1, 13)),
                  "--horizon 12 is not shorter than the longest series (12 points)"),
    "short for the window": ("month,y\n" + "".join(f"2000-{m:02d}-01,{m}\n" for m in range(1, 13)),
                             "the series has 12 points, fewer than lookback + horizon (10 + 3 = 13)"),
    "no column": ("month,y\n2000-01-01,1\n", "--target: no column 'sales'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_and_leaves_nothing(cli, tmp_path, case):
    text, message = BAD[case]
    data = tmp_path / "bad.csv"
    data.write_text(text)
    extra = {"short for the window": ("--lookback", 10, "--horizon", 3), "no column": ("--target", "sales")}.get(case, ())
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", data, "--time", "month", *extra, "--out", run, "--device", "cpu")
    assert r.code == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not run.exists() and not (tmp_path / "runs").exists()


def test_a_gap_is_filled_when_asked(cli, tmp_path):
    values = seasonal(60)
    data = write_monthly(tmp_path / "g.csv", values)
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:20] + lines[22:]) + "\n")  # two months missing
    r = cli("series", "baseline", data, "--time", "month", "--fill", "interpolate", "--method", "naive",
            "--horizon", 6, "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["baselines"]["naive"]["mae"] == pytest.approx(np.abs(values[-6:] - values[-7]).mean())


def test_options_that_do_not_apply_are_refused(cli, tmp_path):
    data = write_monthly(tmp_path / "s.csv", seasonal(60))
    r = cli("series", "forecast", "train", data, "--time", "month", "--quantiles", "0.1,0.9", "--loss", "mse",
            "--out", tmp_path / "run")
    assert r.code == 1 and "--loss does not apply to --quantiles" in r.stderr
    r = cli("series", "forecast", "train", data, "--time", "month", "--model", "mlp", "--decoder", "seq2seq",
            "--out", tmp_path / "run")
    assert r.code == 1 and "--decoder does not apply to --model mlp" in r.stderr
    r = cli("series", "forecast", "train", data, "--time", "month", "--quantiles", "0.1,1.5", "--out", tmp_path / "run")
    assert r.code == 1 and "every quantile must be in (0, 1)" in r.stderr
    assert not (tmp_path / "run").exists()


def test_known_covariates_drive_the_forecast(cli, tmp_path):
    """y = 50 + 5 x with x random but known ahead: only the covariates of the horizon can forecast it."""
    rng = np.random.default_rng(0)
    x = {f"s{i}": rng.standard_normal(120) for i in range(3)}
    data = write_panel(tmp_path / "c.csv", {k: 50 + 5 * v for k, v in x.items()}, covariates={"x": x})
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", data, "--time", "step", "--id", "id", "--covariates", "x", "--horizon", 4,
            "--lookback", 8, "--holdout", 8, "--model", "mlp_tiny", "--epochs", 30, "--lr", 0.01, "--out", run, *FAST)
    assert r.code == 0, r.stderr
    r = cli("series", "forecast", "eval", run, data, "--baselines", "naive", "--format", "json", *FAST)
    out = json.loads(r.stdout)
    assert out["mae"] < 0.2 * out["baselines"]["naive"]["mae"], out
    # predict after the end needs the covariates of the horizon: refused without them, used with --future
    r = cli("series", "forecast", "predict", run, data, *FAST)
    assert r.code == 1 and "pass them with --future TABLE" in r.stderr
    future = tmp_path / "future.csv"
    ahead = {k: rng.standard_normal(4) for k in x}
    future.write_text("id,step,x\n" + "".join(f"{k},{120 + t},{float(v[t])!r}\n" for k, v in ahead.items() for t in range(4)))
    r = cli("series", "forecast", "predict", run, data, "--future", future, "--format", "jsonl", *FAST)
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    want = np.concatenate([50 + 5 * v for v in ahead.values()])
    assert np.abs(np.array([row["yhat"] for row in rows]) - want).mean() < 1.0


def test_several_targets_forecast_together(cli, tmp_path):
    a, b = seasonal(60), seasonal(60, phase=1.0, level=5.0)
    data = tmp_path / "ab.csv"
    data.write_text("t,a,b\n" + "".join(f"{i},{float(x)!r},{float(y)!r}\n" for i, (x, y) in enumerate(zip(a, b))))
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", data, "--time", "t", "--target", "a,b", "--horizon", 3, "--lookback", 12,
            "--model", "gru_tiny", "--decoder", "seq2seq", "--epochs", 1, "--out", run, *FAST)
    assert r.code == 0, r.stderr
    r = cli("series", "forecast", "predict", run, data, "--format", "jsonl", *FAST)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(row["t"], row["target"]) for row in rows[:3]] == [(60, "a"), (60, "b"), (61, "a")] and len(rows) == 6


@pytest.mark.parametrize("stacks", ["generic", "interpretable"])
def test_nbeats_learns_a_trending_seasonal_series(cli, tmp_path, stacks):
    """Where naive and seasonal naive both miss (a trend under the season), N-BEATS forecasts both."""
    data = write_monthly(tmp_path / "t.csv", seasonal(120, trend=0.5))
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", data, "--time", "month", "--holdout", 6, "--horizon", 6, "--lookback", 24,
            "--model", "nbeats_tiny", "--stacks", stacks, "--epochs", 15, "--lr", 0.01, "--out", run, *FAST)
    assert r.code == 0, r.stderr
    r = cli("series", "forecast", "eval", run, data, "--baselines", "naive,seasonal_naive", "--format", "json", *FAST)
    out = json.loads(r.stdout)
    assert out["mae"] < 0.25 * min(b["mae"] for b in out["baselines"].values()), out


def test_nbeats_resumes_exactly_from_the_middle_of_an_epoch(cli, tmp_path, monkeypatch):
    import os
    import signal

    from dltool.core.train import Engine
    from tests.core.test_train_commands import _same_run

    data = write_monthly(tmp_path / "t.csv", seasonal(60, trend=0.5, noise=0.2))
    args = ("--time", "month", "--horizon", 3, "--lookback", 12, "--model", "nbeats_tiny", "--stacks", "interpretable",
            "--epochs", 3, "--batch-size", 8, "--dropout", 0.2, *FAST)  # 5 steps an epoch; dropout draws numbers
    assert cli("series", "forecast", "train", data, *args, "--out", tmp_path / "full").code == 0
    original, steps = Engine._step, {"n": 0}

    def step_then_ctrl_c(self, batch):
        loss = original(self, batch)
        steps["n"] += 1
        if steps["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(Engine, "_step", step_then_ctrl_c)
    assert cli("series", "forecast", "train", data, *args, "--out", tmp_path / "part").code == 130
    monkeypatch.setattr(Engine, "_step", original)
    r = cli("series", "forecast", "train", data, *args, "--out", tmp_path / "part", "--resume")
    assert r.code == 0, r.stderr
    _same_run(tmp_path / "full", tmp_path / "part")


def test_an_ensemble_forecasts_the_median_of_its_members_and_resumes(cli, tmp_path):
    """--ensemble 3: three sub-runs from seeds 5, 6, 7 and one model file; its forecast (each quantile) is
    the median of the members' forecasts read from their own model files; --resume finds it finished."""
    data = write_panel(tmp_path / "p.csv", {f"s{i}": seasonal(48, phase=i, noise=0.3, seed=i) for i in range(2)})
    run = tmp_path / "run"
    args = ("series", "forecast", "train", data, "--time", "step", "--id", "id", "--season", 12, "--lookback", 12,
            "--horizon", 6, "--model", "nbeats_tiny", "--ensemble", 3, "--seed", 5, "--quantiles", "0.1,0.9",
            "--epochs", 2, "--out", run, "--format", "json", *FAST)
    r = cli(*args)
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ensemble"] == 3 and [m["seed"] for m in out["members"]] == [5, 6, 7]
    assert all((run / f"member{k}" / "model.pt").exists() for k in range(3))

    def table(model):
        r = cli("series", "forecast", "predict", model, data, "--format", "jsonl", *FAST)
        assert r.code == 0, r.stderr
        return np.array([[row["yhat"], row["q10"], row["q90"]] for row in map(json.loads, r.stdout.splitlines())])

    members = np.stack([table(run / f"member{k}") for k in range(3)])
    assert not np.allclose(members[0], members[1])  # different seeds, different members
    assert np.allclose(table(run), np.median(members, axis=0), atol=1e-4)
    r = cli("series", "forecast", "eval", run, data, "--baselines", "", "--format", "json", *FAST)
    assert r.code == 0 and json.loads(r.stdout)["ensemble"] == 3, r.stderr
    assert cli(*args[:-3], "--resume", "--format", "json", *FAST).code == 0  # every member finished: nothing to do
    assert np.allclose(table(run), np.median(members, axis=0), atol=1e-4)


def test_an_ensemble_interrupted_in_its_second_member_resumes_to_the_uninterrupted_model(cli, tmp_path, monkeypatch):
    """Ctrl-C inside member 1: member 0 stays finished, member 1 resumes from its step, and the ensemble's
    model file equals that of a run never interrupted."""
    import os
    import signal

    import torch

    from dltool.core.train import Engine
    from tests.core.test_train_commands import _same_run

    data = write_monthly(tmp_path / "t.csv", seasonal(60, trend=0.5, noise=0.2))
    args = ("--time", "month", "--horizon", 3, "--model", "nbeats_tiny", "--ensemble", 2, "--epochs", 2,
            "--batch-size", 8, "--dropout", 0.2, *FAST)  # dropout draws numbers: a resumed RNG must match
    original, steps = Engine._step, {"n": 0}

    def counted(self, batch):
        steps["n"] += 1
        return original(self, batch)

    monkeypatch.setattr(Engine, "_step", counted)
    assert cli("series", "forecast", "train", data, *args, "--out", tmp_path / "full").code == 0
    per_member, steps["n"] = steps["n"] // 2, 0

    def step_then_ctrl_c(self, batch):
        loss = original(self, batch)
        steps["n"] += 1
        if steps["n"] == per_member + 2:  # two steps into member 1
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(Engine, "_step", step_then_ctrl_c)
    r = cli("series", "forecast", "train", data, *args, "--out", tmp_path / "part")
    assert r.code == 130 and "--resume" in r.stderr, r.stderr
    assert (tmp_path / "part" / "member0" / "model.pt").exists() and not (tmp_path / "part" / "model.pt").exists()
    monkeypatch.setattr(Engine, "_step", counted)
    steps["n"] = 0
    r = cli("series", "forecast", "train", data, *args, "--out", tmp_path / "part", "--resume")
    assert r.code == 0, r.stderr
    assert steps["n"] == per_member - 2  # member 0 not again, member 1 from where it stopped
    for k in range(2):
        _same_run(tmp_path / "full" / f"member{k}", tmp_path / "part" / f"member{k}")
    a, b = (torch.load(run / "model.pt", weights_only=True)["state_dict"] for run in (tmp_path / "full", tmp_path / "part"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_nbeats_members_look_back_two_to_seven_horizons_and_the_default_ensemble_reads_stdin_once(cli, tmp_path):
    """Without --lookback, nbeats' members look back 2, 3, 4 horizons (N-BEATS's ensemble) and the ensemble
    reads the longest window, each member its own tail; a table on stdin serves every member; a model
    that is not a *_tiny one trains five members unless told."""
    import torch

    data = write_monthly(tmp_path / "t.csv", seasonal(90, trend=0.3, noise=0.2))
    run = tmp_path / "run"
    r = cli("series", "forecast", "train", "-", "--time", "month", "--horizon", 4, "--model", "nbeats_tiny",
            "--ensemble", 3, "--epochs", 1, "--out", run, "--format", "json", *FAST, input=data.read_text())
    assert r.code == 0, r.stderr
    lookbacks = [torch.load(run / f"member{k}" / "model.pt", weights_only=True)["preprocess"]["lookback"]
                 for k in range(3)]
    assert lookbacks == [8, 12, 16] and json.loads(r.stdout)["lookback"] == 16

    def yhat(model):
        r = cli("series", "forecast", "predict", model, data, "--format", "jsonl", *FAST)
        assert r.code == 0, r.stderr
        return np.array([row["yhat"] for row in map(json.loads, r.stdout.splitlines())])

    assert np.allclose(yhat(run), np.median([yhat(run / f"member{k}") for k in range(3)], axis=0), atol=1e-4)
    r = cli("series", "forecast", "train", data, "--time", "month", "--horizon", 4, "--model", "mlp", "--width", 8,
            "--epochs", 1, "--out", tmp_path / "mlp", "--format", "json", *FAST)
    assert r.code == 0 and json.loads(r.stdout)["ensemble"] == 5, r.stderr
    assert json.loads(r.stdout)["lookback"] == 36  # not nbeats: every member the planned window (three seasons)


def test_nproc_with_the_default_ensemble_is_refused_in_one_line(tmp_path):
    """The members train one after another: --nproc 2 with a model's default five members is refused once
    (not per rank), naming --ensemble 1, and leaves nothing."""
    import subprocess
    import sys

    data = write_monthly(tmp_path / "t.csv", seasonal(60))
    r = subprocess.run([sys.executable, "-m", "dltool", "series", "forecast", "train", str(data), "--time", "month",
                        "--horizon", "3", "--model", "mlp", "--nproc", "2", "--out", str(tmp_path / "run"),
                        "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "error: --ensemble 5 (the default for every model but the *_tiny ones) trains its members one after "
        "another, each on one process — drop --nproc, or pass --ensemble 1"], r.stderr
    assert not (tmp_path / "run").exists()


def test_an_ensemble_of_no_members_is_refused(cli, tmp_path):
    data = write_panel(tmp_path / "p.csv", {"a": seasonal(48)})
    r = cli("series", "forecast", "train", data, "--time", "step", "--model", "mlp_tiny", "--ensemble", 0,
            "--out", tmp_path / "run", *FAST)
    assert r.code == 1 and r.stderr.strip() == "error: --ensemble 0 must be at least 1", r.stderr
    assert not (tmp_path / "run").exists()
