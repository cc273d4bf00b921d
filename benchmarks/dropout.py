"""dltool.nn.Dropout (a CPU mask from 64-bit random words, eight bytes each) against torch's nn.Dropout
(a Bernoulli draw per element), measured in the same run, alternating:

- mask: one dropout of a (256, 9, 512) tensor, forward only: the G2P encoder's output in a batch of 256;
- g2p-step: a training step (forward, backward, AdamW) of the default `text seq2seq` lstm (Luong attention,
  batches of 256 pairs of 9 source and 8 target tokens, bfloat16 autocast as the plan gives a CPU with it,
  float32 otherwise), with every dropout of the model one kind or the other;
- lm-step: a training step of the default `text lm` lstm on names (2 layers of 256, embeddings of 64, dropout
  0.5, batches of 64 lines of 7 tokens, vocabulary 28) on the threads training gives it: torch's two-layer
  nn.LSTM with its dropout between the layers and nn.Dropout, against dltool.nn's StackedRNN and Dropout.

Prints one line per workload: `ratio=<torch time / dltool time>` (above 1: dltool's is faster). The drop
share of both is printed too (dltool's rounds p to 1/256). Usage: python benchmarks/dropout.py [--repeats 5]
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dltool.core.device import native_cpu_bfloat16  # noqa: E402
from dltool.nn.dropout import Dropout  # noqa: E402


def timed(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def with_dropout(model: nn.Module, kind) -> nn.Module:
    """`model` with each dropout module replaced by kind(p)."""
    for name, child in model.named_children():
        if isinstance(child, (nn.Dropout, Dropout)):
            setattr(model, name, kind(child.p))
        else:
            with_dropout(child, kind)
    return model


def g2p_step(kind):
    from dltool.text.models.seq2seq import SEQ2SEQ_MODELS

    torch.manual_seed(0)
    model = with_dropout(SEQ2SEQ_MODELS.create("lstm", src_vocab=30, tgt_vocab=42), kind)
    opt = torch.optim.AdamW(model.parameters(), 4e-3)
    n, s, t = 256, 9, 8
    src, src_len = torch.randint(2, 30, (n, s)), torch.full((n,), s)
    tgt_in, tgt_out = torch.randint(2, 42, (n, t)), torch.randint(2, 42, (n, t))
    amp = native_cpu_bfloat16()

    def step():
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            logits = model(src, src_len, tgt_in)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, 42), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def lm_step(kind):
    from dltool.nn.recurrent import StackedRNN

    torch.manual_seed(0)
    vocab, dim, hidden, p = 28, 64, 256, 0.5
    if kind is nn.Dropout:
        rnn = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, dropout=p)
    else:
        rnn = StackedRNN(nn.LSTM, dim, hidden, 2, p)
    model = nn.ModuleDict({"embedding": nn.Embedding(vocab, dim), "rnn": rnn, "drop": kind(p),
                           "head": nn.Linear(hidden, vocab)})
    opt = torch.optim.AdamW(model.parameters(), 2e-3)
    x, y = torch.randint(0, vocab, (64, 7)), torch.randint(0, vocab, (64, 7))

    def step():
        out, _ = model["rnn"](model["drop"](model["embedding"](x)))
        loss = nn.functional.cross_entropy(model["head"](model["drop"](out)).reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="alternating measurements of each kind")
    args = ap.parse_args()
    x = torch.randn(256, 9, 512)
    kinds = {"torch": nn.Dropout, "dltool": Dropout}
    workloads = {"mask": ({k: (lambda d=kind(0.2): d(x)) for k, kind in kinds.items()}, 50),
                 "g2p-step": ({k: g2p_step(kind) for k, kind in kinds.items()}, 10),
                 "lm-step": ({k: lm_step(kind) for k, kind in kinds.items()}, 50)}
    from dltool.core.threads import single_thread_below

    for name, (fns, reps) in workloads.items():
        times = {k: [] for k in kinds}
        # text lm's thread policy for its step (64 lines x 7 tokens x the dense weights); the others keep all
        lm_work = 64 * 7 * (4 * 256 * (64 + 256) + 4 * 256 * 512 + 256 * 28)
        with single_thread_below(torch.device("cpu"), lm_work) if name == "lm-step" else contextlib.nullcontext():
            for _ in range(args.repeats):
                for k, fn in fns.items():
                    times[k].append(timed(fn, reps))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name}: torch {med['torch'] * 1000:.2f} ms, dltool {med['dltool'] * 1000:.2f} ms, "
              f"ratio={med['torch'] / med['dltool']:.2f}")
    for k, kind in kinds.items():
        print(f"{k}: dropped share at p=0.2 {float((kind(0.2)(torch.ones(10 ** 6)) == 0).float().mean()):.4f}")


if __name__ == "__main__":
    main()
