"""The engine's optional end_epoch hook: extra numbers in the epoch's row, and a task-driven stop."""

import json

import torch
import torch.nn as nn

from dltool.core.data import TensorBatches
from dltool.core.train import Engine, EngineConfig


class ConvergingTask:
    monitor, monitor_mode, channels_last = "loss", "min", False

    def __init__(self, stop_after):
        self.stop_after, self.epochs_seen = stop_after, 0

    def loss(self, model, batch):
        return model(batch[0]).pow(2).mean()

    def evaluate(self, model, batches):
        return {"loss": 0.0}

    def end_epoch(self, model):
        self.epochs_seen += 1
        out = {"changed": 1.0 / self.epochs_seen}
        if self.epochs_seen == self.stop_after:
            out["stop"] = "changed below tol"
        return out

    def payload(self, model):
        return {"task": "test", "arch": "linear", "arch_kwargs": {}, "state_dict": model.state_dict()}


def test_end_epoch_adds_metrics_and_stops(tmp_path, capsys, monkeypatch):
    from dltool.core import console

    monkeypatch.setitem(console._state, "quiet", False)  # an earlier --quiet command may have set it
    torch.manual_seed(0)
    batches = TensorBatches((torch.randn(40, 3),), 8, shuffle=True, seed=0)
    summary = Engine(ConvergingTask(stop_after=3), nn.Linear(3, 2), EngineConfig(epochs=10), tmp_path,
                     torch.device("cpu")).fit(batches)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["changed"] for r in rows] == [1.0, 0.5, 1 / 3]
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is True
    assert "stop: changed below tol" in capsys.readouterr().err
    assert (tmp_path / "model.pt").exists()


class RisingTask(ConvergingTask):
    """A loss that grows every epoch, as DEC's KL does when its target sharpens."""

    monitor_mode = "last"

    def loss(self, model, batch):
        return model(batch[0]).pow(2).mean() * 0 + float(self.epochs_seen) + model.bias.sum() * 0


def test_monitor_mode_last_keeps_the_final_epoch(tmp_path):
    torch.manual_seed(0)
    batches = TensorBatches((torch.randn(16, 3),), 8, shuffle=True, seed=0)
    model = nn.Linear(3, 2)
    summary = Engine(RisingTask(stop_after=0), model, EngineConfig(epochs=4, early_stop=1), tmp_path,
                     torch.device("cpu")).fit(batches)
    assert summary["epochs_run"] == 4 and summary["best_epoch"] == 4  # neither "worse" epochs nor early stop
    saved = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(saved["weight"], model.weight.detach().cpu())


def test_epoch_callbacks_given_in_the_config_hear_every_epoch_and_can_stop_the_run(tmp_path):
    """EngineConfig.epoch_callbacks: what a tuner passes to prune a trial; the stopped run resumes."""
    import pytest

    from dltool.core.train import StopTraining, TrainingStopped

    heard = []

    def prune_after_two(epoch, metrics):
        heard.append((epoch, sorted(metrics)))
        if epoch == 2:
            raise StopTraining("pruned after epoch 2")

    batches = TensorBatches((torch.randn(16, 3),), 8, shuffle=True, seed=0)
    cfg = EngineConfig(epochs=4, epoch_callbacks=(prune_after_two,))
    assert cfg == EngineConfig(epochs=4) and "epoch_callbacks" not in repr(cfg)  # not an option of the run
    with pytest.raises(TrainingStopped, match="pruned after epoch 2"):
        Engine(ConvergingTask(stop_after=0), nn.Linear(3, 2), cfg, tmp_path, torch.device("cpu"),
               {"epochs": 4}).fit(batches)
    assert heard == [(1, ["changed", "epoch", "lr", "time_s", "train_loss"])] + [(2, heard[0][1])]
    assert "callback" not in (tmp_path / "config.toml").read_text()
    summary = Engine(ConvergingTask(stop_after=0), nn.Linear(3, 2), EngineConfig(epochs=4, resume=True), tmp_path,
                     torch.device("cpu"), {"epochs": 4}).fit(batches)
    assert summary["epochs_run"] == 4 and heard[-1][0] == 2  # the resumed run has no callback


class CoarseTask(ConvergingTask):
    """Validation exact match that ties (none right in three epochs), and a loss that is lowest in the second."""

    monitor, monitor_mode = "exact", "max"
    scripted = [{"loss": 1.0, "exact": 0.0}, {"loss": 0.8, "exact": 0.0}, {"loss": 0.9, "exact": 0.0}]

    def __init__(self):
        super().__init__(stop_after=0)
        self.validated = 0

    def evaluate(self, model, batches):
        self.validated += 1
        return self.scripted[self.validated - 1]


class LossBreaksTies(CoarseTask):
    monitor_ties = "loss"


def test_monitor_ties_decides_between_epochs_that_tie(tmp_path):
    def best_epoch(task, out):
        batches = TensorBatches((torch.randn(16, 3),), 8, shuffle=False)
        return Engine(task, nn.Linear(3, 2), EngineConfig(epochs=3), out, torch.device("cpu")).fit(
            batches, TensorBatches((torch.randn(8, 3),), 8, shuffle=False))["best_epoch"]

    assert best_epoch(CoarseTask(), tmp_path / "first") == 1  # a tie does not replace the best
    assert best_epoch(LossBreaksTies(), tmp_path / "ties") == 2  # the lower loss wins it
