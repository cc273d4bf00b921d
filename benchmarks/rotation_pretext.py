"""Rotation pretext (issue 28): with 10% of the digits' training labels, does self-supervised pretraining help?

`dltool vision classify pretrain --pretext rotation` learns on every image of sample_data/digits/train
without its label (once). For each seed, a stratified 10% of the training images keeps its labels; the
same network is trained on them from the pretrained weights (`train --pretrained`) and from scratch, for
the same epochs, and both are scored on sample_data/digits/test by `dltool vision classify eval`. All runs
go through the CLI in-process. The bar: pretrained-then-fine-tuned beats from scratch.

Usage: python benchmarks/rotation_pretext.py [--seeds 0,1,2] [--model lenet] [--pretrain-epochs 30]
       [--epochs 60] [--share 0.1] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "sample_data" / "digits"


def dltool(*args) -> dict:
    """A dltool command in this process; its JSON result."""
    from dltool.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main([str(a) for a in args] + ["--quiet", "--format", "json"])
        except SystemExit as e:
            if e.code:
                raise RuntimeError(f"dltool {' '.join(map(str, args))} exited {e.code}") from None
    return json.loads(buf.getvalue())


def labelled_share(work: Path, share: float, seed: int) -> Path:
    """A folder of symlinks: a stratified `share` of the training images, in their class folders."""
    from sklearn.model_selection import train_test_split

    paths = sorted(DIGITS.glob("train/*/*.png"))
    labels = [p.parent.name for p in paths]
    keep, _ = train_test_split(paths, train_size=share, stratify=labels, random_state=seed)
    root = work / f"labelled-{seed}"
    for p in keep:
        (root / p.parent.name).mkdir(parents=True, exist_ok=True)
        (root / p.parent.name / p.name).symlink_to(p)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--pretrain-epochs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    work = a.work or Path(tempfile.mkdtemp(prefix="rotation_"))
    common = ["--model", a.model, "--device", "cpu", "--force"]

    t = time.perf_counter()
    pre = dltool("vision", "classify", "pretrain", DIGITS / "train", "--pretext", "rotation", "--epochs",
                 a.pretrain_epochs, "--out", work / "pretext", *common)
    pre_s = time.perf_counter() - t
    print(f"pretext: rotation accuracy {pre['val_accuracy']:.4f} on held-out images ({pre_s:.0f} s)", file=sys.stderr)

    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        data = labelled_share(work, a.share, seed)
        n = len(list(data.glob("*/*.png")))
        row = {"seed": seed, "labelled": n}
        for name, extra in (("scratch", []), ("pretrained", ["--pretrained", work / "pretext" / "model.pt"])):
            run = work / f"{name}-{seed}"
            dltool("vision", "classify", "train", data, "--epochs", a.epochs, "--val-split", "0", "--seed", seed,
                   "--out", run, *common, *extra)
            row[name] = dltool("vision", "classify", "eval", run / "model.pt", DIGITS / "test",
                               "--device", "cpu")["accuracy"]
        rows.append(row)
        print(f"seed {seed}: {row}", file=sys.stderr, flush=True)

    print(f"\nrotation pretext on digits: {a.model}, pretrained {a.pretrain_epochs} epochs on "
          f"{len(list(DIGITS.glob('train/*/*.png')))} unlabelled images (rotation accuracy {pre['val_accuracy']:.4f}); "
          f"{a.share:.0%} of the labels, {a.epochs} epochs; test accuracy on {len(list(DIGITS.glob('test/*/*.png')))} images")
    print(f"{'seed':>4s} {'labelled':>8s} {'scratch':>8s} {'pretrained':>10s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['seed']:4d} {r['labelled']:8d} {r['scratch']:8.4f} {r['pretrained']:10.4f} "
              f"{r['pretrained'] / r['scratch']:6.3f}")
    s, p = np.mean([r["scratch"] for r in rows]), np.mean([r["pretrained"] for r in rows])
    print(f"mean {'':8s} {s:8.4f} {p:10.4f} {p / s:6.3f}")
    wins = sum(r["pretrained"] > r["scratch"] for r in rows)
    print(f"bar (pretrained beats scratch): {'met' if wins == len(rows) else 'NOT met'} on {wins} of {len(rows)} seeds")


if __name__ == "__main__":
    main()
