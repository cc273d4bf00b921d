"""The training engine: one loop for every neural task (minGPT trainer.py style).

Nothing here knows about images or text. A task supplies:
  loss(model, batch) -> scalar tensor        (forward + loss on one training batch)
  evaluate(model, batches) -> dict           (validation metrics, "loss" among them)
  payload(model) -> dict                     (model-file fields: task, arch, arch_kwargs, ...)
  monitor, monitor_mode                      (the metric early stopping and best.pt follow; mode
                                              "min", "max", or "last": every epoch replaces best.pt, for
                                              losses against a moving target that rank no epochs)
  channels_last                              (whether the model is a convnet)
and may supply:
  end_epoch(model) -> dict | None            (after each training epoch, on every rank: extra numbers
                                              for the epoch's row; a "stop" key with a reason ends
                                              training after this epoch, e.g. a convergence test)
The engine owns optimizers, schedulers, clipping, init, AMP, checkpoints, resume, interrupts,
metrics files, plots, TensorBoard and DDP.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from dltool.core import distributed as dist
from dltool.core.console import info, progress
from dltool.core.errors import DltoolError, Interrupted, OptionError, unknown_name
from dltool.core.io import atomic_open, atomic_path, write_json
from dltool.core.modelfile import load_checkpoint, save_model

DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 1e-3,
              "adadelta": 1.0, "adam": 1e-3, "adamw": 1e-3, "lbfgs": 1.0}
SCHEDULERS = ("none", "step", "cosine", "onecycle", "plateau")
INITS = ("default", "xavier", "he")


@dataclass(frozen=True)
class EngineConfig:
    epochs: int = 10
    lr: float | None = None
    optimizer: str = "adam"
    scheduler: str = "none"
    weight_decay: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    init: str = "default"
    early_stop: int = 0
    tensorboard: bool = False
    amp: bool = True
    compile: bool = False
    seed: int = 0
    resume: bool = False

    def validate(self) -> None:
        if self.epochs < 1:
            raise OptionError(f"--epochs {self.epochs} must be at least 1")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr {self.lr} must be a positive number", "try --lr 0.001")
        if self.optimizer not in DEFAULT_LR:
            raise unknown_name("optimizer", self.optimizer, DEFAULT_LR)
        if self.scheduler not in SCHEDULERS:
            raise unknown_name("scheduler", self.scheduler, SCHEDULERS)
        if self.init not in INITS:
            raise unknown_name("init", self.init, INITS)
        if self.weight_decay < 0:
            raise OptionError(f"--weight-decay {self.weight_decay} must be >= 0")
        if self.optimizer == "lbfgs" and self.weight_decay:
            raise OptionError("--optimizer lbfgs has no weight decay", "drop --weight-decay or pick another optimizer")
        for name, v in (("--clip-norm", self.clip_norm), ("--clip-value", self.clip_value)):
            if v is not None and not v > 0:
                raise OptionError(f"{name} {v} must be positive")
        if self.early_stop < 0:
            raise OptionError(f"--early-stop {self.early_stop} must be >= 0 (0 turns it off)")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


def build_optimizer(cfg: EngineConfig, params):
    import torch

    lr, wd = cfg.learning_rate, cfg.weight_decay
    o = torch.optim
    return {
        "sgd": lambda: o.SGD(params, lr=lr, weight_decay=wd),
        "momentum": lambda: o.SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
        "nesterov": lambda: o.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
        "adagrad": lambda: o.Adagrad(params, lr=lr, weight_decay=wd),
        "rmsprop": lambda: o.RMSprop(params, lr=lr, alpha=0.99, weight_decay=wd),
        "adadelta": lambda: o.Adadelta(params, lr=lr, rho=0.9, weight_decay=wd),
        "adam": lambda: o.Adam(params, lr=lr, weight_decay=wd),
        "adamw": lambda: o.AdamW(params, lr=lr, weight_decay=wd),
        "lbfgs": lambda: o.LBFGS(params, lr=lr, max_iter=20, history_size=10, line_search_fn="strong_wolfe"),
    }[cfg.optimizer]()


def build_scheduler(cfg: EngineConfig, optimizer, steps_per_epoch: int, mode: str):
    """Returns (scheduler, when) with when in {None, 'batch', 'epoch', 'metric'}."""
    import torch.optim.lr_scheduler as s

    if cfg.scheduler == "step":
        return s.StepLR(optimizer, step_size=max(1, cfg.epochs // 3), gamma=0.1), "epoch"
    if cfg.scheduler == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=cfg.epochs), "epoch"
    if cfg.scheduler == "onecycle":
        return s.OneCycleLR(optimizer, max_lr=cfg.learning_rate, total_steps=cfg.epochs * steps_per_epoch), "batch"
    if cfg.scheduler == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode=mode, factor=0.1, patience=2), "metric"
    return None, None


def init_weights(model, scheme: str) -> None:
    """Xavier (Glorot) or He (Kaiming) init of conv and linear weights, zero biases."""
    import torch.nn as nn

    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _toml_ready(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if v is None:
            continue  # TOML has no null: an absent key means "the default"
        out[k] = str(v) if isinstance(v, Path) else v
    return out


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops at the next batch boundary."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Engine:
    def __init__(self, task, model, cfg: EngineConfig, run_dir: Path, device, options: dict | None = None):
        cfg.validate()
        self.task, self.model, self.cfg = task, model, cfg
        self.run_dir = Path(run_dir)
        self.device = device
        self.options = options or {}
        self.main = dist.is_main()
        self.history: list[dict] = []
        # Checkpoints and metrics are written on a background thread when the model trains on an
        # accelerator (the host is idle). On a CPU run every core is training and a writer thread
        # stalls their parallel regions: measured on 2 cores, 1.16x a hand loop's time vs 1.10x
        # writing in place (benchmarks/train_overhead.py), so there the writes happen in line.
        self._background_io = device.type != "cpu"
        if self._background_io:
            from concurrent.futures import ThreadPoolExecutor

            self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dltool-checkpoint")
        else:
            self._io = _InLine()
        self._pending = []

    # -- files -------------------------------------------------------------------------------
    def _write_config(self) -> None:
        import tomli_w

        with atomic_open(self.run_dir / "config.toml") as f:
            f.write(tomli_w.dumps(_toml_ready(self.options)))

    def _write_history(self) -> None:
        """metrics.jsonl, rewritten atomically through the same writer as the checkpoints (after them)."""
        import json

        text = "".join(json.dumps(row) + "\n" for row in self.history)

        def write():
            with atomic_open(self.run_dir / "metrics.jsonl") as f:
                f.write(text)

        self._pending.append(self._io.submit(write))

    def _save(self, path: Path, metrics: dict, train_state: dict | None = None) -> None:
        """Write a model file atomically; in the background, from a CPU snapshot, on an accelerator."""
        snapshot = _cpu_copy if self._background_io else (lambda obj: obj)
        payload = snapshot(self.task.payload(self.raw_model))
        extra = {"train_state": snapshot(train_state)} if train_state is not None else {}
        self._check_writes()
        self._pending.append(self._io.submit(save_model, path, **payload, metrics=dict(metrics), **extra))

    def _check_writes(self, wait: bool = False) -> None:
        """Re-raise a failed background write; with wait, block until every write has landed."""
        still = []
        for f in self._pending:
            if wait or f.done():
                f.result()
            else:
                still.append(f)
        self._pending = still

    def _train_state(self, epoch: int) -> dict:
        import torch

        state = {"epoch": epoch, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                 "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                 "rng_cpu": torch.get_rng_state(),
                 "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                 "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                 "history": self.history}
        return state

    def _restore(self) -> int:
        import torch

        ckpt = load_checkpoint(self.run_dir / "last.pt")
        state = ckpt.get("train_state")
        if not state:
            raise DltoolError(f"{self.run_dir / 'last.pt'} has no training state to resume from")
        try:
            self.raw_model.load_state_dict(ckpt["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise DltoolError(f"cannot resume {self.run_dir}: the checkpoint does not match these options ({e})",
                              "resume with the options of the original run (see its config.toml)") from None
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.history = list(state["history"])
        return int(state["epoch"])

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, train_batches, val_batches=None) -> dict:
        import torch

        cfg, task = self.cfg, self.task
        if dist.world_size() > 1 and not torch.distributed.is_initialized():
            # launched by torchrun, but the command never joined the process group (dist.setup):
            # every process would train alone and write the same files
            raise DltoolError("this command does not support multi-process (DDP) training yet",
                              "run it as a single process, without torchrun or --nproc")
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        model = self.model
        if not cfg.resume:
            init_weights(model, cfg.init)
        model.to(self.device)
        if cuda and getattr(task, "channels_last", False):
            model.to(memory_format=torch.channels_last)
        self.raw_model = model
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise DltoolError("the model has no trainable parameters", "drop --freeze-backbone or check the model")
        self.optimizer = build_optimizer(cfg, params)
        has_val = val_batches is not None
        monitor = f"val_{task.monitor}" if has_val else "train_loss"
        keep_last = task.monitor_mode == "last"
        mode = task.monitor_mode if has_val and not keep_last else "min"
        self.scheduler, when = build_scheduler(cfg, self.optimizer, len(train_batches), mode)
        amp_dtype = None
        if cuda and cfg.amp:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        self.best, self.best_epoch, self.bad_epochs = None, 0, 0

        start_epoch = 0
        if cfg.resume:
            start_epoch = self._restore()
            info(f"resuming {self.run_dir} at epoch {start_epoch + 1}")
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not cfg.resume:
                self._write_config()
                self._save(self.run_dir / "last.pt", {}, self._train_state(0))  # resumable from the start

        train_model = model
        if dist.world_size() > 1:
            from torch.nn.parallel import DistributedDataParallel

            train_model = DistributedDataParallel(model, device_ids=[self.device] if cuda else None)
        if cfg.compile:
            train_model = torch.compile(train_model)
        writer = None
        if cfg.tensorboard and self.main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=start_epoch + 1)

        def autocast():
            return torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else torch.autocast("cpu", enabled=False)

        def clip():
            if cfg.clip_value is not None:
                torch.nn.utils.clip_grad_value_(params, cfg.clip_value)
            if cfg.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)

        def train_step(batch):
            if cfg.optimizer == "lbfgs":
                def closure():
                    self.optimizer.zero_grad(set_to_none=True)
                    loss = task.loss(train_model, batch)
                    loss.backward()
                    clip()
                    return loss

                return self.optimizer.step(closure).detach()
            self.optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = task.loss(train_model, batch)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                clip()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                clip()
                self.optimizer.step()
            return loss.detach()

        t_start = time.perf_counter()
        stopped_early = False
        try:
            with _StopFlag() as stop:
                for epoch in range(start_epoch, cfg.epochs):
                    t0 = time.perf_counter()
                    train_model.train()
                    train_batches.set_epoch(epoch)
                    loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
                    seen = 0
                    with progress(f"epoch {epoch + 1}/{cfg.epochs}", len(train_batches)) as advance:
                        for batch in train_batches:
                            loss = train_step(batch)
                            loss_sum += loss * len(batch[0])
                            seen += len(batch[0])
                            if when == "batch":
                                self.scheduler.step()
                            advance()
                            if stop.signal is not None:
                                raise Interrupted(
                                    f"interrupted in epoch {epoch + 1}; the checkpoint after epoch {epoch} is in "
                                    f"{self.run_dir / 'last.pt'}", "run the same command with --resume to continue")
                    train_loss = dist.mean_over_ranks(loss_sum.item() / max(1, seen))
                    if not math.isfinite(train_loss):
                        raise DltoolError(f"training diverged: the loss is {train_loss} in epoch {epoch + 1}",
                                          "lower --lr, or use --clip-norm 1.0")
                    row = {"epoch": epoch + 1, "train_loss": train_loss,
                           "lr": self.optimizer.param_groups[0]["lr"]}
                    extra = dict(task.end_epoch(model) or {}) if hasattr(task, "end_epoch") else {}
                    converged = extra.pop("stop", None)
                    row.update(extra)
                    if has_val:
                        if self.main:
                            model.eval()
                            with torch.inference_mode(), autocast():
                                metrics = task.evaluate(model, val_batches)
                            row.update({f"val_{k}": v for k, v in metrics.items()})
                        dist.barrier()
                    row["time_s"] = round(time.perf_counter() - t0, 4)
                    current = dist.broadcast_value(row.get(monitor))
                    if when == "epoch":
                        self.scheduler.step()
                    elif when == "metric":
                        self.scheduler.step(current)
                    improved = keep_last or self.best is None or (current > self.best if mode == "max"
                                                                  else current < self.best)
                    if improved:
                        self.best, self.best_epoch, self.bad_epochs = current, epoch + 1, 0
                    else:
                        self.bad_epochs += 1
                    self.history.append(row)
                    if self.main:
                        shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch",)
                                         and isinstance(v, float))
                        info(f"epoch {epoch + 1}/{cfg.epochs} {shown}")
                        if improved:
                            self._save(self.run_dir / "best.pt", row)
                        self._save(self.run_dir / "last.pt", row, self._train_state(epoch + 1))
                        self._write_history()
                        if writer is not None:
                            for k, v in row.items():
                                if k != "epoch" and isinstance(v, (int, float)):
                                    writer.add_scalar(k, v, epoch + 1)
                    if cfg.early_stop and self.bad_epochs >= cfg.early_stop:
                        info(f"early stop: {monitor} has not improved for {cfg.early_stop} epochs")
                        stopped_early = True
                        break
                    if dist.broadcast_value(1.0 if converged else 0.0):
                        info(f"stop: {converged or 'converged'}")
                        stopped_early = True
                        break
        finally:
            if writer is not None:
                writer.close()
            self._check_writes(wait=True)  # an interrupted run still leaves its checkpoints complete
        dist.barrier()
        return self._finish(monitor, stopped_early, time.perf_counter() - t_start)

    def _finish(self, monitor: str, stopped_early: bool, seconds: float) -> dict:
        best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), self.history[-1])
        summary = {"run_dir": str(self.run_dir), "model": str(self.run_dir / "model.pt"),
                   "epochs_run": len(self.history), "best_epoch": self.best_epoch, "monitor": monitor,
                   "best": self.best, "stopped_early": stopped_early, "train_time_s": round(seconds, 3),
                   **{k: v for k, v in best_row.items() if k not in ("epoch", "lr", "time_s")}}
        if self.main:
            import shutil

            with atomic_path(self.run_dir / "model.pt") as tmp:
                shutil.copyfile(self.run_dir / "best.pt", tmp)
            write_json(self.run_dir / "summary.json", summary)
            from dltool.core.plots import plot_curves

            plot_curves(self.history, self.run_dir / "curves.png")
        return summary


class _InLine:
    """The executor interface, running each job at once on the calling thread."""

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _cpu_copy(obj):
    """A deep copy with every tensor cloned to CPU, safe to write while training mutates the originals."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


#: options that say where results go and how the command talks, not how the model is trained:
#: left out of a run's config.toml, so `--config runs/x/config.toml --out runs/y` repeats the recipe
UNSAVED_OPTIONS = ("out", "force", "resume", "config", "nproc", "fmt", "quiet", "output", "plot", "report")


def task_config(cls, options: dict):
    """A task's frozen train config from a command's options (its locals()): the fields `cls` names,
    the engine's fields as `engine`, and the recipe to save in config.toml as `options`.
    Column lists (`features`, `exclude`) may come as comma-separated text or lists."""
    own = {}
    for name in cls.__dataclass_fields__:
        if name in ("engine", "options") or name not in options:
            continue
        value = options[name]
        if name in ("features", "exclude"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            value = tuple(value) if value else None
        own[name] = value
    saved = {k: v for k, v in options.items() if k not in UNSAVED_OPTIONS}
    return cls(engine=engine_config(options), options=saved, **own)


def engine_config(options: dict) -> EngineConfig:
    """The engine's fields picked out of a command's options."""
    fields = EngineConfig.__dataclass_fields__
    return EngineConfig(**{k: options[k] for k in fields if k in options})


