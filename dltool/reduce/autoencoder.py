"""`dltool reduce autoencoder`: an MLP autoencoder (dltool.nn.autoencoder) as a drop-in for PCA.

`AutoencoderReducer` has scikit-learn's estimator shape and the reducer contract of base.py:
`fit(X)`, `fit_transform(X)` (the codes of the training rows), `transform(X)` (codes of new rows),
`state()`/`from_state()` for the model file; fitted attributes end in `_` (`net_`, `shift_`,
`scale_`, `history_`, `summary_`, `n_components_`).

Training runs on the shared engine (dltool.core.train), so --device cuda, checkpoints, --resume,
Ctrl-C, metrics.jsonl and curves.png work as for every other network. The engine writes the
model file itself (run folder `model.pt`, the best epoch by the monitored loss): task "reduce",
arch "autoencoder", arch_kwargs = the network and training parameters, preprocess =
{"features", "prefix": "ae", "scaling", "shift", "scale"} with x' = (x - shift) / scale
(dltool.core.scaling: standard, minmax or none). The same shift/scale are buffers of the network,
so `dltool reduce transform model.pt TABLE` embeds new rows like PCA's saved models do.

Without a run folder (`run_dir=None`, plain Python use) training happens in a temporary folder
that is removed afterwards; the fitted estimator keeps the weights. Defaults come from
dltool.reduce.config.AutoencoderConfig, the one place they are written.
"""

from __future__ import annotations

import numpy as np

from dltool.core.applies import Applies
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.run import check_batch_size
from dltool.core.tables import check_matrix
from dltool.reduce.base import Reducer, register_reducer, to_numpy
from dltool.reduce.config import AutoencoderConfig

ARCH = "autoencoder"
TASK = "reduce"
TRANSFORM_BATCH = 8192
_D = AutoencoderConfig  # the defaults


def check_params(*, n_components: int, kind: str, hidden, activation: str, scaling: str, sparsity: float,
                 noise: float, corruption: str, contractive: float, batch_size: int, val_split: float) -> None:
    """Option checks that need no data; each names the option, the value and what is allowed."""
    from dltool.core.scaling import SCALINGS
    from dltool.nn.activations import ACTIVATIONS
    from dltool.nn.autoencoder import CORRUPTIONS, KINDS
    from dltool.nn.mlp import parse_hidden

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
    if isinstance(batch_size, bool):
        raise OptionError(f"--batch-size {batch_size} must be a number")
    check_batch_size(batch_size)
    if not 0 <= val_split < 1:
        raise OptionError(f"--val-split {val_split} must be in [0, 1)", "use e.g. --val-split 0.1, or 0 for none")


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

    def __init__(self, n_components: int = _D.code_dim, *, kind: str = _D.kind, hidden=_D.hidden,
                 activation: str = _D.activation, scaling: str = _D.scaling, sparsity: float = _D.sparsity,
                 noise: float = _D.noise, corruption: str = _D.corruption, contractive: float = _D.contractive,
                 batch_size: int = _D.run.batch_size, val_split: float = _D.run.val_split, engine=None, run_dir=None,
                 feature_names=None, options=None, device: str = "cpu", seed: int = 0):
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
        from dltool.nn.mlp import parse_hidden

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
        from dltool.core.io import run_dir_or_temporary
        from dltool.core.seed import seed_everything
        from dltool.core.train import Engine, EngineConfig
        from dltool.nn.autoencoder import AutoencoderNet, AutoencoderTask, scaled_rows
        from dltool.nn.mlp import one_thread_if_small, parse_hidden

        check_params(**self._params())
        X = check_matrix(X, min_rows=2, what="reduce autoencoder")
        n, p = X.shape
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
        scaling, Xs = scaled_rows(X, self.scaling, device)
        self.shift_, self.scale_ = scaling.shift, scaling.scale
        net = AutoencoderNet(in_features=p, code_dim=int(self.n_components), hidden=parse_hidden(self.hidden),
                             activation=self.activation)
        net.set_scaling(self.shift_, self.scale_)
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
        with run_dir_or_temporary(self.run_dir) as run_dir, one_thread_if_small(device, net, self.batch_size):
            engine = Engine(task, net, engine_cfg, run_dir, device, dict(self.options or {}))
            self.summary_ = engine.fit(train_batches, val_batches)
            self.history_ = list(engine.history)
        self.net_ = net.to(device).eval()
        self.n_components_ = int(self.n_components)
        self.n_train_, self.n_val_ = len(tr), 0 if va is None else len(va)
        return self.transform(X)

    # -- using the fit ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise OptionError("this autoencoder is not fitted yet", "call fit(X) first")

    def transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        from dltool.nn.mlp import one_thread_if_small

        self._check_fitted()
        X = check_matrix(X, what="reduce transform")
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"the autoencoder was fitted on {self.n_features_in_} features, not {X.shape[1]}")
        device = torch.device(str(self.device))
        net = self.net_.to(device).eval()
        out = []
        with torch.inference_mode(), one_thread_if_small(device, net, min(len(X), TRANSFORM_BATCH)):
            for s in range(0, len(X), TRANSFORM_BATCH):
                xb = torch.as_tensor(X[s:s + TRANSFORM_BATCH], dtype=torch.float32, device=device)
                out.append(net.embed(xb).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, self.n_components_))

    def report(self) -> dict:
        from dltool.nn.mlp import parse_hidden

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
        from dltool.nn.autoencoder import AutoencoderNet

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


# ---------------------------------------------------------------- the command's flow


def reducer_params(cfg: AutoencoderConfig) -> dict:
    return dict(n_components=cfg.code_dim, kind=cfg.kind, hidden=cfg.hidden, activation=cfg.activation,
                scaling=cfg.scaling, sparsity=cfg.sparsity, noise=cfg.noise, corruption=cfg.corruption,
                contractive=cfg.contractive, batch_size=cfg.run.batch_size, val_split=cfg.run.val_split)


#: the options only some kinds take: the others refuse them when given (dltool.core.applies)
KIND_OPTIONS = Applies("kind", {"undercomplete": (), "sparse": ("sparsity",), "denoising": ("noise", "corruption"),
                                "contractive": ("contractive",)})


def check_config(cfg: AutoencoderConfig) -> None:
    """Every check that needs no data (the command runs it before reading the table)."""
    cfg.engine.validate()
    KIND_OPTIONS.check(cfg)
    check_params(**reducer_params(cfg))


def reduce_table(table, cfg: AutoencoderConfig):
    """Train on the table's feature columns in the run folder; the ReduceResult with ae1..aeK columns."""
    from dltool.core import run as runs
    from dltool.reduce import reduction
    from dltool.reduce.config import ReduceConfig

    check_config(cfg)
    reduction.check_color_by(table, cfg.color_by)
    reduction.check_exclude(table, cfg.exclude)
    # the feature columns the fit will use: no numeric columns is a clear error before any file
    names = table.feature_names(list(cfg.features) if cfg.features else None, list(cfg.exclude or ()))
    device, run_dir = runs.start(cfg, "reduce-autoencoder", cfg.options)
    params = {**reducer_params(cfg), "engine": cfg.engine, "run_dir": run_dir, "feature_names": names,
              "options": cfg.options}
    return reduction.reduce_table(table, ReduceConfig(
        method=ARCH, params=params, features=cfg.features, exclude=cfg.exclude, dropna=cfg.dropna,
        seed=cfg.engine.seed, device=str(device), report=cfg.report, plot=cfg.plot, color_by=cfg.color_by))
