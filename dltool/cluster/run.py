"""The steps `dltool cluster <method>` takes: features from a table, scale, fit a method, add columns.

`fit(X, "kmeans", {"n_clusters": 10}, seed=0, device="cpu")` is the call every method command makes
(and what the benchmark times); it returns a `ClusterResult` and never prints results.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from dltool.cluster.methods import METHODS
from dltool.core.tables import Table

LABEL_COLUMN = "cluster"
PROB_RE = re.compile(r"^prob_\d+$")


def is_output_column(name: str) -> bool:
    """Columns a clustering command writes: they are never features of the next clustering."""
    return name == LABEL_COLUMN or bool(PROB_RE.match(name))


@dataclass
class ClusterResult:
    method: str
    labels: np.ndarray  # (n,) int64, -1 = noise
    proba: np.ndarray | None  # (n, k) soft assignments, rows sum to 1, or None
    estimator: object
    device: str
    facts: dict = field(default_factory=dict)  # numbers worth telling the user (inertia, bandwidth, ...)

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.labels[self.labels >= 0])))

    @property
    def n_noise(self) -> int:
        return int((self.labels < 0).sum())

    def summary(self) -> str:
        parts = [f"{self.method}: {self.n_clusters} cluster{'s' if self.n_clusters != 1 else ''}"]
        if self.n_noise:
            parts.append(f"{self.n_noise} noise point{'s' if self.n_noise != 1 else ''} (-1)")
        parts += [f"{k} {_fmt(v)}" for k, v in self.facts.items()]
        return ", ".join(parts) + f" on {len(self.labels)} rows ({self.device})"


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def select_features(table: Table, features: list[str] | None = None, exclude: list[str] | None = None,
                    *, dropna: bool = False) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(X, names, kept-row mask): numeric columns minus --exclude and earlier clustering output."""
    if not features:
        exclude = list(exclude or []) + [n for n in table.names if is_output_column(n)]
    return table.feature_matrix(features, exclude, dropna=dropna)


def standardize(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per feature (constant features are only centred)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X)


def resolve_device(method: str, device: str | None) -> str:
    """The device a method runs on: its torch device if it has a GPU path, else "cpu" (said once)."""
    from dltool.core.device import cpu_only_notice
    from dltool.core.device import resolve_device as _resolve

    if METHODS.get(method).meta.get("gpu"):
        return str(_resolve(device))
    cpu_only_notice(device, method)
    return "cpu"


@contextmanager
def library_warnings():
    """Library warnings (convergence, disconnected graphs) as one `warning:` line each on stderr."""
    from dltool.core.console import warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        msg = str(w.message).strip().splitlines()[0] if str(w.message).strip() else w.category.__name__
        if msg not in seen:
            seen.add(msg)
            warn(msg)


def fit(X: np.ndarray, method: str, params: dict | None = None, *, seed: int = 0,
        device: str | None = "auto") -> ClusterResult:
    """Fit `method` (a METHODS name) with its parameters on X; labels, soft assignments and facts."""
    from dltool.cluster._checks import check_matrix

    entry = METHODS.get(method)
    dev = resolve_device(method, device)
    X = check_matrix(X, min_rows=2)
    est = entry.builder(**(params or {}), seed=seed, device=dev)
    with library_warnings():
        est.fit(X)
        labels = np.asarray(est.labels_, dtype=np.int64)
        proba = np.asarray(est.predict_proba(X), dtype=np.float64) if hasattr(est, "predict_proba") else None
    facts = {}
    for attr, name in (("inertia_", "inertia"), ("bandwidth_", "bandwidth"), ("engine_", "engine"),
                       ("n_iter_", "iterations"), ("n_edges_", "edges")):
        if hasattr(est, attr):
            v = getattr(est, attr)
            facts[name] = float(v) if isinstance(v, (float, np.floating)) else v
    return ClusterResult(method, labels, proba, est, dev, facts)


def annotate(table: Table, keep: np.ndarray, result: ClusterResult) -> Table:
    """The input rows that were clustered, plus `cluster` (and prob_0..prob_{k-1}) columns.

    Earlier `cluster`/`prob_*` columns are replaced, so re-clustering an output table is clean.
    """
    out = table.without([n for n in table.names if is_output_column(n)])
    if not keep.all():
        out = out.select_rows(keep)
    new = {LABEL_COLUMN: result.labels.astype(np.int64)}
    if result.proba is not None:
        new.update({f"prob_{j}": result.proba[:, j] for j in range(result.proba.shape[1])})
    return out.with_columns(new)
