"""dltool's training engine vs a minimal hand-written PyTorch loop: same model, data, batch size,
optimizer and schedule, measured in the same run. Prints `ratio=<dltool time / hand loop time>`.

The dltool side is the Engine as `vision classify train` runs it (checkpoints, metrics.jsonl and
curves.png every run included); data decoding is excluded from both sides.
Usage: python benchmarks/train_overhead.py [--epochs 20] [--img-size 8] [--repeats 7]
(the defaults are `vision classify train sample_data/digits/train`'s: 8 px, 20 epochs)
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dltool.core import images as vdata
from dltool.core.checkpoint import RunFiles
from dltool.core.data import TensorBatches
from dltool.core.inputs import scan_labelled
from dltool.core.train import Engine, EngineConfig
from dltool.vision.classify import ClassifyTask
from dltool.vision.models import create_model

ROOT = Path(__file__).resolve().parents[1]


def load(img_size):
    labelled = scan_labelled(ROOT / "sample_data/digits/train", vdata.IMAGES)
    images, _ = vdata.decode([it.path for it in labelled], img_size, "L", skip_bad=False)
    classes = sorted({it.label for it in labelled})
    targets = np.array([classes.index(it.label) for it in labelled])
    return torch.from_numpy(images), torch.from_numpy(targets), classes


def make_model(classes):
    torch.manual_seed(0)
    return create_model("cnn", num_classes=len(classes), in_channels=1)


class FileTime:
    """Wall time the engine spends writing its files (checkpoints, metrics, the final model, summary and
    curves): the part of its overhead that a hand loop, which writes nothing, does not have."""

    METHODS = ((Engine, "_checkpoint"), (Engine, "_finish"), (RunFiles, "save"), (RunFiles, "write_history"),
               (RunFiles, "write_config"))

    def __init__(self):
        self.seconds = 0.0
        self.depth = 0

    def install(self):
        for cls, name in self.METHODS:
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, method):
        def run(obj, *args, **kwargs):
            self.depth += 1
            t = time.perf_counter()
            try:
                return method(obj, *args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:  # _checkpoint calls RunFiles.save: count the outermost call once
                    self.seconds += time.perf_counter() - t
        return run


FILES = FileTime()


def run_dltool(x, y, classes, epochs, batch, img_size):
    pre = {"img_size": img_size, "mode": "L", "mean": [0.3], "std": [0.4]}
    model = make_model(classes)
    task = ClassifyTask("cnn", {"num_classes": len(classes), "in_channels": 1}, classes, pre, torch.device("cpu"))
    cfg = EngineConfig(epochs=epochs, optimizer="adam", scheduler="onecycle", seed=0)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        Engine(task, model, cfg, Path(d) / "run", torch.device("cpu"), {}).fit(
            TensorBatches((x, y), batch, shuffle=True, seed=0))
        return time.perf_counter() - t


def run_hand_loop(x, y, classes, epochs, batch):
    model = make_model(classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = (len(x) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=epochs * steps)
    t = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = (x[idx].float() / 255 - 0.3) / 0.4
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--img-size", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    x, y, classes = load(a.img_size)
    print(f"{len(x)} digits at {a.img_size}px, cnn, batch {a.batch_size}, {a.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    run_hand_loop(x, y, classes, 1, a.batch_size)  # warm-up (allocator, kernels)
    run_dltool(x, y, classes, 1, a.batch_size, a.img_size)  # and the first-use imports (matplotlib, ...)
    FILES.install()
    ours, hand, files = [], [], []
    for r in range(a.repeats):  # interleaved, best of n: the machine is noisy
        hand.append(run_hand_loop(x, y, classes, a.epochs, a.batch_size))
        FILES.seconds = 0.0
        ours.append(run_dltool(x, y, classes, a.epochs, a.batch_size, a.img_size))
        files.append(FILES.seconds)
        print(f"repeat {r + 1}: hand loop {hand[-1]:.2f}s  dltool {ours[-1]:.2f}s (writing files {files[-1]:.2f}s)")
    median = statistics.median
    print(f"median: hand loop {median(hand):.2f}s  dltool {median(ours):.2f}s  "
          f"(median ratio {median(ours) / median(hand):.3f})")
    print(f"best: hand loop {min(hand):.2f}s  dltool {min(ours):.2f}s")
    training = [o - f for o, f in zip(ours, files)]
    print(f"writing files: median {median(files):.2f}s a run (last.pt and best.pt each epoch, metrics.jsonl, "
          f"model.pt, summary.json, curves.png); the loop without it: median ratio "
          f"{median(training) / median(hand):.3f}, best {min(training) / min(hand):.3f}")
    print(f"ratio={min(ours) / min(hand):.3f}")


if __name__ == "__main__":
    main()
