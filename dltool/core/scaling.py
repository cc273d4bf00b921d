"""Feature scaling fitted on a table and re-applied to new rows: x' = (x - shift) / scale.

One implementation for every command that scales (`--standardize`, `--scaling`): scikit-learn's
StandardScaler (ddof 0) and MinMaxScaler fit the statistics, and only the two vectors are kept, so
they travel inside a model file as plain tensors. Constant columns get scale 1 (scikit-learn's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dltool.core.errors import unknown_name

SCALINGS = ("standard", "minmax", "none")


@dataclass
class Scaling:
    kind: str
    shift: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.shift) / self.scale


def fit_scaling(X: np.ndarray, kind: str = "standard") -> Scaling:
    """standard: zero mean, unit variance; minmax: every column to [0, 1]; none: unchanged."""
    X = np.asarray(X, dtype=np.float64)
    if kind == "standard":
        from sklearn.preprocessing import StandardScaler

        fitted = StandardScaler().fit(X)
        return Scaling(kind, fitted.mean_, fitted.scale_)
    if kind == "minmax":
        from sklearn.preprocessing import MinMaxScaler

        fitted = MinMaxScaler().fit(X)  # its scale_ is 1 / range, with constant columns at 1
        return Scaling(kind, fitted.data_min_, 1.0 / fitted.scale_)
    if kind == "none":
        return Scaling(kind, np.zeros(X.shape[1]), np.ones(X.shape[1]))
    raise unknown_name("--scaling", kind, SCALINGS)


def standardize(X: np.ndarray) -> np.ndarray:
    """X at zero mean and unit variance per column (the `--standardize` switch)."""
    return fit_scaling(X, "standard").transform(X)
