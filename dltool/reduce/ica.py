"""Independent component analysis (scikit-learn's FastICA), saved as tensors.

A saved model holds `mean_`, the unmixing matrix `components_` (= unmixing @ whitening, so
`transform(X) = (X - mean_) @ components_.T`, exactly scikit-learn's), `whitening_` and `mixing_`.

Constant columns carry no signal and make scikit-learn's whitening produce NaN when the first
column is constant (its sign fix multiplies by sign(0) = 0), so FastICA is fitted on the
non-constant columns and the constant ones get weight 0: the result equals scikit-learn's
FastICA on the non-constant columns.
"""

from __future__ import annotations

import numpy as np

from dltool.core.console import library_warnings
from dltool.core.errors import InputError, OptionError
from dltool.core.tables import check_matrix
from dltool.reduce.base import (
    Reducer,
    check_components,
    register_reducer,
    to_numpy,
    to_tensors,
)


@register_reducer("ica", prefix="ic", transformable=True)
class ICA(Reducer):
    """FastICA. Parameters: n_components, fun (logcosh|exp|cube), max_iter, tol, seed.
    Fitted: mean_, components_, whitening_, mixing_, n_iter_."""

    def __init__(self, n_components: int = 2, *, fun: str = "logcosh", max_iter: int = 400, tol: float = 1e-4,
                 seed: int = 0):
        self.n_components = n_components
        self.fun = fun
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning

        if self.fun not in ("logcosh", "exp", "cube"):
            from dltool.core.errors import unknown_name

            raise unknown_name("--fun", self.fun, ("logcosh", "exp", "cube"))
        if self.max_iter < 1:
            raise OptionError(f"--max-iter {self.max_iter} must be at least 1", "use the default 400")
        n, p = X.shape
        check_matrix(X, min_rows=2, what="ica")
        check_components("ica", int(self.n_components), n, p)
        active = np.ptp(X, axis=0) > 0
        if active.sum() < self.n_components:
            raise InputError(f"-n {self.n_components}: only {int(active.sum())} feature columns vary; "
                             "ica cannot find more components than that", f"use -n {max(1, int(active.sum()))}")
        sk = FastICA(n_components=int(self.n_components), fun=self.fun, max_iter=self.max_iter, tol=self.tol,
                     whiten="unit-variance", random_state=self.seed)
        # scikit-learn's ConvergenceWarning becomes one line that says what to do; others pass through
        not_converged = f"ica did not converge in {self.max_iter} iterations; raise --max-iter or --tol"
        with library_warnings({ConvergenceWarning: not_converged}) as caught:
            Y = sk.fit_transform(X[:, active])
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        k = int(sk.components_.shape[0])
        self.mean_ = X.mean(axis=0)
        self.mean_[active] = sk.mean_
        self.components_ = np.zeros((k, p))
        self.components_[:, active] = sk.components_
        self.whitening_ = np.zeros((k, p))
        self.whitening_[:, active] = sk.whitening_
        self.mixing_ = np.zeros((p, k))
        self.mixing_[active] = sk.mixing_
        self.n_iter_ = int(sk.n_iter_)
        self.n_components_ = k
        return Y

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    def report(self) -> dict:
        return {"n_components": self.n_components_, "n_iter": self.n_iter_, "converged": self.converged_}

    def state(self) -> tuple[dict, dict]:
        params = {"n_components": self.n_components_, "fun": self.fun, "max_iter": int(self.max_iter),
                  "tol": float(self.tol)}
        return params, to_tensors(mean_=self.mean_, components_=self.components_, whitening_=self.whitening_,
                                  mixing_=self.mixing_)

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> ICA:
        self = cls(n_components=params["n_components"], fun=params["fun"], max_iter=params["max_iter"],
                   tol=params["tol"])
        for name, t in tensors.items():
            setattr(self, name, to_numpy(t).astype(np.float64))
        self.n_components_ = int(self.components_.shape[0])
        return self
