"""`--amp` on a CPU (bfloat16 autocast) against float32, measured in the same run: each workload trains
the same epochs through the CLI both ways, alternating, and the training time (`train_time_s` of the run's
summary: data preparation and start-up excluded) is compared. Prints one line per workload with
`ratio=<float32 time / --amp time>` (above 1: --amp is faster) and the validation figure of both, so a
speed-up that costs accuracy shows.

Workloads: G2P pairs (sample_data/text/g2p) with the default transformer at batch 64 and 256 and the lstm
at 256; the digit classifier (sample_data/digits, 8 px) as a small convnet whose steps are too small to gain.
Usage: python benchmarks/cpu_amp.py [--epochs 2] [--repeats 2] [--only g2p-transformer-b256]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
G2P = ["text", "seq2seq", "train", "sample_data/text/g2p/train.tsv", "--target-vocab", "word"]
WORKLOADS = {
    "g2p-transformer-b64": (G2P + ["--batch-size", "64"], "val_loss"),
    "g2p-transformer-b256": (G2P + ["--batch-size", "256", "--lr", "0.002"], "val_loss"),
    "g2p-lstm-b256": (G2P + ["--model", "lstm", "--batch-size", "256", "--lr", "0.002"], "val_loss"),
    "digits-cnn": (["vision", "classify", "train", "sample_data/digits/train"], "val_accuracy"),
}


def train(args: list[str], epochs: int, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "dltool", *args, "--epochs", str(epochs), "--out", str(out), "--force",
                        "--quiet", "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(args)} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating; the median counts")
    ap.add_argument("--only", help="one workload: " + ", ".join(WORKLOADS))
    args = ap.parse_args()
    print(f"# load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cmd, metric) in WORKLOADS.items():
            if args.only and name != args.only:
                continue
            times, scores = {"fp32": [], "amp": []}, {"fp32": None, "amp": None}
            for _ in range(args.repeats):
                for side, extra in (("fp32", ["--no-amp"]), ("amp", ["--amp"])):
                    s = train(cmd + extra, args.epochs, Path(tmp) / side)
                    times[side].append(s["train_time_s"])
                    scores[side] = s.get(metric)
            fp32, amp = statistics.median(times["fp32"]), statistics.median(times["amp"])
            print(f"{name:22s} float32 {fp32:7.1f} s  --amp {amp:7.1f} s  ratio={fp32 / amp:.2f}  "
                  f"{metric} {scores['fp32']:.3f} vs {scores['amp']:.3f}", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
