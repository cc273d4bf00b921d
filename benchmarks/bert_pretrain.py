"""Issue 10's pretraining bar: does a BERT pretrained by `text classify pretrain` then fine-tuned do at
least as well as the same BERT trained from scratch? Measured through the CLI, as a user runs it:

1. SMS (`sample_data/text/sms`): `pretrain lee_background.cor train.csv`, then for each seed
   `train --model bert --seed S` (scratch) and `train --model bert --init-from MLM --seed S`, both
   evaluated on the test split;
2. pang_lee_polarity.cor (gensim's 200 labelled movie-review sentences, fastText format,
   Windows-1252): 5 folds of a
   seeded shuffle; per fold, `pretrain lee_background.cor <the fold's training texts>` and the same two
   trainings, each scored on the held-out 40 lines; the folds' predictions pooled.

Every other option is the command's default. Prints one JSON object: macro F1 per seed and their mean
for SMS, pooled accuracy and macro F1 for pang_lee, both arms side by side, and the load average before
and after (figures taken on a loaded machine compare the arms, but their times are not the bar's).
Usage: python benchmarks/bert_pretrain.py [--seeds 3] [--folds 5] [--skip sms|pang_lee]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT / "sample_data" / "text" / "sms"


def gensim_file(name: str) -> Path:
    from gensim.test.utils import datapath

    return Path(datapath(name))


def dltool(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "dltool", *map(str, args), "--quiet"], check=True,
                          capture_output=True, text=True, cwd=ROOT)
    return done.stdout


def macro_f1(run: Path, test: Path) -> float:
    return json.loads(dltool("text", "classify", "eval", run, test, "--format", "json"))["f1_macro"]


def predicted(run: Path, test: Path) -> list[str]:
    lines = dltool("text", "classify", "predict", run, test, "--format", "jsonl").splitlines()
    return [json.loads(line)["label"] for line in lines]


def sms(tmp: Path, seeds: int) -> dict:
    mlm = tmp / "sms-mlm"
    dltool("text", "classify", "pretrain", gensim_file("lee_background.cor"), SMS / "train.csv", "--out", mlm)
    arms = {"scratch": [], "pretrained": []}
    for seed in range(seeds):
        for arm, extra in (("scratch", ()), ("pretrained", ("--init-from", mlm))):
            run = tmp / f"sms-{arm}-{seed}"
            dltool("text", "classify", "train", SMS / "train.csv", "--model", "bert", "--seed", seed, *extra,
                   "--out", run)
            arms[arm].append(round(macro_f1(run, SMS / "test.csv"), 4))
    return {arm: {"macro_f1": f1s, "mean": round(statistics.mean(f1s), 4)} for arm, f1s in arms.items()}


def pang_lee(tmp: Path, folds: int) -> dict:
    # the file is Windows-1252 (its dashes are byte 0x97); the folds are written as UTF-8
    text = gensim_file("pang_lee_polarity.cor").read_text(encoding="cp1252")
    lines = [line for line in text.splitlines() if line.strip()]
    random.Random(0).shuffle(lines)
    truth, guesses = [], {"scratch": [], "pretrained": []}
    for k in range(folds):
        test_lines = lines[k::folds]
        train_lines = [line for i, line in enumerate(lines) if i % folds != k]
        train, test, texts = tmp / f"pl{k}-train.txt", tmp / f"pl{k}-test.txt", tmp / f"pl{k}-texts.txt"
        train.write_text("\n".join(train_lines) + "\n")
        test.write_text("\n".join(test_lines) + "\n")
        texts.write_text("\n".join(line.split(" ", 1)[1] for line in train_lines) + "\n")
        mlm = tmp / f"pl{k}-mlm"
        dltool("text", "classify", "pretrain", gensim_file("lee_background.cor"), texts, "--out", mlm)
        truth += [line.split(" ", 1)[0].removeprefix("__label__") for line in test_lines]
        for arm, extra in (("scratch", ()), ("pretrained", ("--init-from", mlm))):
            run = tmp / f"pl{k}-{arm}"
            dltool("text", "classify", "train", train, "--model", "bert", *extra, "--out", run)
            guesses[arm] += predicted(run, test)
    return {arm: {"accuracy": round(accuracy_score(truth, g), 4),
                  "macro_f1": round(f1_score(truth, g, average="macro"), 4)} for arm, g in guesses.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="SMS fine-tunings per arm")
    ap.add_argument("--folds", type=int, default=5, help="pang_lee folds")
    ap.add_argument("--skip", choices=("sms", "pang_lee"), action="append", default=[])
    a = ap.parse_args()
    out = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        if "pang_lee" not in a.skip:
            out["pang_lee"] = pang_lee(Path(tmp), a.folds)
            print(json.dumps(out), file=sys.stderr, flush=True)
        if "sms" not in a.skip:
            out["sms"] = sms(Path(tmp), a.seeds)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
