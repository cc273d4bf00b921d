"""The clustering methods, registered by name so `dltool cluster <name>` resolves without if-chains.

Every entry is an estimator class in scikit-learn's shape: parameters in `__init__` (named as the
command's options), checks in `fit`, fitted attributes ending in `_`; after `fit(X)` it has
`labels_` (int, -1 = noise) and, when it makes soft assignments, `predict_proba(X)` (rows sum to 1).

A class may declare `option_rules` (dltool.core.applies): options that only some of its settings take,
refused when the user sets them for another, before any data is read.

Entry metadata: `random` (it draws random numbers, so it takes `seed` and its command has --seed),
`gpu` (it has a torch path and takes the resolved `device`; otherwise the command says once that it
runs on CPU). Adding a method is one more `@METHODS.register(name, random=..., gpu=...)` class.
"""

from __future__ import annotations

import numpy as np

from dltool.cluster import kmeans
from dltool.cluster._checks import check_choice, check_k, check_positive
from dltool.core.applies import Applies
from dltool.core.errors import InputError, OptionError
from dltool.core.registry import Registry
from dltool.core.tables import check_matrix

METHODS = Registry("clustering method")
METHODS.register("kmeans", random=True, gpu=True)(kmeans.KMeans)
METHODS.register("kmedians", random=True, gpu=False)(kmeans.KMedians)

COVARIANCES = ("full", "diag", "tied", "spherical")
LINKAGES = ("single", "complete", "average", "ward")
AFFINITIES = ("nearest_neighbors", "rbf")


# -- estimators wrapping scikit-learn: they add checks a command-line user can act on ------------------

@METHODS.register("meanshift", random=True, gpu=False)
class MeanShift:
    """Mean shift; `bandwidth=None` estimates it with sklearn's estimate_bandwidth(quantile)."""

    #: --quantile estimates the bandwidth: with --bandwidth given it would do nothing
    option_rules = (Applies("bandwidth", {None: ("quantile",)}, otherwise=()),)

    def __init__(self, bandwidth: float | None = None, *, quantile: float = 0.3, bin_seeding: bool = False,
                 max_iter: int = 300, seed: int = 0):
        self.bandwidth = bandwidth
        self.quantile = quantile
        self.bin_seeding = bin_seeding
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X, y=None):
        from sklearn.cluster import MeanShift as SkMeanShift
        from sklearn.cluster import estimate_bandwidth

        X = check_matrix(X, min_rows=2, what="clustering")
        check_positive("--bandwidth", self.bandwidth)
        check_positive("--max-iter", self.max_iter, integer=True)
        if not 0 < self.quantile <= 1:
            raise OptionError(f"--quantile {self.quantile} must be in (0, 1]", "use e.g. --quantile 0.3")
        bandwidth = self.bandwidth
        if bandwidth is None:
            # estimate_bandwidth is O(n^2): estimate it on a seeded sample of at most 2,000 rows
            bandwidth = float(estimate_bandwidth(X, quantile=self.quantile, n_samples=min(len(X), 2000),
                                                 random_state=self.seed))
            if not bandwidth > 0:
                raise InputError("cannot estimate a bandwidth: the rows are (nearly) all identical",
                                 "give --bandwidth explicitly")
        self.bandwidth_ = bandwidth
        est = SkMeanShift(bandwidth=bandwidth, bin_seeding=self.bin_seeding, max_iter=self.max_iter)
        est.fit(X)
        self.cluster_centers_ = est.cluster_centers_
        self.labels_ = est.labels_.astype(np.int64)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


@METHODS.register("dbscan", random=False, gpu=False)
class DBSCAN:
    """Density-based clustering; points in no dense region are noise (-1)."""

    def __init__(self, eps: float = 0.5, *, min_samples: int = 5):
        self.eps = eps
        self.min_samples = min_samples

    def fit(self, X, y=None):
        from sklearn.cluster import DBSCAN as SkDBSCAN

        X = check_matrix(X, min_rows=2, what="clustering")
        check_positive("--eps", self.eps)
        check_positive("--min-samples", self.min_samples, integer=True)
        est = SkDBSCAN(eps=self.eps, min_samples=self.min_samples).fit(X)
        self.core_sample_indices_ = est.core_sample_indices_
        self.labels_ = est.labels_.astype(np.int64)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


@METHODS.register("hdbscan", random=False, gpu=False)
class HDBSCAN:
    """Hierarchical DBSCAN (sklearn.cluster.HDBSCAN): no eps to tune; noise is -1."""

    def __init__(self, min_cluster_size: int = 5, *, min_samples: int | None = None,
                 cluster_selection_epsilon: float = 0.0):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_epsilon = cluster_selection_epsilon

    def fit(self, X, y=None):
        from sklearn.cluster import HDBSCAN as SkHDBSCAN

        X = check_matrix(X, min_rows=2, what="clustering")
        n = len(X)
        check_positive("--min-cluster-size", self.min_cluster_size, integer=True)
        if self.min_cluster_size < 2:
            raise OptionError(f"--min-cluster-size {self.min_cluster_size} is too small",
                              "use --min-cluster-size >= 2")
        check_k(self.min_cluster_size, n, flag="--min-cluster-size", minimum=2)
        check_positive("--min-samples", self.min_samples, integer=True)
        if self.min_samples is not None:
            check_k(self.min_samples, n, flag="--min-samples")
        check_positive("--cluster-selection-epsilon", self.cluster_selection_epsilon, strict=False)
        est = SkHDBSCAN(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples,
                        cluster_selection_epsilon=float(self.cluster_selection_epsilon), copy=True).fit(X)
        self.probabilities_ = est.probabilities_
        self.labels_ = est.labels_.astype(np.int64)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


@METHODS.register("gmm", random=True, gpu=False)
class GaussianMixture:
    """EM for a mixture of k Gaussians: soft assignments (predict_proba) and hard ones (labels_)."""

    def __init__(self, n_clusters: int = 8, *, covariance: str = "full", n_init: int = 1,
                 max_iter: int = 100, tol: float = 1e-3, reg_covar: float = 1e-6, seed: int = 0):
        self.n_clusters = n_clusters
        self.covariance = covariance
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.seed = seed

    def fit(self, X, y=None):
        from sklearn.mixture import GaussianMixture as SkGMM

        X = check_matrix(X, min_rows=2, what="clustering")
        check_k(self.n_clusters, len(X))
        check_choice("--covariance", self.covariance, COVARIANCES)
        check_positive("--n-init", self.n_init, integer=True)
        check_positive("--max-iter", self.max_iter, integer=True)
        check_positive("--tol", self.tol, strict=False)
        check_positive("--reg-covar", self.reg_covar, strict=False)
        est = SkGMM(n_components=self.n_clusters, covariance_type=self.covariance, n_init=self.n_init,
                    max_iter=self.max_iter, tol=self.tol, reg_covar=self.reg_covar, random_state=self.seed)
        try:
            est.fit(X)
        except ValueError as e:  # ill-defined covariance: sklearn's message says to raise reg_covar
            raise InputError(f"gmm: {e}".split("\n")[0][:200],
                             "pass --standardize, a larger --reg-covar, or a smaller -k") from None
        self.estimator_ = est
        self.means_ = est.means_
        self.weights_ = est.weights_
        self.converged_ = est.converged_
        self.n_iter_ = est.n_iter_
        self.lower_bound_ = est.lower_bound_
        self.labels_ = est.predict(X).astype(np.int64)
        return self

    def predict_proba(self, X):
        return self.estimator_.predict_proba(check_matrix(X, min_rows=1))

    def predict(self, X):
        return self.estimator_.predict(check_matrix(X, min_rows=1)).astype(np.int64)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


@METHODS.register("agglomerative", random=False, gpu=False)
class Agglomerative:
    """Bottom-up merging with single/complete/average/ward linkage, cut at k clusters or a distance.

    `linkage_matrix_` is the full merge tree in scipy's format (for the dendrogram).
    """

    def __init__(self, n_clusters: int | None = None, *, distance: float | None = None, linkage: str = "ward"):
        self.n_clusters = n_clusters
        self.distance = distance
        self.linkage = linkage

    def fit(self, X, y=None):
        from sklearn.cluster import AgglomerativeClustering

        X = check_matrix(X, min_rows=2, what="clustering")
        check_choice("--linkage", self.linkage, LINKAGES)
        if (self.n_clusters is None) == (self.distance is None):
            which = "both" if self.n_clusters is not None else "neither"
            raise OptionError(f"agglomerative needs exactly one place to cut the tree, got {which} of -k and --distance",
                              "give -k N (number of clusters) or --distance D (merge height)")
        if self.n_clusters is not None:
            check_k(self.n_clusters, len(X))
        check_positive("--distance", self.distance, strict=False)
        est = AgglomerativeClustering(n_clusters=self.n_clusters, distance_threshold=self.distance,
                                      linkage=self.linkage, compute_full_tree=True, compute_distances=True)
        est.fit(X)
        self.labels_ = est.labels_.astype(np.int64)
        self.n_clusters_ = int(est.n_clusters_)
        self.children_ = est.children_
        self.distances_ = est.distances_
        self.linkage_matrix_ = _linkage_matrix(est.children_, est.distances_, len(X))
        return self

    def cut_height(self) -> float:
        """A merge height between the last merge kept and the first merge undone."""
        if self.distance is not None:
            return float(self.distance)
        d = np.sort(self.distances_)
        k = self.n_clusters_
        if k <= 1:
            return float(d[-1]) * 1.02
        return float((d[-k] + d[-k + 1]) / 2) if k < len(d) + 1 else 0.0

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


def _linkage_matrix(children, distances, n):
    """sklearn's children_/distances_ as scipy's linkage matrix [a, b, height, size]."""
    counts = np.zeros(len(children))
    for i, (a, b) in enumerate(children):
        counts[i] = (1 if a < n else counts[a - n]) + (1 if b < n else counts[b - n])
    return np.column_stack([children, distances, counts]).astype(float)


@METHODS.register("spectral", random=True, gpu=False)
class Spectral:
    """Spectral clustering on a k-nearest-neighbour (default) or RBF affinity graph."""

    #: the similarity graph's option: --n-neighbors for nearest_neighbors, --gamma for rbf
    option_rules = (Applies("affinity", {"nearest_neighbors": ("n_neighbors",), "rbf": ("gamma",)}),)

    def __init__(self, n_clusters: int = 8, *, affinity: str = "nearest_neighbors", n_neighbors: int = 10,
                 gamma: float = 1.0, n_init: int = 10, seed: int = 0):
        self.n_clusters = n_clusters
        self.affinity = affinity
        self.n_neighbors = n_neighbors
        self.gamma = gamma
        self.n_init = n_init
        self.seed = seed

    def fit(self, X, y=None):
        from sklearn.cluster import SpectralClustering

        X = check_matrix(X, min_rows=2, what="clustering")
        n = len(X)
        check_k(self.n_clusters, n)
        check_choice("--affinity", self.affinity, AFFINITIES)
        check_positive("--n-neighbors", self.n_neighbors, integer=True)
        if self.affinity == "nearest_neighbors" and self.n_neighbors >= n:
            raise OptionError(f"--n-neighbors {self.n_neighbors} is not fewer than the {n} rows",
                              f"use --n-neighbors <= {n - 1}")
        check_positive("--gamma", self.gamma)
        check_positive("--n-init", self.n_init, integer=True)
        est = SpectralClustering(n_clusters=self.n_clusters, affinity=self.affinity, n_neighbors=self.n_neighbors,
                                 gamma=self.gamma, n_init=self.n_init, random_state=self.seed,
                                 assign_labels="kmeans")
        est.fit(X)
        self.labels_ = est.labels_.astype(np.int64)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


@METHODS.register("graph", random=False, gpu=False)
class RadiusGraph:
    """Graph clustering: link rows closer than `radius`, clusters are the connected components.

    Components with fewer than `min_size` rows are labelled noise (-1).
    """

    def __init__(self, radius: float = 1.0, *, min_size: int = 1):
        self.radius = radius
        self.min_size = min_size

    def fit(self, X, y=None):
        from scipy.sparse.csgraph import connected_components
        from sklearn.neighbors import radius_neighbors_graph

        X = check_matrix(X, min_rows=2, what="clustering")
        check_positive("--radius", self.radius)
        check_positive("--min-size", self.min_size, integer=True)
        graph = radius_neighbors_graph(X, radius=self.radius, mode="connectivity", include_self=False)
        n_comp, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp, minlength=n_comp)
        keep = sizes >= self.min_size
        new_id = np.full(n_comp, -1, dtype=np.int64)
        new_id[keep] = np.arange(int(keep.sum()))
        self.n_components_ = int(n_comp)
        self.n_edges_ = int(graph.nnz // 2)
        self.labels_ = new_id[comp]
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_
