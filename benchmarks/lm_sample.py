"""Sampling speed of `text lm sample` with and without the key/value cache, measured in the same run:
tokens per second writing `--tokens` tokens after a one-token prompt, and `ratio=<with / without>`.

The model is `text lm train`'s default gpt (4 layers, 4 heads, width 64) with a context that holds the whole
sample, at random weights (speed does not depend on them), a character vocabulary of 65, on one CPU thread
(the thread policy `text lm` runs small models with). Without the cache every token reruns the sequence so
far, so its cost grows with the square of the length; with it, linearly.
Usage: python benchmarks/lm_sample.py [--tokens 512] [--n 1] [--repeats 3]
"""

import argparse
import time
from pathlib import Path

import torch

from dltool.text.lm import SampleConfig, generate
from dltool.text.models.lm import LM_MODELS


def tokens_per_s(model, args, cache: bool) -> float:
    cfg = SampleConfig(model=Path("-"), temperature=1.0)
    best = float("inf")
    for r in range(args.repeats):
        g = torch.Generator().manual_seed(r)
        t0 = time.perf_counter()
        rows = generate(model, [0], args.n, args.tokens, cfg, g, stop_at_boundary=False, cache=cache)
        best = min(best, time.perf_counter() - t0)
        assert all(len(row) == args.tokens for row in rows)
    return args.n * args.tokens / best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--n", type=int, default=1, help="samples written side by side")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LM_MODELS.create("gpt", vocab_size=65, context=args.tokens + 1).eval()
    cached = tokens_per_s(model, args, cache=True)
    rerun = tokens_per_s(model, args, cache=False)
    print(f"tokens={args.tokens} n={args.n} with_cache={cached:.0f} tok/s without_cache={rerun:.0f} tok/s "
          f"ratio={cached / rerun:.2f}")


if __name__ == "__main__":
    main()
