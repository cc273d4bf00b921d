"""PCA with explained variance and choosing k by the lost share E(k).

On CPU the fit is scikit-learn's exact PCA (`svd_solver="full"`); on CUDA it is an exact SVD of the
centred data with `torch.linalg.svd` in float64 (not the randomised `torch.pca_lowrank`), with the
same sign convention as scikit-learn (`svd_flip(u_based_decision=False)`: the largest-magnitude
entry of each component is positive), so both paths give the same numbers.

E(k) is the share of the total variance lost by keeping k components: 1 - sum_{i<=k} ratio_i.
"""

from __future__ import annotations

import numpy as np

from dltool.core.errors import OptionError
from dltool.core.tables import check_matrix
from dltool.reduce.base import (
    Reducer,
    check_components,
    register_reducer,
    to_numpy,
    to_tensors,
)


def components_for_variance(ratio: np.ndarray, variance: float) -> int:
    """Smallest k whose kept share reaches `variance` (scikit-learn's rule for 0 < variance < 1).

    scikit-learn keeps the k whose cumulative ratio is strictly above the threshold
    (`searchsorted(cumsum, v, side="right") + 1`); for `variance == 1` every component up to the
    numerical rank is kept.
    """
    if not 0.0 < variance <= 1.0:
        raise OptionError(f"--variance {variance} is outside (0, 1]",
                          "give the share of variance to keep, e.g. --variance 0.95")
    cum = np.cumsum(ratio)
    if variance >= 1.0:
        k = int(np.searchsorted(cum, 1.0 - 1e-10, side="left")) + 1
    else:
        k = int(np.searchsorted(cum, variance, side="right")) + 1
    return max(1, min(k, len(ratio)))


def _svd_flip_rows(Vt):
    """scikit-learn's svd_flip(u_based_decision=False) on the rows of Vt (numpy or torch)."""
    idx = abs(Vt).argmax(axis=1) if isinstance(Vt, np.ndarray) else Vt.abs().argmax(dim=1)
    rows = np.arange(Vt.shape[0]) if isinstance(Vt, np.ndarray) else idx.new_tensor(range(Vt.shape[0]))
    signs = Vt[rows, idx]
    signs = np.sign(signs) if isinstance(Vt, np.ndarray) else signs.sign()
    signs[signs == 0] = 1
    return Vt * signs[:, None]


def _torch_full_svd(X: np.ndarray, device: str):
    """(mean, singular values, Vt) of an exact float64 SVD of the centred data on `device`."""
    import torch

    Xt = torch.as_tensor(X, dtype=torch.float64, device=device)
    mean = Xt.mean(dim=0)
    _, S, Vt = torch.linalg.svd(Xt - mean, full_matrices=False)
    return to_numpy(mean), to_numpy(S), to_numpy(_svd_flip_rows(Vt))


@register_reducer("pca", prefix="pc", transformable=True)
class PCA(Reducer):
    """Principal component analysis: exact SVD of the centred data.

    Parameters: `n_components` (int) or `variance` (share in (0, 1] to keep; then k is chosen by
    E(k)); `device` ("cpu": scikit-learn; "cuda[:N]": torch.linalg.svd on the GPU).
    Fitted: `mean_`, `components_` (k x features), `explained_variance_`,
    `explained_variance_ratio_` (of the kept components), `all_explained_variance_ratio_`
    (every component, for the report), `n_components_`.
    """

    devices = ("cpu", "cuda")

    def __init__(self, n_components: int | None = 2, *, variance: float | None = None, device: str = "cpu",
                 seed: int = 0):
        self.n_components = n_components
        self.variance = variance
        self.device = device
        self.seed = seed

    def _full_fit(self, X: np.ndarray):
        if str(self.device).startswith("cuda"):
            return _torch_full_svd(X, self.device)
        from sklearn.decomposition import PCA as SkPCA

        sk = SkPCA(n_components=None, svd_solver="full", random_state=self.seed).fit(X)
        return sk.mean_, sk.singular_values_, sk.components_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        n, p = X.shape
        check_matrix(X, min_rows=2, what="pca")
        if self.variance is not None and not 0.0 < self.variance <= 1.0:
            components_for_variance(np.ones(1), self.variance)  # raises the clear message
        if self.variance is None:
            check_components("pca", int(self.n_components), n, p)
        mean, S, Vt = self._full_fit(X)
        var = S**2 / (n - 1)
        total = var.sum()
        ratio = var / total if total > 0 else np.zeros_like(var)
        k = components_for_variance(ratio, self.variance) if self.variance is not None else int(self.n_components)
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.components_ = np.asarray(Vt[:k], dtype=np.float64)
        self.singular_values_ = np.asarray(S[:k], dtype=np.float64)
        self.explained_variance_ = np.asarray(var[:k], dtype=np.float64)
        self.explained_variance_ratio_ = np.asarray(ratio[:k], dtype=np.float64)
        self.all_explained_variance_ = np.asarray(var, dtype=np.float64)
        self.all_explained_variance_ratio_ = np.asarray(ratio, dtype=np.float64)
        self.n_components_ = k
        self.n_samples_ = n
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if str(self.device).startswith("cuda"):
            import torch

            Xt = torch.as_tensor(X, dtype=torch.float64, device=self.device)
            mean = torch.as_tensor(self.mean_, device=self.device)
            comps = torch.as_tensor(self.components_, device=self.device)
            return to_numpy((Xt - mean) @ comps.T)
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    def lost_share(self) -> np.ndarray:
        """E(k) for k = 1..all components: the share of variance lost by keeping k."""
        return np.clip(1.0 - np.cumsum(self.all_explained_variance_ratio_), 0.0, 1.0)

    def report(self) -> dict:
        ratio = self.all_explained_variance_ratio_
        lost = self.lost_share()
        k = self.n_components_
        return {
            "n_components": k,
            "variance_kept": float(np.sum(ratio[:k])),
            "variance_lost": float(lost[k - 1]),
            "explained_variance": self.all_explained_variance_.tolist(),
            "explained_variance_ratio": ratio.tolist(),
            "cumulative_ratio": np.cumsum(ratio).tolist(),
            "lost_share": lost.tolist(),
        }

    def state(self) -> tuple[dict, dict]:
        params = {"n_components": int(self.n_components_), "variance": self.variance}
        tensors = to_tensors(mean_=self.mean_, components_=self.components_,
                             explained_variance_=self.explained_variance_,
                             explained_variance_ratio_=self.explained_variance_ratio_,
                             singular_values_=self.singular_values_,
                             all_explained_variance_ratio_=self.all_explained_variance_ratio_)
        return params, tensors

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> PCA:
        self = cls(n_components=params["n_components"], variance=params.get("variance"))
        for name, t in tensors.items():
            setattr(self, name, to_numpy(t).astype(np.float64))
        self.all_explained_variance_ = None
        self.n_components_ = int(self.components_.shape[0])
        return self
