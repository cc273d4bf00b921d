"""--time-limit: the engine sets the epochs from the first one's time and finishes the schedule within the
budget; an epoch that runs past it is cut short and the run still ends with a model."""

from __future__ import annotations

import json
import re

import torch

from tests.core.train_commands import VISION_CLASSIFY


def _train(cli, tmp_path, *extra):
    data = VISION_CLASSIFY.make_data(tmp_path / "data")
    args = [a for a in VISION_CLASSIFY.args if a != "--quiet"]
    return cli(*VISION_CLASSIFY.command, data, "--out", tmp_path / "run", *args, *extra, "--format", "json")


def test_budget_sets_the_epochs_and_the_schedule_finishes_within_it(cli, tmp_path):
    budget_s = 8.0
    r = _train(cli, tmp_path, "--time-limit", budget_s / 60, "--scheduler", "onecycle", "--epochs", "1000")
    assert r.code == 0, r.stderr
    planned = int(re.findall(r"so (\d+) epochs", r.stderr)[-1])  # the plan is revised as the pace is measured
    summary = json.loads(r.stdout)
    assert 1 < planned < 1000 and summary["epochs_run"] == planned, r.stderr
    assert summary["train_time_s"] <= budget_s
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(row["lr"] for row in rows) > 0.5 * 0.01  # one-cycle passed its peak on the way
    times = [row["time_s"] for row in rows]
    if summary["stop_reason"] is None:
        assert rows[-1]["lr"] < 1e-4 * 0.01  # and ran to its end: the horizon was the budget's epochs
    else:  # only when the last epoch ran long (a noisy machine) may the budget cut it short
        assert "--time-limit" in summary["stop_reason"], r.stderr
        assert times[-1] > 1.3 * sum(times[1:-1]) / len(times[1:-1]), r.stderr


def test_an_epoch_past_the_budget_is_cut_short_and_still_saved(cli, tmp_path):
    r = _train(cli, tmp_path, "--time-limit", 0.00001, "--epochs", "5")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["epochs_run"] == 1 and "--time-limit" in summary["stop_reason"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]
    assert state["step"] < 7  # stopped inside the first epoch (7 steps)
    assert (tmp_path / "run" / "model.pt").exists()
