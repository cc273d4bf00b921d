"""k-means (torch on GPU, scikit-learn on CPU) and k-medians.

`KMeans` is what `dltool cluster kmeans` runs: it picks an engine and delegates.

- `TorchKMeans`: k-means++ (greedy, as scikit-learn's) initialisation, Lloyd iterations, `n_init`
  restarts keeping the lowest inertia, chunked squared distances ||x||^2 - 2 x.c + ||c||^2, empty
  clusters moved to the points farthest from their centre, all random draws from one
  `torch.Generator` seeded with `seed`, so a CPU run is repeatable bit for bit.
- `KMedians`: L1 (cityblock) assignment, coordinate-wise median update, k-means++-style seeding with
  probabilities proportional to the L1 distance, `n_init` restarts keeping the lowest total L1 cost.

`tol` means the same thing for every engine: Lloyd stops when the squared shift of the centres,
summed, is at most `tol` times the mean per-feature variance of the data (scikit-learn's convention).
"""

from __future__ import annotations

import math

import numpy as np

from dltool.cluster._checks import check_choice, check_k, check_positive
from dltool.core.tables import check_matrix
from dltool.core.threads import single_thread_below

ENGINES = ("auto", "torch", "sklearn")

# Engine choice on CPU, measured on the 2-core dev machine (one thread each, 50 Lloyd iterations):
#   200,000 x 32, k=10: scikit-learn 0.72 s, torch float64 1.40 s, torch float32 0.88 s
#    20,000 x 32, k=10: scikit-learn 0.04 s, torch float64 0.11 s, torch float32 0.07 s
#   100,000 x 128, k=20 (20 it.): scikit-learn 1.23 s, torch float64 2.61 s, torch float32 1.15 s
# scikit-learn's Lloyd loop (Cython, cache-sized chunks, OpenMP) beats our torch loop at the same
# precision at every size; torch float32 only draws level at large k x features, where it wins by
# halving the precision, not by a better algorithm. So on CPU `--engine auto` runs scikit-learn's
# KMeans (float64); the torch path runs on CUDA/MPS (float32), and on CPU with `--engine torch`.


def _check_common(n_clusters, n_init, max_iter, tol, n_rows):
    check_k(n_clusters, n_rows)
    check_positive("--n-init", n_init, integer=True)
    check_positive("--max-iter", max_iter, integer=True)
    check_positive("--tol", tol, strict=False)


def _acc_dtype(device):
    """float64 for sums over many rows, except on MPS, which has no float64."""
    import torch

    return torch.float32 if device.type == "mps" else torch.float64


class TorchKMeans:
    """Lloyd's k-means in torch; runs on any torch device."""

    def __init__(self, n_clusters: int = 8, *, n_init: int = 10, max_iter: int = 300, tol: float = 1e-4,
                 seed: int = 0, device="cpu", dtype=None, chunk_elems: int = 1 << 22):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.chunk_elems = chunk_elems

    # -- pieces -------------------------------------------------------------------------------
    def _sq_dist_min(self, X, x_sq, C):
        """(labels, squared distance to the nearest centre), computed in row chunks."""
        import torch

        n, k = X.shape[0], C.shape[0]
        c_sq = (C * C).sum(1)
        step = max(1, self.chunk_elems // max(k, 1))
        labels = torch.empty(n, dtype=torch.long, device=X.device)
        mind = torch.empty(n, dtype=X.dtype, device=X.device)
        for s in range(0, n, step):
            d = torch.addmm(c_sq[None, :], X[s:s + step], C.T, alpha=-2.0)
            d += x_sq[s:s + step, None]
            m, lab = d.min(1)
            labels[s:s + step] = lab
            mind[s:s + step] = m.clamp_min_(0)
        return labels, mind

    def _sq_dist_to(self, X, x_sq, points):
        """Squared distances (len(points) x n) from a few points to every row."""
        import torch

        p_sq = (points * points).sum(1)
        d = torch.addmm(x_sq[None, :], points, X.T, alpha=-2.0)
        d += p_sq[:, None]
        return d.clamp_min_(0)

    def _draw(self, weights, count, gen):
        """`count` row indices drawn with probability proportional to `weights` (cumsum + search)."""
        import torch

        cum = torch.cumsum(weights.to(_acc_dtype(weights.device)), 0)
        r = torch.rand(count, generator=gen, dtype=torch.float64).to(weights.device, cum.dtype) * cum[-1]
        return torch.searchsorted(cum, r).clamp_(max=weights.shape[0] - 1)

    def _init_pp(self, X, x_sq, gen):
        """Greedy k-means++: each new centre is the best of 2 + log(k) candidates drawn ~ D(x)^2."""
        import torch

        n, k = X.shape[0], self.n_clusters
        trials = 2 + int(math.log(k))
        first = int(torch.randint(n, (1,), generator=gen))
        centers = [X[first]]
        closest = self._sq_dist_to(X, x_sq, X[first:first + 1])[0]
        pot = closest.sum()
        for _ in range(1, k):
            if float(pot) <= 0:  # fewer distinct points than k: take any remaining rows
                cand = torch.randint(n, (trials,), generator=gen).to(X.device)
            else:
                cand = self._draw(closest, trials, gen)
            d = torch.minimum(closest[None, :], self._sq_dist_to(X, x_sq, X[cand]))
            pots = d.sum(1)
            best = int(torch.argmin(pots))
            centers.append(X[cand[best]])
            closest, pot = d[best], pots[best]
        return torch.stack(centers)

    def _lloyd(self, X, x_sq, centers, tol_abs):
        import torch

        k, d = centers.shape
        labels, mind = self._sq_dist_min(X, x_sq, centers)
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            sums = torch.zeros((k, d), dtype=X.dtype, device=X.device).index_add_(0, labels, X)
            counts = torch.bincount(labels, minlength=k)
            empty = (counts == 0).nonzero().flatten()
            new = sums / counts.clamp_min(1)[:, None].to(X.dtype)
            if len(empty):  # relocate empty clusters to the farthest points (scikit-learn does the same)
                far = torch.topk(mind, len(empty)).indices
                new[empty] = X[far]
            shift = float(((new - centers) ** 2).sum())
            centers = new
            new_labels, mind = self._sq_dist_min(X, x_sq, centers)
            if torch.equal(new_labels, labels):
                break
            labels = new_labels
            if shift <= tol_abs:
                break
        return centers, labels, float(mind.to(_acc_dtype(X.device)).sum()), n_iter

    # -- estimator API ------------------------------------------------------------------------
    def fit(self, X, y=None):
        import torch

        Xn = check_matrix(X, min_rows=1)
        _check_common(self.n_clusters, self.n_init, self.max_iter, self.tol, len(Xn))
        device = torch.device(self.device)
        dtype = self.dtype or (torch.float64 if device.type == "cpu" else torch.float32)
        Xt = torch.as_tensor(Xn, dtype=dtype, device=device)
        # centring does not change the clustering and keeps ||x||^2 - 2x.c + ||c||^2 accurate
        mean = Xt.mean(0)
        Xt = Xt - mean
        x_sq = (Xt * Xt).sum(1)
        tol_abs = float(self.tol * Xt.var(0, unbiased=False).mean())
        gen = torch.Generator().manual_seed(int(self.seed))
        best = None
        with torch.inference_mode(), single_thread_below(device, Xt.shape[0] * Xt.shape[1] * self.n_clusters):
            for _ in range(self.n_init):
                centers = self._init_pp(Xt, x_sq, gen)
                centers, labels, inertia, n_iter = self._lloyd(Xt, x_sq, centers, tol_abs)
                if best is None or inertia < best[2]:
                    best = (centers, labels, inertia, n_iter)
        centers, labels, inertia, n_iter = best
        self.cluster_centers_ = (centers + mean).cpu().double().numpy()
        self.labels_ = labels.cpu().numpy().astype(np.int64)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    def predict(self, X):
        import torch

        Xn = check_matrix(X, min_rows=1)
        device = torch.device(self.device)
        dtype = self.dtype or (torch.float64 if device.type == "cpu" else torch.float32)
        with torch.inference_mode():
            C = torch.as_tensor(self.cluster_centers_, dtype=dtype, device=device)
            Xt = torch.as_tensor(Xn, dtype=dtype, device=device)
            labels, _ = self._sq_dist_min(Xt, (Xt * Xt).sum(1), C)
        return labels.cpu().numpy().astype(np.int64)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


class KMeans:
    """k-means with k-means++ init; `engine` auto|torch|sklearn, `device` a torch device name.

    auto: torch on CUDA/MPS, scikit-learn's KMeans on CPU (faster there; see the measurements above).
    """

    def __init__(self, n_clusters: int = 8, *, n_init: int = 10, max_iter: int = 300, tol: float = 1e-4,
                 engine: str = "auto", device: str = "cpu", seed: int = 0):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.engine = engine
        self.device = device
        self.seed = seed

    def _pick_engine(self) -> str:
        check_choice("--engine", self.engine, ENGINES)
        on_cpu = str(self.device).split(":")[0] == "cpu"
        if self.engine == "sklearn" and not on_cpu:
            from dltool.core.errors import OptionError

            raise OptionError(f"--engine sklearn runs on CPU only, but --device is {self.device}",
                              "use --engine torch (or auto) on a GPU, or --device cpu")
        if self.engine != "auto":
            return self.engine
        return "sklearn" if on_cpu else "torch"

    def fit(self, X, y=None):
        Xn = check_matrix(X, min_rows=1)
        _check_common(self.n_clusters, self.n_init, self.max_iter, self.tol, len(Xn))
        self.engine_ = self._pick_engine()
        if self.engine_ == "sklearn":
            from sklearn.cluster import KMeans as SkKMeans

            est = SkKMeans(n_clusters=self.n_clusters, init="k-means++", n_init=self.n_init,
                           max_iter=self.max_iter, tol=self.tol, random_state=self.seed, algorithm="lloyd")
        else:
            est = TorchKMeans(self.n_clusters, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                              seed=self.seed, device=self.device)
        est.fit(Xn)
        self.estimator_ = est
        self.cluster_centers_ = np.asarray(est.cluster_centers_, dtype=np.float64)
        self.labels_ = np.asarray(est.labels_, dtype=np.int64)
        self.inertia_ = float(est.inertia_)
        self.n_iter_ = int(est.n_iter_)
        return self

    def predict(self, X):
        return np.asarray(self.estimator_.predict(check_matrix(X, min_rows=1)), dtype=np.int64)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_


class KMedians:
    """k-medians: minimises the sum of L1 distances to the coordinate-wise median of each cluster."""

    def __init__(self, n_clusters: int = 8, *, n_init: int = 10, max_iter: int = 300, tol: float = 1e-4,
                 seed: int = 0, chunk_elems: int = 1 << 22):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.chunk_elems = chunk_elems

    def _l1_min(self, X, C):
        from scipy.spatial.distance import cdist

        n, k = len(X), len(C)
        step = max(1, self.chunk_elems // max(k, 1))
        labels = np.empty(n, dtype=np.int64)
        mind = np.empty(n)
        for s in range(0, n, step):
            d = cdist(X[s:s + step], C, "cityblock")
            labels[s:s + step] = d.argmin(1)
            mind[s:s + step] = d[np.arange(len(d)), labels[s:s + step]]
        return labels, mind

    def _init(self, X, rng):
        from scipy.spatial.distance import cdist

        n, k = len(X), self.n_clusters
        trials = 2 + int(math.log(k))
        first = int(rng.integers(n))
        centers = [X[first]]
        closest = cdist(X[first:first + 1], X, "cityblock")[0]
        for _ in range(1, k):
            total = closest.sum()
            if total <= 0:
                cand = rng.integers(n, size=trials)
            else:
                cum = np.cumsum(closest)
                cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
            d = np.minimum(closest[None, :], cdist(X[cand], X, "cityblock"))
            best = int(d.sum(1).argmin())
            centers.append(X[cand[best]])
            closest = d[best]
        return np.array(centers)

    def _run(self, X, centers, tol_abs):
        k = len(centers)
        labels, mind = self._l1_min(X, centers)
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            new = centers.copy()
            order = np.argsort(labels, kind="stable")
            bounds = np.searchsorted(labels[order], np.arange(k + 1))
            empty = []
            for j in range(k):
                members = order[bounds[j]:bounds[j + 1]]
                if len(members):
                    new[j] = np.median(X[members], axis=0)
                else:
                    empty.append(j)
            if empty:  # move empty clusters to the points farthest from their centre
                far = np.argsort(-mind, kind="stable")[:len(empty)]
                new[empty] = X[far]
            shift = float(np.abs(new - centers).sum(1).max())
            centers = new
            new_labels, mind = self._l1_min(X, centers)
            done = np.array_equal(new_labels, labels) or shift <= tol_abs
            labels = new_labels
            if done:
                break
        return centers, labels, float(mind.sum()), n_iter

    def fit(self, X, y=None):
        X = check_matrix(X, min_rows=1)
        _check_common(self.n_clusters, self.n_init, self.max_iter, self.tol, len(X))
        rng = np.random.default_rng(self.seed)
        # stop when no centre moves more than tol x (mean per-feature mean absolute deviation) in L1
        tol_abs = self.tol * float(np.abs(X - np.median(X, axis=0)).mean()) * X.shape[1]
        best = None
        for _ in range(self.n_init):
            run = self._run(X, self._init(X, rng), tol_abs)
            if best is None or run[2] < best[2]:
                best = run
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def predict(self, X):
        return self._l1_min(check_matrix(X, min_rows=1), self.cluster_centers_)[0]

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_
