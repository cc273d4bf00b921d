"""Issue 22's panel: every default recipe on real data it was not tuned on, run as a user types it (each CLI
command through a subprocess, with DEFAULT options but --model, --out and --seed), in one table:
dataset, model, metric, its value, the baseline (measured in the same run) and the training time.

Text classification: reuters_r8 (its own train/test files), sentiment_labelled_sentences (the three files
pooled, a 75/25 split with random_state=1000, as SOURCE.md's published figures use) and sms_spam (the
repo's sample_data split); the baseline is `--model tfidf`, the default neural model (mlp) is the command
with no --model, and each family (lstm, transformer, cnn) has its row. The data sets are in ../shared/data
(override with --data-root).

Segmentation: weizmann_horse (SOURCE.md's split: horse001-278 train, 279-328 without the black 318
test; the JPEG masks at their own sizes, as shipped: the reader thresholds and resizes them) and the
repo's shapes set; the default `vision segment train` (no --model), mean IoU from `segment eval` on the
test images at their own size, against the baseline of predicting the commonest class alone (published:
U-Net about 0.91-0.92 on the horses, SOURCE.md). VAE: `generate vae train` on the sample digits with
defaults, 100 samples (seed 0) judged by `generate score` with the default digits classifier (`vision
classify train sample_data/digits/train --img-size 16`, trained in the same run): the value is the mean
confidence, the baseline the GAN defaults' 0.82 (README), and the row says how many classes of 10 it drew.

A new row family joins by adding its datasets to DATASETS and its runs to TASKS: a function
(dataset, files, workdir, args) -> rows.

Usage: python benchmarks/recipes.py [--datasets r8,sentiment,sms,horse,shapes,digits]
       [--models default,tfidf,mlp,lstm,transformer,cnn,fasttext]
       [--seed 0] [--extra "--epochs 20"] [--json]
Times are wall-clock seconds of the train command (on a loaded machine they are pessimistic).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT.parent / "shared" / "data"


def dltool(*args, quiet: bool = True) -> str:
    """Run `dltool ARGS` as a user would; its stdout (the command's JSON result)."""
    r = subprocess.run([sys.executable, "-m", "dltool", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        raise SystemExit(f"dltool {' '.join(map(str, args))} failed:\n{r.stderr}")
    if not quiet:
        sys.stderr.write(r.stderr)
    return r.stdout


# -- the text sets, written as JSON Lines {"text", "label"} (no CSV quoting to trip over) ----------------

def _write_jsonl(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": str(label)}) + "\n")
    return path


def _tab_rows(path: Path, label_first: bool):
    """label<TAB>text (R8) or text<TAB>label (the sentiment files), split on the tab, no quoting."""
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines: IMDB holds U+0085
        if not line.strip():
            continue
        a, b = (line.split("\t", 1) if label_first else line.rsplit("\t", 1))
        rows.append((b.strip(), a) if label_first else (a.strip(), b))
    return rows


def r8(root: Path, work: Path):
    folder = root / "reuters_r8" / "data" / "R8"
    return (_write_jsonl(work / "train.jsonl", _tab_rows(folder / "train.txt", True)),
            _write_jsonl(work / "test.jsonl", _tab_rows(folder / "test.txt", True)))


def sentiment(root: Path, work: Path):
    from sklearn.model_selection import train_test_split

    base = root / "sentiment_labelled_sentences"
    rows = [r for name in ("amazon_cells_labelled.txt", "Datasets/imdb_labelled.txt", "Datasets/yelp_labelled.txt")
            for r in _tab_rows(base / name, False)]
    train, test = train_test_split(rows, test_size=0.25, random_state=1000)
    return _write_jsonl(work / "train.jsonl", train), _write_jsonl(work / "test.jsonl", test)


def sms(root: Path, work: Path):
    return ROOT / "sample_data" / "text" / "sms" / "train.csv", ROOT / "sample_data" / "text" / "sms" / "test.csv"


def horse(root: Path, work: Path):
    """Segmentation folders of links to the photos (rgb/) and their masks (figure_ground/, JPEG)."""
    db = root / "weizmann_horse" / "weizmann_horse_db"
    folders = {split: work / split for split in ("train", "test")}
    for folder in folders.values():
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
    for i in range(1, 329):
        if i == 318:  # its rgb photo is black (SOURCE.md)
            continue
        name = f"horse{i:03d}.jpg"
        folder = folders["train" if i <= 278 else "test"]
        (folder / "images" / name).symlink_to(db / "rgb" / name)
        (folder / "masks" / name).symlink_to(db / "figure_ground" / name)
    return folders["train"], folders["test"]


def shapes(root: Path, work: Path):
    return ROOT / "sample_data" / "shapes" / "train", ROOT / "sample_data" / "shapes" / "test"


def digits(root: Path, work: Path):
    return ROOT / "sample_data" / "digits" / "train", ROOT / "sample_data" / "digits" / "test"


#: dataset -> (task, how to write its train and test files)
DATASETS = {"r8": ("text-classify", r8), "sentiment": ("text-classify", sentiment), "sms": ("text-classify", sms),
            "horse": ("segment", horse), "shapes": ("segment", shapes), "digits": ("vae", digits)}


def text_classify(name: str, files, work: Path, args) -> list[dict]:
    train, test = files
    rows, baseline = [], None
    for model in args.models:
        if model == default_model(work) and "default" in args.models[:args.models.index(model)]:
            default = next(r for r in rows if r["model"] == "default")
            rows.append({**default, "model": model})  # the same command: its row again, not a second run
            continue
        out = work / f"run-{model}"
        chosen = [] if model == "default" else ["--model", model]
        extra = shlex.split(args.extra) if model != "tfidf" and args.extra else []
        t0 = time.perf_counter()
        dltool("text", "classify", "train", train, *chosen, *extra, "--seed", args.seed, "--out", out, "--force",
               "--format", "json", quiet=not args.verbose)
        seconds = time.perf_counter() - t0
        metrics = json.loads(dltool("text", "classify", "eval", out, test, "--format", "json", "--quiet"))
        if model == "tfidf":
            baseline = metrics["accuracy"]
        plan = _plan_line(out)
        rows.append({"dataset": name, "model": model, "metric": "accuracy", "value": metrics["accuracy"],
                     "baseline": None, "time_s": round(seconds, 1), "plan": plan})
    for r in rows:
        r["baseline"] = baseline
    return rows


def default_model(work: Path) -> str | None:
    """The model the command chose without --model (its run's config.toml), once that run is done."""
    import tomllib

    path = work / "run-default" / "config.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))["model"] if path.exists() else None


def _plan_line(run: Path) -> str | None:
    """The planned values a run saved (config.toml's [plan]), as one short text."""
    import tomllib

    path = run / "config.toml"
    if not path.exists():
        return None
    plan = tomllib.loads(path.read_text(encoding="utf-8")).get("plan", {}).get("values")
    return " ".join(f"{k}={v}" for k, v in plan.items()) if plan else None


def segment(name: str, files, work: Path, args) -> list[dict]:
    train, test = files
    out = work / "run-default"
    extra = shlex.split(args.extra) if args.extra else []
    t0 = time.perf_counter()
    dltool("vision", "segment", "train", train, *extra, "--seed", args.seed, "--out", out, "--format", "json",
           quiet=not args.verbose)
    seconds = time.perf_counter() - t0
    m = json.loads(dltool("vision", "segment", "eval", out, test, "--format", "json", "--quiet"))
    pixels = [c["pixels"] for c in m["per_class"].values()]
    commonest_alone = max(pixels) / sum(pixels) / len(pixels)  # its IoU is its share; every other class 0
    model = default_model(work)
    return [{"dataset": name, "model": f"default ({model})", "metric": "miou", "value": m["miou"],
             "baseline": round(commonest_alone, 3), "time_s": round(seconds, 1), "plan": _plan_line(out)}]


def vae(name: str, files, work: Path, args) -> list[dict]:
    train, test = files
    judge, out, samples = work / "judge", work / "run-default", work / "samples"
    dltool("vision", "classify", "train", train, "--img-size", "16", "--seed", args.seed, "--out", judge)
    extra = shlex.split(args.extra) if args.extra else []
    t0 = time.perf_counter()
    dltool("generate", "vae", "train", train, *extra, "--seed", args.seed, "--out", out, "--format", "json",
           quiet=not args.verbose)
    seconds = time.perf_counter() - t0
    dltool("generate", "sample", out, "-n", "100", "--seed", "0", "--out", samples, "--quiet")
    s = json.loads(dltool("generate", "score", samples, test, "--classifier", judge / "model.pt", "--format", "json",
                          "--quiet"))
    plan = _plan_line(out)
    said = f"{s['classes_covered']}/10 classes, FD {s['fd']:.1f}"
    return [{"dataset": name, "model": "default (vae)", "metric": "mean_conf", "value": s["mean_confidence"],
             "baseline": 0.82, "time_s": round(seconds, 1), "plan": f"{said}; {plan}" if plan else said}]


#: task -> the function that runs its rows
TASKS = {"text-classify": text_classify, "segment": segment, "vae": vae}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default="tfidf,default,lstm,transformer,cnn,fasttext",
                    help="text rows: 'default' is the command without --model; tfidf is the baseline (segment and vae rows run the default)")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--extra", default="", help="more flags for every neural train command (tuning)")
    ap.add_argument("--data-root", type=Path, default=DATA_ROOT)
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON Lines")
    ap.add_argument("--verbose", action="store_true", help="show the train commands' logs")
    args = ap.parse_args()
    args.models = args.models.split(",")
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dltool-recipes-") as tmp:
        for name in args.datasets.split(","):
            task, prepare = DATASETS[name]
            work = Path(tmp) / name
            work.mkdir()
            new = TASKS[task](name, prepare(args.data_root, work), work, args)
            _print_rows(new, header=not rows)
            rows += new
    print(f"# load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    if args.json:
        for r in rows:
            print(json.dumps(r))


def _print_rows(rows: list[dict], header: bool) -> None:
    if header:
        print(f"{'dataset':<10} {'model':<12} {'metric':<9} {'value':>6} {'baseline':>8} {'delta':>6} {'time_s':>7}  plan")
    for r in rows:
        base = r["baseline"]
        delta = f"{r['value'] - base:+.3f}" if base is not None and r["model"] != "tfidf" else ""
        print(f"{r['dataset']:<10} {r['model']:<12} {r['metric']:<9} {r['value']:>6.3f} "
              f"{'' if base is None else f'{base:.3f}':>8} {delta:>6} {r['time_s']:>7}  {r['plan'] or ''}", flush=True)


if __name__ == "__main__":
    main()
