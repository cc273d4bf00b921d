"""Plots for people: a 2-D scatter of an embedding and PCA's explained variance (dltool.core.plots)."""

from __future__ import annotations

import numpy as np

from dltool.core.plots import figure, save_figure

MAX_LEGEND = 20


def scatter(path, Y: np.ndarray, names: list[str], color: np.ndarray | None = None,
            color_name: str | None = None, title: str = "") -> None:
    """First two columns of Y (or column 1 against the row number), coloured by `color`."""
    fig, ax = figure(figsize=(6.4, 5.6))
    if Y.shape[1] >= 2:
        x, y, xlabel, ylabel = Y[:, 0], Y[:, 1], names[0], names[1]
    else:
        x, y, xlabel, ylabel = Y[:, 0], np.arange(len(Y)), names[0], "row"
    size = max(2.0, min(30.0, 3000.0 / max(len(Y), 1)))
    if color is None:
        ax.scatter(x, y, s=size, alpha=0.8, linewidths=0)
    else:
        values = np.asarray(color)
        numeric = values.dtype.kind in "fiub"
        uniq = np.unique(values.astype(str)) if not numeric else np.unique(values)
        if not numeric or len(uniq) <= MAX_LEGEND:
            from matplotlib import colormaps

            cmap = colormaps["tab10" if len(uniq) <= 10 else "tab20"]
            keys = values.astype(str) if not numeric else values
            for i, u in enumerate(uniq):
                m = keys == u
                label = str(int(u)) if numeric and float(u).is_integer() else str(u)
                ax.scatter(x[m], y[m], s=size, alpha=0.8, linewidths=0, color=cmap(i % cmap.N), label=label)
            if len(uniq) <= MAX_LEGEND:
                ax.legend(title=color_name, fontsize="small", markerscale=max(1.0, 8.0 / size ** 0.5),
                          loc="best", frameon=False)
        else:
            sc = ax.scatter(x, y, s=size, c=values.astype(float), cmap="viridis", alpha=0.8, linewidths=0)
            fig.colorbar(sc, ax=ax, label=color_name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    save_figure(fig, path)


def variance(path, ratio: np.ndarray, kept: int, title: str = "PCA explained variance") -> None:
    """Bars: explained-variance ratio per component; line: cumulative share; dashed: the kept k."""
    ratio = np.asarray(ratio, dtype=float)
    k = np.arange(1, len(ratio) + 1)
    fig, ax = figure(figsize=(7.0, 4.2))
    ax.bar(k, ratio, color="#4c72b0", label="per component")
    ax.plot(k, np.cumsum(ratio), color="#dd8452", marker="o", markersize=3, label="cumulative")
    ax.axvline(kept + 0.5, color="grey", linestyle="--", linewidth=1, label=f"kept k={kept}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("component")
    ax.set_ylabel("share of variance")
    ax.set_title(title)
    ax.legend(loc="center right", frameon=False)
    save_figure(fig, path)
