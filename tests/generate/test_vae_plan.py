"""Planned defaults of `generate vae train` (dltool.generate.plan): the plan line is printed and saved in
config.toml, the same images give the same plan, a flag the user sets wins, and the rule gives the sample
digits the epochs it names."""

from __future__ import annotations

import pytest
import tomllib

from tests.vision.conftest import write_digits

TINY = ("--model", "vae_tiny", "--img-size", "8", "--batch-size", "8", "--device", "cpu", "--format", "json")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("vaeplan") / "digits", 4)


def _train(cli, data, out, *args):
    r = cli("generate", "vae", "train", data, *TINY, "--out", out, *args)
    assert r.code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("plan")]
    assert len(lines) == 1, r.stderr
    return lines[0], tomllib.loads((out / "config.toml").read_text())


def test_plan_is_printed_saved_deterministic_and_the_user_wins(cli, digits, tmp_path):
    line, config = _train(cli, digits, tmp_path / "a", "--epochs", "1", "--sample-every", "0")
    again, config_again = _train(cli, digits, tmp_path / "b", "--epochs", "1", "--sample-every", "0")
    assert (line, config["plan"]) == (again, config_again["plan"])
    assert config["plan"]["fingerprint"] == {"images": 12, "classes": 3, "side": 8, "channels": 1}
    assert config["epochs"] == 1 and config["plan"]["values"] == {}  # --epochs set: the plan's stays unused
    assert line.endswith("set by you: epochs")


@pytest.mark.parametrize("images, given, batch, want", [
    (1797 - 360, (), 64, {"epochs": 200}),          # the sample digits' training folder: 21 batches an epoch
    (1797 - 360, ("batch_size",), 256, {"epochs": 500}),  # the user's batch size: the same steps, more epochs
    (60_000, (), 64, {"epochs": 30}),               # a large set: the fewest epochs
    (1797 - 360, ("time_limit",), 64, {}),          # the budget sets the epochs
])
def test_the_rule_plans_the_steps(images, given, batch, want):
    from dltool.core.run import RunConfig
    from dltool.core.train import EngineConfig
    from dltool.generate.plan import plan_vae
    from dltool.generate.vae import TrainConfig

    engine = EngineConfig(time_limit=10 if "time_limit" in given else None)
    cfg = TrainConfig(data="d", engine=engine, run=RunConfig(batch_size=batch, val_split=0.1), given=frozenset(given))
    assert plan_vae({"images": images, "classes": 10, "side": 16, "channels": 1}, cfg) == want
