"""--warmup (linear warm-up before the schedule) and --accumulate (gradient accumulation), engine-wide."""

import pytest
import torch
import torch.nn as nn

from dltool.core.data import TensorBatches
from dltool.core.errors import OptionError
from dltool.core.train import Engine, EngineConfig
from tests.core.test_engine import BlobTask, blobs


class ConstantGradient(BlobTask):
    """loss = w . x with x = 1: the gradient is 1 every step, so an SGD update is exactly the learning rate."""

    def __init__(self):
        self.weights = []

    def loss(self, model, batch):
        self.weights.append(model.weight.detach().clone().item())
        return model(batch[0]).mean()


def _sgd_updates(tmp_path, steps: int, **kw) -> list[float]:
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    task = ConstantGradient()
    cfg = EngineConfig(epochs=1, optimizer="sgd", lr=0.1, **kw)
    batches = TensorBatches((torch.ones(steps, 1), torch.zeros(steps, dtype=torch.long)), 1, shuffle=False)
    Engine(task, model, cfg, tmp_path, torch.device("cpu")).fit(batches)
    w = [*task.weights, model.weight.item()]
    return [round(a - b, 6) for a, b in zip(w, w[1:])]


def test_warmup_ramps_the_learning_rate_linearly_then_follows_the_schedule(tmp_path):
    assert _sgd_updates(tmp_path / "a", 6, warmup=4) == [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]
    assert _sgd_updates(tmp_path / "b", 3) == [0.1, 0.1, 0.1]


def test_warmup_leaves_the_schedulers_own_rates_alone(tmp_path):
    """metrics.jsonl's lr is the schedule's: the factor is undone after each step."""
    import json

    summary_dir = tmp_path / "run"
    _sgd_updates(summary_dir, 5, warmup=100)
    rows = [json.loads(line) for line in (summary_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["lr"] == 0.1


def _fit_blobs(tmp_path, **kw):
    torch.manual_seed(0)
    X, y = blobs()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = EngineConfig(epochs=2, lr=0.01, **kw)
    train = TensorBatches((X[:240], y[:240]), 32, shuffle=True, seed=0)
    summary = Engine(BlobTask(), model, cfg, tmp_path, torch.device("cpu")).fit(train)
    return model.state_dict(), summary


@pytest.mark.parametrize("parts", [3, 32])
def test_accumulated_micro_batches_give_the_whole_batch_update(tmp_path, parts):
    whole, s1 = _fit_blobs(tmp_path / "whole")
    split, s2 = _fit_blobs(tmp_path / f"acc{parts}", accumulate=parts)
    for k in whole:
        assert torch.allclose(whole[k], split[k], atol=1e-5), k
    assert s1["train_loss"] == pytest.approx(s2["train_loss"], rel=1e-5)


@pytest.mark.parametrize("kw, needle", [
    ({"warmup": -1}, "--warmup -1 must be >= 0"),
    ({"accumulate": 0}, "--accumulate 0 must be at least 1"),
    ({"accumulate": 2, "optimizer": "lbfgs"}, "--accumulate does not apply"),
])
def test_bad_values_are_refused(kw, needle):
    with pytest.raises(OptionError, match=needle):
        EngineConfig(**kw).validate()
