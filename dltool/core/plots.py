"""Plots for people, written atomically (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from dltool.core.io import atomic_path


def figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Losses on the left, every other validation metric on the right, per epoch."""
    if not history:
        return
    fig, (ax_loss, ax_metric) = figure(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in history]
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax_loss.plot(epochs, [r[key] for r in history], marker="o", label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss")
    ax_loss.legend()
    metric_keys = [k for k in history[0] if k.startswith("val_") and k != "val_loss"
                   and isinstance(history[0][k], (int, float))]
    for key in metric_keys:
        ax_metric.plot(epochs, [r.get(key) for r in history], marker="o", label=key)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("validation metrics")
    if metric_keys:
        ax_metric.legend()
    save_figure(fig, path)
