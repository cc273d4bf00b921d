"""The engine's promises, checked on every registered train command through the real CLI:
scale-out with --nproc 2 (gloo on CPU), exact resume from the middle of an epoch, and that every
option reaches a config field."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
import torch

from dltool.core.train import Engine
from tests.conftest import command_tree, run_main
from tests.core.train_commands import TRAIN_COMMANDS

CASES = list(TRAIN_COMMANDS.values())
IDS = [c.name for c in CASES]


def _train_commands_of_the_app():
    """Every command of the CLI that takes --resume, i.e. every train command on the engine (predict commands
    take --nproc too)."""
    found = []

    def walk(group, path):
        for name, cmd in getattr(group, "commands", {}).items():
            if hasattr(cmd, "commands"):
                walk(cmd, path + (name,))
            elif any(p.name == "resume" for p in cmd.params):
                found.append(" ".join(path + (name,)))

    walk(command_tree(), ())
    return sorted(found)


def test_every_train_command_is_registered():
    assert _train_commands_of_the_app() == sorted({" ".join(c.command) for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_option_reaches_the_config(cli, case, tmp_path):
    """task_config refuses an option that maps to no field: with every option at its default, the
    command gets as far as reading its (missing) data."""
    r = cli(*case.command, tmp_path / "missing", "--out", tmp_path / "run")
    assert r.code == 1
    assert "TypeError" not in r.stderr and "missing" in r.stderr, r.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nproc_2_trains_one_model(capfd, case, tmp_path, monkeypatch):
    data = case.make_data(tmp_path / "data")
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["pytest", "not", "the", "command"])  # relaunch must use main()'s args
    r = run_main(capfd, [*case.command, data, "--out", run, *case.args, "--nproc", "2"])  # children's output too
    assert r.code == 0, r.stderr
    case.printed_once(r.stdout, run)  # rank 0 alone prints
    assert not (tmp_path / "runs").exists() and not any(p.name.startswith(".") for p in run.iterdir())
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["train_state"]["world"] == 2
    case.learned(lambda *a: run_main(capfd, a), data, run)


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
    """Each command's tiny data and one uninterrupted run of it, made once and compared against by the
    resume tests (they never write into it)."""
    made = {}

    def get(case):
        if case.name not in made:
            base = tmp_path_factory.mktemp(case.name.replace(" ", "-"))
            data = case.make_data(base / "data")
            from dltool.cli import main
            from dltool.core.console import set_quiet

            try:
                main([str(a) for a in (*case.command, data, "--out", base / "full", *case.args)])
            except SystemExit as e:
                assert e.code in (0, None), e.code
            finally:
                set_quiet(False)
            made[case.name] = (data, base / "full")
        return made[case.name]

    return get


def _untimed(rows):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def _same_run(a, b):
    ma, mb = (torch.load(p / "model.pt", weights_only=True) for p in (a, b))
    assert _untimed([ma["metrics"]]) == _untimed([mb["metrics"]])
    assert ma["state_dict"].keys() == mb["state_dict"].keys()
    for k in ma["state_dict"]:
        assert torch.equal(ma["state_dict"][k], mb["state_dict"][k]), k
    rows = [[json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()] for p in (a, b)]
    assert _untimed(rows[0]) == _untimed(rows[1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_interrupt_mid_epoch_then_resume_equals_an_uninterrupted_run(cli, case, tmp_path, monkeypatch, finished_runs):
    data, full = finished_runs(case)
    part = tmp_path / "part"

    steps = {"n": 0}
    original = Engine._step

    def step_then_ctrl_c(self, batch):  # a real SIGINT, delivered to the engine's handler mid-epoch
        loss = original(self, batch)
        steps["n"] += 1
        if steps["n"] == case.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(Engine, "_step", step_then_ctrl_c)
    r = cli(*case.command, data, "--out", part, *case.args)
    assert r.code == 130, r.stderr
    assert "--resume" in r.stderr and "Traceback" not in r.stderr
    assert not (part / "model.pt").exists()
    state = torch.load(part / "last.pt", weights_only=True)["train_state"]
    assert state["batch"] > 0  # saved inside the epoch, at the step it stopped on
    monkeypatch.setattr(Engine, "_step", original)

    r = cli(*case.command, data, "--out", part, *case.args, "--resume")
    assert r.code == 0, r.stderr
    _same_run(full, part)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_every_survives_a_crash(cli, case, tmp_path, monkeypatch, finished_runs):
    """A job killed without a signal (OOM killer, lost machine) resumes from its last --save-every checkpoint."""
    data, full = finished_runs(case)
    part = tmp_path / "part"
    steps = {"n": 0}
    original = Engine._step

    def step_then_crash(self, batch):
        steps["n"] += 1
        if steps["n"] == case.interrupt_at + 2:
            raise MemoryError  # dies mid-step: nothing is saved on the way out
        return original(self, batch)

    monkeypatch.setattr(Engine, "_step", step_then_crash)
    r = cli(*case.command, data, "--out", part, *case.args, "--save-every", 3)
    assert r.code == 1 and "out of memory" in r.stderr
    monkeypatch.setattr(Engine, "_step", original)
    saved = torch.load(part / "last.pt", weights_only=True)["train_state"]
    assert saved["batch"] > 0  # a --save-every checkpoint from inside an epoch, not an epoch's end
    r = cli(*case.command, data, "--out", part, *case.args, "--save-every", 3, "--resume")
    assert r.code == 0, r.stderr
    _same_run(full, part)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_resume_with_changed_options_names_them(cli, case, finished_runs):
    data, run = finished_runs(case)
    r = cli(*case.command, data, "--out", run, *case.args, "--resume", "--lr", "0.5", "--seed", "3")  # fails first
    assert r.code == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "--lr (was " in r.stderr and "now 0.5)" in r.stderr and "--seed (was 0, now 3)" in r.stderr, r.stderr
    if "lr = " not in (run / "config.toml").read_text():  # the default left out: the line names the value used
        assert "'s default, now 0.5)" in r.stderr, r.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_resuming_a_finished_run_changes_nothing_and_says_so(cli, case, tmp_path, finished_runs):
    import shutil

    data, full = finished_runs(case)
    run = shutil.copytree(full, tmp_path / "run")  # copy2 keeps the times: a rewritten file shows
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.rglob("*")) if p.is_file()}
    r = cli(*case.command, data, "--out", run, *(a for a in case.args if a != "--quiet"), "--resume")
    assert r.code == 0, r.stderr
    assert "is finished" in r.stderr and "nothing to resume" in r.stderr, r.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.rglob("*")) if p.is_file()} == before


def test_amp_on_a_cpu_reaches_the_engine_through_the_cli(cli, tmp_path, monkeypatch):
    """`--amp` on a CPU: the run computes under bfloat16 autocast (the engine's test checks the dtypes), records
    the choice in config.toml, and still learns; without the flag the record leaves it out (the default)."""
    import tomllib

    case = TRAIN_COMMANDS["text seq2seq train"]
    data = case.make_data(tmp_path / "data")
    casts = []
    real = Engine._autocast
    monkeypatch.setattr(Engine, "_autocast", lambda self: casts.append(self.amp_dtype) or real(self))
    for flag, recorded, dtype in (("--amp", True, torch.bfloat16), (None, None, None)):
        casts.clear()
        run = tmp_path / f"run-{flag}"
        r = cli(*case.command, data, "--out", run, *case.args, *([flag] if flag else []))
        assert r.code == 0, r.stderr
        assert casts and set(casts) == {dtype}  # every step and validation
        assert tomllib.loads((run / "config.toml").read_text()).get("amp") is recorded
        case.learned(cli, data, run)
