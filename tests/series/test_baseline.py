"""series baseline: the statsmodels methods through the CLI, metrics against independent references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.series.conftest import seasonal, write_monthly


def _random_walk(n: int, seed: int = 0) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(seed).standard_normal(n))


def test_naive_metrics_equal_a_reference(cli, tmp_path):
    y = _random_walk(60)
    data = write_monthly(tmp_path / "rw.csv", y)
    r = cli("series", "baseline", data, "--time", "month", "--method", "naive,seasonal_naive", "--horizon", 6,
            "--season", 4, "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)["baselines"]
    hist, truth = y[:-6], y[-6:]
    err = truth - hist[-1]
    scale = np.abs(hist[4:] - hist[:-4]).mean()
    smape = 100 * np.mean(2 * np.abs(err) / (np.abs(truth) + np.abs(hist[-1])))
    assert out["naive"]["mae"] == pytest.approx(np.abs(err).mean())
    assert out["naive"]["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()))
    assert out["naive"]["smape"] == pytest.approx(smape)
    assert out["naive"]["mase"] == pytest.approx(np.abs(err).mean() / scale)
    seasonal_fc = hist[-4:][np.arange(6) % 4]
    assert out["seasonal_naive"]["mae"] == pytest.approx(np.abs(truth - seasonal_fc).mean())
    assert 0 <= out["naive"]["coverage"] <= 1


def test_rolling_origins_average_each_origin(cli, tmp_path):
    y = _random_walk(50, seed=3)
    data = write_monthly(tmp_path / "rw.csv", y)
    r = cli("series", "baseline", data, "--time", "month", "--method", "naive", "--horizon", 4, "--folds", 3,
            "--step", 2, "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    want = np.mean([np.abs(y[o:o + 4] - y[o - 1]).mean() for o in (42, 44, 46)])
    assert out["forecasts"] == 3 and out["baselines"]["naive"]["mae"] == pytest.approx(want)


def test_ets_and_arima_learn_a_seasonal_series(cli, tmp_path):
    y = seasonal(48, noise=0.3, trend=0.1, seed=1)
    data = write_monthly(tmp_path / "s.csv", y)
    r = cli("series", "baseline", data, "--time", "month", "--horizon", 6, "--method", "naive,ets,arima",
            "--order", "2,0,0", "--format", "json")
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["series"] == 1 and out["forecasts"] == 1 and out["season"] == 12  # monthly: 12
    assert out["baselines"]["ets"]["mase"] < 0.5 * out["baselines"]["naive"]["mase"]
    assert out["baselines"]["arima"]["mae"] < out["baselines"]["naive"]["mae"]
    assert "MASE per series" in r.stderr and "ets" in r.stderr  # the per-series table for people


def test_bad_options_are_refused(cli, tmp_path):
    data = write_monthly(tmp_path / "s.csv", seasonal(40))
    r = cli("series", "baseline", data, "--time", "month", "--method", "prophet")
    assert r.code == 1 and "unknown baseline 'prophet'" in r.stderr
    r = cli("series", "baseline", data, "--time", "month", "--method", "naive", "--order", "1,0,0")
    assert r.code == 1 and "--order does not apply to --method naive" in r.stderr
    r = cli("series", "baseline", data, "--time", "month", "--method", "arima", "--order", "1,0")
    assert r.code == 1 and "--order '1,0' must be 3 whole numbers" in r.stderr
    r = cli("series", "baseline", data, "--time", "month", "--horizon", 40)
    assert r.code == 1 and "--horizon 40 is not shorter than the longest series (40 points)" in r.stderr


def test_a_table_on_stdin_as_json_lines(cli):
    y = _random_walk(30, seed=5)
    text = "".join(json.dumps({"t": i, "v": float(v)}) + "\n" for i, v in enumerate(y))
    r = cli("series", "baseline", "-", "--time", "t", "--target", "v", "--method", "naive", "--horizon", 3,
            "--format", "json", "--quiet", input=text)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["baselines"]["naive"]["mae"] == pytest.approx(np.abs(y[-3:] - y[-4]).mean())


def test_the_best_method_forecasts_the_next_horizon_as_a_table(cli, tmp_path):
    """-o: the next H steps after the end, by the method that scored best, with its interval: the table
    `forecast predict` writes; -o - makes it the output and says the scores on stderr."""
    y = seasonal(48, noise=0.0, trend=0.0)  # noiseless: seasonal naive is exact and must win
    data = write_monthly(tmp_path / "s.csv", y)
    out, png = tmp_path / "next.csv", tmp_path / "next.png"
    r = cli("series", "baseline", data, "--time", "month", "--method", "naive,seasonal_naive", "--horizon", 6,
            "-o", out, "--plot", png, "--format", "json", "--quiet")
    assert r.code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["best_baseline"] == result["forecast_method"] == "seasonal_naive"
    lines = out.read_text().splitlines()
    assert lines[0] == "month,yhat,q10,q90" and len(lines) == 7
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows[:2]] == ["2004-01-01", "2004-02-01"]  # 48 months from 2000-01: the calendar goes on
    assert np.allclose([float(r[1]) for r in rows], y[-12:-6])  # the last season repeated
    assert all(float(r[2]) <= float(r[1]) <= float(r[3]) for r in rows)
    assert png.stat().st_size > 1000
    r = cli("series", "baseline", data, "--time", "month", "--method", "naive", "--horizon", 3, "--interval", 0,
            "-o", "-", "--format", "jsonl")
    assert r.code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows == [{"month": m, "yhat": pytest.approx(y[-1])} for m in ("2004-01-01", "2004-02-01", "2004-03-01")]
    assert "backtest: naive MAE" in r.stderr and "forecast by naive" in r.stderr  # MASE: undefined here
