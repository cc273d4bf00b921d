"""`dltool reduce autoencoder`: an MLP autoencoder as a drop-in for PCA.

`AutoencoderReducer` has scikit-learn's estimator shape and the reducer contract of base.py:
`fit(X)`, `fit_transform(X)` (the codes of the training rows), `transform(X)` (codes of new rows),
`inverse_transform(Z)` (decoded rows), `state()`/`from_state()` for the model file; fitted
attributes end in `_` (`net_`, `shift_`, `scale_`, `history_`, `summary_`, `n_components_`).

Training runs on the shared engine (dltool.core.train), so --device cuda, checkpoints, --resume,
Ctrl-C, metrics.jsonl and curves.png work as for every other network. The engine writes the
model file itself (run folder `model.pt`, the best epoch by the monitored loss): task "reduce",
arch "autoencoder", arch_kwargs = the network and training parameters, preprocess =
{"features", "prefix": "ae", "scaling", "shift", "scale"} with x' = (x - shift) / scale
(standard: shift = mean, scale = standard deviation, ddof 0; minmax: shift = min, scale = max - min;
a constant column gets scale 1). The same shift/scale are buffers of the network, so
`dltool reduce transform model.pt TABLE` embeds new rows like PCA's saved models do.

Without a run folder (`run_dir=None`, plain Python use) training happens in a temporary folder
that is removed afterwards; the fitted estimator keeps the weights.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.reduce.base import Reducer, check_rows, register_reducer, to_numpy

if TYPE_CHECKING:
    from dltool.core.train import EngineConfig

ARCH = "autoencoder"
TASK = "reduce"
KINDS = ("undercomplete", "sparse", "denoising", "contractive")
CORRUPTIONS = ("gaussian", "mask")
SCALINGS = ("standard", "minmax", "none")
TRANSFORM_BATCH = 8192
# Below this many multiply-adds per training step (batch x weights), a CPU run uses one thread: the
# matrices are too small to share, and on a busy machine every parallel region waits for a second
# core. Measured on the 2-core dev machine while other jobs ran, Adam steps of an MLP autoencoder:
#   batch 64, 64-256-128-10 (6.4M):   1 thread 1.6 ms,  2 threads 457 ms
#   batch 256, 64-512-256-10 (85M):   1 thread 9.5 ms,  2 threads 209 ms
#   batch 1024, 784-500-500-2000-10 (3.4G): 1 thread 347 ms, 2 threads 861 ms
# (on an idle machine two threads win only at the largest size).
SINGLE_THREAD_BELOW = 200_000_000


def parse_hidden(value) -> tuple[int, ...]:
    """'64,32' (or a sequence) -> (64, 32); '' or 'none' -> () for a linear autoencoder."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none"):
            return ()
        parts = [p.strip() for p in text.split(",")]
    else:
        parts = list(value)
    try:
        widths = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise OptionError(f"--hidden '{value}' is not a comma-separated list of layer widths",
                          "e.g. --hidden 64,32 (or --hidden none for a linear autoencoder)") from None
    if any(w < 1 for w in widths):
        raise OptionError(f"--hidden '{value}': every layer width must be at least 1", "e.g. --hidden 64,32")
    return widths


def check_params(*, n_components: int, kind: str, hidden, activation: str, scaling: str, sparsity: float,
                 noise: float, corruption: str, contractive: float, batch_size: int, val_split: float) -> None:
    """Option checks that need no data; each names the option, the value and what is allowed."""
    from dltool.core.activations import ACTIVATIONS

    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise OptionError(f"--code-dim {n_components} must be a whole number of at least 1",
                          "use e.g. --code-dim 2")
    if kind not in KINDS:
        raise unknown_name("--kind", kind, KINDS)
    parse_hidden(hidden)
    if activation not in ACTIVATIONS:
        raise unknown_name("activation", activation, ACTIVATIONS)
    if scaling not in SCALINGS:
        raise unknown_name("--scaling", scaling, SCALINGS)
    if corruption not in CORRUPTIONS:
        raise unknown_name("--corruption", corruption, CORRUPTIONS)
    for flag, v in (("--sparsity", sparsity), ("--contractive", contractive), ("--noise", noise)):
        if not (np.isfinite(v) and v >= 0):
            raise OptionError(f"{flag} {v} must be zero or positive", f"use e.g. {flag} 0.001")
    if corruption == "mask" and not noise < 1:
        raise OptionError(f"--noise {noise} with --corruption mask is the share of values zeroed: it must be below 1",
                          "use e.g. --noise 0.2")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise OptionError(f"--batch-size {batch_size} must be at least 1")
    if not 0 <= val_split < 1:
        raise OptionError(f"--val-split {val_split} must be in [0, 1)", "use e.g. --val-split 0.1, or 0 for none")


def fit_scaling(X: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) with x' = (x - shift) / scale; constant columns get scale 1."""
    if scaling == "none":
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    if scaling == "minmax":
        shift = X.min(axis=0)
        scale = X.max(axis=0) - shift
    else:
        shift = X.mean(axis=0)
        scale = X.std(axis=0)
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(shift))
    scale = np.where(scale < tiny, 1.0, scale)
    return shift, scale


def check_matrix(X, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0:
        raise InputError(f"{what} needs a 2-D feature matrix with at least one column, got shape {X.shape}")
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise InputError(f"row {row + 1}, feature {col + 1} is {X[row, col]} (not a finite number)",
                         "clean the data or pass --dropna")
    return X


def split_rows(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Seeded random hold-out: (training rows, validation rows or None)."""
    if val_split == 0 or n < 2:
        return np.arange(n), None
    n_val = min(n - 1, max(1, round(n * val_split)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@register_reducer(ARCH, prefix="ae", transformable=True)
class AutoencoderReducer(Reducer):
    """An MLP autoencoder whose code is the embedding (undercomplete, sparse, denoising, contractive).

    Parameters: `n_components` (code size), `kind`, `hidden` (widths, e.g. (64, 32) or "64,32"),
    `activation`, `scaling` (standard|minmax|none), `sparsity`, `noise`, `corruption`,
    `contractive`, `batch_size`, `val_split`, `engine` (an EngineConfig: epochs, lr, optimizer, ...),
    `run_dir` (the engine's run folder; None: a temporary one), `feature_names` (written into the
    model file), `options` (the command's options for config.toml), `device`, `seed`.
    """

    devices = ("cpu", "cuda", "mps")

    def __init__(self, n_components: int = 2, *, kind: str = "undercomplete", hidden=(64, 32),
                 activation: str = "relu", scaling: str = "standard", sparsity: float = 1e-3, noise: float = 0.2,
                 corruption: str = "gaussian", contractive: float = 1e-3, batch_size: int = 64,
                 val_split: float = 0.1, engine=None, run_dir=None, feature_names=None, options=None,
                 device: str = "cpu", seed: int = 0):
        self.n_components = n_components
        self.kind = kind
        self.hidden = hidden
        self.activation = activation
        self.scaling = scaling
        self.sparsity = sparsity
        self.noise = noise
        self.corruption = corruption
        self.contractive = contractive
        self.batch_size = batch_size
        self.val_split = val_split
        self.engine = engine
        self.run_dir = run_dir
        self.feature_names = feature_names
        self.options = options
        self.device = device
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------------
    def _params(self) -> dict:
        return dict(n_components=self.n_components, kind=self.kind, hidden=self.hidden, activation=self.activation,
                    scaling=self.scaling, sparsity=self.sparsity, noise=self.noise, corruption=self.corruption,
                    contractive=self.contractive, batch_size=self.batch_size, val_split=self.val_split)

    def arch_kwargs(self) -> dict:
        """The model file's arch_kwargs: what rebuilds the network, plus how it was trained."""
        return {"n_components": int(self.n_components), "in_features": int(self.n_features_in_),
                "hidden": list(parse_hidden(self.hidden)), "activation": self.activation, "kind": self.kind,
                "scaling": self.scaling, "sparsity": float(self.sparsity), "noise": float(self.noise),
                "corruption": self.corruption, "contractive": float(self.contractive)}

    def preprocess(self) -> dict:
        names = list(self.feature_names) if self.feature_names else [f"x{i}" for i in range(self.n_features_in_)]
        return {"features": names, "prefix": self.prefix, "scaling": self.scaling,
                "shift": [float(v) for v in self.shift_], "scale": [float(v) for v in self.scale_]}

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        from dltool.core.data import TensorBatches
        from dltool.core.device import resolve_device
        from dltool.core.seed import seed_everything
        from dltool.core.train import Engine, EngineConfig
        from dltool.reduce.autoencoder_net import AutoencoderNet, AutoencoderTask

        check_params(**self._params())
        X = check_matrix(X, "reduce autoencoder")
        n, p = X.shape
        check_rows(ARCH, n)
        if self.feature_names is not None and len(self.feature_names) != p:
            raise InputError(f"feature_names has {len(self.feature_names)} names for {p} feature columns")
        if self.kind == "undercomplete" and self.n_components >= p:
            raise OptionError(f"--code-dim {self.n_components} is not smaller than the {p} feature columns, so an "
                              "undercomplete autoencoder would only learn to copy its input",
                              f"use --code-dim {max(1, p - 1)} or fewer, or a regularised --kind "
                              "(sparse, denoising, contractive)")
        engine_cfg = self.engine if self.engine is not None else EngineConfig(epochs=50, seed=self.seed)
        engine_cfg.validate()
        device = resolve_device(str(self.device))
        seed_everything(self.seed)
        self.n_features_in_ = p
        self.shift_, self.scale_ = fit_scaling(X, self.scaling)
        net = AutoencoderNet(in_features=p, code_dim=int(self.n_components), hidden=parse_hidden(self.hidden),
                             activation=self.activation)
        net.set_scaling(self.shift_, self.scale_)
        Xs = torch.as_tensor((X - self.shift_) / self.scale_, dtype=torch.float32, device=device)
        tr, va = split_rows(n, self.val_split, self.seed)
        train_batches = TensorBatches((Xs[torch.as_tensor(tr, device=device)],), self.batch_size, shuffle=True,
                                      seed=self.seed)
        val_batches = None
        if va is not None:
            val_batches = TensorBatches((Xs[torch.as_tensor(va, device=device)],), max(1024, self.batch_size),
                                        shuffle=False)
        task = AutoencoderTask(self.kind, sparsity=self.sparsity, noise=self.noise, corruption=self.corruption,
                               contractive=self.contractive,
                               payload_fields={"task": TASK, "arch": ARCH, "arch_kwargs": self.arch_kwargs(),
                                               "preprocess": self.preprocess()})
        with run_folder(self.run_dir) as run_dir, cpu_threads(device, step_work(net, self.batch_size)):
            engine = Engine(task, net, engine_cfg, run_dir, device, dict(self.options or {}))
            self.summary_ = engine.fit(train_batches, val_batches)
            self.history_ = list(engine.history)
            best = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
        net.load_state_dict(best)
        self.net_ = net.to(device).eval()
        self.n_components_ = int(self.n_components)
        self.n_train_, self.n_val_ = len(tr), 0 if va is None else len(va)
        return self.transform(X)

    # -- using the fit ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise OptionError("this autoencoder is not fitted yet", "call fit(X) first")

    def _device(self):
        import torch

        return torch.device(str(self.device))

    def transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        self._check_fitted()
        X = check_matrix(X, "reduce transform")
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"the autoencoder was fitted on {self.n_features_in_} features, not {X.shape[1]}")
        device = self._device()
        net = self.net_.to(device).eval()
        out = []
        with torch.inference_mode(), cpu_threads(device, step_work(net, min(len(X), TRANSFORM_BATCH))):
            for s in range(0, len(X), TRANSFORM_BATCH):
                xb = torch.as_tensor(X[s:s + TRANSFORM_BATCH], dtype=torch.float32, device=device)
                out.append(net.embed(xb).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, self.n_components_))

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Codes -> reconstructed rows in the original feature units."""
        import torch

        self._check_fitted()
        device = self._device()
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(Z, dtype=np.float64), dtype=torch.float32, device=device)
            return self.net_.unscale(self.net_.decoder(z)).float().cpu().numpy().astype(np.float64)

    def report(self) -> dict:
        s = getattr(self, "summary_", {}) or {}
        keep = ("epochs_run", "best_epoch", "monitor", "best", "stopped_early", "train_time_s", "train_loss",
                "val_loss", "val_recon", "val_penalty", "run_dir", "model")
        return {"n_components": int(self.n_components_), "kind": self.kind,
                "hidden": list(parse_hidden(self.hidden)), "activation": self.activation, "scaling": self.scaling,
                "n_train": getattr(self, "n_train_", None), "n_val": getattr(self, "n_val_", None),
                **{k: s[k] for k in keep if k in s}}

    # -- model file ------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        self._check_fitted()
        return self.arch_kwargs(), {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}

    @classmethod
    def from_state(cls, params: dict, tensors: dict) -> AutoencoderReducer:
        from dltool.reduce.autoencoder_net import AutoencoderNet

        self = cls(params["n_components"], kind=params.get("kind", "undercomplete"), hidden=tuple(params["hidden"]),
                   activation=params.get("activation", "relu"), scaling=params.get("scaling", "standard"),
                   sparsity=params.get("sparsity", 0.0), noise=params.get("noise", 0.0),
                   corruption=params.get("corruption", "gaussian"), contractive=params.get("contractive", 0.0))
        net = AutoencoderNet(in_features=int(params["in_features"]), code_dim=int(params["n_components"]),
                             hidden=tuple(params["hidden"]), activation=self.activation)
        try:
            net.load_state_dict(tensors)
        except RuntimeError as e:
            raise ValueError(str(e).splitlines()[0]) from None
        self.net_ = net.eval()
        self.n_features_in_ = int(params["in_features"])
        self.n_components_ = int(params["n_components"])
        self.shift_ = to_numpy(net.shift).astype(np.float64)
        self.scale_ = to_numpy(net.scale).astype(np.float64)
        return self


def cpu_threads(device, work: int):
    """One torch thread for small CPU work (see SINGLE_THREAD_BELOW); restored afterwards."""
    from dltool.core.threads import single_thread_below

    return single_thread_below(device, work, SINGLE_THREAD_BELOW)


def step_work(net, batch_size: int) -> int:
    """Multiply-adds of one forward pass of `net` on a batch: batch x weights."""
    return batch_size * sum(p.numel() for p in net.parameters() if p.dim() > 1)


class run_folder:
    """The given run folder, or a temporary one removed on exit."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self._tmp = None

    def __enter__(self) -> Path:
        if self.run_dir is not None:
            return Path(self.run_dir)
        self._tmp = tempfile.TemporaryDirectory(prefix="dltool-autoencoder-")
        return Path(self._tmp.name)

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()


# ---------------------------------------------------------------- the command's flow


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything `dltool reduce autoencoder` needs; `engine` holds the shared training options."""

    engine: EngineConfig
    code_dim: int = 2
    kind: str = "undercomplete"
    hidden: str = "64,32"
    activation: str = "relu"
    scaling: str = "standard"
    sparsity: float = 1e-3
    noise: float = 0.2
    corruption: str = "gaussian"
    contractive: float = 1e-3
    batch_size: int = 64
    val_split: float = 0.1
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    dropna: bool = False
    out: Path | None = None
    force: bool = False
    device: str = "auto"
    options: dict = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict) -> AutoencoderConfig:
        from dltool.cli.train_options import task_config

        return task_config(cls, options, command_options=("table", "output", "plot", "report", "color_by"))

    def reducer_params(self) -> dict:
        return dict(n_components=self.code_dim, kind=self.kind, hidden=self.hidden, activation=self.activation,
                    scaling=self.scaling, sparsity=self.sparsity, noise=self.noise, corruption=self.corruption,
                    contractive=self.contractive, batch_size=self.batch_size, val_split=self.val_split)

    def validate(self) -> None:
        self.engine.validate()
        check_params(**self.reducer_params())


def feature_names(table, features: list[str] | None, exclude: list[str] | None) -> list[str]:
    """The feature columns fit_table will use (checked the same way, without its --dropna notice)."""
    from dltool.core import console
    from dltool.reduce import api

    api.check_exclude(table, exclude)
    was = console.is_quiet()
    console.set_quiet(True)
    try:
        return table.feature_matrix(features, exclude, dropna=True)[1]
    finally:
        console.set_quiet(was)


def reduce_table(table, cfg: AutoencoderConfig):
    """Train on the table's feature columns; return the reduce engine's ReduceResult (ae1..aeK columns)."""
    from dltool.core.io import prepare_run_dir
    from dltool.reduce import api

    cfg.validate()
    features = list(cfg.features) if cfg.features else None
    exclude = list(cfg.exclude) if cfg.exclude else None
    names = feature_names(table, features, exclude)  # no numeric columns -> a clear error before any file
    api.build_device(ARCH, AutoencoderReducer, cfg.device)  # --device cuda without CUDA fails here
    run_dir = prepare_run_dir(cfg.out, "reduce-autoencoder", force=cfg.force, resume=cfg.engine.resume)
    params = {**cfg.reducer_params(), "engine": cfg.engine, "run_dir": run_dir, "feature_names": names,
              "options": cfg.options}
    config = api.ReduceConfig(method=ARCH, params=params, features=features, exclude=exclude, dropna=cfg.dropna,
                              standardize=False, seed=cfg.engine.seed, device=cfg.device)
    return api.fit_table(table, config)
