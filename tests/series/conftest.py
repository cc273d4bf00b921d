"""Tiny synthetic series for the series tests (and the engine's command table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def seasonal(n: int, *, period: int = 12, amplitude: float = 10.0, level: float = 50.0, trend: float = 0.0,
             noise: float = 0.0, phase: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return level + trend * t + amplitude * np.sin(2 * np.pi * t / period + phase) + noise * rng.standard_normal(n)


def write_monthly(path: Path, values, *, start: str = "2000-01-01", time: str = "month", target: str = "y") -> Path:
    import pandas as pd

    months = pd.date_range(start, periods=len(values), freq="MS").strftime("%Y-%m-%d")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time},{target}\n" + "".join(f"{m},{v!r}\n" for m, v in zip(months, map(float, values))))
    return path


def write_panel(path: Path, series: dict, *, covariates: dict | None = None) -> Path:
    """Integer steps, many series in one table: id,step,y[,covariates]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list((covariates or {}).keys())
    lines = ["id,step,y" + "".join(f",{c}" for c in names)]
    for sid, values in series.items():
        for t, v in enumerate(values):
            extra = "".join(f",{float(covariates[c][sid][t])!r}" for c in names)
            lines.append(f"{sid},{t},{float(v)!r}{extra}")
    path.write_text("\n".join(lines) + "\n")
    return path
