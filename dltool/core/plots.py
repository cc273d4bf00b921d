"""Plots for people, written atomically.

matplotlib's object API on the Agg canvas: no pyplot, so no global figure state and no backend
switch, and nothing needs a display.
"""

from __future__ import annotations

from pathlib import Path

from dltool.core.io import atomic_path


def figure(nrows: int = 1, ncols: int = 1, *, figsize=(6.4, 4.8), **subplot_kw):
    """(figure, axes) like pyplot.subplots, on a figure of its own."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplot_kw)


def save_figure(fig, path: str | Path) -> None:
    """Write the figure (format from the suffix, PNG without one); a failed write leaves no file."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")


def plot_curves(history: list[dict], path: str | Path, *, best_epoch: int | None = None,
                monitor: str | None = None) -> None:
    """Losses on the left, every other validation metric on the right, per epoch; a dashed line marks the
    epoch model.pt holds (the best by `monitor`)."""
    if not history:
        return
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_metric) = figure(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in history]
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax_loss.plot(epochs, [r[key] for r in history], marker="o", label=key)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    metric_keys = [k for k in history[0] if k.startswith("val_") and k != "val_loss"
                   and isinstance(history[0][k], (int, float))]
    for key in metric_keys:
        ax_metric.plot(epochs, [r.get(key) for r in history], marker="o", label=key)
    ax_metric.set(xlabel="epoch", ylabel="value", title="validation metrics")
    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    if best_epoch:
        saved = f"saved: epoch {best_epoch}" + (f" (best {monitor})" if monitor else "")
        for ax in (ax_loss, ax_metric) if metric_keys else (ax_loss,):
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=saved)
    ax_loss.legend()
    if metric_keys:
        ax_metric.legend()
    else:
        ax_metric.set_visible(False)  # no validation: no empty panel
    save_figure(fig, path)
