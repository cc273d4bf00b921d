"""The segment bars of issue 8 on sample_data/shapes, through the CLI as a user runs it:

1. `vision segment train sample_data/shapes/train --time-limit 5` with every other option at its
   default (U-Net), then `eval` on the test split: mean IoU (bar: >= 0.90 on an idle 2-core CPU);
2. the same model evaluated in tiles (`--tile 32`, half the training size: nine overlapping tiles
   per image) against whole images: mean IoU within 0.02.

Prints one JSON object: both mIoUs, their difference, the training time, the epochs the time limit
planned, and the load average before and after (figures measured on a loaded machine are not the
bar's; say so when you report them).
Usage: python benchmarks/segment_shapes.py [--time-limit 5] [--device cpu] [-- extra train options]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data" / "shapes"


def dltool(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], check=True, capture_output=True,
                          text=True, cwd=ROOT)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=5.0, help="training budget in minutes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("extra", nargs="*", help="more train options, after --")
    a = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        dltool("vision", "segment", "train", DATA / "train", "--time-limit", a.time_limit, "--device", a.device,
               "--out", run, "--quiet", "--format", "json", *a.extra)
        train_s = time.perf_counter() - t0
        epochs = len((run / "metrics.jsonl").read_text().splitlines())
        whole = json.loads(dltool("vision", "segment", "eval", run, DATA / "test", "--device", a.device,
                                  "--format", "json"))
        tiled = json.loads(dltool("vision", "segment", "eval", run, DATA / "test", "--device", a.device,
                                  "--tile", 32, "--format", "json"))
    print(json.dumps({"miou": round(whole["miou"], 4), "miou_tiled_32": round(tiled["miou"], 4),
                      "tiled_minus_whole": round(tiled["miou"] - whole["miou"], 4),
                      "per_class_iou": {c: v["iou"] for c, v in whole["per_class"].items()},
                      "train_s": round(train_s, 1), "epochs": epochs, "time_limit_min": a.time_limit,
                      "loadavg_before": load_before, "loadavg_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
