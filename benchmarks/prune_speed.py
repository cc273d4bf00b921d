"""CPU inference time of a classifier before and after `dltool vision classify prune`, in the same run.

    .venv/bin/python benchmarks/prune_speed.py runs/digits/model.pt runs/digits-pruned/model.pt
    .venv/bin/python benchmarks/prune_speed.py DENSE PRUNED --batch 256 --repeats 20

Both model files run a batch of random [0, 1] images at the model's input size, in turn (so load on the
machine falls on both alike), each keeping its best time over --repeats. A structurally pruned `cnn`
also runs with its dead channels taken out (dltool.vision.prune._slim: the speed a slimmed export would
give). ratio = dense time / pruned time: above 1 means the pruned model is faster. Unstructured sparsity
keeps the dense kernels, so expect a ratio near 1. The last line reads `ratio=<x>` (and `slim_ratio=<y>`).
"""

from __future__ import annotations

import argparse
import time

import torch


def _net(path):
    from dltool.core.export import Normalized
    from dltool.vision import classify

    lm = classify.load(path, "cpu")
    return Normalized(lm.model, lm.task.mean, lm.task.std).eval(), lm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dense")
    ap.add_argument("pruned")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    from dltool.vision.prune import _slim

    dense, lm = _net(a.dense)
    pruned, plm = _net(a.pruned)
    nets = {"dense": dense, "pruned": pruned}
    if (plm.ckpt.get("sparsity") or {}).get("structured"):
        from dltool.core.export import Normalized

        slim = _slim(plm.model)
        if slim is not None:
            nets["slim"] = Normalized(slim.eval(), plm.task.mean, plm.task.std).eval()
    size, channels = lm.preprocess["img_size"], 1 if lm.preprocess["mode"] == "L" else 3
    x = torch.rand(a.batch, channels, size, size, generator=torch.Generator().manual_seed(0))
    best = {name: float("inf") for name in nets}
    with torch.inference_mode():
        for net in nets.values():
            net(x)
        for _ in range(a.repeats):
            for name, net in nets.items():
                t = time.perf_counter()
                net(x)
                best[name] = min(best[name], time.perf_counter() - t)
    for name, t in best.items():
        print(f"{name}: {1000 * t:.2f} ms per batch of {a.batch}")
    line = f"ratio={best['dense'] / best['pruned']:.3f}"
    if "slim" in best:
        line += f" slim_ratio={best['dense'] / best['slim']:.3f}"
    print(line)


if __name__ == "__main__":
    main()
