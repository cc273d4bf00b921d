"""Forecast accuracy: MAE, RMSE, sMAPE, MASE (Hyndman & Koehler 2006: the error scaled by the in-sample
seasonal-naive error), the pinball loss of quantiles and the coverage of an interval."""

from __future__ import annotations

import numpy as np

POINT_METRICS = ("mae", "rmse", "smape", "mase")


def naive_scale(history: np.ndarray, season: int) -> np.ndarray:
    """Per target: the mean absolute error of the in-sample seasonal naive forecast (lag `season`, or lag 1
    where the history is too short); nan where it is zero (a constant history scales nothing)."""
    history = np.asarray(history, dtype=np.float64)
    m = season if len(history) > season else 1
    scale = np.abs(history[m:] - history[:-m]).mean(axis=0) if len(history) > m else np.full(history.shape[1:], np.nan)
    tiny = 1e-9 * (np.abs(history).mean(axis=0) + 1)  # rounding noise of an exactly periodic history
    return np.where(scale > tiny, scale, np.nan)


def point_metrics(truth: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> dict:
    """(H, T) arrays and the (T,) MASE scale -> each metric averaged over targets."""
    err = forecast - truth
    denom = np.abs(truth) + np.abs(forecast)
    smape = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    mae_t = np.abs(err).mean(axis=0)
    return {"mae": float(mae_t.mean()), "rmse": float(np.sqrt((err ** 2).mean(axis=0)).mean()),
            "smape": float(100 * smape.mean()), "mase": float(np.nanmean(mae_t / scale)) if np.isfinite(scale).any()
            else float("nan")}


def interval_metrics(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict:
    """Share of the true values inside [lower, upper]."""
    return {"coverage": float(((truth >= lower) & (truth <= upper)).mean())}


def pinball(truth: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """Mean pinball (quantile) loss over the quantiles given ({q: forecast of shape truth's})."""
    losses = [np.maximum(q * (truth - f), (q - 1) * (truth - f)).mean() for q, f in quantiles.items()]
    return float(np.mean(losses))


def mean_metrics(rows: list[dict]) -> dict:
    """The mean of each metric over series and folds (nan ones, a constant series' MASE, left out)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = {}
    for k in keys:
        values = [r[k] for r in rows if k in r and r[k] is not None and np.isfinite(r[k])]
        out[k] = float(np.mean(values)) if values else None
    return out
