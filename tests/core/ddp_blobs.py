"""Run by tests/core/test_scale_out.py under torchrun: the engine on a blob task, written like any
single-process task (no distributed code), saving what each rank ends with."""

import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

from dltool.core import distributed as dist
from dltool.core.data import TensorBatches
from dltool.core.train import Engine, EngineConfig, start_run
from tests.core.test_engine import BlobTask


class CountingBlobTask(BlobTask):
    """test_engine's task, also reporting how many validation items it saw (to check the shard weighting)."""

    def evaluate(self, model, batches):
        return {**super().evaluate(model, batches), "n_seen": sum(len(y) for _, y in batches)}


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
    summary = Engine(CountingBlobTask(), model, cfg, run_dir, device, {}).fit(train, val)
    torch.save(model.state_dict(), out / f"rank{dist.rank()}.pt")
    (out / f"rank{dist.rank()}.json").write_text(json.dumps({"summary": summary, "draw": dropout_draw,
                                                              "train_items": train.items(),
                                                              "val_items": val.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
