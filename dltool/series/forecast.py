"""`dltool series forecast train|eval|predict`: a global network over one or many series.

Windows: every position of a series gives a lookback window (L points of the targets and covariates,
each series scaled by its own statistics, `--scale`) and the next H points to forecast at once (direct
multi-step output). The validation windows, for early stopping and best.pt, are those whose H points
lie in the last `--val-split` share of each series (at least H points); the training windows end before.
A series shorter than lookback + horizon is skipped with a warning naming it; when none is long enough
the command fails.

The model file keeps the columns (time, targets, id, covariates), the frequency, the season, the window
sizes, the scaling and the quantiles, so `eval` and `predict` take a table of the same shape and nothing
else. `eval` forecasts the last H points of each series (or `--folds K` origins `--step` apart, rolling
back from the end) from the history before them, and scores the network beside the classical baselines
(dltool.series.baselines) fitted on the same histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltool.core.applies import Applies
from dltool.core.console import info, warn
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.registry import arch_options, arch_rule
from dltool.core.run import RunConfig
from dltool.core.task import TaskHooks
from dltool.core.train import EngineConfig
from dltool.series.data import (
    SeriesSet,
    SeriesSpec,
    check_spec,
    format_time,
    parse_times,
    read_series,
)

TASK = "series"
SCALES = ("standard", "minmax", "none")
LOSSES = ("mae", "mse", "huber")
#: architecture options: each model's builder signature says which it takes (dltool.core.registry)
ARCH_OPTIONS = ("width", "layers", "dropout", "kernel_size", "heads", "decoder", "stacks")
#: --loss trains a point forecast; with --quantiles the loss is the pinball loss
LOSS_OPTIONS = Applies("quantiles", {None: ("loss",)}, otherwise=())
#: --ensemble's default (a *_tiny test model trains one): one forecast of a small set moves with the seed as
#: much as with the model (transformer on sunspots: 0.32-0.83 MASE over seeds 0-6 alone, 0.38-0.43 as the
#: median of five; README), and N-BEATS's and the M4 winners' recipes are ensembles
ENSEMBLE = 5
#: the families whose members look back 2, 3, .. 7 horizons (member k: k % 6 + 2) rather than all the planned
#: lookback: N-BEATS's own ensemble (Oreshkin et al. 2019), which held nbeats within 10% of ETS on co2 at
#: every seed tried where one lookback did at one seed of three (README)
LOOKBACK_SPREAD = ("nbeats",)


def _csv(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def parse_quantiles(value: str | None) -> tuple[float, ...]:
    """'0.1,0.9' -> (0.1, 0.5, 0.9): sorted, the median added (it is the point forecast)."""
    if value is None or not str(value).strip():
        return ()
    try:
        qs = sorted({float(v) for v in _csv(value)})
    except ValueError:
        raise OptionError(f"--quantiles {value!r} is not a comma-separated list of numbers",
                          "e.g. --quantiles 0.1,0.5,0.9") from None
    if not qs or not all(0 < q < 1 for q in qs):
        raise OptionError(f"--quantiles {value!r}: every quantile must be in (0, 1)", "e.g. --quantiles 0.1,0.5,0.9")
    return tuple(sorted({*qs, 0.5}))


def quantile_name(q: float) -> str:
    """0.1 -> 'q10', 0.025 -> 'q2.5'."""
    return f"q{round(q * 100, 4):g}"


@dataclass(frozen=True)
class TrainConfig:
    data: str = "-"
    time: str = "time"
    target: str = "y"
    id: str | None = None
    covariates: str | None = None
    freq: str | None = None
    fill: str | None = None
    lookback: int | None = None
    horizon: int = 12
    holdout: int = 0
    season: int | None = None
    scale: str = "standard"
    quantiles: str | None = None
    loss: str = "mae"
    model: str = "mlp"
    width: int | None = None
    layers: int | None = None
    dropout: float | None = None
    kernel_size: int | None = None
    heads: int | None = None
    decoder: str | None = None
    stacks: str | None = None
    ensemble: int | None = None
    horizons_back: int | None = None  # an ensemble member's lookback in horizons (LOOKBACK_SPREAD), not a flag
    engine: EngineConfig = field(default_factory=EngineConfig)
    run: RunConfig = RunConfig(batch_size=32)
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None

    @property
    def spec(self) -> SeriesSpec:
        return SeriesSpec(time=self.time, targets=_csv(self.target), id=self.id or None,
                          covariates=_csv(self.covariates), freq=self.freq, fill=self.fill)


def check_config(cfg: TrainConfig) -> None:
    """Every check that needs no data (before the table is read)."""
    from dltool.series.models import MODELS

    cfg.engine.validate()
    MODELS.get(cfg.model)
    arch_rule(MODELS, ARCH_OPTIONS).check(cfg)
    LOSS_OPTIONS.check(cfg)
    check_spec(cfg.spec)
    if cfg.scale not in SCALES:
        raise unknown_name("--scale", cfg.scale, SCALES)
    if cfg.loss not in LOSSES:
        raise unknown_name("--loss", cfg.loss, LOSSES)
    parse_quantiles(cfg.quantiles)
    for flag, v, low in (("--horizon", cfg.horizon, 1), ("--lookback", cfg.lookback, 1), ("--holdout", cfg.holdout, 0),
                         ("--season", cfg.season, 1)):
        if v is not None and v < low:
            raise OptionError(f"{flag} {v} must be at least {low}")
    if cfg.dropout is not None and not 0 <= cfg.dropout < 1:
        raise OptionError(f"--dropout {cfg.dropout} must be in [0, 1)")
    if cfg.ensemble is not None and cfg.ensemble < 1:
        raise OptionError(f"--ensemble {cfg.ensemble} must be at least 1")


def ensemble_size(cfg: TrainConfig) -> int:
    return cfg.ensemble or (1 if cfg.model.endswith("_tiny") else ENSEMBLE)


# -- scaling and windows ---------------------------------------------------------------------------

def scaling(y: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) per column of a series' history; constant columns get scale 1."""
    if kind == "none" or len(y) == 0:
        return np.zeros(y.shape[1]), np.ones(y.shape[1])
    if kind == "standard":
        shift, scale = y.mean(axis=0), y.std(axis=0)
    else:
        shift, scale = y.min(axis=0), y.max(axis=0) - y.min(axis=0)
    return shift, np.where(scale > 0, scale, 1.0)


@dataclass
class Scaled:
    """One series scaled by its history's statistics: z = (y - shift) / scale, covariates likewise."""

    y: np.ndarray
    x: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    xshift: np.ndarray
    xscale: np.ndarray

    @classmethod
    def of(cls, s, kind: str, upto: int | None = None):
        n = len(s) if upto is None else upto
        shift, scale = scaling(s.y[:n], kind)
        xshift, xscale = scaling(s.x[:n], "standard" if kind != "none" else "none")
        return cls((s.y - shift) / scale, (s.x - xshift) / xscale, shift, scale, xshift, xscale)

    def window(self, t: int, lookback: int, horizon: int):
        """(past (L, T + C), future covariates (H, C), truth (H, T)) for the forecast starting at index t."""
        past = np.concatenate([self.y[t - lookback:t], self.x[t - lookback:t]], axis=1)
        return past, self.x[t:t + horizon], self.y[t:t + horizon]

    def unscale(self, z: np.ndarray) -> np.ndarray:
        """(H, T, ...) scaled -> original units."""
        extra = (1,) * (z.ndim - 2)
        return z * self.scale.reshape(1, -1, *extra) + self.shift.reshape(1, -1, *extra)


def plan_lookback(lookback: int | None, horizon: int, season: int, shortest: int,
                  horizons: int | None = None) -> int:
    """--lookback, or `horizons` horizons (an ensemble member's), or: three seasons or two horizons (16 points
    at least); kept within half of what the shortest series has beyond one horizon so that it still gives
    windows."""
    if lookback is not None:
        return lookback
    planned = horizons * horizon if horizons else max(3 * season if season > 1 else 16, 2 * horizon)
    return max(1, min(planned, (shortest - horizon) // 2))


# -- the task the engine trains ----------------------------------------------------------------------

class ForecastTask(TaskHooks):
    monitor, monitor_mode, channels_last = "loss", "min", False

    def __init__(self, *, arch: str, arch_kwargs: dict, preprocess: dict, loss: str, quantiles: tuple):
        self.arch, self.arch_kwargs, self.preprocess = arch, arch_kwargs, preprocess
        self.loss_name, self.quantiles = loss, quantiles

    def _loss(self, out, y, reduce: bool = True):
        import torch
        import torch.nn.functional as F

        if self.quantiles:
            q = torch.tensor(self.quantiles, device=out.device, dtype=out.dtype)
            diff = y.unsqueeze(-1) - out
            loss = torch.maximum(q * diff, (q - 1) * diff)
        else:
            point = out[..., 0]
            loss = {"mae": lambda: (point - y).abs(), "mse": lambda: (point - y) ** 2,
                    "huber": lambda: F.smooth_l1_loss(point, y, reduction="none")}[self.loss_name]()
        return loss.mean() if reduce else loss.flatten(1).mean(1)

    def loss(self, model, batch):
        past, future, y = batch
        return self._loss(model(past, future), y)

    def evaluate(self, model, batches) -> dict:
        total, abs_err, n = 0.0, 0.0, 0
        for past, future, y in batches:
            out = model(past, future)
            total += float(self._loss(out, y, reduce=False).sum())
            mid = out[..., out.shape[-1] // 2]  # the median (or the point forecast)
            abs_err += float((mid - y).abs().flatten(1).mean(1).sum())
            n += len(y)
        return {"loss": total / max(n, 1), "mae": abs_err / max(n, 1)}

    def payload(self, model) -> dict:
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "preprocess": self.preprocess}


def _tensors(windows: list, device):
    import torch

    past, fut, y = (np.stack([w[i] for w in windows]).astype(np.float32) for i in range(3))
    return tuple(torch.as_tensor(a, device=device) for a in (past, fut, y))


def train(cfg: TrainConfig) -> dict:
    check_config(cfg)
    n = ensemble_size(cfg)
    return train_one(cfg) if n == 1 else train_ensemble(cfg, n)


def train_ensemble(cfg: TrainConfig, n: int) -> dict:
    """--ensemble N: the members train one after another through the engine, member k from seed + k (and,
    for LOOKBACK_SPREAD's families, looking back k % 6 + 2 horizons) into the sub-run <run>/member<k> (so
    --resume continues the one that was interrupted and finds the finished ones finished); <run>/model.pt,
    written at the end, holds them all and forecasts their median."""
    import shutil
    from dataclasses import replace

    from dltool.core import distributed as dist
    from dltool.core.io import prepare_run_dir, write_json
    from dltool.core.modelfile import load_model_file, save_model
    from dltool.core.tables import read_table

    if dist.world_size() > 1:
        raise OptionError(f"--ensemble {n} (the default for every model but the *_tiny ones) trains its members one "
                          "after another, each on one process", "drop --nproc, or pass --ensemble 1")
    seed, summaries = cfg.engine.seed, []
    spread = cfg.lookback is None and cfg.model.removesuffix("_tiny") in LOOKBACK_SPREAD

    def member(k: int, out=None, resume: bool = False) -> TrainConfig:
        return replace(cfg, ensemble=1, horizons_back=k % 6 + 2 if spread else None,
                       engine=replace(cfg.engine, seed=seed + k, resume=resume),
                       run=replace(cfg.run, out=out, force=not resume), options={**cfg.options, "seed": seed + k})

    table = read_table(cfg.data)  # once: stdin can be read only once
    ready = {0: prepare(member(0), table)}  # every check on the data before the run folder exists
    run_dir = prepare_run_dir(cfg.run.out, "series-forecast", force=cfg.run.force, resume=cfg.engine.resume)
    for k in range(n):
        sub = run_dir / f"member{k}"
        resume = cfg.engine.resume and (sub / "last.pt").exists()
        info(f"ensemble member {k + 1} of {n} (seed {seed + k}): {sub}")
        cfg_k = member(k, sub, resume)
        summaries.append(fit(cfg_k, ready.pop(k, None) or prepare(cfg_k, table)))
    ckpts = [load_model_file(run_dir / f"member{k}" / "model.pt", task=TASK) for k in range(n)]
    # the members' windows differ only in length: the ensemble reads the longest, each member its own tail
    pre = dict(ckpts[0]["preprocess"], lookback=max(c["preprocess"]["lookback"] for c in ckpts))
    save_model(run_dir / "model.pt", task=TASK, arch=ckpts[0]["arch"],
               arch_kwargs={"members": [c["arch_kwargs"] for c in ckpts]},
               state_dict={f"members.{k}.{name}": v for k, c in enumerate(ckpts) for name, v in c["state_dict"].items()},
               preprocess=pre)
    shutil.copy(run_dir / "member0" / "config.toml", run_dir / "config.toml")  # member 0's recipe is the run's
    first = summaries[0]
    summary = {"run_dir": str(run_dir), "model": str(run_dir / "model.pt"), "ensemble": n,
               "members": [{"seed": seed + k, "best_epoch": s["best_epoch"], "loss": s.get("best"),
                            "train_time_s": s["train_time_s"]} for k, s in enumerate(summaries)],
               "train_time_s": round(sum(s["train_time_s"] for s in summaries), 3),
               "lookback": pre["lookback"],
               **{k: first[k] for k in ("horizon", "season", "series", "train_windows", "val_windows")}}
    write_json(run_dir / "summary.json", summary)
    return summary


def train_one(cfg: TrainConfig) -> dict:
    return fit(cfg, prepare(cfg))


@dataclass(frozen=True)
class Prepared:
    """A run's windows and what made them, every check on the data done (before any run folder exists)."""
    ss: SeriesSet           # the series read
    kept: list              # those long enough for lookback + horizon
    season: int
    lookback: int
    quantiles: tuple
    train_w: list
    val_w: list


def prepare(cfg: TrainConfig, table=None) -> Prepared:
    """Read (or take: an ensemble's members share `table`) and check the data, plan the lookback, cut the
    training and validation windows."""
    from dltool.core.tables import read_table

    quantiles = parse_quantiles(cfg.quantiles)
    ss = read_series(table if table is not None else read_table(cfg.data), cfg.spec, holdout=cfg.holdout)
    season = cfg.season or ss.season()
    H = cfg.horizon
    longest = max(len(s) for s in ss.series)
    if H >= longest:
        raise InputError(f"--horizon {H} is not shorter than the longest series ({longest} points"
                         f"{f' after --holdout {cfg.holdout}' if cfg.holdout else ''})", "use a shorter --horizon")
    L = plan_lookback(cfg.lookback, H, season, min(len(s) for s in ss.series), cfg.horizons_back)
    kept = usable(ss.series, L + H, "lookback + horizon", f"{L} + {H}")
    val_split = cfg.run.val_split
    train_w, val_w = [], []
    for s in kept:
        z = Scaled.of(s, cfg.scale)
        n = len(s)
        n_val = max(H, round(n * val_split)) if val_split > 0 and n - max(H, round(n * val_split)) >= L + H else 0
        for t in range(L, n - H + 1):
            if t + H <= n - n_val:
                train_w.append(z.window(t, L, H))
            elif t >= n - n_val:
                val_w.append(z.window(t, L, H))
    return Prepared(ss, kept, season, L, quantiles, train_w, val_w)


def fit(cfg: TrainConfig, data: Prepared) -> dict:
    """Train one network on the prepared windows through the engine."""
    from dltool.core import run as runs
    from dltool.core.data import TensorBatches
    from dltool.core.train import Engine
    from dltool.nn.mlp import one_thread_if_small
    from dltool.series.models import MODELS

    spec, H, L, season, quantiles = cfg.spec, cfg.horizon, data.lookback, data.season, data.quantiles
    kept, train_w, val_w = data.kept, data.train_w, data.val_w
    if cfg.run.val_split > 0 and not val_w:
        warn("no series is long enough to hold out validation windows: training without validation")
    info(f"plan: lookback {L}, horizon {H}, season {season}, {len(kept)} series, {len(train_w)} training "
         f"and {len(val_w)} validation windows")
    arch_kwargs = {"lookback": L, "horizon": H, "n_targets": len(spec.targets),
                   "n_covariates": len(spec.covariates), "n_quantiles": max(1, len(quantiles)),
                   **{k: v for k, v in arch_options(cfg, MODELS, ARCH_OPTIONS).items() if v is not None}}
    if "season" in MODELS.takes(cfg.model):  # nbeats' seasonality basis
        arch_kwargs["season"] = season
    preprocess = {"time": spec.time, "targets": list(spec.targets), "id": spec.id or "",
                  "covariates": list(spec.covariates), "freq": str(data.ss.freq), "dates": data.ss.dates,
                  "fill": spec.fill or "", "season": season, "lookback": L, "horizon": H, "scale": cfg.scale,
                  "quantiles": list(quantiles)}
    task = ForecastTask(arch=cfg.model, arch_kwargs=arch_kwargs, preprocess=preprocess, loss=cfg.loss,
                        quantiles=quantiles)
    device, run_dir = runs.start(cfg, "series-forecast")
    net = MODELS.create(cfg.model, **arch_kwargs)  # after start(), which seeds: the same seed, the same weights
    seed = cfg.engine.seed
    train_batches = TensorBatches(_tensors(train_w, device), cfg.run.batch_size, shuffle=True, seed=seed)
    val_batches = TensorBatches(_tensors(val_w, device), 1024, shuffle=False) if val_w else None
    with one_thread_if_small(device, net, cfg.run.batch_size):
        summary = Engine(task, net, cfg.engine, run_dir, device, cfg.options).fit(train_batches, val_batches)
    return {**summary, "lookback": L, "horizon": H, "season": season, "series": len(kept),
            "train_windows": len(train_w), "val_windows": len(val_w)}


def usable(series: list, need: int, what: str, value: str) -> list:
    """The series with at least `need` points; the others skipped with a warning naming them, none an error."""
    kept = [s for s in series if len(s) >= need]
    short = [s for s in series if len(s) < need]
    if not kept:
        s = short[0]
        name = f"series '{s.id}'" if s.id else "the series"
        raise InputError(f"{name} has {len(s)} points, fewer than {what} ({value} = {need})"
                         + (f"; so do the other {len(short) - 1}" if len(short) > 1 else ""),
                         "use a shorter --lookback or --horizon")
    for s in short:
        warn(f"series '{s.id}' has {len(s)} points, fewer than {what} ({value} = {need}): skipped")
    return kept


# -- using a model file ------------------------------------------------------------------------------

def load(path, device: str = "auto"):
    from dltool.core.modelfile import load_model
    from dltool.series.models import MODELS, ensemble

    class Builder:  # a model file holds one network or an ensemble of them (train --ensemble)
        create = staticmethod(lambda arch, **kw: ensemble.build(MODELS, arch, kw))

    def make_task(ckpt, dev):
        return ForecastTask(arch=ckpt["arch"], arch_kwargs=ckpt["arch_kwargs"], preprocess=ckpt["preprocess"],
                            loss="mae", quantiles=tuple(ckpt["preprocess"]["quantiles"]))

    return load_model(path, task=TASK, registry=Builder, make_task=make_task, device=device)


def spec_of(pre: dict) -> SeriesSpec:
    return SeriesSpec(time=pre["time"], targets=tuple(pre["targets"]), id=pre["id"] or None,
                      covariates=tuple(pre["covariates"]), freq=pre["freq"], fill=pre["fill"] or None)


def network_forecasts(loaded, jobs: list, batch_size: int = 1024) -> list[np.ndarray]:
    """For each (series, origin, future covariates or None): the forecast (H, T, Q) in the series' units,
    from the lookback before `origin` scaled by the history before it."""
    import torch

    pre = loaded.preprocess
    L, H = pre["lookback"], pre["horizon"]
    scaled, windows = [], []
    for s, origin, future_x in jobs:
        z = Scaled.of(s, pre["scale"], upto=origin)
        past = np.concatenate([z.y[origin - L:origin], z.x[origin - L:origin]], axis=1)
        fut = z.x[origin:origin + H] if future_x is None else (future_x - z.xshift) / z.xscale
        if not s.x.shape[1]:
            fut = np.zeros((H, 0))
        elif len(fut) < H:
            raise InputError(f"series '{s.id}': the covariates {', '.join(pre['covariates'])} of the {H} steps "
                             "after the forecast's origin are unknown", "pass them with --future TABLE")
        scaled.append(z)
        windows.append((past, fut))
    outs = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            part = windows[start:start + batch_size]
            past = torch.as_tensor(np.stack([w[0] for w in part]), dtype=torch.float32, device=loaded.device)
            fut = torch.as_tensor(np.stack([w[1] for w in part]), dtype=torch.float32, device=loaded.device)
            outs.append(loaded.model(past, fut).float().cpu().numpy().astype(np.float64))
    out = np.concatenate(outs) if outs else np.zeros((0,))
    return [z.unscale(o) for z, o in zip(scaled, out)]


# -- eval -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalConfig:
    model: Path
    data: str = "-"
    folds: int = 1
    step: int | None = None
    baselines: str | None = None
    order: str | None = None
    seasonal_order: str | None = None
    batch_size: int = 1024
    device: str = "auto"


def origins(n: int, horizon: int, folds: int, step: int, least: int) -> list[int]:
    """The forecast origins of a rolling-origin backtest: the last one leaves exactly `horizon` points,
    each earlier one `step` before; those with fewer than `least` points of history are dropped."""
    return [o for o in (n - horizon - k * step for k in range(folds - 1, -1, -1)) if o >= least]


def check_backtest(folds: int, step: int | None) -> None:
    if folds < 1:
        raise OptionError(f"--folds {folds} must be at least 1")
    if step is not None and step < 1:
        raise OptionError(f"--step {step} must be at least 1")


def backtest(ss, *, horizon: int, season: int, folds: int, step: int, least: int, methods, level, order,
             seasonal_order, network=None) -> tuple[dict, list[dict]]:
    """Score the baselines (and `network(jobs) -> forecasts`, when given) on every series' origins.
    Returns (the JSON result, per-series rows for people)."""
    from dltool.series import baselines as bl
    from dltool.series.metrics import (
        interval_metrics,
        mean_metrics,
        naive_scale,
        pinball,
        point_metrics,
    )

    kept = usable(ss.series, least + horizon, "the history the forecast needs + horizon", f"{least} + {horizon}")
    jobs = [(s, o) for s in kept for o in origins(len(s), horizon, folds, step, least)]
    net_rows, per_method, per_series = [], {m: [] for m in methods}, {}
    forecasts = network([(s, o, None) for s, o in jobs]) if network is not None else None
    for k, (s, o) in enumerate(jobs):
        hist, truth = s.y[:o], s.y[o:o + horizon]
        scale = naive_scale(hist, season)
        row = per_series.setdefault(s.id, {"id": s.id})
        if forecasts is not None:
            f, qs = forecasts[k], network.quantiles
            mid = f[..., f.shape[-1] // 2]
            m = point_metrics(truth, mid, scale)
            if len(qs) > 1:
                m |= interval_metrics(truth, f[..., 0], f[..., -1])
                m["pinball"] = pinball(truth, {q: f[..., i] for i, q in enumerate(qs)})
            net_rows.append(m)
            row.setdefault("_net", []).append(m["mase"])
        for method in methods:
            fc = bl.forecast_targets(method, hist, horizon, season=season, level=level, order=order,
                                     seasonal_order=seasonal_order)
            m = point_metrics(truth, fc.mean, scale)
            if fc.lower is not None:
                m |= interval_metrics(truth, fc.lower, fc.upper)
            per_method[method].append(m)
            row.setdefault(method, []).append(m["mase"])
    result = {"horizon": horizon, "season": season, "folds": folds, "series": len(kept), "forecasts": len(jobs)}
    if network is not None:
        result |= mean_metrics(net_rows)
    result["baselines"] = {m: mean_metrics(rows) for m, rows in per_method.items()}
    scored = {m: r["mase"] for m, r in result["baselines"].items() if r.get("mase") is not None}
    if not scored:  # MASE undefined (an exactly periodic history): rank by MAE
        scored = {m: r["mae"] for m, r in result["baselines"].items() if r.get("mae") is not None}
    if scored:
        best = min(scored, key=scored.get)
        result["best_baseline"] = best
        if network is not None and result.get("mase") is not None and scored[best]:
            result["mase_vs_best_baseline"] = result["mase"] / scored[best]
    rows = [{k: (_mean_of_finite(v) if isinstance(v, list) else v) for k, v in r.items()} for r in per_series.values()]
    return result, rows


def _mean_of_finite(values: list) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def show_rows(rows: list[dict], title: str) -> None:
    """The per-series MASE table on stderr, for people (silent with --quiet)."""
    from dltool.core.console import is_quiet

    if is_quiet() or not rows:
        return
    from rich.console import Console
    from rich.table import Table

    keys = list(dict.fromkeys(k for r in rows for k in r))
    t = Table(*[("network" if k == "_net" else k) for k in keys], title=title)
    for r in rows:
        t.add_row(*[f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys])
    Console(stderr=True, width=max(80, 12 * len(keys))).print(t)


def evaluate(cfg: EvalConfig) -> dict:
    from dltool.core.tables import read_table
    from dltool.series import baselines as bl

    check_backtest(cfg.folds, cfg.step)
    methods = bl.parse_methods(cfg.baselines) if cfg.baselines != "" else ()
    order = bl.parse_order(cfg.order, 3, "--order")
    seasonal_order = bl.parse_order(cfg.seasonal_order, 3, "--seasonal-order")
    loaded = load(cfg.model, cfg.device)
    pre = loaded.preprocess
    H, L = pre["horizon"], pre["lookback"]
    ss = read_series(read_table(cfg.data), spec_of(pre))
    qs = tuple(pre["quantiles"])

    def network(jobs):
        return network_forecasts(loaded, jobs, cfg.batch_size)

    network.quantiles = qs
    level = (qs[-1] - qs[0]) if len(qs) > 1 else None
    result, rows = backtest(ss, horizon=H, season=pre["season"], folds=cfg.folds, step=cfg.step or H, least=L,
                            methods=methods, level=level, order=order, seasonal_order=seasonal_order,
                            network=network)
    show_rows(rows, f"MASE per series ({loaded.arch} and baselines)")
    members = len(loaded.ckpt["arch_kwargs"].get("members", [None]))
    return {"model": loaded.arch, **({"ensemble": members} if members > 1 else {}), **result}


# -- predict ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PredictConfig:
    model: Path
    data: str = "-"
    origin: str | None = None
    future: str | None = None
    plot: Path | None = None
    batch_size: int = 1024
    device: str = "auto"


def _origin_index(s, origin: str, dates: bool, label: str) -> int:
    """The index after the time `origin` (the history ends there)."""
    if dates:
        import pandas as pd

        try:
            t = pd.Timestamp(origin).to_datetime64()
        except ValueError:
            raise OptionError(f"--origin {origin!r} is not a date") from None
    else:
        try:
            t = int(origin)
        except ValueError:
            raise OptionError(f"--origin {origin!r} is not an integer step (the time column holds steps)") from None
    hits = np.flatnonzero(s.time == t)
    if not len(hits):
        raise InputError(f"--origin {origin}: {label} has no such time "
                         f"(it runs from {format_time(s.time[0], dates)} to {format_time(s.time[-1], dates)})")
    return int(hits[0]) + 1


def _future_covariates(cfg: PredictConfig, ss, pre: dict, H: int) -> dict:
    """{series id: (H, C)} the known covariates of the horizon, from the --future table."""
    from dltool.core.tables import read_table

    covs = tuple(pre["covariates"])
    if not covs:
        if cfg.future is not None:
            raise OptionError("--future gives covariates, but this model was trained without --covariates",
                              "drop --future")
        return {}
    if cfg.future is None:
        return {}  # enough where the table itself holds the horizon's covariates (--origin before its end)
    table = read_table(cfg.future)
    fut = {}
    for name in covs:
        if name not in table.columns or not table.is_numeric(name):
            raise InputError(f"--future: no numeric column '{name}'")
    if pre["time"] not in table.columns or (pre["id"] and pre["id"] not in table.columns):
        raise InputError(f"--future: the table needs the columns {pre['time']}"
                         f"{', ' + pre['id'] if pre['id'] else ''} and {', '.join(covs)}")
    times, _ = parse_times(table.columns[pre["time"]], pre["time"])
    ids = [str(v) for v in table.columns[pre["id"]]] if pre["id"] else [""] * len(table)
    for s in ss.series:
        rows = [i for i, v in enumerate(ids) if v == s.id]
        fut[s.id] = (times[rows], np.column_stack([table.columns[c][rows].astype(np.float64) for c in covs]))
    return fut


def _future_rows(future: dict, s, times: np.ndarray, dates: bool, label: str) -> np.ndarray:
    """The --future covariates of the forecast's times, each one required."""
    have_t, have_x = future.get(s.id, (np.array([]), None))
    picked = []
    for t in times:
        hit = np.flatnonzero(have_t == t)
        if not len(hit):
            raise InputError(f"--future: no covariates for {label} at {format_time(t, dates)}",
                             "give a row for every step of the horizon")
        picked.append(have_x[hit[0]])
    return np.stack(picked)


def predict(cfg: PredictConfig):
    """The next H steps after the end of each series (or after --origin): a Table {id, time, yhat, q..}."""
    from dltool.core.tables import read_table

    loaded = load(cfg.model, cfg.device)
    pre = loaded.preprocess
    H, L = pre["horizon"], pre["lookback"]
    ss = read_series(read_table(cfg.data), spec_of(pre))
    future = _future_covariates(cfg, ss, pre, H)
    jobs = []
    for s in usable(ss.series, L, "lookback", str(L)):
        label = f"series '{s.id}'" if s.id else "the series"
        o = len(s) if cfg.origin is None else _origin_index(s, cfg.origin, ss.dates, label)
        if o < L:
            raise InputError(f"--origin {cfg.origin}: {label} has {o} points up to it, fewer than the lookback {L}")
        fx = None
        if s.x.shape[1] and (future or len(s) - o < H):
            fx = _future_rows(future, s, ss.future_times(s, o - 1, H), ss.dates, label) if future else None
        jobs.append((s, o, fx))
    forecasts = network_forecasts(loaded, jobs, cfg.batch_size)
    qs = tuple(pre["quantiles"])
    if cfg.plot is not None:
        from dltool.series.plots import plot_forecasts

        plot_forecasts(cfg.plot, ss, jobs, forecasts, qs, list(ss.spec.targets), history=3 * max(L, H))
    return forecast_table(ss, jobs, forecasts, qs)


def forecast_table(ss, jobs: list, forecasts: list, quantiles: tuple):
    """The forecasts (H, T, Q) after each job's origin as a Table {id, time, [target,] yhat, q..}: the
    median (or the point forecast) is yhat, every other quantile a column (q10, q90)."""
    from dltool.core.tables import Table

    spec = ss.spec
    targets = spec.targets
    cols: dict[str, list] = {}
    for (s, o, *_), f in zip(jobs, forecasts):
        times = ss.future_times(s, o - 1, f.shape[0])
        for h in range(f.shape[0]):
            for j, target in enumerate(targets):
                if spec.id:
                    cols.setdefault(spec.id, []).append(s.id)
                cols.setdefault(spec.time, []).append(format_time(times[h], ss.dates))
                if len(targets) > 1:
                    cols.setdefault("target", []).append(target)
                cols.setdefault("yhat", []).append(float(f[h, j, f.shape[-1] // 2]))
                for i, q in enumerate(quantiles):
                    if q != 0.5:
                        cols.setdefault(quantile_name(q), []).append(float(f[h, j, i]))
    return Table({k: (np.asarray(v, dtype=np.float64) if isinstance(v[0], float)
                      else _objects(v)) for k, v in cols.items()})


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
