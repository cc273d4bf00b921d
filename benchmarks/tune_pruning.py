"""The tune bars on the digits, measured in one run: a 20-trial TPE study over the issue's space, lr,
optimizer sgd|adam (with a branch: --momentum exists only under sgd), batch size and dropout, once
without a pruner and once with the median pruner, against the default configuration trained once.

Prints the default's val_accuracy, each study's best val_accuracy, the total trial time of each
study (the sum of its trials' durations: training plus each trial's data loading) and
`time_ratio=<pruned / unpruned>`. Bars: both bests >= the default; time_ratio <= 0.70; the two bests
within 0.01 (1 point of accuracy).

Usage: python benchmarks/tune_pruning.py [--trials 20] [--epochs 10] [--width 16] [--device cpu] [--out DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dltool(*args) -> dict:
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="dltool-tune-bench-"))
    command = ["vision", "classify", "train", str(ROOT / "sample_data/digits/train"), "--model", "cnn",
               "--width", str(a.width), "--epochs", str(a.epochs), "--val-split", "0.2", "--device", a.device,
               "--quiet"]
    t0 = time.perf_counter()
    default = dltool(*command, "--out", out / "default", "--format", "json")
    default_s = time.perf_counter() - t0
    print(f"default: val_accuracy={default['val_accuracy']:.4f} ({default_s:.1f} s)", flush=True)

    spec = out / "digits.toml"
    spec.write_text(f"""command = {json.dumps(command)}
metric = "val_accuracy"
direction = "maximize"
trials = {a.trials}
sampler = "tpe"
seed = 0

[space]
lr = {{ type = "float", low = 1e-4, high = 1e-1, log = true }}
optimizer = {{ type = "categorical", choices = ["sgd", "adam"] }}
momentum = {{ type = "float", low = 0.0, high = 0.99, when = {{ optimizer = "sgd" }} }}
batch_size = {{ type = "int", low = 16, high = 128, step = 16 }}
dropout = {{ type = "float", low = 0.0, high = 0.5 }}
""")
    results = {}
    for pruner in ("none", "median"):
        study = dltool("tune", "run", spec, "--study", f"digits-{pruner}", "--out", out / pruner, "--pruner", pruner,
                       "--quiet", "--format", "json")
        shown = dltool("tune", "show", out / pruner, "--format", "json", "--no-plots")
        seconds = sum(row["seconds"] or 0 for row in shown["trial_table"])
        results[pruner] = (study["best"]["val_accuracy"], seconds, study["pruned"])
        print(f"pruner={pruner}: best val_accuracy={results[pruner][0]:.4f}, trials' total time {seconds:.1f} s, "
              f"{study['pruned']} pruned; best: {study['best']['params']}", flush=True)
    (best_none, s_none, _), (best_median, s_median, _) = results["none"], results["median"]
    ratio = s_median / s_none
    print(f"time_ratio={ratio:.3f} (bar <= 0.70)  best_gap={best_none - best_median:+.4f} (bar |gap| <= 0.01)  "
          f"vs default: {best_none - default['val_accuracy']:+.4f} / {best_median - default['val_accuracy']:+.4f} "
          f"(bar >= 0)")
    print(f"study folders: {out}")


if __name__ == "__main__":
    main()
