"""Issue 23's names bar, in one command: train `dltool text lm` on sample_data/text/names/train.txt with
the test file as --val (makemore's protocol), then report the test loss (nats per character), the share of
200 samples (`sample -n 200 --seed 0`) not in the training file, and the exact share of the model's
probability on the training names (`score` of every distinct training name, exp(logprob) summed: the
number the 200 samples estimate, without their noise), and the same two figures of the network alone (the
model is the network's repeat mixture: dltool.text.lm_repeats). The test file's own names are 86% new: a model
that prefers no name it has seen would write about as many. The test loss is also split between the test
names that are training names too (names.txt lists 2,539 names twice; 461 of the 3,203 test lines) and
the unseen rest: memorising pays on the first part only.

Every argument after the options goes to `text lm train` (default options otherwise). Usage:
    python benchmarks/lm_names.py [--time-limit 10] [--work DIR] [-- --dropout 0.3 --word-dropout 0.2]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT / "sample_data" / "text" / "names"


def dltool(*args, stdin: str | None = None) -> str:
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], capture_output=True, text=True,
                       input=stdin, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=10.0, help="minutes of training (the bar: 10)")
    ap.add_argument("--work", type=Path, help="folder for the run (default: a temp dir)")
    ap.add_argument("train_args", nargs="*", help="more `text lm train` options (after --)")
    args = ap.parse_args()
    run = (args.work or Path(tempfile.mkdtemp(prefix="lm-names-"))) / "run"
    train_file, test_file = NAMES / "train.txt", NAMES / "test.txt"
    load_before, t0 = os.getloadavg(), time.perf_counter()
    summary = json.loads(dltool("text", "lm", "train", train_file, "--val", test_file, "--time-limit", args.time_limit,
                                "--out", run, "--force", "--quiet", "--format", "json", *args.train_args))
    train_s = time.perf_counter() - t0
    test = json.loads(dltool("text", "lm", "eval", run, test_file, "--format", "json", "--quiet"))
    seen = set(train_file.read_text().split())
    samples = [json.loads(line)["text"] for line in
               dltool("text", "lm", "sample", run, "-n", 200, "--seed", 0, "--format", "jsonl").splitlines()]
    scored = dltool("text", "lm", "score", run, "-", "--format", "jsonl", stdin="\n".join(sorted(seen)) + "\n")
    mass = sum(math.exp(json.loads(line)["logprob"]) for line in scored.splitlines())
    # the test file's names that are also training names (names.txt lists some twice) against the rest
    split = {True: [0.0, 0], False: [0.0, 0]}
    for line in dltool("text", "lm", "score", run, test_file, "--format", "jsonl").splitlines():
        row = json.loads(line)
        split[row["text"] in seen][0] -= row["logprob"]
        split[row["text"] in seen][1] += row["tokens"]
    print(json.dumps({"train_args": " ".join(args.train_args), "time_limit_min": args.time_limit,
                      "train_s": round(train_s, 1), "epochs": summary.get("epochs_run"),
                      "best_epoch": summary.get("best_epoch"), "test_loss": round(test["loss"], 4),
                      "test_loss_seen_names": round(split[True][0] / max(split[True][1], 1), 4),
                      "test_loss_unseen_names": round(split[False][0] / max(split[False][1], 1), 4),
                      "new_of_200": sum(s not in seen for s in samples) / len(samples),
                      "train_names_probability": round(mass, 3),
                      # the network alone (the repeat mixture's parts: dltool.text.lm_repeats); --val is the test file
                      "test_loss_network": round(summary["val_loss"], 4),
                      "network_train_names_probability": summary.get("repeat_network_share"),
                      "repeat_rate": summary.get("repeat_rate"), "load_before": load_before,
                      "load_after": os.getloadavg(), "run": str(run)}, indent=2))


if __name__ == "__main__":
    main()
