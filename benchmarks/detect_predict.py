"""`dltool vision detect predict` against a hand-written loop over the same model, and its memory as the
input grows. Prints
  ratio=<dltool images/s / hand loop images/s>         (the bar: >= 0.9)
  growth=<peak RSS on N_BIG images / on N_SMALL - 1>    (the bar: < 0.10; images stream through)

Both sides decode the same PNGs with PIL, letterbox them, run the model in batches of --batch-size and
apply the same NMS; dltool also writes its JSON Lines. The memory runs are `dltool vision detect
predict` subprocesses reading the paths on stdin (the images are symlinks to the shapes test set).
Usage: python benchmarks/detect_predict.py [--model runs/x/model.pt] [--n 1000] [--big 10000]
(without --model, an untrained `yolo` model file is written: speed does not depend on training)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "sample_data/shapes/test/images"


def untrained_model(path: Path) -> Path:
    from dltool.core.modelfile import save_model
    from dltool.vision.models import DETECTORS

    torch.manual_seed(0)
    model = DETECTORS.create("yolo", num_classes=3)
    save_model(path, task="vision-detect", arch="yolo", arch_kwargs={"num_classes": 3, "in_channels": 3},
               state_dict=model.state_dict(), classes=["circle", "square", "triangle"],
               preprocess={"img_size": 64, "mode": "RGB", "mean": [0.5] * 3, "std": [0.25] * 3, "iou": 0.6})
    return path


def image_list(folder: Path, n: int) -> list[Path]:
    sources = sorted(TEST.glob("*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:06d}.png"
        if not p.exists():
            p.symlink_to(sources[i % len(sources)])
        paths.append(p)
    return paths


def hand_loop(model_path: Path, paths: list[Path], batch_size: int) -> float:
    """The loop a user would write: PIL decode, letterbox, normalise, forward + NMS, boxes back to pixels."""
    from PIL import Image

    from dltool.vision.detdata import letterbox
    from dltool.vision.detect import load

    lm = load(model_path, torch.device("cpu"))
    size = lm.preprocess["img_size"]
    mean = torch.tensor(lm.preprocess["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(lm.preprocess["std"]).view(1, -1, 1, 1)
    t = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            arrays = [np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in paths[start:start + batch_size]]
            boxed, scales = zip(*(letterbox(a, size) for a in arrays))
            x = (torch.from_numpy(np.stack(boxed)).float() / 255 - mean) / std
            for (b, s, c), scale in zip(lm.model.detect(x, 0.25, 0.6, 100), scales):
                _ = [(float(v), float(sc), int(k)) for v, sc, k in zip((b / scale).flatten(), s, c)]
    return time.perf_counter() - t


def dltool_predict(model_path: Path, paths: list[Path], batch_size: int, out: Path) -> float:
    from dltool.core.output import write_predictions
    from dltool.vision.detect import PredictConfig, predict

    t = time.perf_counter()
    cfg = PredictConfig(model=model_path, inputs=tuple(str(p) for p in paths), batch_size=batch_size, device="cpu")
    write_predictions(predict(cfg), str(out), "jsonl")
    return time.perf_counter() - t


def peak_rss_mb(model_path: Path, paths: list[Path], out: Path) -> float:
    """Peak RSS of one `dltool vision detect predict` process reading the paths on stdin (os.wait4 gives
    that child's own resource usage)."""
    listing = out.with_suffix(".txt")
    listing.write_text("\n".join(map(str, paths)) + "\n")
    with listing.open() as stdin:
        child = subprocess.Popen([sys.executable, "-m", "dltool", "vision", "detect", "predict", str(model_path), "-",
                                  "-o", str(out), "--device", "cpu", "--quiet"], stdin=stdin,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"dltool vision detect predict exited {child.returncode}")
    return usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--n", type=int, default=1000, help="images for the speed runs and the small memory run")
    ap.add_argument("--big", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = a.model or untrained_model(tmp / "model.pt")
        paths = image_list(tmp / "images", a.big)
        small = paths[:a.n]
        hand, ours = [], []
        for _ in range(a.repeats):  # alternate, so load changes hit both sides alike
            hand.append(hand_loop(model, small, a.batch_size))
            ours.append(dltool_predict(model, small, a.batch_size, tmp / "preds.jsonl"))
        hand_ips, ours_ips = a.n / min(hand), a.n / min(ours)
        print(f"hand loop: {hand_ips:.1f} images/s   dltool predict: {ours_ips:.1f} images/s   (best of {a.repeats})")
        print(f"ratio={ours_ips / hand_ips:.3f}")
        rss_small = peak_rss_mb(model, small, tmp / "small.jsonl")
        rss_big = peak_rss_mb(model, paths, tmp / "big.jsonl")
        print(f"peak RSS: {rss_small:.1f} MB on {a.n} images, {rss_big:.1f} MB on {a.big}")
        print(f"growth={rss_big / rss_small - 1:.3f}")


if __name__ == "__main__":
    main()
