"""Pruning inside a trial's own process through the engine's epoch callback, and a study that survives
a worker killed mid-trial (tiny digits classifier, 2-3 epochs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.tune.conftest import one_json, trials_of, vision_command, write_spec


def test_median_pruner_stops_a_bad_trial_in_its_own_process_leaving_a_resumable_run(cli, tmp_path, digits):
    # grid order: two good learning rates first (the median's startup trials), then one that learns nothing
    spec = write_spec(tmp_path / "p.toml", command=vision_command(digits, epochs=2), metric="val_accuracy",
                      sampler="grid", pruner="median", pruner_startup=2,
                      space={"lr": {"type": "float", "low": 1e-7, "high": 0.1, "values": [0.02, 0.01, 1e-7]}})
    out = tmp_path / "study"
    r = cli("tune", "run", spec, "--out", out, "--quiet")
    assert r.code == 0, r.stderr
    summary = one_json(r.stdout)
    assert (summary["complete"], summary["pruned"]) == (2, 1)
    trials = trials_of(out)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert sorted(trials[0].intermediate_values) == [1, 2]  # every epoch was reported
    pruned = trials[2]
    assert list(pruned.intermediate_values) == [1] and "after epoch 1" in pruned.user_attrs["pruned"]
    run = out / "trials" / "0002"
    assert (run / "last.pt").is_file() and not (run / "model.pt").exists()  # stopped after epoch 1's checkpoint
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    # the pruned run continues with --resume like any interrupted run
    r = cli(*pruned.user_attrs["commands"][0], "--resume", "--format", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["epochs_run"] == 2 and (run / "model.pt").is_file()


def test_killed_worker_mid_trial_then_started_again_resumes_the_study(cli, tmp_path, digits):
    spec = write_spec(tmp_path / "k.toml", command=vision_command(digits, epochs=2), metric="val_accuracy",
                      trials=1, sampler="random", space={"lr": {"type": "float", "low": 5e-3, "high": 2e-2, "log": True}})
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    worker = subprocess.Popen([sys.executable, "-m", "dltool", "tune", "run", str(spec), "--out", str(out), "--quiet"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_epoch = out / "trials" / "0000" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not first_epoch.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first_epoch.exists(), worker.stderr.read() if worker.poll() is not None else "no epoch in time"
    worker.send_signal(signal.SIGKILL)  # mid-trial: epoch 1 of 2 is written
    worker.wait()
    assert [t.state.name for t in trials_of(out)] == ["RUNNING"]
    # started again: the dead worker's trial runs again (it does not count), and the study completes
    r = cli("tune", "run", spec, "--out", out, "--quiet")
    assert r.code == 0, r.stderr
    assert "trial 0: its worker" in r.stderr and "queued again" in r.stderr
    lost, retry = trials_of(out)
    assert lost.state.name == "FAIL" and "lost" in lost.user_attrs
    assert retry.user_attrs["retry_of"] == 0 and retry.params == lost.params and retry.state.name == "COMPLETE"
    assert one_json(r.stdout)["complete"] == 1
