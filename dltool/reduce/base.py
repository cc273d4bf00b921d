"""The reducer contract: scikit-learn's estimator shape plus a tensors-only model file.

A reducer is built from plain keyword parameters (`__init__` only stores), `fit(X)` learns
fitted attributes ending in `_`, `fit_transform(X)` returns the embedding of the training rows,
and -- for reducers that can embed new rows -- `transform(X)`. Reducers that can be saved also
implement `state()` -> (params, tensors) and the classmethod `from_state(params, tensors)`, so a
model file holds only plain data and tensors (DESIGN.md §3) and never a pickled object.

Every method is registered by name in `REDUCERS` with its column prefix and whether it can
transform new data; the CLI and `dltool reduce transform` look methods up there, so a new
reducer (the autoencoder) is one more registered class.
"""

from __future__ import annotations

import numpy as np

from dltool.core.errors import OptionError
from dltool.core.registry import Registry

REDUCERS = Registry("reduction method")


def register_reducer(name: str, *, prefix: str, transformable: bool):
    """Register a reducer class under `name`; its output columns are `prefix1, prefix2, ...`."""

    def deco(cls):
        cls.method = name
        cls.prefix = prefix
        cls.transformable = transformable
        return REDUCERS.register(name, prefix=prefix, transformable=transformable)(cls)

    return deco


def get_reducer_class(name: str):
    return REDUCERS.get(name).builder


class Reducer:
    """Base class: see the module docstring. Subclasses set `method`, `prefix`, `transformable`."""

    method = "reducer"
    prefix = "c"
    #: rules for the options only some settings take (kpca: --degree only for the poly kernel), checked
    #: against what the user set before any data is read (dltool.core.applies)
    option_rules: tuple = ()
    transformable = False
    #: device types the method runs on; a reducer with more than ("cpu",) takes a `device` parameter
    devices: tuple[str, ...] = ("cpu",)

    def fit(self, X: np.ndarray) -> Reducer:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise OptionError(f"{self.method} cannot embed new rows (it has no transform)",
                          "fit it on all the rows together, or use pca, kpca or ica")

    def report(self) -> dict:
        """Plain data describing the fit (for --report and the stderr summary)."""
        return {}

    def state(self) -> tuple[dict, dict]:
        """(plain params, name -> tensor) for the model file."""
        raise OptionError(f"{self.method} cannot be saved as a model (--save-model)",
                          f"{self.method} has no transform for new rows; use pca, kpca or ica to embed new data later")

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> Reducer:  # pragma: no cover - abstract
        raise NotImplementedError


def check_components(method: str, n_components: int, n_samples: int, n_features: int,
                     *, max_from_rows: bool = True) -> None:
    """-n must be between 1 and the number of features (and of rows where the method needs it)."""
    if n_components < 1:
        raise OptionError(f"-n {n_components}: the number of components must be at least 1", "use -n 2")
    if n_components > n_features:
        raise OptionError(f"-n {n_components} is more than the {n_features} feature columns",
                          f"use -n {n_features} or fewer")
    if max_from_rows and n_components > n_samples:
        raise OptionError(f"-n {n_components} is more than the {n_samples} rows; {method} finds at most "
                          f"min(rows, features) = {min(n_samples, n_features)} components",
                          f"use -n {min(n_samples, n_features)} or fewer")


def to_tensors(**arrays) -> dict:
    import torch

    return {k: torch.as_tensor(np.array(v, dtype=np.float64 if np.asarray(v).dtype.kind == "f" else None, order="C"))
            for k, v in arrays.items()}


def to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
