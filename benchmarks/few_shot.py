"""Few-shot digits (issue 28): train on digits 0-4 only, then 5-way 5-shot on the unseen 5-9.

Each method trains once on sample_data/digits/train/{0..4}. An episode draws 5 images of each of 5-9 (from
sample_data/digits train and test together) as the gallery and labels every other 5-9 image by
`dltool vision classify eval MODEL QUERIES --gallery GALLERY` (the nearest class centroid, cosine), run
in-process. Rows: the metric losses, the same network trained with cross-entropy and used the same way
(its penultimate features), and raw pixels (nearest centroid and 1-nearest neighbour, cosine, sklearn).
The bar: a metric loss >= 0.85 mean accuracy.

Usage: python benchmarks/few_shot.py [--episodes 10] [--epochs 30] [--losses triplet,arcface,contrastive,ce]
       [--model lenet] [--img-size N] [--work DIR] [-- extra train options]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "sample_data" / "digits"
SEEN, UNSEEN = "01234", "56789"


def dltool(*args) -> dict:
    """A dltool command in this process; its JSON result."""
    import contextlib
    import io

    from dltool.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main([str(a) for a in args] + ["--quiet", "--format", "json"])
        except SystemExit as e:
            if e.code:
                raise RuntimeError(f"dltool {' '.join(map(str, args))} exited {e.code}") from None
    return json.loads(buf.getvalue())


def link_tree(root: Path, files: dict[str, list[Path]]) -> Path:
    for c, paths in files.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for p in paths:
            (root / c / f"{p.parent.parent.name}-{p.name}").symlink_to(p)
    return root


def unseen_images() -> dict[str, list[Path]]:
    return {c: sorted((DIGITS / "train" / c).glob("*.png")) + sorted((DIGITS / "test" / c).glob("*.png"))
            for c in UNSEEN}


def episodes(n: int, shots: int) -> list[dict[str, np.ndarray]]:
    """Per episode and class, the indices of its gallery images (the rest are queries)."""
    images = unseen_images()
    return [{c: np.random.default_rng(1000 + e).choice(len(images[c]), shots, replace=False) for c in UNSEEN}
            for e in range(n)]


def pixel_rows(eps, shots: int) -> dict[str, list[float]]:
    """Raw pixels (0..1), cosine: nearest class centroid and 1-nearest neighbour (sklearn)."""
    from PIL import Image
    from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
    from sklearn.preprocessing import normalize

    images = unseen_images()
    x = {c: normalize(np.stack([np.asarray(Image.open(p), dtype=np.float64).ravel() / 255 for p in images[c]]))
         for c in UNSEEN}
    rows = {"raw pixels, nearest centroid": [], "raw pixels, 1-NN": []}
    for ep in eps:
        g = np.concatenate([x[c][ep[c]] for c in UNSEEN])
        gy = np.repeat(list(UNSEEN), shots)
        q = np.concatenate([np.delete(x[c], ep[c], axis=0) for c in UNSEEN])
        qy = np.concatenate([[c] * (len(x[c]) - shots) for c in UNSEEN])
        # unit vectors: the centroid of normalised examples, renormalised, ranks classes by cosine
        with warnings.catch_warnings():  # a pixel constant within a class (the border) is no problem here
            warnings.simplefilter("ignore", UserWarning)
            cent = NearestCentroid().fit(g, gy)
        rows["raw pixels, nearest centroid"].append(float(
            (np.array(cent.classes_)[(q @ normalize(cent.centroids_).T).argmax(1)] == qy).mean()))
        knn = KNeighborsClassifier(1, metric="cosine", algorithm="brute").fit(g, gy)
        rows["raw pixels, 1-NN"].append(float((knn.predict(q) == qy).mean()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--losses", default="triplet,arcface,contrastive,ce")
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--img-size", type=int, default=None, help="default: the model's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("extra", nargs="*", help="more train options, after --")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    work = a.work or Path(tempfile.mkdtemp(prefix="few_shot_"))
    seen = link_tree(work / "seen", {c: sorted((DIGITS / "train" / c).glob("*.png")) for c in SEEN})
    eps = episodes(a.episodes, a.shots)
    images = unseen_images()
    galleries = []
    for e, ep in enumerate(eps):
        gal = link_tree(work / f"ep{e}" / "gallery", {c: [images[c][i] for i in ep[c]] for c in UNSEEN})
        qry = link_tree(work / f"ep{e}" / "queries", {c: [p for i, p in enumerate(images[c]) if i not in set(ep[c])]
                                                      for c in UNSEEN})
        galleries.append((gal, qry))

    results: dict[str, list[float]] = {}
    times = {}
    for loss in a.losses.split(","):
        run = work / f"run-{loss}"
        t = time.perf_counter()
        dltool("vision", "classify", "train", seen, "--model", a.model, "--loss", loss, "--epochs", a.epochs,
               *(["--img-size", a.img_size] if a.img_size else []), "--seed", a.seed, "--device", "cpu", "--out", run,
               "--force", *a.extra)
        times[loss] = time.perf_counter() - t
        name = f"{a.model} --loss {loss}" + (" (penultimate features)" if loss == "ce" else "")
        results[name] = [dltool("vision", "classify", "eval", run / "model.pt", qry, "--gallery", gal,
                                  "--device", "cpu")["accuracy"] for gal, qry in galleries]
        print(f"{name}: {np.mean(results[name]):.4f} +- {np.std(results[name]):.4f} (train {times[loss]:.0f} s)",
              file=sys.stderr, flush=True)
    results.update(pixel_rows(eps, a.shots))

    base = np.mean(results["raw pixels, 1-NN"])
    print(f"\n5-way {a.shots}-shot on unseen digits 5-9, {a.episodes} episodes, trained on 0-4 "
          f"({a.model}, {a.epochs} epochs, seed {a.seed}{', ' + ' '.join(a.extra) if a.extra else ''})")
    print(f"{'method':44s} {'accuracy':>9s} {'std':>6s} {'min':>6s} {'vs pixels 1-NN':>15s}")
    for name, accs in results.items():
        print(f"{name:44s} {np.mean(accs):9.4f} {np.std(accs):6.4f} {np.min(accs):6.4f} {np.mean(accs) / base:15.3f}")
    metric = [f"{a.model} --loss {loss}" for loss in a.losses.split(",") if loss != "ce"]
    best = max((np.mean(results[k]), k) for k in metric) if metric else (0.0, "none")
    print(f"bar (a metric loss >= 0.85): {'met' if best[0] >= 0.85 else 'NOT met'} by {best[1]} ({best[0]:.4f})")


if __name__ == "__main__":
    main()
