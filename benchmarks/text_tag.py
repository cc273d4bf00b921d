"""Issue 25's tagging bars on the Turkish UD sample (`sample_data/text/ud_turkish`, UPOS): `bilstm-crf`
must beat a most-frequent-tag-per-word baseline by at least 5 points of token accuracy on the held-out
test.conllu, and be no worse than `bilstm`. Measured through the CLI as a user runs it (every option the
command's default but --model and --seed); the baseline is computed here, independently: each training
word's most frequent UPOS, and the most frequent UPOS overall for words never seen in training.

Prints one JSON object: test token accuracy, accuracy on unknown words and training time per model and
seed, the baseline's accuracy, and the load average before and after (times on a loaded machine are
pessimistic). Usage: python benchmarks/text_tag.py [--seeds 1] [--first-seed 0] [--models bilstm,bilstm-crf] [--val-split 0]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UD = ROOT / "sample_data" / "text" / "ud_turkish"


def dltool(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


def read_upos(path: Path):
    sents, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                sents.append(cur)
            cur = []
        elif not line.startswith("#"):
            f = line.split("\t")
            if "-" not in f[0] and "." not in f[0]:
                cur.append((f[1], f[3]))
    return sents + ([cur] if cur else [])


def baseline(train, test) -> float:
    per_word = defaultdict(Counter)
    for s in train:
        for w, t in s:
            per_word[w.lower()][t] += 1
    overall = Counter(t for s in train for _, t in s).most_common(1)[0][0]
    pairs = [(per_word[w.lower()].most_common(1)[0][0] if w.lower() in per_word else overall, t)
             for s in test for w, t in s]
    return sum(p == t for p, t in pairs) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--val-split", default=None, help="passed to train (default: the command's, 0.1)")
    ap.add_argument("--models", default="bilstm,bilstm-crf")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    result = {"baseline_most_frequent_tag": baseline(read_upos(UD / "train.conllu"), read_upos(UD / "test.conllu"))}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                run = Path(tmp) / f"{model}-{seed}"
                t0 = time.perf_counter()
                extra = ["--val-split", args.val_split] if args.val_split is not None else []
                dltool("text", "tag", "train", UD / "train.conllu", "--model", model, "--seed", seed, "--out", run,
                       *extra, "--quiet", "--format", "json")
                seconds = time.perf_counter() - t0
                m = json.loads(dltool("text", "tag", "eval", run, UD / "test.conllu", "--format", "json", "--quiet"))
                result[f"{model} seed {seed}"] = {"accuracy": round(m["accuracy"], 4),
                                                  "oov_accuracy": round(m["oov_accuracy"], 4),
                                                  "oov_tokens": m["oov_tokens"], "wall_s": round(seconds, 1)}
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
