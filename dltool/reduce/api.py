"""Table-level flow of every reducer: features -> (standardize) -> fit -> table with new columns.

Also the model file of a fitted reducer (DESIGN.md §3, task "reduce", arch = method name):
`state_dict` holds the reducer's fitted tensors plus `scaler.mean_`/`scaler.scale_` when the
features were standardized, `preprocess` holds the feature column names and the column prefix.
`load_reducer` rebuilds the reducer through the registry, so any registered method that
implements `state`/`from_state` (the autoencoder too) works with `dltool reduce transform`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from dltool.core.errors import InputError, ModelFileError, OptionError, suggest
from dltool.core.tables import Table
from dltool.reduce.base import REDUCERS, Reducer, get_reducer_class

TASK = "reduce"
#: modules that register reducers; imported on first use so `--help` stays cheap
METHOD_MODULES = ("dltool.reduce.pca", "dltool.reduce.kpca", "dltool.reduce.ica", "dltool.reduce.manifold",
                  "dltool.reduce.autoencoder")
LABEL_NAMES = ("label", "true_label", "class", "target")


def load_methods() -> None:
    for module in METHOD_MODULES:
        importlib.import_module(module)


class Standardizer:
    """Zero mean, unit variance per column (scikit-learn's StandardScaler: ddof=0, constant columns kept)."""

    def fit(self, X: np.ndarray) -> Standardizer:
        from sklearn.preprocessing import StandardScaler

        fitted = StandardScaler().fit(X)  # only the two vectors are kept, so model files stay tensors
        self.mean_, self.scale_ = fitted.mean_, fitted.scale_
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_


@dataclass(frozen=True)
class ReduceConfig:
    method: str
    params: dict = field(default_factory=dict)
    features: list[str] | None = None
    exclude: list[str] | None = None
    dropna: bool = False
    standardize: bool = False
    seed: int = 0
    device: str | None = "auto"


@dataclass
class ReduceResult:
    table: Table                 # the output table: new columns + pass-through columns
    embedding: np.ndarray        # rows x components
    columns: list[str]           # the new column names
    features: list[str]          # the feature columns used
    reducer: Reducer
    scaler: Standardizer | None
    n_rows: int
    report: dict


def build_reducer(method: str, params: dict, *, seed: int, device: str | None) -> Reducer:
    """The registered reducer for `method`, placed on a device it supports (or CPU, said once)."""
    load_methods()
    cls = get_reducer_class(method)
    placed = build_device(method, cls, device)  # validates --device: cuda without CUDA fails here
    kwargs = dict(params)
    if getattr(cls, "devices", ("cpu",)) != ("cpu",):
        kwargs["device"] = placed
    return cls(seed=seed, **kwargs)


def check_exclude(table: Table, exclude: list[str] | None) -> None:
    """--exclude names columns that exist (a typo would silently keep a column as a feature)."""
    missing = [c for c in exclude or () if c not in table.columns]
    if missing:
        raise OptionError(f"--exclude: no column '{missing[0]}' in the table",
                          suggest(missing[0], table.names) or f"columns are: {', '.join(table.names)}")


def output_table(table: Table, keep: np.ndarray, features: list[str], new: dict[str, np.ndarray]) -> Table:
    """Feature columns replaced by `new` (at the place of the first feature), other columns kept in order."""
    clash = [c for c in new if c in table.columns and c not in features]
    if clash:
        raise InputError(f"the output column '{clash[0]}' already exists in the table and is not a feature",
                         "rename that column, or include it in --features")
    feats = set(features)
    cols: dict[str, np.ndarray] = {}
    placed = False
    for name, values in table.columns.items():
        if name in feats:
            if not placed:
                cols.update(new)
                placed = True
            continue
        cols[name] = values[keep]
    if not placed:
        cols.update(new)
    return Table(cols)


def note_label_features(features: list[str]) -> None:
    from dltool.core.console import info

    for name in features:
        if name.lower() in LABEL_NAMES:
            info(f"note: numeric column '{name}' is used as a feature; pass --exclude {name} if it is a label")


def fit_table(table: Table, config: ReduceConfig) -> ReduceResult:
    """Fit `config.method` on the table's feature columns; return the reduced table and the fit."""
    from dltool.core.seed import seed_everything

    check_exclude(table, config.exclude)
    X, features, keep = table.feature_matrix(config.features, config.exclude, dropna=config.dropna)
    note_label_features(features)
    reducer = build_reducer(config.method, config.params, seed=config.seed, device=config.device)
    seed_everything(config.seed)
    scaler = Standardizer().fit(X) if config.standardize else None
    Xs = scaler.transform(X) if scaler else X
    Y = np.asarray(reducer.fit_transform(Xs), dtype=np.float64)
    names = [f"{reducer.prefix}{i + 1}" for i in range(Y.shape[1])]
    out = output_table(table, keep, features, {n: Y[:, i] for i, n in enumerate(names)})
    report = {"method": config.method, "n_samples": int(len(X)), "n_features": len(features),
              "standardize": config.standardize, **reducer.report()}
    return ReduceResult(out, Y, names, features, reducer, scaler, int(len(X)), report)


# ---------------------------------------------------------------- model files


def save_reducer(path, result: ReduceResult) -> None:
    from dltool.core.modelfile import save_model
    from dltool.reduce.base import to_tensors

    reducer = result.reducer
    if not reducer.transformable:
        reducer.state()  # raises the clear "cannot be saved" error
    params, tensors = reducer.state()
    if result.scaler is not None:
        tensors.update({f"scaler.{k}": v for k, v in to_tensors(mean_=result.scaler.mean_,
                                                               scale_=result.scaler.scale_).items()})
    metrics = {k: v for k, v in result.report.items() if isinstance(v, (int, float, str, bool))}
    save_model(path, task=TASK, arch=reducer.method, arch_kwargs=params, state_dict=tensors,
               preprocess={"features": list(result.features), "standardize": result.scaler is not None,
                           "prefix": reducer.prefix}, metrics=metrics)


@dataclass
class LoadedReducer:
    reducer: Reducer
    features: list[str]
    scaler: Standardizer | None
    method: str


def load_reducer(path, *, device: str | None = "auto") -> LoadedReducer:
    from dltool.core.modelfile import load_model_file
    from dltool.reduce.base import to_numpy

    ckpt = load_model_file(path, task=TASK)
    load_methods()
    method = ckpt.get("arch")
    if method not in REDUCERS:
        raise ModelFileError(f"'{path}' is a reduce model of method '{method}', which this dltool does not know",
                             f"known methods: {', '.join(sorted(REDUCERS.names()))}")
    state = dict(ckpt.get("state_dict") or {})
    pre = ckpt.get("preprocess") or {}
    features = list(pre.get("features") or [])
    if not features:
        raise ModelFileError(f"'{path}' does not list the feature columns it was fitted on",
                             "refit it with dltool reduce ... --save-model")
    scaler = None
    if pre.get("standardize"):
        scaler = Standardizer()
        scaler.mean_ = to_numpy(state.pop("scaler.mean_")).astype(np.float64)
        scaler.scale_ = to_numpy(state.pop("scaler.scale_")).astype(np.float64)
    cls = get_reducer_class(method)
    try:
        reducer = cls.from_state(dict(ckpt.get("arch_kwargs") or {}), state)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"'{path}' is an incomplete {method} model ({type(e).__name__}: {e})",
                             "refit it with dltool reduce ... --save-model") from None
    # the GPU path of a reducer that has one (pca on CUDA); others note that they run on CPU
    placed = build_device(method, cls, device)
    if placed is not None and hasattr(reducer, "device"):
        reducer.device = placed
    return LoadedReducer(reducer, features, scaler, method)


def build_device(method: str, cls, device: str | None) -> str | None:
    from dltool.core.console import info
    from dltool.core.device import resolve_device

    dev = resolve_device(device)
    devices = getattr(cls, "devices", ("cpu",))
    if dev.type in devices:
        return str(dev)
    if dev.type != "cpu":
        info(f"note: {method} has no {'GPU implementation' if devices == ('cpu',) else dev.type + ' path'}; "
             "running on CPU")
    return "cpu"


def transform_table(table: Table, loaded: LoadedReducer, *, dropna: bool = False) -> ReduceResult:
    """Embed the rows of `table` with a saved reducer; the table must have the fitted feature columns."""
    missing = [c for c in loaded.features if c not in table.columns]
    if missing:
        hint = suggest(missing[0], table.names) or f"the model needs the columns: {', '.join(loaded.features[:12])}" + (
            ", ..." if len(loaded.features) > 12 else "")
        raise InputError(f"the table has no column '{missing[0]}', which the {loaded.method} model was fitted on"
                         + (f" ({len(missing)} missing)" if len(missing) > 1 else ""), hint)
    bad = [c for c in loaded.features if not table.is_numeric(c)]
    if bad:
        raise InputError(f"column '{bad[0]}' is not numeric, but the {loaded.method} model uses it as a feature",
                         "fix the values in that column")
    X, features, keep = table.feature_matrix(loaded.features, dropna=dropna)
    Xs = loaded.scaler.transform(X) if loaded.scaler else X
    Y = np.asarray(loaded.reducer.transform(Xs), dtype=np.float64)
    names = [f"{loaded.reducer.prefix}{i + 1}" for i in range(Y.shape[1])]
    out = output_table(table, keep, features, {n: Y[:, i] for i, n in enumerate(names)})
    report = {"method": loaded.method, "n_samples": int(len(X)), "n_features": len(features),
              "n_components": len(names)}
    return ReduceResult(out, Y, names, features, loaded.reducer, loaded.scaler, int(len(X)), report)


# ---------------------------------------------------------------- people-facing summary


def default_color_column(table: Table, features: list[str]) -> str | None:
    """The first non-feature column that looks like a label (label, true_label, class, target)."""
    for name in table.names:
        if name not in features and name.lower() in LABEL_NAMES:
            return name
    return None


def summary_lines(report: dict, max_rows: int = 12) -> list[str]:
    """A short stderr summary of a fit; for PCA the explained-variance table with E(k)."""
    lines = [f"{report['method']}: {report['n_samples']} rows x {report['n_features']} features -> "
             f"{report.get('n_components', '?')} components"]
    if "explained_variance_ratio" in report:
        ratio, cum, lost = report["explained_variance_ratio"], report["cumulative_ratio"], report["lost_share"]
        k = report["n_components"]
        show = min(len(ratio), max_rows, max(k, 5))
        rows = list(range(show)) + ([k - 1] if k > show else [])
        lines.append(f"{'k':>4} {'ratio':>9} {'cumulative':>11} {'E(k) lost':>10}")
        for i in rows:
            if i == k - 1 and k > show:
                lines.append("   ...")
            mark = "  <- kept" if i + 1 == k else ""
            lines.append(f"{i + 1:>4} {ratio[i]:>9.4f} {cum[i]:>11.4f} {lost[i]:>10.4f}{mark}")
        if len(ratio) > max(show, k):
            lines.append(f"   ... {len(ratio) - max(show, k)} more components (all of them in --report FILE.json)")
        lines.append(f"kept {report['variance_kept']:.2%} of the variance with k={k}; E({k}) = "
                     f"{report['variance_lost']:.4f}")
    elif "stress" in report:
        lines.append(f"stress {report['stress']:.4g} after {report['n_iter']} iterations")
    return lines
