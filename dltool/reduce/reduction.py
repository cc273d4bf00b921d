"""`dltool reduce <method>` and `reduce transform` as one call each: table -> features -> (standardize)
-> fit or apply a saved reducer -> table with the new columns -> the side files the config names.

Also the model file of a fitted reducer (DESIGN.md §3, task "reduce", arch = method name):
`state_dict` holds the reducer's fitted tensors plus `scaler.mean_`/`scaler.scale_` when the
features were standardized, `preprocess` holds the feature column names and the column prefix.
`load_reducer` rebuilds the reducer through the registry, so any registered method that
implements `state`/`from_state` (the autoencoder too) works with `dltool reduce transform`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from dltool.core.errors import InputError, ModelFileError, OptionError, suggest
from dltool.core.scaling import Scaling, fit_scaling
from dltool.core.tables import Table
from dltool.reduce.base import REDUCERS, Reducer, get_reducer_class
from dltool.reduce.config import ReduceConfig, TransformConfig

TASK = "reduce"
#: modules that register reducers; imported on first use so `--help` stays cheap
METHOD_MODULES = ("dltool.reduce.pca", "dltool.reduce.kpca", "dltool.reduce.ica", "dltool.reduce.manifold",
                  "dltool.reduce.autoencoder", "dltool.reduce.rbm")
LABEL_NAMES = ("label", "true_label", "class", "target")


def load_methods() -> None:
    for module in METHOD_MODULES:
        importlib.import_module(module)


@dataclass
class ReduceResult:
    table: Table                 # the output table: new columns + pass-through columns
    embedding: np.ndarray        # rows x components
    columns: list[str]           # the new column names
    features: list[str]          # the feature columns used
    reducer: Reducer
    scaler: Scaling | None       # --standardize's statistics
    n_rows: int
    report: dict


def reducer_device(method: str, cls, device: str | None) -> str:
    """The device the reducer runs on (a GPU only where it has a path for it; otherwise CPU, said once)."""
    from dltool.core.device import placed_on

    return placed_on(device, method, getattr(cls, "devices", ("cpu",)))


def build_reducer(method: str, params: dict, *, seed: int, device: str | None) -> Reducer:
    """The registered reducer for `method`, placed on a device it supports (or CPU, said once)."""
    load_methods()
    cls = get_reducer_class(method)
    placed = reducer_device(method, cls, device)  # validates --device: cuda without CUDA fails here
    kwargs = dict(params)
    if getattr(cls, "devices", ("cpu",)) != ("cpu",):
        kwargs["device"] = placed
    return cls(seed=seed, **kwargs)


def check_exclude(table: Table, exclude) -> None:
    """--exclude names columns that exist (a typo would silently keep a column as a feature)."""
    missing = [c for c in exclude or () if c not in table.columns]
    if missing:
        raise OptionError(f"--exclude: no column '{missing[0]}' in the table",
                          suggest(missing[0], table.names) or f"columns are: {', '.join(table.names)}")


def check_color_by(table: Table, color_by: str | None) -> None:
    if color_by is not None and color_by not in table.columns:
        raise OptionError(f"--color-by: no column '{color_by}' in the table",
                          suggest(color_by, table.names) or f"columns are: {', '.join(table.names)}")


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


def check_config(config: ReduceConfig) -> None:
    """Every check that needs no data (the command runs it before reading the table): the method's options
    that do not apply to its settings, and a --save-model it cannot honour."""
    from dltool.core.applies import changed_params

    load_methods()
    cls = get_reducer_class(config.method)
    given = config.given if config.given is not None else changed_params(config.params, cls)
    for rule in cls.option_rules:
        rule.check_values(given, config.params)
    if config.save_model is not None and not cls.transformable:
        raise OptionError(f"--save-model: {config.method} cannot be saved, because it has no transform for new "
                          "rows (it only places the rows it was fitted on)",
                          "use pca, kpca or ica to embed new data later, or embed all rows in one run")


def reduce_table(table: Table, config: ReduceConfig) -> ReduceResult:
    """Fit `config.method` on the table's feature columns; write the side files; return the reduced table."""
    from dltool.core.console import library_warnings

    check_config(config)
    check_color_by(table, config.color_by)
    check_exclude(table, config.exclude)
    features = list(config.features) if config.features else None
    X, names, keep = table.feature_matrix(features, list(config.exclude or ()), dropna=config.dropna)
    note_label_features(names)
    reducer = build_reducer(config.method, config.params, seed=config.seed, device=config.device)
    scaler = fit_scaling(X, "standard") if config.standardize else None
    with library_warnings():
        Y = np.asarray(reducer.fit_transform(scaler.transform(X) if scaler else X), dtype=np.float64)
    columns = [f"{reducer.prefix}{i + 1}" for i in range(Y.shape[1])]
    out = output_table(table, keep, names, {n: Y[:, i] for i, n in enumerate(columns)})
    report = {"method": config.method, "n_samples": int(len(X)), "n_features": len(names),
              "standardize": config.standardize, **reducer.report()}
    if config.save_model is not None:
        report["saved_model"] = str(config.save_model)
    result = ReduceResult(out, Y, columns, names, reducer, scaler, int(len(X)), report)
    write_side_files(table, result, config.plot, config.color_by, report_path=config.report,
                     save_model=config.save_model, variance_plot=config.variance_plot)
    return result


def transform_table(table: Table, config: TransformConfig) -> ReduceResult:
    """Embed the rows of `table` with a saved reducer; the table must have the fitted feature columns."""
    loaded = load_reducer(config.model, device=config.device)
    check_color_by(table, config.color_by)
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
    X, features, keep = table.feature_matrix(loaded.features, dropna=config.dropna)
    Xs = loaded.scaler.transform(X) if loaded.scaler else X
    Y = np.asarray(loaded.reducer.transform(Xs), dtype=np.float64)
    columns = [f"{loaded.reducer.prefix}{i + 1}" for i in range(Y.shape[1])]
    out = output_table(table, keep, features, {n: Y[:, i] for i, n in enumerate(columns)})
    report = {"method": loaded.method, "n_samples": int(len(X)), "n_features": len(features),
              "n_components": len(columns)}
    result = ReduceResult(out, Y, columns, features, loaded.reducer, loaded.scaler, int(len(X)), report)
    write_side_files(table, result, config.plot, config.color_by)
    return result


def write_side_files(table: Table, result: ReduceResult, plot, color_by, *, report_path=None, save_model=None,
                     variance_plot=None) -> None:
    """The model file, JSON report and pictures a config names (the output table is the caller's)."""
    from dltool.core.io import write_json
    from dltool.reduce import plots

    if save_model is not None:
        save_reducer(save_model, result)
    if report_path is not None:
        write_json(report_path, result.report)
    if plot is not None:
        column = color_by or default_color_column(table, result.features)
        colors = result.table.columns[column] if column else None
        plots.scatter(plot, result.embedding, result.columns, colors, column,
                      title=f"{result.report['method']} ({result.n_rows} rows)")
    if variance_plot is not None:
        plots.variance(variance_plot, result.reducer.all_explained_variance_ratio_, result.reducer.n_components_)


# ---------------------------------------------------------------- model files


def save_reducer(path, result: ReduceResult) -> None:
    from dltool.core.modelfile import save_model
    from dltool.reduce.base import to_tensors

    reducer = result.reducer
    params, tensors = reducer.state()  # a reducer without a transform raises the clear "cannot be saved"
    if result.scaler is not None:
        tensors.update({f"scaler.{k}": v for k, v in to_tensors(mean_=result.scaler.shift,
                                                               scale_=result.scaler.scale).items()})
    metrics = {k: v for k, v in result.report.items() if isinstance(v, (int, float, str, bool))}
    save_model(path, task=TASK, arch=reducer.method, arch_kwargs=params, state_dict=tensors,
               preprocess={"features": list(result.features), "standardize": result.scaler is not None,
                           "prefix": reducer.prefix}, metrics=metrics)


@dataclass
class LoadedReducer:
    reducer: Reducer
    features: list[str]
    scaler: Scaling | None
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
        scaler = Scaling("standard", to_numpy(state.pop("scaler.mean_")).astype(np.float64),
                         to_numpy(state.pop("scaler.scale_")).astype(np.float64))
    cls = get_reducer_class(method)
    try:
        reducer = cls.from_state(dict(ckpt.get("arch_kwargs") or {}), state)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"'{path}' is an incomplete {method} model ({type(e).__name__}: {e})",
                             "refit it with dltool reduce ... --save-model") from None
    # the GPU path of a reducer that has one (pca on CUDA); others note that they run on CPU
    placed = reducer_device(method, cls, device)
    if hasattr(reducer, "device"):
        reducer.device = placed
    return LoadedReducer(reducer, features, scaler, method)


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
    if "saved_model" in report:
        lines.append(f"saved the {report['method']} model to {report['saved_model']}")
    if "epochs_run" in report:  # the autoencoder
        lines.append(f"{report['kind']} autoencoder: {report.get('epochs_run')} epochs, best epoch "
                     f"{report.get('best_epoch')} ({report.get('monitor')} {report.get('best', float('nan')):.4g}); "
                     f"model {report.get('model')} (new rows: dltool reduce transform {report.get('model')} TABLE)")
    return lines
