"""Embeddings without a transform for new rows: metric MDS and t-SNE.

Both place the given rows only; there is no mapping to apply to other rows later, so they
cannot be saved with --save-model (fit pca, kpca or ica for that, or embed all rows together).
"""

from __future__ import annotations

import numpy as np

from dltool.core.tables import check_matrix
from dltool.reduce.base import Reducer, check_components, register_reducer


@register_reducer("mds", prefix="mds", transformable=False)
class MDS(Reducer):
    """Metric multidimensional scaling (scikit-learn's SMACOF, started from classical MDS).
    Parameters: n_components, max_iter, seed. Fitted: stress_, n_iter_."""

    def __init__(self, n_components: int = 2, *, max_iter: int = 300, seed: int = 0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.seed = seed

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.manifold import MDS as SkMDS

        n, p = X.shape
        check_matrix(X, min_rows=2, what="mds")
        check_components("mds", int(self.n_components), n, p)
        sk = SkMDS(n_components=int(self.n_components), metric_mds=True, init="classical_mds",
                   max_iter=self.max_iter, random_state=self.seed, normalized_stress="auto")
        Y = sk.fit_transform(X)
        self.stress_ = float(sk.stress_)
        self.n_iter_ = int(sk.n_iter_)
        self.n_components_ = int(self.n_components)
        return Y

    def report(self) -> dict:
        return {"n_components": self.n_components_, "stress": self.stress_, "n_iter": self.n_iter_}


@register_reducer("tsne", prefix="tsne", transformable=False)
class TSNE(Reducer):
    """t-SNE via dltool.reduce.tsne.tsne_embed. Parameters: n_components (1-3), perplexity,
    init (pca|random), max_iter, seed."""

    def __init__(self, n_components: int = 2, *, perplexity: float = 30.0, init: str = "pca",
                 max_iter: int = 1000, seed: int = 0):
        self.n_components = n_components
        self.perplexity = perplexity
        self.init = init
        self.max_iter = max_iter
        self.seed = seed

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from dltool.reduce.tsne import check_tsne_params, tsne_embed

        n, p = X.shape
        check_matrix(X, min_rows=4, what="tsne")
        check_tsne_params(n, int(self.n_components), self.perplexity, self.init)
        check_components("tsne", int(self.n_components), n, p)
        Y = tsne_embed(X, n_components=int(self.n_components), perplexity=self.perplexity, init=self.init,
                       seed=self.seed, max_iter=self.max_iter)
        self.n_components_ = int(self.n_components)
        return Y

    def report(self) -> dict:
        return {"n_components": self.n_components_, "perplexity": self.perplexity, "init": self.init}
