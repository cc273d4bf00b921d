"""`dltool cluster <method>` as one call: table -> features -> (standardize) -> fit -> table with a
`cluster` column (and prob_* for soft methods) -> the pictures the config names.

`cluster_table(table, ClusterConfig(...))` is what the method commands call; `fit(X, method, params)`
is the fit alone (what the benchmark times). Neither prints results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dltool.cluster.config import ClusterConfig
from dltool.cluster.methods import METHODS
from dltool.core.tables import Table, check_matrix

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
    table: Table | None = None  # the input rows with the new columns (set by cluster_table)

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


def select_features(table: Table, features=None, exclude=None, *, dropna: bool = False,
                    standardize: bool = False) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(X, names, kept-row mask): numeric columns minus --exclude and earlier clustering output,
    standardized when asked (the table keeps the original values)."""
    features = list(features) if features else None
    if not features:
        exclude = list(exclude or []) + [n for n in table.names if is_output_column(n)]
    X, names, keep = table.feature_matrix(features, exclude, dropna=dropna)
    if standardize:
        from dltool.core.scaling import standardize as scale

        X = scale(X)
    return X, names, keep


def method_device(method: str, device: str | None) -> str:
    """The device a method runs on: its torch device if it has a GPU path, else the CPU (said once)."""
    from dltool.core.device import placed_on

    supported = ("cpu", "cuda", "mps") if METHODS.get(method).meta.get("gpu") else ("cpu",)
    return placed_on(device, method, supported)


def fit(X: np.ndarray, method: str, params: dict | None = None, *, seed: int = 0,
        device: str | None = "auto") -> ClusterResult:
    """Fit `method` with its parameters on X; labels, soft assignments and facts."""
    from dltool.core.console import library_warnings

    entry = METHODS.get(method)
    dev = method_device(method, device)
    X = check_matrix(X, min_rows=2, what="clustering")
    kwargs = dict(params or {})
    if entry.meta.get("random"):
        kwargs["seed"] = seed
    if entry.meta.get("gpu"):
        kwargs["device"] = dev
    est = entry.builder(**kwargs)
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


def check_config(config: ClusterConfig) -> None:
    """The checks that need no data (the command runs them before reading the table): an option the
    method's settings do not take, when the user set it."""
    from dltool.core.applies import changed_params

    builder = METHODS.get(config.method).builder
    given = config.given if config.given is not None else changed_params(config.params, builder)
    for rule in getattr(builder, "option_rules", ()):
        rule.check_values(given, config.params)


def cluster_table(table: Table, config: ClusterConfig) -> ClusterResult:
    """Cluster the table's feature rows; the result carries the annotated table; pictures are written."""
    from dltool.cluster import plots

    check_config(config)
    X, names, keep = select_features(table, config.features, config.exclude, dropna=config.dropna,
                                     standardize=config.standardize)
    result = fit(X, config.method, config.params, seed=config.seed, device=config.device)
    result.table = annotate(table, keep, result)
    if config.plot:
        plots.scatter(X, result.labels, names, config.plot,
                      title=f"{config.method}: {result.n_clusters} clusters")
    if config.dendrogram:
        est = result.estimator
        plots.dendrogram(est.linkage_matrix_, config.dendrogram, cut=est.cut_height(),
                         title=f"{est.linkage} linkage, cut at {est.n_clusters_} clusters")
    return result
