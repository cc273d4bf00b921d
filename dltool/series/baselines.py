"""Classical forecasts beside every network: naive, seasonal naive, ETS and (S)ARIMA through statsmodels.

Each method fits one target's history (a 1-D array) and returns the next `horizon` values with a central
prediction interval at `level` (None for none): naive and seasonal naive take the spread of their own
in-sample errors (growing with the square root of the steps, as in Hyndman's fpp3 §5.5), ETS and ARIMA
statsmodels' own intervals.

- ets: statsmodels' ETSModel (additive errors), the trend none|additive|damped and the season none|additive
  chosen by AIC (the season only when the history holds two of them);
- arima: ARIMA(p,d,q) with `order` given, or d from the KPSS test (as pmdarima's auto_arima) and
  p <= 3, q <= 2 by AIC; a constant (d = 0) or a drift (d = 1);
- sarima: SARIMA with `order` and `seasonal_order` given, or a small AIC search over common orders with
  one seasonal difference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from dltool.core.errors import InputError, OptionError, unknown_name

METHODS = ("naive", "seasonal_naive", "ets", "arima", "sarima")
DEFAULT_METHODS = ("naive", "seasonal_naive", "ets", "arima")


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


def parse_order(value: str | None, n: int, flag: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        order = tuple(int(v) for v in value.split(","))
    except ValueError:
        order = ()
    if len(order) != n or any(v < 0 for v in order):
        raise OptionError(f"{flag} {value!r} must be {n} whole numbers >= 0, comma-separated",
                          f"e.g. {flag} {'1,1,1' if n == 3 else '0,1,1'}")
    return order


def parse_methods(value: str | None, default=DEFAULT_METHODS) -> tuple[str, ...]:
    names = tuple(v.strip() for v in (value or "").split(",") if v.strip()) or tuple(default)
    for name in names:
        if name not in METHODS:
            raise unknown_name("baseline", name, METHODS)
    return names


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _naive_like(y: np.ndarray, horizon: int, lag: int, level: float | None) -> Forecast:
    lag = lag if len(y) > lag else 1
    steps = np.arange(horizon)
    mean = y[len(y) - lag + steps % lag]
    if level is None or len(y) <= lag + 1:
        return Forecast(mean)
    sigma = np.std(y[lag:] - y[:-lag], ddof=1)
    width = _z(level) * sigma * np.sqrt(steps // lag + 1)
    return Forecast(mean, mean - width, mean + width)


def _ets(y: np.ndarray, horizon: int, season: int, level: float | None) -> Forecast:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = pd.Series(y)  # statsmodels 0.15's ETS prediction needs an index
    seasons = [None, "add"] if season > 1 and len(y) >= 2 * season + 2 else [None]
    best = None
    for trend, damped in ((None, False), ("add", False), ("add", True)):
        for seasonal in seasons:
            try:
                fit = ETSModel(y, error="add", trend=trend, damped_trend=damped, seasonal=seasonal,
                               seasonal_periods=season if seasonal else None).fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(fit.aic) and (best is None or fit.aic < best.aic):
                best = fit
    if best is None:
        return _naive_like(y.to_numpy(), horizon, 1, level)
    pred = best.get_prediction(start=len(y), end=len(y) + horizon - 1)
    mean = np.asarray(pred.predicted_mean, dtype=np.float64)
    if level is None:
        return Forecast(mean)
    frame = pred.summary_frame(alpha=1 - level)
    return Forecast(mean, frame["pi_lower"].to_numpy(), frame["pi_upper"].to_numpy())


def _arima_fit(y, order, seasonal_order=(0, 0, 0, 0)):
    from statsmodels.tsa.arima.model import ARIMA

    d = order[1] + seasonal_order[1]
    trend = "c" if d == 0 else ("t" if d == 1 else None)
    try:  # the state-space likelihood: the innovations algorithm is faster but misses optima (elnino's 3,0,2)
        return ARIMA(y, order=order, seasonal_order=seasonal_order, trend=trend).fit()
    except (ValueError, np.linalg.LinAlgError):
        return None


def _kpss_d(y: np.ndarray, max_d: int = 2) -> int:
    from statsmodels.tsa.stattools import kpss

    d = 0
    while d < max_d:
        z = np.diff(y, n=d) if d else y
        if len(z) < 10 or np.std(z) == 0:
            break
        p = kpss(z, regression="c", nlags="auto")[1]
        if p >= 0.05:
            break
        d += 1
    return d


def _from_fit(fit, horizon: int, level: float | None) -> Forecast:
    pred = fit.get_forecast(horizon)
    mean = np.asarray(pred.predicted_mean)
    if level is None:
        return Forecast(mean)
    ci = np.asarray(pred.conf_int(alpha=1 - level))
    return Forecast(mean, ci[:, 0], ci[:, 1])


def _arima(y, horizon, level, order) -> Forecast:
    if order is None:
        d = _kpss_d(y)
        fits = [_arima_fit(y, (p, d, q)) for p in range(4) for q in range(3)]
        fits = [f for f in fits if f is not None and np.isfinite(f.aic)]
        fit = min(fits, key=lambda f: f.aic) if fits else None
    else:
        fit = _arima_fit(y, order)
    return _from_fit(fit, horizon, level) if fit is not None else _naive_like(y, horizon, 1, level)


def _sarima(y, horizon, season, level, order, seasonal_order) -> Forecast:
    if season < 2 and seasonal_order is None:
        return _arima(y, horizon, level, order)
    orders = [order] if order else [(1, 0, 0), (0, 1, 1), (1, 1, 1), (2, 1, 0)]
    seasonal = [(*seasonal_order, season)] if seasonal_order else [(0, 1, 1, season), (1, 1, 1, season)]
    fits = [_arima_fit(y, o, s) for o in orders for s in seasonal]
    fits = [f for f in fits if f is not None and np.isfinite(f.aic)]
    if not fits:
        return _naive_like(y, horizon, season, level)
    return _from_fit(min(fits, key=lambda f: f.aic), horizon, level)


def forecast(method: str, y: np.ndarray, horizon: int, *, season: int = 1, level: float | None = None,
             order: tuple[int, ...] | None = None, seasonal_order: tuple[int, ...] | None = None) -> Forecast:
    """`method`'s forecast of the `horizon` values after the history `y` (1-D)."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    y = np.asarray(y, dtype=np.float64)
    with warnings.catch_warnings():
        # statsmodels warns about every non-converged candidate of a search; the AIC still ranks them
        for category in (ConvergenceWarning, UserWarning, RuntimeWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        if method == "naive":
            return _naive_like(y, horizon, 1, level)
        if method == "seasonal_naive":
            return _naive_like(y, horizon, season, level)
        if method == "ets":
            return _ets(y, horizon, season, level)
        if method == "arima":
            return _arima(y, horizon, level, order)
        if method == "sarima":
            return _sarima(y, horizon, season, level, order, seasonal_order)
    raise unknown_name("baseline", method, METHODS)


def forecast_targets(method: str, history: np.ndarray, horizon: int, **kw) -> Forecast:
    """The same for a (n, targets) history: each target on its own -> (horizon, targets) arrays."""
    parts = [forecast(method, history[:, j], horizon, **kw) for j in range(history.shape[1])]
    mean = np.column_stack([p.mean for p in parts])
    if any(p.lower is None for p in parts):
        return Forecast(mean)
    return Forecast(mean, np.column_stack([p.lower for p in parts]), np.column_stack([p.upper for p in parts]))


# ---------------------------------------------------------------- the `series baseline` command's flow

@dataclass(frozen=True)
class BaselineConfig:
    data: str = "-"
    time: str = "time"
    target: str = "y"
    id: str | None = None
    freq: str | None = None
    fill: str | None = None
    horizon: int = 12
    season: int | None = None
    methods: str | None = None
    folds: int = 1
    step: int | None = None
    order: str | None = None
    seasonal_order: str | None = None
    interval: float = 0.8
    forecast: bool = False
    plot: str | None = None


def check_config(cfg: BaselineConfig) -> tuple:
    """Every check that needs no data -> (methods, order, seasonal order)."""
    from dltool.series.data import check_spec
    from dltool.series.forecast import check_backtest

    methods = parse_methods(cfg.methods)
    order = parse_order(cfg.order, 3, "--order")
    seasonal_order = parse_order(cfg.seasonal_order, 3, "--seasonal-order")
    if (order or seasonal_order) and not {"arima", "sarima"} & set(methods):
        raise OptionError(f"{'--order' if order else '--seasonal-order'} does not apply to --method {','.join(methods)}",
                          "add arima or sarima to --method, or drop it")
    if seasonal_order and "sarima" not in methods:
        raise OptionError("--seasonal-order applies to --method sarima only", "add sarima to --method")
    if cfg.horizon < 1:
        raise OptionError(f"--horizon {cfg.horizon} must be at least 1")
    if cfg.season is not None and cfg.season < 1:
        raise OptionError(f"--season {cfg.season} must be at least 1")
    if not 0 <= cfg.interval < 1:
        raise OptionError(f"--interval {cfg.interval} must be in [0, 1) (0: no intervals)", "e.g. --interval 0.8")
    check_backtest(cfg.folds, cfg.step)
    check_spec(_spec(cfg))
    return methods, order, seasonal_order


def _spec(cfg: BaselineConfig):
    from dltool.series.data import SeriesSpec
    from dltool.series.forecast import _csv

    return SeriesSpec(time=cfg.time, targets=_csv(cfg.target), id=cfg.id or None, freq=cfg.freq, fill=cfg.fill)


def run(cfg: BaselineConfig):
    """Backtest the baselines alone: the metrics of each on the last `horizon` points of every series (or
    `folds` rolling origins); the per-series MASE table on stderr. With `forecast` (or `plot`), the method
    that scored best then forecasts the `horizon` steps after the end of every series, with its interval.
    Returns (the JSON result, the forecast Table or None)."""
    from dltool.core.tables import read_table
    from dltool.series.data import read_series
    from dltool.series.forecast import backtest, forecast_table, show_rows

    methods, order, seasonal_order = check_config(cfg)
    ss = read_series(read_table(cfg.data), _spec(cfg))
    longest = max(len(s) for s in ss.series)
    if cfg.horizon >= longest:
        raise InputError(f"--horizon {cfg.horizon} is not shorter than the longest series ({longest} points)",
                         "use a shorter --horizon")
    season = cfg.season or ss.season()
    result, rows = backtest(ss, horizon=cfg.horizon, season=season, folds=cfg.folds, step=cfg.step or cfg.horizon,
                            least=max(2, season + 1), methods=methods, level=cfg.interval or None, order=order,
                            seasonal_order=seasonal_order)
    show_rows(rows, "MASE per series")
    if not (cfg.forecast or cfg.plot):
        return result, None
    method = result.get("best_baseline", methods[0])
    level = cfg.interval or None
    jobs, forecasts = [], []
    for s in ss.series:
        fc = forecast_targets(method, s.y, cfg.horizon, season=season, level=level, order=order,
                              seasonal_order=seasonal_order)
        parts = (fc.mean,) if fc.lower is None else (fc.lower, fc.mean, fc.upper)
        jobs.append((s, len(s)))
        forecasts.append(np.stack(parts, axis=-1))  # (H, T, Q) as a network's
    quantiles = (0.5,) if forecasts[0].shape[-1] == 1 else (0.5 - level / 2, 0.5, 0.5 + level / 2)
    result["forecast_method"] = method
    if cfg.plot:
        from dltool.series.plots import plot_forecasts

        plot_forecasts(cfg.plot, ss, [(s, o, None) for s, o in jobs], forecasts, quantiles, list(ss.spec.targets),
                       history=3 * max(season, cfg.horizon))
    return result, forecast_table(ss, jobs, forecasts, quantiles)
