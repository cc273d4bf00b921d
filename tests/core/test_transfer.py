"""Transfer learning in the engine: a frozen backbone keeps its weights and BatchNorm statistics;
--unfreeze-after thaws it at a lower learning rate."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.data import TensorBatches
from dltool.core.errors import OptionError
from dltool.core.train import Engine, EngineConfig


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


class RecordingTask:
    """Classifies blobs and records the backbone after every epoch (the engine's end_epoch hook)."""

    monitor, monitor_mode, channels_last = "loss", "min", False

    def __init__(self):
        self.after_epoch = []

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model, batches):
        return {"loss": sum(F.cross_entropy(model(x), y).item() for x, y in batches)}

    def end_epoch(self, model):
        self.after_epoch.append({k: v.clone() for k, v in model.backbone.state_dict().items()})

    def payload(self, model):
        return {"task": "test", "arch": "net", "arch_kwargs": {}, "state_dict": model.state_dict()}


def _fit(tmp_path, **kw):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(200, n_features=4, centers=3, random_state=0)
    X, y = torch.tensor(X, dtype=torch.float32) * 3 + 5, torch.tensor(y)  # far from BN's initial statistics
    torch.manual_seed(0)
    model, task = Net(), RecordingTask()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    cfg = EngineConfig(lr=0.01, seed=0, **kw)
    engine = Engine(task, model, cfg, tmp_path, torch.device("cpu"))
    engine.fit(TensorBatches((X, y), 20, shuffle=True, seed=0))
    return before, task.after_epoch, engine


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics(tmp_path):
    before, after, _ = _fit(tmp_path, epochs=2, freeze_backbone=True)
    for state in after:
        for k in before:  # running_mean, running_var and num_batches_tracked included
            assert torch.equal(before[k], state[k]), k
    last = torch.load(tmp_path / "last.pt", weights_only=True)["state_dict"]
    assert not torch.equal(last["head.weight"], Net().head.weight)  # the head did train


def test_unfreeze_after_thaws_the_backbone_at_a_scaled_rate(tmp_path):
    before, after, engine = _fit(tmp_path, epochs=3, freeze_backbone=True, unfreeze_after=1, backbone_lr_scale=0.1)
    assert all(torch.equal(before[k], after[0][k]) for k in before)  # epoch 1: the head alone
    assert not torch.equal(before["0.weight"], after[1]["0.weight"])  # epoch 2: everything
    assert not torch.equal(before["1.running_mean"], after[1]["1.running_mean"])  # BN statistics too
    head, backbone = engine.optimizer.param_groups
    assert backbone["lr"] == pytest.approx(0.1 * head["lr"]) and head["lr"] == pytest.approx(0.01)


def test_unfreeze_after_must_leave_an_epoch():
    with pytest.raises(OptionError, match="leaves no epoch"):
        EngineConfig(epochs=2, unfreeze_after=2).validate()


def test_freeze_needs_a_head(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    engine = Engine(RecordingTask(), model, EngineConfig(epochs=1, freeze_backbone=True), tmp_path,
                    torch.device("cpu"))
    with pytest.raises(OptionError, match="no separate head"):
        engine.fit(TensorBatches((torch.randn(8, 4), torch.zeros(8, dtype=torch.long)), 4, shuffle=True))
