"""--ema: the engine validates and keeps a moving average of the weights, and resumes it exactly."""

import pytest
import torch
import torch.nn as nn

from dltool.core.data import TensorBatches
from dltool.core.errors import OptionError
from dltool.core.modelfile import load_checkpoint
from dltool.core.train import Engine, EngineConfig
from tests.core.test_engine import BlobTask, blobs
from tests.core.test_warmup_accumulate import ConstantGradient


def test_the_kept_weights_are_the_moving_average_of_every_step(tmp_path):
    """SGD at lr 0.1 on a constant gradient puts the weight at -0.1 k after step k; model.pt holds their
    average with decay min(0.5, (1 + n) / (10 + n)) after n updates, last.pt the last step's weight."""
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    cfg = EngineConfig(epochs=1, optimizer="sgd", lr=0.1, ema=0.5)
    batches = TensorBatches((torch.ones(12, 1), torch.zeros(12, dtype=torch.long)), 1, shuffle=False)
    Engine(ConstantGradient(), model, cfg, tmp_path, torch.device("cpu")).fit(batches)

    average = -0.1  # the first update copies the weights
    for n, k in enumerate(range(2, 13), start=1):
        decay = min(0.5, (1 + n) / (10 + n))
        average = decay * average + (1 - decay) * -0.1 * k
    kept = load_checkpoint(tmp_path / "model.pt")["state_dict"]["weight"].item()
    assert kept == pytest.approx(average, abs=1e-6)
    assert model.weight.item() == pytest.approx(average, abs=1e-6)  # fit leaves the model holding model.pt
    assert load_checkpoint(tmp_path / "last.pt")["state_dict"]["weight"].item() == pytest.approx(-1.2, abs=1e-6)


def _fit(tmp_path, **kw):
    torch.manual_seed(0)
    X, y = blobs()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = EngineConfig(**{"epochs": 3, "lr": 0.01, "ema": 0.9, **kw})
    train = TensorBatches((X[:240], y[:240]), 32, shuffle=True, seed=0)
    val = TensorBatches((X[240:], y[240:]), 64, shuffle=False)
    summary = Engine(BlobTask(), model, cfg, tmp_path, torch.device("cpu"), {"ema": cfg.ema}).fit(train, val)
    return model, summary, val


def test_validation_scores_the_average_that_is_saved(tmp_path):
    model, summary, val = _fit(tmp_path / "ema")
    with torch.no_grad():
        again = BlobTask().evaluate(model.eval(), val)  # model.pt's weights, scored apart from the run
    assert summary["val_loss"] == pytest.approx(again["loss"], rel=1e-6)
    _, plain, _ = _fit(tmp_path / "plain", ema=0.0)
    assert plain["val_loss"] != pytest.approx(summary["val_loss"], rel=1e-3)  # not the last step's weights


def test_a_crash_mid_epoch_resumes_the_average_exactly(tmp_path, monkeypatch):
    whole, _, _ = _fit(tmp_path / "whole")
    steps = {"n": 0}
    original = Engine._step

    def step_then_crash(self, batch):
        steps["n"] += 1
        if steps["n"] == 12:  # in the second epoch, after the --save-every checkpoint of step 10
            raise MemoryError
        return original(self, batch)

    monkeypatch.setattr(Engine, "_step", step_then_crash)
    with pytest.raises(MemoryError):
        _fit(tmp_path / "part", save_every=5)
    monkeypatch.setattr(Engine, "_step", original)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["train_state"]["batch"] == 2
    resumed, _, _ = _fit(tmp_path / "part", save_every=5, resume=True)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("ema", [-0.1, 1.0])
def test_a_decay_outside_0_1_is_refused(ema):
    with pytest.raises(OptionError, match=f"--ema {ema:g} must be in"):
        EngineConfig(ema=ema).validate()


class OwnSteps(BlobTask):
    """A task that drives its own updates, as the GAN and diffusion trainers do (they keep their own average)."""

    def optimizers(self, model):
        return {"model": list(model.parameters())}

    def train_step(self, model, batch, optimize, step):
        loss = self.loss(model, batch)
        optimize("model", loss)
        return loss


def test_a_task_that_drives_its_own_steps_refuses_it(tmp_path):
    Engine(OwnSteps(), nn.Linear(4, 3), EngineConfig(epochs=1), tmp_path / "a", torch.device("cpu")).fit(
        TensorBatches(blobs(), 32, shuffle=False))
    with pytest.raises(OptionError, match="--ema do not apply"):
        Engine(OwnSteps(), nn.Linear(4, 3), EngineConfig(ema=0.9), tmp_path / "b", torch.device("cpu")).fit(
            TensorBatches(blobs(), 32, shuffle=False))
