"""Run by tests/core/test_scale_out.py under torchrun: the engine on a blob task, written like any
single-process task (no distributed code), saving what each rank ends with."""

import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core import distributed as dist
from dltool.core.data import TensorBatches
from dltool.core.train import Engine, EngineConfig, start_run


class BlobTask:
    monitor, monitor_mode, channels_last = "accuracy", "max", False

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model, batches):
        correct = n = 0
        loss = 0.0
        for x, y in batches:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
        return {"loss": loss / n, "accuracy": correct / n, "n_seen": n}

    def payload(self, model):
        return {"task": "test", "arch": "mlp", "arch_kwargs": {}, "state_dict": model.state_dict()}


def main(out: Path) -> None:
    from sklearn.datasets import make_blobs

    cfg = EngineConfig(epochs=3, lr=0.05, seed=0)
    device, run_dir = start_run(cfg, device="cpu", out=out / "run", name="test")
    dropout_draw = torch.rand(3).tolist()  # seed + rank: different on each rank
    X, y = make_blobs(203, n_features=4, centers=3, cluster_std=2.0, random_state=0)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    train = TensorBatches((X[:160], y[:160]), 16, shuffle=True, seed=0)
    val = TensorBatches((X[160:], y[160:]), 8, shuffle=False)
    summary = Engine(BlobTask(), model, cfg, run_dir, device, {}).fit(train, val)
    torch.save(model.state_dict(), out / f"rank{dist.rank()}.pt")
    (out / f"rank{dist.rank()}.json").write_text(json.dumps({"summary": summary, "draw": dropout_draw,
                                                              "train_items": train.items(),
                                                              "val_items": val.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
