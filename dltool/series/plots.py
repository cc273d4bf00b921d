"""`predict --plot`: history, forecast and interval of each series (one panel each, a grid beyond one)."""

from __future__ import annotations

import math

MAX_PANELS = 16


def plot_forecasts(path, ss, jobs, forecasts, quantiles, targets, history: int) -> None:
    import pandas as pd

    from dltool.core.console import warn
    from dltool.core.plots import figure, save_figure

    panels = [(s, o, f, j) for (s, o, _), f in zip(jobs, forecasts) for j in range(len(targets))]
    if len(panels) > MAX_PANELS:
        warn(f"--plot: {len(panels)} series; the picture shows the first {MAX_PANELS}")
        panels = panels[:MAX_PANELS]
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig, axes = figure(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, (s, o, f, j) in zip(axes.ravel(), panels):
        start = max(0, o - history)
        past_t = s.time[start:o]
        future_t = ss.future_times(s, o - 1, f.shape[0])
        if ss.dates:
            past_t, future_t = pd.DatetimeIndex(past_t), pd.DatetimeIndex(future_t)
        ax.plot(past_t, s.y[start:o, j], color="0.3", lw=1, label="history")
        mid = f[:, j, f.shape[-1] // 2]
        ax.plot(future_t, mid, color="C1", lw=1.5, label="forecast")
        if len(quantiles) > 1:
            ax.fill_between(future_t, f[:, j, 0], f[:, j, -1], color="C1", alpha=0.25,
                            label=f"{quantiles[0]:g}-{quantiles[-1]:g}")
        known = s.y[o:o + f.shape[0], j]
        if len(known):
            ax.plot(future_t[:len(known)], known, color="0.3", lw=1, ls=":", label="actual")
        ax.set_title(" ".join(p for p in (s.id, targets[j] if len(targets) > 1 else "") if p) or targets[j],
                     fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    fig.autofmt_xdate()
    save_figure(fig, path)
