"""Choosing k for k-means: the elbow of the inertia curve, or the best silhouette.

Elbow, as computed here: put each tried k and its inertia on a plot whose axes are both scaled to
[0, 1] (k from the smallest to the largest tried, inertia from its minimum to its maximum), draw the
straight line from the first point to the last, and choose the k whose point lies farthest from that
line (the "knee": where adding clusters stops paying). Scaling makes the choice independent of the
units of the features. Ties go to the smaller k. Needs at least three values of k.

Silhouette: the k with the highest mean silhouette coefficient (ties to the smaller k).
"""

from __future__ import annotations

import re

import numpy as np

from dltool.cluster.config import ChooseKConfig
from dltool.core.errors import InputError, OptionError

CRITERIA = ("elbow", "silhouette")


def parse_k_range(text: str) -> list[int]:
    """'2..15' or '2-15' (inclusive), '2,4,8', or a single '5' -> sorted distinct ks."""
    t = str(text).strip().replace(" ", "")
    m = re.fullmatch(r"(\d+)(?:\.\.|-|:)(\d+)", t)
    try:
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise OptionError(f"--k {text}: the range runs backwards", f"use --k {hi}..{lo}")
            ks = list(range(lo, hi + 1))
        else:
            ks = sorted({int(v) for v in t.split(",") if v})
    except ValueError:
        raise OptionError(f"--k '{text}' is not a range of k", "use e.g. --k 2..15 or --k 2,4,8") from None
    if not ks:
        raise OptionError(f"--k '{text}' is empty", "use e.g. --k 2..15")
    if ks[0] < 2:
        raise OptionError(f"--k {text} includes k={ks[0]}; the silhouette needs at least 2 clusters",
                          f"start the range at 2, e.g. --k 2..{max(ks[-1], 3)}")
    return ks


def elbow(ks, inertias) -> int:
    """The k farthest from the line joining the first and last points of the [0,1]-scaled curve."""
    ks = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertias, dtype=np.float64)
    if len(ks) < 3:
        raise OptionError(f"--method elbow needs at least 3 values of k, got {len(ks)}",
                          "widen --k, e.g. --k 2..10, or use --method silhouette")
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = y.max() - y.min()
    if span <= 0:
        return int(ks[0])
    y = (y - y.min()) / span
    # distance from (x, y) to the line through (x0, y0) and (x1, y1), up to a constant factor
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    dist = np.abs(dy * (x - x[0]) - dx * (y - y[0]))
    return int(ks[int(np.argmax(dist))])


def choose_k_table(table, cfg: ChooseKConfig) -> dict:
    """k-means for every k on the table's features (the --plot picture written):
    {"method", "chosen_k", "scores": [{"k", "inertia", "silhouette"}, ...]}."""
    from dltool.cluster import plots
    from dltool.cluster.clustering import select_features

    X, _, _ = select_features(table, cfg.features, cfg.exclude, dropna=cfg.dropna, standardize=cfg.standardize)
    result = choose_k(X, cfg)
    if cfg.plot:
        plots.choose_k(result["scores"], result["chosen_k"], cfg.method, cfg.plot)
    return result


def choose_k(X: np.ndarray, cfg: ChooseKConfig) -> dict:
    """k-means for every k of a feature matrix (see choose_k_table)."""
    from sklearn.metrics import silhouette_score

    from dltool.cluster._checks import check_choice
    from dltool.cluster.clustering import method_device
    from dltool.cluster.methods import METHODS
    from dltool.core.console import library_warnings, progress
    from dltool.core.tables import check_matrix

    check_choice("--method", cfg.method, CRITERIA)
    if cfg.sample is not None and cfg.sample < 0:
        raise OptionError(f"--sample {cfg.sample} is negative", "use --sample 0 for all rows, or a row count")
    X = check_matrix(X, min_rows=3, what="choose-k")
    n = len(X)
    ks = list(cfg.ks)
    if ks[-1] > n - 1:
        ok = [k for k in ks if k <= n - 1]
        hint = f"use --k 2..{n - 1}" if ok else "give a table with more rows"
        raise InputError(f"--k goes up to {ks[-1]}, but the silhouette needs k <= rows - 1 = {n - 1}", hint)
    if cfg.method == "elbow" and len(ks) < 3:
        elbow(ks, [0.0] * len(ks))  # raises the clear error before any work
    device = method_device("kmeans", cfg.device)
    idx = np.arange(n)
    if cfg.sample and n > cfg.sample:
        idx = np.sort(np.random.default_rng(cfg.seed).choice(n, size=cfg.sample, replace=False))
    scores = []
    with progress("choose-k", total=len(ks)) as advance:
        for k in ks:
            est = METHODS.create("kmeans", n_clusters=k, n_init=cfg.n_init, max_iter=cfg.max_iter,
                                 seed=cfg.seed, device=device)
            with library_warnings():
                est.fit(X)
            labels = est.labels_[idx]
            sil = float(silhouette_score(X[idx], labels)) if 2 <= len(np.unique(labels)) <= len(idx) - 1 else None
            scores.append({"k": k, "inertia": float(est.inertia_), "silhouette": sil})
            advance(1, status=f"k={k}")
    if cfg.method == "elbow":
        chosen = elbow(ks, [s["inertia"] for s in scores])
    else:
        sils = np.array([-np.inf if s["silhouette"] is None else s["silhouette"] for s in scores])
        if not np.isfinite(sils).any():
            raise InputError("no k gave a defined silhouette (the data has too few distinct points)",
                             "use --method elbow")
        chosen = ks[int(np.argmax(sils))]
    out = {"method": cfg.method, "chosen_k": chosen, "scores": scores}
    if len(idx) < n:
        out["silhouette_rows"] = int(len(idx))
    return out
