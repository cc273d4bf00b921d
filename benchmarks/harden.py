"""The bars of issue 27 (explain, attack, adversarial training, pruning) in one table, through the CLI as a
user runs it, each row with the command that made it:

- digits (sample_data/digits, 8x8 real digits, default `cnn`): test accuracy; PGD (L-inf, 10 steps) at
  eps 0.1, plain and after `train --adversarial pgd --adv-eps 0.1` (the issue's command, defaults otherwise); `prune --amount 0.8 --epochs 5`
  one-shot and `--schedule 3` against the dense model, with the file and CPU-time figures of prune.json;
  integrated gradients' deletion AUC against the random order's;
  Grad-CAM's pointing game on the digits' own strokes;
- the same digits resized to 16 px (`--img-size 16`), plain and adversarially trained, under the same
  attack: eps over 4x the pixels buys the attacker more (why the 8x8 model holds out: 0.022 left at 16 px
  against 0.55 at 8 px);
- shapes, one shape per image (`make_shapes.py --single --size 32`): the Grad-CAM pointing game on masks,
  beside the classifier's test accuracy: a classifier at chance points anywhere. (Not yet run to the end:
  in the session that wrote it, on a 2-core machine at load 20-28, 15 and 20 epochs of this training
  stayed at chance, so its 60 epochs are a guess to check.)

Each step was run by hand through the CLI, the script itself only with its dltool calls stubbed (the
machine was too loaded for its ~1 h of training). Runs go to --work (default: a temporary folder); a
step whose output is already there is not run again,
so a second call with the same --work only re-measures. Times measured while other work runs are
pessimistic: the load average is printed.
Usage: python benchmarks/harden.py [--work DIR] [--device cpu] [--parts digits,resize,shapes]
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "sample_data" / "digits"
ROWS = []


def dltool(*args) -> dict:
    """Run `dltool ARGS --format json` and return its JSON object."""
    args = [str(a) for a in args]
    done = subprocess.run([sys.executable, "-m", "dltool", *args, "--format", "json"], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode:
        sys.exit(f"dltool {shlex.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def train(out: Path, *args) -> Path:
    if not (out / "model.pt").is_file():
        dltool("vision", "classify", "train", *args, "--out", out, "--force", "--quiet")
    return out


def prune(out: Path, model: Path, *args) -> dict:
    if not (out / "prune.json").is_file():
        dltool("vision", "classify", "prune", model, DIGITS / "train", *args, "--out", out, "--force", "--quiet")
    return json.loads((out / "prune.json").read_text())


def row(figure: str, value, bar: str, met, command: str) -> None:
    ROWS.append({"figure": figure, "value": value, "bar": bar, "met": met, "command": command})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="folder of the runs (kept; default: a temporary one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--parts", default="digits,resize,shapes", help="which rows: digits, resize (16 px), shapes")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        dev = ("--device", a.device)
        if "digits" in parts:
            digits(work, dev)
        if "resize" in parts:
            big = train(work / "digits16", DIGITS / "train", "--img-size", "16", "--epochs", "6", *dev)
            r = dltool("vision", "classify", "attack", big, DIGITS / "test", "--eps", "0.1", *dev)
            clean, attacked = r["clean_accuracy"], r["adversarial_accuracy"][0]
            row("digits resized to 16 px, plain: clean / PGD eps 0.1", f"{clean:.3f} / {attacked:.3f}",
                ">= 0.98 / < 0.30", clean >= 0.98 and attacked < 0.30,
                "train sample_data/digits/train --img-size 16 --epochs 6; attack MODEL sample_data/digits/test --eps 0.1")
            adv = train(work / "digits16-adv", DIGITS / "train", "--img-size", "16", "--adversarial", "pgd",
                        "--adv-eps", "0.1", *dev)
            r = dltool("vision", "classify", "attack", adv, DIGITS / "test", "--eps", "0.1", *dev)
            clean, robust = r["clean_accuracy"], r["adversarial_accuracy"][0]
            row("16 px, adversarially trained: clean / PGD eps 0.1", f"{clean:.3f} / {robust:.3f}",
                ">= 0.95 / >= 0.70", clean >= 0.95 and robust >= 0.70,
                "train sample_data/digits/train --img-size 16 --adversarial pgd --adv-eps 0.1; attack --eps 0.1")
        if "shapes" in parts:
            shapes(work, dev)
    width = max(len(r["figure"]) for r in ROWS)
    for r in ROWS:
        met = "" if r["met"] is None else ("met" if r["met"] else "NOT MET")
        print(f"{r['figure']:<{width}}  {str(r['value']):<24} {r['bar']:<22} {met:<8} {r['command']}")
    print(f"load average before {load_before}, after {os.getloadavg()}")


def digits(work: Path, dev: tuple) -> None:
    test = DIGITS / "test"
    dense = train(work / "digits", DIGITS / "train", *dev)
    acc = dltool("vision", "classify", "eval", dense, test, *dev)["accuracy"]
    row("digits test accuracy (dense)", round(acc, 4), ">= 0.98", acc >= 0.98,
        "train sample_data/digits/train; eval MODEL sample_data/digits/test")
    plain = dltool("vision", "classify", "attack", dense, test, "--eps", "0.1", *dev)["adversarial_accuracy"][0]
    row("plain (8x8 input): PGD eps 0.1 linf", plain, "< 0.30", plain < 0.30,
        "attack MODEL sample_data/digits/test --eps 0.1 (10 steps)")

    adv = train(work / "digits-adv", DIGITS / "train", "--adversarial", "pgd", "--adv-eps", "0.1", *dev)
    r = dltool("vision", "classify", "attack", adv, test, "--eps", "0.1", *dev)
    clean, robust = r["clean_accuracy"], r["adversarial_accuracy"][0]
    row("adversarially trained: clean / PGD eps 0.1", f"{clean:.3f} / {robust:.3f}", ">= 0.95 / >= 0.70",
        clean >= 0.95 and robust >= 0.70,
        "train sample_data/digits/train --adversarial pgd --adv-eps 0.1; attack --eps 0.1")

    for name, extra in (("one-shot", ()), ("--schedule 3", ("--schedule", "3"))):
        out = work / ("digits-pruned" if not extra else "digits-pruned-schedule")
        report = prune(out, dense, "--amount", "0.8", "--epochs", "5", *extra, *dev)
        p_acc = dltool("vision", "classify", "eval", out, test, *dev)["accuracy"]
        row(f"prune 0.8, 5 epochs, {name}: test accuracy", round(p_acc, 4), f">= {acc - 0.01:.4f} (dense - 0.01)",
            p_acc >= acc - 0.01,
            " ".join(["prune MODEL sample_data/digits/train --amount 0.8 --epochs 5", *extra]) + "; eval")
        if not extra:
            b, f = report["before"], report["after"]
            row("  model file bytes: dense / zlib / sparse COO", f"{f['file_bytes']} / {f['compressed_bytes']} / "
                f"{f['sparse_file_bytes']}", f"dense zlib {b['compressed_bytes']}", None, "OUT/prune.json")
            row("  CPU ms, batch of 256: dense / pruned", f"{b['cpu_ms']} / {f['cpu_ms']}",
                f"speedup {report['speedup']}", None, "OUT/prune.json")

    cam = dltool("vision", "classify", "explain", dense, test, "--check", "--target", "true", "--masks", test, *dev)
    row(f"Grad-CAM pointing game on the strokes (chance 0.51), {cam['layer']}", cam["pointing_game"], "", None,
        "explain MODEL sample_data/digits/test --check --target true --masks sample_data/digits/test")
    ig = dltool("vision", "classify", "explain", dense, test, "--method", "integrated-gradients", "--check", *dev)
    row("integrated gradients: deletion AUC / random's", f"{ig['deletion_auc']:.3f} / {ig['deletion_random_auc']:.3f}",
        "lower", ig["deletion_auc"] < ig["deletion_random_auc"],
        "explain MODEL sample_data/digits/test --method integrated-gradients --check")


def shapes(work: Path, dev: tuple) -> None:
    data = work / "shapes"
    if not (data / "test").is_dir():
        subprocess.run([sys.executable, str(ROOT / "sample_data" / "make_shapes.py"), str(data), "--single",
                        "--train", "600", "--test", "150", "--size", "32"], check=True, capture_output=True)
    model = train(work / "shapes-run", data / "train", "--epochs", "60", "--batch-size", "16", "--augment", "flip,rot90",
                  *dev)
    acc = dltool("vision", "classify", "eval", model, data / "test", *dev)["accuracy"]
    row("shapes (one per image, 32 px): test accuracy", round(acc, 4), "", None,
        "make_shapes.py DIR --single --train 600 --test 150 --size 32; train DIR/train --epochs 60 --batch-size 16 "
        "--augment flip,rot90")
    pg = dltool("vision", "classify", "explain", model, data / "test", "--check", "--target", "true", "--masks",
                data / "masks" / "test", *dev)
    row(f"pointing game, Grad-CAM at {pg['layer']}", pg["pointing_game"], ">= 0.80", pg["pointing_game"] >= 0.80,
        "explain RUN DIR/test --check --target true --masks DIR/masks/test")


if __name__ == "__main__":
    main()
