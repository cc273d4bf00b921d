"""Kernel PCA (scikit-learn's KernelPCA), saved as tensors and re-applied without pickling it.

A saved model holds the training rows `X_fit_`, the kernel-centering statistics
(`K_fit_rows_`: column means of the training kernel, `K_fit_all_`: its grand mean), the
eigenvectors (`alphas`) and eigenvalues, and the kernel parameters; `transform` repeats
scikit-learn's computation: K(X, X_fit) centred with those statistics, times alphas / sqrt(lambdas).
"""

from __future__ import annotations

import numpy as np

from dltool.core.applies import Applies
from dltool.core.errors import OptionError
from dltool.core.tables import check_matrix
from dltool.reduce.base import (
    Reducer,
    check_components,
    register_reducer,
    to_numpy,
    to_tensors,
)

KERNELS = ("rbf", "poly", "sigmoid", "cosine", "linear")


def _kernel(X, Y, kernel: str, gamma: float, degree: int, coef0: float) -> np.ndarray:
    from sklearn.metrics.pairwise import pairwise_kernels

    return pairwise_kernels(X, Y, metric=kernel, filter_params=True, gamma=gamma, degree=degree, coef0=coef0)


@register_reducer("kpca", prefix="kpc", transformable=True)
class KernelPCA(Reducer):
    """Kernel PCA. Parameters: n_components, kernel (rbf|poly|sigmoid|cosine|linear), gamma
    (default 1 / n_features), degree, coef0, seed. Fitted: X_fit_, K_fit_rows_, K_fit_all_,
    eigenvectors_, eigenvalues_, gamma_."""

    option_rules = (Applies("kernel", {"rbf": ("gamma",), "poly": ("gamma", "degree", "coef0"),
                                       "sigmoid": ("gamma", "coef0"), "cosine": (), "linear": ()}),)

    def __init__(self, n_components: int = 2, *, kernel: str = "rbf", gamma: float | None = None, degree: int = 3,
                 coef0: float = 1.0, seed: int = 0):
        self.n_components = n_components
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.seed = seed

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import KernelPCA as SkKernelPCA

        if self.kernel not in KERNELS:
            from dltool.core.errors import unknown_name

            raise unknown_name("--kernel", self.kernel, KERNELS)
        if self.gamma is not None and self.gamma <= 0:
            raise OptionError(f"--gamma {self.gamma} must be positive", "omit it for 1 / number of features")
        n, p = X.shape
        check_matrix(X, min_rows=2, what="kpca")
        if self.kernel == "linear":
            check_components("kpca", int(self.n_components), n, p)
        elif not 1 <= int(self.n_components) <= n:  # a non-linear kernel may give more components than features
            raise OptionError(f"-n {self.n_components}: kernel PCA finds between 1 and the number of rows ({n}) "
                              "components", f"use -n {min(2, n)}")
        sk = SkKernelPCA(n_components=int(self.n_components), kernel=self.kernel, gamma=self.gamma,
                         degree=self.degree, coef0=self.coef0, random_state=self.seed)
        Y = sk.fit_transform(X)
        self.X_fit_ = np.asarray(sk.X_fit_, dtype=np.float64)
        self.K_fit_rows_ = np.asarray(sk._centerer.K_fit_rows_, dtype=np.float64)
        self.K_fit_all_ = np.asarray(sk._centerer.K_fit_all_, dtype=np.float64)
        self.eigenvectors_ = np.asarray(sk.eigenvectors_, dtype=np.float64)
        self.eigenvalues_ = np.asarray(sk.eigenvalues_, dtype=np.float64)
        self.gamma_ = float(sk.gamma_)
        self.n_components_ = int(self.eigenvectors_.shape[1])
        return Y

    def transform(self, X: np.ndarray) -> np.ndarray:
        K = _kernel(np.asarray(X, dtype=np.float64), self.X_fit_, self.kernel, self.gamma_, self.degree, self.coef0)
        K = K - self.K_fit_rows_ - (K.sum(axis=1) / self.K_fit_rows_.shape[0])[:, None] + self.K_fit_all_
        scaled = np.zeros_like(self.eigenvectors_)
        nz = np.flatnonzero(self.eigenvalues_)
        scaled[:, nz] = self.eigenvectors_[:, nz] / np.sqrt(self.eigenvalues_[nz])
        return K @ scaled

    def report(self) -> dict:
        return {"n_components": self.n_components_, "kernel": self.kernel, "gamma": self.gamma_,
                "eigenvalues": self.eigenvalues_.tolist()}

    def state(self) -> tuple[dict, dict]:
        params = {"n_components": self.n_components_, "kernel": self.kernel, "gamma": self.gamma_,
                  "degree": int(self.degree), "coef0": float(self.coef0)}
        tensors = to_tensors(X_fit_=self.X_fit_, K_fit_rows_=self.K_fit_rows_,
                             K_fit_all_=np.asarray(self.K_fit_all_), eigenvectors_=self.eigenvectors_,
                             eigenvalues_=self.eigenvalues_)
        return params, tensors

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> KernelPCA:
        self = cls(n_components=params["n_components"], kernel=params["kernel"], gamma=params["gamma"],
                   degree=params["degree"], coef0=params["coef0"])
        for name, t in tensors.items():
            setattr(self, name, to_numpy(t).astype(np.float64))
        self.K_fit_all_ = float(np.asarray(self.K_fit_all_).reshape(-1)[0])
        self.gamma_ = float(params["gamma"])
        self.n_components_ = int(self.eigenvectors_.shape[1])
        return self
