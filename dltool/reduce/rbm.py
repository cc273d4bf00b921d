"""`dltool reduce rbm`: Bernoulli restricted Boltzmann machines (and greedily stacked deep belief networks)
trained by contrastive divergence, on torch so they run on the GPU; a reducer drop-in for PCA.

An RBM has visible units v in [0, 1] and binary hidden units h with energy E(v, h) = -b·v - c·h - h·W·v,
so p(h_j = 1 | v) = sigmoid(W v + c)_j and p(v_i = 1 | h) = sigmoid(W^T h + b)_i. Its free energy
F(v) = -b·v - sum_j softplus(W v + c)_j gives p(v) ~ exp(-F(v)). Learning follows scikit-learn's
BernoulliRBM (the reference people use): weights drawn from N(0, 0.01), zero biases, plain SGD on mini-batches
with the CD gradient <v h>_data - <v h>_model, where the model's statistics come from k Gibbs steps started at
the data (CD-k) or at a chain kept from the previous batch (persistent CD, Tieleman 2008; scikit-learn's
BernoulliRBM is PCD-1). Each epoch reports the pseudo-likelihood on the training rows, computed as
scikit-learn's `score_samples` does (one randomly chosen unit flipped per row).

The features are the hidden probabilities p(h = 1 | v) (mean field), as scikit-learn's `transform`.
`layers=(256, 64)` stacks RBMs greedily (Hinton 2006): each layer trains on the hidden probabilities of the
one below; transform passes rows up through all of them. `sample` draws images by Gibbs sampling in the top
RBM and one top-down pass of probabilities.

Why not the shared engine: CD's update is not the gradient of a loss the engine could monitor or stop on,
and a deep belief network trains one layer after another; the loop is scikit-learn's, a few lines.
"""

from __future__ import annotations

import numpy as np

from dltool.core.errors import InputError, OptionError
from dltool.core.tables import check_matrix
from dltool.reduce.base import Reducer, register_reducer, to_numpy

TRANSFORM_BATCH = 8192
#: a column may be this far outside [0, 1] (float noise in a scaled table) before it is refused
RANGE_TOLERANCE = 1e-9


def parse_layers(layers) -> tuple[int, ...]:
    """'256,64' or (256, 64) -> (256, 64): each layer's hidden units, at least 1."""
    if isinstance(layers, str):
        parts = [p.strip() for p in layers.split(",") if p.strip()]
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            raise OptionError(f"--layers '{layers}' must be comma-separated whole numbers",
                              "use e.g. --layers 256,64") from None
    else:
        sizes = tuple(int(v) for v in layers)
    if not sizes or min(sizes) < 1:
        raise OptionError(f"--layers '{layers}': every layer needs at least 1 hidden unit", "use e.g. --layers 256,64")
    return sizes


def check_params(*, n_components, layers, cd_k, learning_rate, epochs, batch_size) -> tuple[int, ...]:
    """The option checks that need no data; the hidden sizes of the layers."""
    if layers is not None:
        sizes = parse_layers(layers)
        if n_components is not None and int(n_components) != sizes[-1]:
            raise OptionError(f"-n {n_components} and --layers {','.join(map(str, sizes))} disagree: the output "
                              f"columns are the last layer's {sizes[-1]} hidden units",
                              "give only --layers (or make its last size equal -n)")
    else:
        n = 256 if n_components is None else n_components
        if isinstance(n, bool) or int(n) < 1:
            raise OptionError(f"-n {n}: an RBM needs at least 1 hidden unit", "use e.g. -n 100")
        sizes = (int(n),)
    for flag, v in (("--cd-k", cd_k), ("--epochs", epochs), ("--batch-size", batch_size)):
        if isinstance(v, bool) or int(v) < 1:
            raise OptionError(f"{flag} {v} must be at least 1", f"use e.g. {flag} {10 if flag != '--cd-k' else 1}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise OptionError(f"--lr {learning_rate} must be a positive number", "use e.g. --lr 0.1")
    return sizes


class _Layer:
    """One Bernoulli RBM's tensors: W (hidden x visible), b (visible biases), c (hidden biases)."""

    def __init__(self, W, b, c):
        self.W, self.b, self.c = W, b, c

    def hidden(self, v):
        import torch

        return torch.sigmoid(v @ self.W.T + self.c)

    def visible(self, h):
        import torch

        return torch.sigmoid(h @ self.W + self.b)

    def free_energy(self, v):
        import torch.nn.functional as F

        return -(v @ self.b) - F.softplus(v @ self.W.T + self.c).sum(dim=1)


def _bernoulli(p, gen):
    import torch

    return (torch.rand(p.shape, generator=gen, device=p.device, dtype=p.dtype) < p).to(p.dtype)


@register_reducer("rbm", prefix="rbm", transformable=True)
class RBM(Reducer):
    """Bernoulli RBM / deep belief network reducer (see the module docstring).

    Parameters: `n_components` (hidden units; default 256) or `layers` (sizes of a stack), `cd_k` (Gibbs
    steps per update), `persistent` (PCD), `learning_rate`, `epochs`, `batch_size`, `scale` (min-max scale
    each column to [0, 1] first, saved with the model; without it values outside [0, 1] are refused),
    `feature_names` (for messages), `device`, `seed`.
    Fitted: `layers_` (per layer W, b, c as float32 tensors), `shift_`/`scale_` (None without scaling),
    `history_` (per layer, per epoch pseudo-likelihood), `n_components_`, `n_features_in_`.
    """

    devices = ("cpu", "cuda", "mps")

    def __init__(self, n_components: int | None = None, *, layers=None, cd_k: int = 1, persistent: bool = False,
                 learning_rate: float = 0.1, epochs: int = 10, batch_size: int = 10, scale: bool = False,
                 feature_names=None, device: str = "cpu", seed: int = 0):
        self.n_components = n_components
        self.layers = layers
        self.cd_k = cd_k
        self.persistent = persistent
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.scale = scale
        self.feature_names = feature_names
        self.device = device
        self.seed = seed

    # -- inputs ----------------------------------------------------------------------------------
    def _visible(self, X: np.ndarray, *, fitting: bool):
        """The rows as a float32 tensor on the device, scaled when fitted with --scale, checked in [0, 1]."""
        import torch

        X = check_matrix(X, min_rows=2 if fitting else 0, what="rbm")
        if self.shift_ is not None:
            X = np.clip((X - self.shift_) / self.scale_, 0.0, 1.0)  # new rows beyond the fitted range: its ends
        else:
            bad = np.argwhere((X < -RANGE_TOLERANCE) | (X > 1 + RANGE_TOLERANCE))
            if len(bad):
                row, col = bad[0]
                name = self.feature_names[col] if self.feature_names else f"feature {col + 1}"
                raise InputError(f"column '{name}' has the value {X[row, col]:g} (row {row + 1}), outside [0, 1]; "
                                 "an RBM's Bernoulli visible units take values in [0, 1]",
                                 "pass --scale to min-max scale each column to [0, 1] (saved with the model)")
        return torch.as_tensor(X, dtype=torch.float32, device=str(self.device))

    # -- fitting ---------------------------------------------------------------------------------
    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        from dltool.core.console import info
        from dltool.core.scaling import fit_scaling

        sizes = check_params(n_components=self.n_components, layers=self.layers, cd_k=self.cd_k,
                             learning_rate=self.learning_rate, epochs=self.epochs, batch_size=self.batch_size)
        X = check_matrix(X, min_rows=2, what="rbm")
        self.shift_ = self.scale_ = None
        if self.scale:
            scaling = fit_scaling(X, "minmax")
            self.shift_, self.scale_ = scaling.shift, scaling.scale
        V = self._visible(X, fitting=True)
        gen = torch.Generator(device=V.device).manual_seed(int(self.seed))
        self.layers_, self.history_ = [], []
        for depth, n_hidden in enumerate(sizes):
            layer, history = self._fit_layer(V, n_hidden, gen)
            self.layers_.append(layer)
            self.history_.append(history)
            name = f"layer {depth + 1}/{len(sizes)} " if len(sizes) > 1 else ""
            info(f"rbm {name}({V.shape[1]} -> {n_hidden}): pseudo-likelihood per epoch "
                 + " ".join(f"{v:.2f}" for v in history))
            with torch.no_grad():
                V = layer.hidden(V)  # the next layer trains on these probabilities (greedy stacking)
        self.n_features_in_ = X.shape[1]
        self.n_components_ = sizes[-1]
        self.train_free_energy_ = float(self.free_energy(X).mean())
        return to_numpy(V).astype(np.float64)

    def _fit_layer(self, V, n_hidden: int, gen):
        import torch

        from dltool.core.threads import single_thread_below

        n, p = V.shape
        dev = V.device
        W = torch.randn((n_hidden, p), generator=gen, device=dev) * 0.01  # scikit-learn's N(0, 0.01) start
        layer = _Layer(W, torch.zeros(p, device=dev), torch.zeros(n_hidden, device=dev))
        bs = min(int(self.batch_size), n)
        # a CD step is ~2(k+1) matrix products of batch x visible x hidden: small work runs on one thread
        work = 2 * (int(self.cd_k) + 1) * bs * p * n_hidden
        chain = torch.zeros((bs, n_hidden), device=dev)  # the persistent chain's hidden state (scikit-learn's)
        lr = float(self.learning_rate)
        history = []
        with torch.no_grad(), single_thread_below(dev, work):
            for _ in range(int(self.epochs)):
                order = torch.randperm(n, generator=gen, device=dev)
                for s in range(0, n, bs):
                    v_pos = V[order[s:s + bs]]
                    h_pos = layer.hidden(v_pos)
                    h = chain if self.persistent else _bernoulli(h_pos, gen)
                    for _ in range(int(self.cd_k)):
                        v_neg = _bernoulli(layer.visible(h), gen)
                        h_neg = layer.hidden(v_neg)
                        h = _bernoulli(h_neg, gen)
                    if self.persistent:
                        chain = h
                    layer.W += lr * (h_pos.T @ v_pos / len(v_pos) - h_neg.T @ v_neg / len(v_neg))
                    layer.c += lr * (h_pos.mean(0) - h_neg.mean(0))
                    layer.b += lr * (v_pos.mean(0) - v_neg.mean(0))
                history.append(float(self._pseudo_likelihood(layer, V, gen).mean()))
        return layer, history

    @staticmethod
    def _pseudo_likelihood(layer: _Layer, V, gen):
        """scikit-learn's score_samples: features x log sigmoid(F(v with one random unit flipped) - F(v)),
        on binarised rows."""
        import torch
        import torch.nn.functional as F

        v = (V > 0.5).to(V.dtype)  # scikit-learn rounds the rows it scores
        idx = torch.randint(0, v.shape[1], (v.shape[0],), generator=gen, device=v.device)
        flipped = v.clone()
        rows = torch.arange(v.shape[0], device=v.device)
        flipped[rows, idx] = 1 - flipped[rows, idx]
        return v.shape[1] * F.logsigmoid(layer.free_energy(flipped) - layer.free_energy(v))

    # -- using the fit ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "layers_"):
            raise OptionError("this rbm is not fitted yet", "call fit(X) first")

    def transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"the rbm was fitted on {self.n_features_in_} features, not "
                             f"{X.shape[1] if X.ndim == 2 else X.shape}")
        out = []
        with torch.inference_mode():
            for s in range(0, len(X), TRANSFORM_BATCH):
                v = self._visible(X[s:s + TRANSFORM_BATCH], fitting=False)
                for layer in self.layers_:
                    v = layer.hidden(v)
                out.append(to_numpy(v).astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, self.n_components_))

    def free_energy(self, X: np.ndarray) -> np.ndarray:
        """F(v) of each row under the first RBM (lower is likelier); train vs held-out shows overfitting."""
        import torch

        self._check_fitted()
        with torch.inference_mode():
            return to_numpy(self.layers_[0].free_energy(self._visible(X, fitting=False))).astype(np.float64)

    def sample(self, n: int, steps: int, seed: int = 0) -> np.ndarray:
        """n visible-probability vectors after `steps` Gibbs steps in the top RBM, started from its visible
        biases' Bernoulli draws, then one top-down pass of probabilities (a DBN's generative path)."""
        import torch

        self._check_fitted()
        top = self.layers_[-1]
        gen = torch.Generator(device=top.W.device).manual_seed(int(seed))
        with torch.inference_mode():
            v = _bernoulli(torch.sigmoid(top.b).expand(n, -1), gen)
            for _ in range(int(steps)):
                v = _bernoulli(top.visible(_bernoulli(top.hidden(v), gen)), gen)
            v = top.visible(_bernoulli(top.hidden(v), gen))  # the last step's probabilities, not a 0/1 draw
            for layer in reversed(self.layers_[:-1]):
                v = layer.visible(v)
        return to_numpy(v).astype(np.float64)

    def report(self) -> dict:
        return {"n_components": int(self.n_components_), "layers": [int(layer.c.numel()) for layer in self.layers_],
                "cd_k": int(self.cd_k), "persistent": bool(self.persistent), "learning_rate": float(self.learning_rate),
                "epochs": int(self.epochs), "batch_size": int(self.batch_size), "scale": bool(self.scale),
                "pseudo_likelihood": [list(map(float, h)) for h in self.history_],
                "train_free_energy": self.train_free_energy_}

    # -- model file ------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        import torch

        self._check_fitted()
        params = {"layers": [int(layer.c.numel()) for layer in self.layers_], "cd_k": int(self.cd_k),
                  "persistent": bool(self.persistent), "learning_rate": float(self.learning_rate),
                  "epochs": int(self.epochs), "batch_size": int(self.batch_size), "scale": bool(self.scale),
                  "in_features": int(self.n_features_in_)}
        tensors = {}
        for i, layer in enumerate(self.layers_):
            tensors.update({f"{i}.W": layer.W.cpu(), f"{i}.b": layer.b.cpu(), f"{i}.c": layer.c.cpu()})
        if self.shift_ is not None:
            tensors.update({"shift": torch.as_tensor(self.shift_), "scale": torch.as_tensor(self.scale_)})
        return params, tensors

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> RBM:
        sizes = [int(s) for s in params["layers"]]
        self = cls(layers=sizes, cd_k=params.get("cd_k", 1), persistent=params.get("persistent", False),
                   learning_rate=params.get("learning_rate", 0.1), epochs=params.get("epochs", 10),
                   batch_size=params.get("batch_size", 10), scale=params.get("scale", False))
        self.layers_ = [_Layer(tensors[f"{i}.W"].float(), tensors[f"{i}.b"].float(), tensors[f"{i}.c"].float())
                        for i in range(len(sizes))]
        p = int(params["in_features"])
        for i, layer in enumerate(self.layers_):
            want = (sizes[i], p if i == 0 else sizes[i - 1])
            if tuple(layer.W.shape) != want:
                raise ValueError(f"layer {i + 1}'s weights are {tuple(layer.W.shape)}, not {want}")
        self.shift_ = to_numpy(tensors["shift"]).astype(np.float64) if "shift" in tensors else None
        self.scale_ = to_numpy(tensors["scale"]).astype(np.float64) if "scale" in tensors else None
        self.n_features_in_ = p
        self.n_components_ = sizes[-1]
        self.history_ = []
        return self

    def __setattr__(self, name, value):
        # a loaded model moves its tensors when load_reducer places it on a device
        if name == "device" and hasattr(self, "layers_"):
            for layer in self.layers_:
                layer.W, layer.b, layer.c = (t.to(str(value)) for t in (layer.W, layer.b, layer.c))
        super().__setattr__(name, value)


# ---------------------------------------------------------------- the command's flow


def image_side(n_features: int) -> int:
    """The side of the square image a row of `n_features` pixels is (--sample draws images)."""
    side = int(round(n_features ** 0.5))
    if side * side != n_features:
        raise OptionError(f"--sample draws images, but the {n_features} feature columns are no square image "
                          "(8x8 = 64 pixels, 28x28 = 784, ...)", "drop --sample, or choose the pixel columns with --features")
    return side


def write_sample_grid(reducer: RBM, path, *, n: int, steps: int, seed: int) -> None:
    """n Gibbs samples as one PNG grid of grey images (white = 1, 1-pixel grey borders), written atomically."""
    from PIL import Image

    from dltool.core.io import atomic_path

    side = image_side(reducer.n_features_in_)
    images = reducer.sample(n, steps, seed).reshape(n, side, side)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (side + 1) + 1, cols * (side + 1) + 1), 0.5)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * (side + 1):(r + 1) * (side + 1), 1 + c * (side + 1):(c + 1) * (side + 1)] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)).save(tmp, format="PNG")


def check_sample(sample, sample_count: int, gibbs_steps: int, given) -> None:
    """--sample-count and --gibbs-steps only with --sample; both at least 1."""
    if sample is None:
        for name in ("sample_count", "gibbs_steps"):
            if name in (given or ()):
                raise OptionError(f"--{name.replace('_', '-')} applies only with --sample", "add --sample FILE.png")
    for flag, v in (("--sample-count", sample_count), ("--gibbs-steps", gibbs_steps)):
        if v < 1:
            raise OptionError(f"{flag} {v} must be at least 1", f"use e.g. {flag} 64")


def reduce_table(table, config, *, sample=None, sample_count: int = 64, gibbs_steps: int = 1000):
    """Fit the RBM of `config` (a ReduceConfig of method rbm) on the table; with `sample`, write a grid of
    Gibbs samples there; the ReduceResult with rbm1..rbmN columns."""
    from dataclasses import replace

    from dltool.reduce import reduction

    reduction.check_exclude(table, config.exclude)
    names = table.feature_names(list(config.features) if config.features else None, list(config.exclude or ()))
    if sample is not None:
        image_side(len(names))
    result = reduction.reduce_table(table, replace(config, params={**config.params, "feature_names": names}))
    if sample is not None:
        write_sample_grid(result.reducer, sample, n=sample_count, steps=gibbs_steps, seed=config.seed)
        result.report["sample"] = str(sample)
    return result
