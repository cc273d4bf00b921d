"""Plots for people: cluster scatter, dendrogram, choose-k curves (dltool.core.plots: Agg, atomic)."""

from __future__ import annotations

import numpy as np

from dltool.core.plots import figure, save_figure


def project_2d(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, tuple[str, str]]:
    """The first two features, or a 2-D PCA when there are more than two (one feature: index vs value)."""
    if X.shape[1] == 1:
        return np.column_stack([np.arange(len(X)), X[:, 0]]), ("row", names[0])
    if X.shape[1] == 2:
        return X, (names[0], names[1])
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full").fit(X)
    ratio = pca.explained_variance_ratio_
    return pca.transform(X), (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})")


def scatter(X: np.ndarray, labels: np.ndarray, names: list[str], path, title: str = "") -> None:
    """Points coloured by cluster; noise (-1) as small grey crosses."""
    P, (xl, yl) = project_2d(X, names)
    fig, ax = figure()
    noise = labels < 0
    ids = np.unique(labels[~noise])
    from matplotlib import colormaps

    colors = colormaps["tab10" if len(ids) <= 10 else "tab20"]
    size = 12 if len(X) < 2000 else 3
    for i, c in enumerate(ids):
        m = labels == c
        ax.scatter(P[m, 0], P[m, 1], s=size, color=colors(i % colors.N), label=str(c), linewidths=0)
    if noise.any():
        ax.scatter(P[noise, 0], P[noise, 1], s=size, color="0.6", marker="x", label="noise", linewidths=0.8)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(title or f"{len(ids)} clusters, {len(X)} points")
    if len(ids) <= 20:
        ax.legend(loc="best", fontsize="small", markerscale=1.5, title="cluster")
    save_figure(fig, path)


def dendrogram(linkage_matrix: np.ndarray, path, *, cut: float | None = None, title: str = "") -> None:
    """scipy's dendrogram of the merge tree (last 40 merges on large trees) with the cut line."""
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    fig, ax = figure(figsize=(8, 4.8))
    n = len(linkage_matrix) + 1
    truncate = {"truncate_mode": "lastp", "p": 40} if n > 40 else {}
    scipy_dendrogram(linkage_matrix, ax=ax, no_labels=n > 40, color_threshold=cut, **truncate)
    if cut is not None:
        ax.axhline(cut, color="0.3", linestyle="--", linewidth=1)
    ax.set_ylabel("merge distance")
    ax.set_title(title or f"dendrogram of {n} points")
    save_figure(fig, path)


def choose_k(scores: list[dict], chosen: int, method: str, path) -> None:
    """Inertia (elbow) and silhouette against k, the chosen k marked on both."""
    ks = [s["k"] for s in scores]
    fig, (ax1, ax2) = figure(1, 2, figsize=(9, 4))
    for ax, key, label in ((ax1, "inertia", "inertia (within-cluster SS)"), (ax2, "silhouette", "silhouette")):
        ys = [np.nan if s[key] is None else s[key] for s in scores]
        ax.plot(ks, ys, "o-", color="C0")
        ax.axvline(chosen, color="C3", linestyle="--", linewidth=1, label=f"chosen k={chosen} ({method})")
        ax.set_xlabel("k")
        ax.set_ylabel(label)
        ax.set_xticks(ks)
        ax.legend(fontsize="small")
    save_figure(fig, path)
