"""--momentum through a real train command (the engine's option, on every train command): it reaches the
optimizer, is saved in config.toml and guarded by --resume, and is refused where it would do nothing."""

from __future__ import annotations

import tomllib
import torch

from tests.core.train_commands import REDUCE_AUTOENCODER

FAST = ("--hidden", "8", "--code-dim", "2", "--epochs", "1", "--batch-size", "32", "--lr", "0.01", "--device", "cpu",
        "--quiet", "-o", "-")


def test_momentum_reaches_the_optimizer_its_config_and_resume(cli, tmp_path):
    table = REDUCE_AUTOENCODER.make_data(tmp_path / "data")
    run = tmp_path / "run"
    r = cli("reduce", "autoencoder", table, *FAST, "--out", run, "--optimizer", "sgd", "--momentum", "0.8")
    assert r.code == 0, r.stderr
    (group,) = torch.load(run / "last.pt", weights_only=True)["train_state"]["optimizers"]["model"]["param_groups"]
    assert (group["momentum"], group["nesterov"]) == (0.8, False)
    assert tomllib.loads((run / "config.toml").read_text())["momentum"] == 0.8

    r = cli("reduce", "autoencoder", table, *FAST, "--out", run, "--optimizer", "sgd", "--momentum", "0.5", "--resume")
    assert r.code == 1 and "--momentum (was 0.8, now 0.5)" in r.stderr, r.stderr

    # an optimizer without a momentum term refuses it before anything is written
    r = cli("reduce", "autoencoder", table, *FAST, "--out", tmp_path / "adam", "--optimizer", "adam", "--momentum", "0.9")
    assert r.code == 1 and not (tmp_path / "adam").exists()
    assert r.stderr.strip().splitlines() == [
        "error: --optimizer adam has no momentum term, so --momentum would do nothing — drop --momentum, or pick "
        "sgd|momentum|nesterov|rmsprop"], r.stderr
