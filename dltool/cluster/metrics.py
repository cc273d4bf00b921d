"""Clustering metrics for `dltool cluster evaluate`.

scikit-learn's implementations where it has them (silhouette, Calinski-Harabasz, Davies-Bouldin, Rand,
adjusted Rand, Fowlkes-Mallows, NMI, pair confusion, contingency, mutual information); vectorised
numpy/scipy for the rest. Definitions of the ones scikit-learn lacks:

- Dunn index: (smallest distance between two points of different clusters) / (largest distance
  between two points of the same cluster), Euclidean. Higher is better. null when no cluster has
  two distinct points (the denominator is 0).
- cohesion: within-cluster sum of squares, sum_k sum_{i in k} ||x_i - c_k||^2 (c_k the centroid);
  lower is tighter (k-means' inertia).
- separation: between-cluster sum of squares, sum_k n_k ||c_k - c||^2 (c the mean of all scored
  points); cohesion + separation = total sum of squares.
- Jaccard (pair counting): over pairs of points, together-in-both / together-in-either
  = TP / (TP + FP + FN); 1.0 when no pair is together in either labelling.
- purity: each cluster votes for its most common true class; the share of points that agree.
- variation of information: H(truth | clusters) + H(clusters | truth) = H(T) + H(C) - 2 I(T, C),
  in nats (natural log); 0 for identical partitions, lower is better.
- NMI: mutual information normalised by the arithmetic mean of the entropies (scikit-learn's default).

Noise (label -1, as DBSCAN/HDBSCAN/graph write it): excluded from the internal metrics (they judge
the shape of the clusters found; noise is no cluster), kept as one more label for the external ones
(scikit-learn's convention: every point is compared with the truth, so marking points noise costs).
"""

from __future__ import annotations

import numpy as np

from dltool.cluster.config import EvaluateConfig
from dltool.core.errors import InputError, OptionError

INTERNAL = ("silhouette", "calinski_harabasz", "davies_bouldin", "dunn", "cohesion", "separation")
EXTERNAL = ("rand", "adjusted_rand", "jaccard", "fowlkes_mallows", "purity", "variation_of_information", "nmi")


def _codes(labels) -> tuple[np.ndarray, int]:
    values, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.reshape(-1), len(values)


# -- internal ----------------------------------------------------------------------------------------

def dunn_index(X: np.ndarray, labels: np.ndarray, *, chunk_elems: int = 1 << 22) -> float | None:
    """Min between-cluster distance / max within-cluster distance, in row chunks (O(n^2) time)."""
    from scipy.spatial.distance import cdist

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(X)
    step = max(1, chunk_elems // max(n, 1))
    min_between, max_within = np.inf, 0.0
    for s in range(0, n, step):
        D = cdist(X[s:s + step], X)
        same = labels[s:s + step, None] == labels[None, :]
        if (~same).any():
            min_between = min(min_between, float(D[~same].min()))
        max_within = max(max_within, float(D[same].max()))
    if max_within <= 0 or not np.isfinite(min_between):
        return None
    return min_between / max_within


def cohesion_separation(X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(within-cluster SS, between-cluster SS) around the cluster centroids."""
    X = np.asarray(X, dtype=np.float64)
    codes, k = _codes(labels)
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.column_stack([np.bincount(codes, weights=X[:, j], minlength=k) for j in range(X.shape[1])])
    centroids = sums / counts[:, None]
    cohesion = float(((X - centroids[codes]) ** 2).sum())
    separation = float((counts * ((centroids - X.mean(0)) ** 2).sum(1)).sum())
    return cohesion, separation


def internal_metrics(X: np.ndarray, labels: np.ndarray, *, sample: int | None = 10_000, seed: int = 0) -> dict:
    """Silhouette, Calinski-Harabasz, Davies-Bouldin, Dunn, cohesion, separation; noise (-1) left out.

    Silhouette and Dunn compare all pairs (O(n^2)): above `sample` scored rows they use a seeded
    random sample of that many rows (reported as `pairwise_rows`); 0/None uses every row.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    labels = np.asarray(labels)
    scored = ~_is_noise(labels)
    X, labels = np.asarray(X, dtype=np.float64)[scored], labels[scored]
    out = dict.fromkeys(INTERNAL)
    n = len(X)
    out["pairwise_rows"] = 0
    if n == 0:
        return out
    out["cohesion"], out["separation"] = cohesion_separation(X, labels)
    k = len(np.unique(labels))
    if not 2 <= k <= n - 1:
        return out
    out["calinski_harabasz"] = float(calinski_harabasz_score(X, labels))
    out["davies_bouldin"] = float(davies_bouldin_score(X, labels))
    idx = np.arange(n)
    if sample and n > sample:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    Xs, ls = X[idx], labels[idx]
    out["pairwise_rows"] = int(len(idx))
    if 2 <= len(np.unique(ls)) <= len(idx) - 1:
        out["silhouette"] = float(silhouette_score(Xs, ls))
    out["dunn"] = dunn_index(Xs, ls)
    return out


# -- external ----------------------------------------------------------------------------------------

def jaccard_pairs(truth, labels) -> float:
    """Pair-counting Jaccard: TP / (TP + FP + FN) over pairs of points."""
    from sklearn.metrics.cluster import pair_confusion_matrix

    C = pair_confusion_matrix(np.asarray(truth), np.asarray(labels))
    tp, fp, fn = float(C[1, 1]), float(C[0, 1]), float(C[1, 0])
    return tp / (tp + fp + fn) if tp + fp + fn > 0 else 1.0


def purity(truth, labels) -> float:
    from sklearn.metrics.cluster import contingency_matrix

    M = contingency_matrix(np.asarray(truth), np.asarray(labels))  # classes x clusters
    return float(M.max(axis=0).sum() / M.sum())


def variation_of_information(truth, labels) -> float:
    """H(T) + H(C) - 2 I(T, C) in nats."""
    from scipy.stats import entropy
    from sklearn.metrics import mutual_info_score

    t_codes, _ = _codes(truth)
    c_codes, _ = _codes(labels)
    h_t = float(entropy(np.bincount(t_codes)))
    h_c = float(entropy(np.bincount(c_codes)))
    return max(0.0, h_t + h_c - 2.0 * float(mutual_info_score(t_codes, c_codes)))


def external_metrics(truth, labels) -> dict:
    """Agreement of cluster labels with true classes; noise (-1) counts as one more label."""
    from sklearn.metrics import (
        adjusted_rand_score,
        fowlkes_mallows_score,
        normalized_mutual_info_score,
        rand_score,
    )

    t, _ = _codes(truth)
    c, _ = _codes(labels)
    return {
        "rand": float(rand_score(t, c)),
        "adjusted_rand": float(adjusted_rand_score(t, c)),
        "jaccard": jaccard_pairs(t, c),
        "fowlkes_mallows": float(fowlkes_mallows_score(t, c)),
        "purity": purity(t, c),
        "variation_of_information": variation_of_information(t, c),
        "nmi": float(normalized_mutual_info_score(t, c)),
    }


# -- from a table --------------------------------------------------------------------------------------

def _is_noise(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind in "fiu":
        return labels == -1
    return np.array([str(v).strip() in ("-1", "-1.0") for v in labels], dtype=bool)


def _label_column(table, name: str, flag: str) -> np.ndarray:
    from dltool.core.errors import suggest

    if name not in table.columns:
        raise OptionError(f"{flag} {name}: no column '{name}' in the table",
                          suggest(name, table.names) or f"columns are: {', '.join(table.names)}")
    col = table.columns[name]
    if col.dtype.kind == "f":
        bad = ~np.isfinite(col)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"row {row + 1}, column '{name}' ({flag}) is empty or not a number",
                             "every row needs a label")
        if np.all(col == np.round(col)):
            return col.astype(np.int64)
        return col
    missing = np.array([v is None or (isinstance(v, str) and not v.strip()) for v in col], dtype=bool)
    if missing.any():
        row = int(np.argmax(missing))
        raise InputError(f"row {row + 1}, column '{name}' ({flag}) is empty", "every row needs a label")
    return np.array([str(v) for v in col], dtype=object)


def evaluate_table(table, cfg: EvaluateConfig) -> dict:
    """One flat dict: counts, internal metrics (when there are features), external ones (with truth)."""
    from dltool.cluster.clustering import PROB_RE
    from dltool.core.device import placed_on

    placed_on(cfg.device, "cluster evaluate")  # checks --device, says it runs on CPU
    if cfg.sample is not None and cfg.sample < 0:
        raise OptionError(f"--sample {cfg.sample} is negative", "use --sample 0 for all rows, or a row count")
    labels, truth, features, sample, seed = cfg.labels, cfg.truth, list(cfg.features or ()), cfg.sample, cfg.seed

    lab = _label_column(table, labels, "--labels")
    tru = _label_column(table, truth, "--truth") if truth else None
    if truth and truth == labels:
        raise OptionError(f"--truth {truth} is the same column as --labels",
                          "name the column of true classes with --truth")
    skip = set(cfg.exclude or []) | {labels} | ({truth} if truth else set())
    skip |= {n for n in table.names if PROB_RE.match(n)}
    have_features = bool(features) or any(n not in skip for n in table.numeric_names())
    if not have_features and tru is None:
        raise InputError("the table has no numeric feature columns besides the labels, so there is nothing to score",
                         "give --truth COLUMN for external metrics, or a table with the features")
    result: dict = {"n_samples": len(lab)}
    internal = {**dict.fromkeys(INTERNAL), "pairwise_rows": 0}
    keep = np.ones(len(lab), dtype=bool)
    if have_features:
        X, _, keep = table.feature_matrix(features or None, sorted(skip), dropna=cfg.dropna)
        internal = internal_metrics(X, lab[keep], sample=sample, seed=seed)
    kept = lab[keep]
    noise = _is_noise(kept)
    result["n_samples"] = int(len(kept))
    result["n_clusters"] = int(len(np.unique(kept[~noise])))
    result["n_noise"] = int(noise.sum())
    result.update(internal)
    if tru is not None:
        kept_truth = tru[keep]
        result["n_classes"] = int(len(np.unique(kept_truth)))
        result.update(external_metrics(kept_truth, kept))
    return result
