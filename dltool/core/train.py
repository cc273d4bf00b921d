"""The training engine: one loop for every neural task (minGPT trainer.py style).

Nothing here knows about images or text. What a task supplies (the Task protocol and the optional
hooks' defaults, TaskHooks) is in dltool.core.task; the Engine checks it when it is built.

The engine owns optimizers, schedulers, clipping, init, AMP, transfer learning (freezing, thawing),
checkpoints and exact resume at any step, interrupts, time budgets, metrics files, plots,
TensorBoard and the whole of distributed training: `start_run` joins the process group of a
torchrun / --nproc launch and seeds each rank; `Engine.fit` shards the batches per rank, wraps
DDP, validates on every rank's shard and reduces the metrics, agrees on stops, and lets rank 0
alone write. A task contains no distributed code.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dltool.core import distributed as dist
from dltool.core.budget import TimeBudget
from dltool.core.checkpoint import Position, RunFiles, cpu_copy, restore, train_state
from dltool.core.console import info, progress
from dltool.core.errors import DltoolError, InputError, Interrupted, OptionError, unknown_name
from dltool.core.io import write_json
from dltool.core.task import Task, hooks, overrides, trains_by_steps

DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 1e-3,
              "adadelta": 1.0, "adam": 1e-3, "adamw": 1e-3, "lbfgs": 1.0}
#: the momentum of the optimizers that have a momentum term, when --momentum is not given
DEFAULT_MOMENTUM = {"sgd": 0.0, "momentum": 0.9, "nesterov": 0.9, "rmsprop": 0.0}
SCHEDULERS = ("none", "step", "cosine", "onecycle", "plateau")
INITS = ("default", "xavier", "he")

#: options a resumed run may change: how and where it runs, not what it computes
#: (`epochs` too, where the scheduler's horizon does not depend on it: see _check_resume_options)
RESUME_MAY_CHANGE = ("early_stop", "tensorboard", "save_every", "compile", "amp", "device", "workers",
                     "preload")
EPOCHS_FREE_SCHEDULERS = ("none", "step", "plateau")
#: an epoch callback: fn(epoch, metrics) (see EngineConfig.epoch_callbacks)
EpochCallback = Callable[[int, dict], None]


@dataclass(frozen=True)
class EngineConfig:
    epochs: int = 10
    lr: float | None = None
    optimizer: str = "adam"
    momentum: float | None = None
    scheduler: str = "none"
    weight_decay: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    init: str = "default"
    early_stop: int = 0
    tensorboard: bool = False
    amp: bool | None = None  # None: on CUDA, off on a CPU
    compile: bool = False
    seed: int = 0
    resume: bool = False
    save_every: int = 0
    time_limit: float | None = None
    freeze_backbone: bool = False
    unfreeze_after: int = 0
    backbone_lr_scale: float = 0.1
    warmup: int = 0          # optimizer steps whose learning rate ramps linearly up to the schedule's
    accumulate: int = 1      # micro-batches each batch is computed in (gradients accumulated, one update)
    ema: float = 0.0         # decay of a moving average of the weights, validated and kept instead (0: off)
    #: `fn(epoch, metrics)` called on rank 0 after each epoch, once its checkpoint and metrics are written
    #: (`epoch` counts from 1; `metrics` is the epoch's metrics.jsonl row); raising StopTraining stops the
    #: run there, resumable with --resume (the command fails with TrainingStopped). Not an option: a
    #: program that runs commands in-process (the tuner, through the command layer) sets it, and it is
    #: never saved in config.toml
    epoch_callbacks: tuple[EpochCallback, ...] = field(default=(), compare=False, repr=False)

    def validate(self) -> None:
        if self.epochs < 1:
            raise OptionError(f"--epochs {self.epochs} must be at least 1")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr {self.lr} must be a positive number", "try --lr 0.001")
        if self.optimizer not in DEFAULT_LR:
            raise unknown_name("optimizer", self.optimizer, DEFAULT_LR)
        if self.momentum is not None:
            if self.optimizer not in DEFAULT_MOMENTUM:
                raise OptionError(f"--optimizer {self.optimizer} has no momentum term, so --momentum would do nothing",
                                  f"drop --momentum, or pick {'|'.join(DEFAULT_MOMENTUM)}")
            if not 0 <= self.momentum < 1:
                raise OptionError(f"--momentum {self.momentum} must be in [0, 1)", "try --momentum 0.9")
            if self.optimizer == "nesterov" and self.momentum == 0:
                raise OptionError("--optimizer nesterov needs --momentum above 0", "try --momentum 0.9")
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
        if self.save_every < 0:
            raise OptionError(f"--save-every {self.save_every} must be >= 0 (0: only at the end of each epoch)")
        if self.time_limit is not None and not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            raise OptionError(f"--time-limit {self.time_limit} must be a positive number of minutes")
        if self.unfreeze_after < 0:
            raise OptionError(f"--unfreeze-after {self.unfreeze_after} must be >= 0 (0: never)")
        if not self.backbone_lr_scale > 0:
            raise OptionError(f"--backbone-lr-scale {self.backbone_lr_scale} must be positive")
        if self.warmup < 0:
            raise OptionError(f"--warmup {self.warmup} must be >= 0 (0: no warm-up)")
        if self.accumulate < 1:
            raise OptionError(f"--accumulate {self.accumulate} must be at least 1 (1: no accumulation)")
        if not 0 <= self.ema < 1:
            raise OptionError(f"--ema {self.ema:g} must be in [0, 1) (0: off)", "try --ema 0.999")
        if self.accumulate > 1 and self.optimizer == "lbfgs":
            raise OptionError("--optimizer lbfgs re-evaluates the whole batch in its line search, so --accumulate "
                              "does not apply", "drop --accumulate or pick another optimizer")
        if self.unfreeze_after and self.optimizer == "lbfgs":
            raise OptionError("--unfreeze-after needs two learning rates; --optimizer lbfgs has one",
                              "pick another optimizer")
        if self.unfreeze_after and self.unfreeze_after >= self.epochs:
            raise OptionError(f"--unfreeze-after {self.unfreeze_after} leaves no epoch of the {self.epochs} "
                              "to train the whole network", f"use --epochs {self.unfreeze_after + 1} or more")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def momentum_value(self) -> float:
        """--momentum, or the optimizer's usual one (only asked of optimizers that have the term)."""
        return self.momentum if self.momentum is not None else DEFAULT_MOMENTUM[self.optimizer]

    @property
    def freezes(self) -> bool:
        """Whether the backbone starts frozen (--freeze-backbone, or --unfreeze-after N)."""
        return self.freeze_backbone or self.unfreeze_after > 0


def build_optimizer(cfg: EngineConfig, params):
    """`params`: a list of tensors, or of param-group dicts (each may set its own "lr")."""
    import torch

    lr, wd = cfg.learning_rate, cfg.weight_decay
    optim = torch.optim
    return {
        "sgd": lambda: optim.SGD(params, lr=lr, momentum=cfg.momentum_value, weight_decay=wd),
        "momentum": lambda: optim.SGD(params, lr=lr, momentum=cfg.momentum_value, weight_decay=wd),
        "nesterov": lambda: optim.SGD(params, lr=lr, momentum=cfg.momentum_value, nesterov=True, weight_decay=wd),
        "adagrad": lambda: optim.Adagrad(params, lr=lr, weight_decay=wd),
        "rmsprop": lambda: optim.RMSprop(params, lr=lr, alpha=0.99, momentum=cfg.momentum_value, weight_decay=wd),
        "adadelta": lambda: optim.Adadelta(params, lr=lr, rho=0.9, weight_decay=wd),
        "adam": lambda: optim.Adam(params, lr=lr, weight_decay=wd),
        "adamw": lambda: optim.AdamW(params, lr=lr, weight_decay=wd),
        "lbfgs": lambda: optim.LBFGS(params, lr=lr, max_iter=20, history_size=10, line_search_fn="strong_wolfe"),
    }[cfg.optimizer]()


def build_scheduler(cfg: EngineConfig, optimizer, steps_per_epoch: int, mode: str, epochs: int | None = None,
                    steps: int | None = None):
    """Returns (scheduler, when) with when in {None, 'batch', 'epoch', 'metric'}; `epochs` is the horizon,
    `steps` that of a per-step schedule where the last epoch is cut short (--time-limit)."""
    import torch.optim.lr_scheduler as s

    epochs = epochs or cfg.epochs
    if cfg.scheduler == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    if cfg.scheduler == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    if cfg.scheduler == "onecycle":
        max_lr = [g.get("initial_max_lr", g["lr"]) for g in optimizer.param_groups]
        for g, m in zip(optimizer.param_groups, max_lr):
            g["initial_max_lr"] = m  # kept, so a horizon set later (--time-limit) rebuilds the same peaks
        return s.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps or epochs * steps_per_epoch), "batch"
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


def toml_ready(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if v is None:
            continue  # TOML has no null: an absent key means "the default"
        out[k] = str(v) if isinstance(v, Path) else v
    return out


def _value_used(name: str, options: dict) -> str:
    """An option's value as the run used it: config.toml leaves out what was not set, which means the default
    (for --lr and --momentum, the optimizer's)."""
    if name in options:
        return repr(options[name])
    optimizer = options.get("optimizer", EngineConfig.optimizer)
    if name == "lr" and optimizer in DEFAULT_LR:
        return f"{DEFAULT_LR[optimizer]:g}, {optimizer}'s default"
    if name == "momentum" and optimizer in DEFAULT_MOMENTUM:
        return f"{DEFAULT_MOMENTUM[optimizer]:g}, {optimizer}'s default"
    return "not set"


# -- starting a run ------------------------------------------------------------------------------

def start_run(cfg: EngineConfig, *, device: str, out, name: str, force: bool = False,
              options: dict | None = None):
    """Everything before the data is loaded: join the process group when launched by torchrun or
    --nproc, pick this rank's device, seed it, and (rank 0) prepare the run folder, checking that a
    resumed run keeps its options. Returns (device, run_dir), the same run_dir on every rank.

    The global RNG gets seed + rank, so dropout masks and augmentation differ across ranks; what must
    agree across ranks (splits, data order) takes `cfg.seed` explicitly."""
    from dltool.core.device import resolve_device
    from dltool.core.io import prepare_run_dir
    from dltool.core.seed import seed_everything

    cfg.validate()
    dev = dist.setup(resolve_device(device))
    seed_everything(cfg.seed)  # + rank
    outcome = None
    if dist.is_main():
        try:
            run_dir = prepare_run_dir(out, name, force=force, resume=cfg.resume)
            if cfg.resume:
                _check_resume_options(run_dir, options or {}, cfg)
            outcome = ("ok", str(run_dir))
        except DltoolError as e:
            outcome = ("error", type(e).__name__, e.message, e.hint)
    outcome = dist.broadcast(outcome)  # the other ranks fail with rank 0's error instead of waiting
    if outcome[0] == "error":
        import dltool.core.errors as errors

        raise getattr(errors, outcome[1], DltoolError)(outcome[2], outcome[3])
    return dev, Path(outcome[1])


def _check_resume_options(run_dir: Path, options: dict, cfg: EngineConfig) -> None:
    """--resume with options that differ from the run's config.toml fails, naming each one."""
    import tomllib

    saved_path = next(iter([*run_dir.glob("config.toml"), *sorted(run_dir.glob("*/config.toml"))]), None)
    if saved_path is None:
        return
    saved = tomllib.loads(saved_path.read_text(encoding="utf-8"))
    now = toml_ready(options)
    may_change = set(RESUME_MAY_CHANGE)
    if cfg.scheduler in EPOCHS_FREE_SCHEDULERS and saved.get("scheduler") == cfg.scheduler:
        may_change.add("epochs")
    for name, f in EngineConfig.__dataclass_fields__.items():  # an engine option newer than the run, at its default
        if name not in saved and now.get(name) == f.default:
            may_change.add(name)
    may_change.add("plan")  # a record of which values were planned (dltool.core.plan); the values are keys too
    differ = [f"--{k.replace('_', '-')} (was {_value_used(k, saved)}, now {_value_used(k, now)})"
              for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k) and k not in may_change]
    if differ:
        raise OptionError(f"--resume {run_dir}: options differ from the run's config.toml: {'; '.join(differ)}",
                          f"resume with the original options (--config {saved_path} --resume)")


# -- epoch callbacks -------------------------------------------------------------------------------

class StopTraining(Exception):
    """Raised by an epoch callback to end training after this epoch; its message says why."""


class TrainingStopped(DltoolError):
    """Training ended by an epoch callback (e.g. a tuner pruning the trial); last.pt holds the epoch."""


def call_epoch_callbacks(callbacks: tuple[EpochCallback, ...], row: dict) -> str | None:
    """Call each `fn(epoch, metrics)` with the epoch's metrics.jsonl row; the reason to stop that one gave
    by raising StopTraining, or None."""
    try:
        for fn in callbacks:
            fn(row["epoch"], dict(row))
    except StopTraining as e:
        return str(e) or "stopped by an epoch callback"
    return None


# -- the loop ------------------------------------------------------------------------------------

class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop stops at a step boundary that every rank agrees on.

    A second Ctrl-C stops at once in a single process. Under a launcher the signal arrives twice
    by design (the terminal signals every process, then torchrun forwards it), so there repeats
    only set the flag; torchrun itself kills workers that do not finish within 30 s."""

    def __init__(self, repeat_aborts: bool):
        self.signal = None
        self.repeat_aborts = repeat_aborts
        self._old = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and self.repeat_aborts:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Engine:
    """`Engine(task, model, cfg, run_dir, device, options).fit(train_batches, val_batches)` trains `model`
    and returns the run's summary; afterwards `model` holds the weights saved in model.pt."""

    def __init__(self, task: Task, model, cfg: EngineConfig, run_dir: Path, device, options: dict | None = None):
        cfg.validate()
        self.task, self.model, self.cfg = hooks(task), model, cfg  # a TypeError here names what a task lacks
        self.by_steps = trains_by_steps(task)
        self.validates = overrides(task, "evaluate")
        self.task_name = type(task).__name__
        self.run_dir = Path(run_dir)
        self.device = device
        self.options = options or {}
        self.history: list[dict] = []
        self.pos = Position()
        self._t_start = None
        self._best_state = None
        self.files = RunFiles(self.run_dir, device)

    def fit(self, train_batches, val_batches=None) -> dict:
        self._setup(train_batches, val_batches)
        if self.finished:
            return self._finished_summary()
        self._t_start = time.perf_counter()  # the budget and train_time_s cover the loop, not the setup
        if self.budget is not None:
            self.budget.start(self._t_start, self.pos.elapsed_s)
        stop_reason = None
        try:
            with _StopFlag(repeat_aborts=not dist.launched()) as stop:
                while self.pos.epoch < self.epochs and stop_reason is None:
                    t_epoch = time.perf_counter()
                    outcome = self._train_epoch(train_batches, stop)
                    if outcome != "interrupted":
                        stop_reason = self._end_epoch(val_batches, t_epoch)
                        if outcome == "out of time":
                            stop_reason = f"--time-limit {self.cfg.time_limit:g} min reached"
                        more = stop_reason is None and self.pos.epoch < self.epochs
                        if more and dist.any_rank(stop.signal is not None)[0]:
                            outcome = "interrupted"  # between epochs: last.pt is already this position
                    if outcome == "interrupted":
                        if self.pos.batch:
                            self._checkpoint(self.run_dir / "last.pt", {"epoch": self.pos.epoch,
                                                                        "step": self.pos.batch})
                        raise Interrupted(
                            f"interrupted in epoch {self.pos.epoch + 1} after step {self.pos.batch}/"
                            f"{len(train_batches)}; the checkpoint is in {self.run_dir / 'last.pt'}",
                            "run the same command with --resume to continue")
        finally:
            if self.writer is not None:
                self.writer.close()
            self.files.check(wait=True)  # an interrupted run still leaves its checkpoints complete
        dist.barrier()
        if stop_reason:
            info(f"stop: {stop_reason}")
        return self._finish(stop_reason, self._elapsed())

    def _finished(self) -> str | None:
        """Why a resumed run has nothing left to train, or None."""
        cfg = self.cfg
        if self.pos.batch == 0 and self.pos.epoch >= self.epochs:
            return f"its {self.epochs} epochs are trained"
        if self.converged:
            return self.converged
        if cfg.early_stop and self.bad_epochs >= cfg.early_stop:
            return f"early stop: {self.monitor} had not improved for {cfg.early_stop} epochs"
        if cfg.time_limit is not None and self.pos.elapsed_s >= cfg.time_limit * 60:
            return f"its --time-limit of {cfg.time_limit:g} min is spent"
        return None

    def _finished_summary(self) -> dict:
        """--resume of a finished run: nothing is trained or written; the model holds model.pt's weights."""
        import json

        info(f"{self.run_dir} is finished ({self.finished}): nothing to resume, its files are unchanged")
        self.raw_model.load_state_dict(self.files.best_weights())
        return json.loads((self.run_dir / "summary.json").read_text(encoding="utf-8"))

    def _elapsed(self) -> float:
        """Training time of the whole run so far, across resumes."""
        if self._t_start is None:
            return self.pos.elapsed_s
        return self.pos.elapsed_s + time.perf_counter() - self._t_start

    # -- setup ---------------------------------------------------------------------------------
    def _setup(self, train_batches, val_batches) -> None:
        import torch

        cfg, task = self.cfg, self.task
        if val_batches is not None and not self.validates:
            raise TypeError(f"{self.task_name} has no evaluate: train it without validation data")
        if dist.world_size() > 1 and not dist.active():
            self.device = dist.setup(self.device)  # an Engine used without start_run under torchrun
        self.main = dist.is_main()
        rank, world = dist.rank(), dist.world_size()
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        model = self.model
        if not cfg.resume:
            init_weights(model, cfg.init)
        model.to(self.device)
        if self.cuda and task.channels_last:
            model.to(memory_format=torch.channels_last)
        self.raw_model = model
        if self.by_steps:
            if cfg.optimizer == "lbfgs" or cfg.freezes or cfg.accumulate > 1 or cfg.ema:
                raise OptionError("this model trains with several optimizers: --optimizer lbfgs, "
                                  "--freeze-backbone, --accumulate and --ema do not apply", "drop them")
            self.optimizers = {name: build_optimizer(cfg, params) for name, params in task.optimizers(model).items()}
        else:
            self.optimizers = {"model": build_optimizer(cfg, self._param_groups(model))}
        self.optimizer = next(iter(self.optimizers.values()))  # the first: its lr goes in the metrics
        self.ema = None
        if cfg.ema:
            from dltool.core.ema import ema_copy

            self.ema = ema_copy(model, cfg.ema)
        #: the weights validated and kept (best.pt, model.pt): the moving average with --ema
        self.kept_model = self.ema.module if self.ema is not None else model
        self.has_val = val_batches is not None
        self.monitor = f"val_{task.monitor}" if self.has_val else "train_loss"
        self.keep_last = task.monitor_mode == "last"
        self.mode = task.monitor_mode if self.has_val and not self.keep_last else "min"
        train_batches.shard(rank, world, split_batch=True)
        if self.has_val:
            val_batches.shard(rank, world, split_batch=False)
        self.steps_per_epoch = len(train_batches)
        self.epochs = cfg.epochs
        self.epochs_planned = None  # --time-limit: the epochs that fit the budget, planned every epoch,
        self.steps_planned = None   # and the step the last of them ends at (it may be cut short)
        self.budget = TimeBudget(cfg.time_limit, self.steps_per_epoch) if cfg.time_limit is not None else None
        self._build_schedulers()
        self.amp_dtype = None
        if self.cuda and cfg.amp is not False:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif self.device.type == "cpu" and cfg.amp:
            # asked for only: it pays where the CPU has native bfloat16 and a step is mostly matrix work (G2P's
            # lstm at batch 256 1.68x, a small convnet 1.0x: benchmarks/cpu_amp.py); elsewhere the casts cost
            self.amp_dtype = torch.bfloat16
        elif cfg.amp:
            raise OptionError(f"--amp is for CUDA and CPUs, not {self.device.type}", "drop --amp")
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.best, self.best_epoch, self.bad_epochs = None, 0, 0
        self.converged = None
        self.finished = None
        if cfg.resume:
            self._restore()
            finished = self._finished() if self.main and (self.run_dir / "summary.json").is_file() else None
            self.finished = dist.broadcast(finished)  # every rank returns early, or none
            if not self.finished:
                info(f"resuming {self.run_dir} at epoch {self.pos.epoch + 1}, step {self.pos.batch}")
        if self.main and not self.finished:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.files.write_config(toml_ready(self.options))  # on resume too: the options it finishes with
        if not cfg.resume:
            self._checkpoint(self.run_dir / "last.pt", {})  # resumable from the start
        self._trainable_epoch = None
        self.writer = None
        if cfg.tensorboard and self.main and not self.finished:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.pos.epoch + 1)

    def _param_groups(self, model):
        """The optimizer's parameters: with a frozen backbone that thaws later, two groups (head at --lr,
        backbone at --lr x --backbone-lr-scale); frozen parameters get no gradient, so no update."""
        cfg = self.cfg
        if not cfg.freezes:
            params = [p for p in model.parameters() if p.requires_grad]
            if not params:
                raise DltoolError("the model has no trainable parameters", "check the model")
            return params
        head = getattr(model, "head", None)
        if head is None:
            raise OptionError("--freeze-backbone: this model has no separate head to train alone",
                              "drop --freeze-backbone / --unfreeze-after")
        head_ids = {id(p) for p in head.parameters()}
        self.backbone = [p for p in model.parameters() if id(p) not in head_ids]
        head_params = list(head.parameters())
        if not cfg.unfreeze_after:
            return head_params
        return [{"params": head_params, "lr": cfg.learning_rate},
                {"params": self.backbone, "lr": cfg.learning_rate * cfg.backbone_lr_scale}]

    def _set_trainable(self) -> None:
        """Freeze the backbone, or thaw it from epoch --unfreeze-after; re-wrap DDP/compile on a change,
        since DDP registers its gradient hooks for the parameters trainable when it is built."""
        import torch

        cfg = self.cfg
        frozen = cfg.freezes and (not cfg.unfreeze_after or self.pos.epoch < cfg.unfreeze_after)
        if self._trainable_epoch is not None and frozen == self._frozen:
            return
        if cfg.freezes:
            for p in self.backbone:
                p.requires_grad = not frozen
            if self._trainable_epoch is not None and not frozen:
                info(f"epoch {self.pos.epoch + 1}: the whole network trains now "
                     f"(backbone at {cfg.backbone_lr_scale:g}x the head's learning rate)")
        self._frozen, self._trainable_epoch = frozen, self.pos.epoch
        model = self.raw_model
        if dist.active():
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[self.device] if self.cuda else None,
                                            find_unused_parameters=self.task.find_unused_parameters)
        if cfg.compile:
            model = torch.compile(model)
        self.train_model = model

    # -- one epoch -------------------------------------------------------------------------------
    def _train_epoch(self, batches, stop) -> str:
        """Train from the current position to the end of the epoch. Returns "done", "interrupted"
        (every rank stops after the same step) or "out of time" (the epoch is cut short)."""
        import torch

        self._set_trainable()
        pos, cfg = self.pos, self.cfg
        self.train_model.train()
        _keep_frozen_batchnorm_fixed(self.raw_model)
        batches.set_epoch(pos.epoch, pos.batch)
        if self.budget is not None:
            self.budget.begin_epoch()
        loss_sum = torch.full((), pos.loss_sum, device=self.device, dtype=torch.float64)
        distributed = dist.active()
        outcome = "done"
        todo = len(batches) - pos.batch
        if self.steps_planned is not None:
            todo = min(todo, self.steps_planned - pos.step)
        with progress(f"epoch {pos.epoch + 1}/{self.epochs}", todo) as advance:
            for batch in batches:
                loss = self._step(batch)
                if self.ema is not None:
                    self.ema.update_parameters(self.raw_model)
                n = len(batch[0])
                loss_sum += loss * n
                pos.seen += n
                pos.batch += 1
                pos.step += 1
                if self.when == "batch":
                    self._step_schedulers()
                advance()
                interrupted = stop.signal is not None
                late = False
                if self.budget is not None:
                    self.budget.step(pos.batch)
                    late = self.budget.late()
                if distributed:
                    interrupted, late = dist.any_rank(interrupted, late)
                if interrupted or late or (cfg.save_every and pos.step % cfg.save_every == 0):
                    pos.loss_sum = loss_sum.item()
                if interrupted:
                    return "interrupted"
                if cfg.save_every and pos.step % cfg.save_every == 0 and pos.batch < len(batches):
                    self._checkpoint(self.run_dir / "last.pt", {"epoch": pos.epoch, "step": pos.batch})
                if late:
                    outcome = "out of time"
                    break
                if self.steps_planned is not None and pos.step >= self.steps_planned:
                    break  # the budget's last epoch, planned shorter
        pos.loss_sum = loss_sum.item()
        if self.budget is not None:
            self.budget.trained()
        return outcome

    def _step(self, batch):
        import torch

        cfg, task, model, opt = self.cfg, self.task, self.train_model, self.optimizer
        if self.by_steps:
            with self._autocast():
                return task.train_step(model, batch, self._optimize, self.pos.step).detach()
        if cfg.optimizer == "lbfgs":
            def closure():
                opt.zero_grad(set_to_none=True)
                loss = task.loss(model, batch)
                loss.backward()
                self._clip(opt)
                return loss

            with self._warmed_up(opt):
                return opt.step(closure).detach()
        if cfg.accumulate > 1:
            return self._accumulated_step(batch)
        with self._autocast():
            loss = task.loss(model, batch)
        self._optimize("model", loss)
        return loss.detach() if isinstance(loss, torch.Tensor) else loss

    def _accumulated_step(self, batch):
        """--accumulate N: the batch in N micro-batches, each one's gradient added (weighted by its share of
        the items, so the update is the whole batch's where the loss is a mean over items), then one update.
        Under DDP the gradients are all-reduced once, on the last micro-batch. Positions count batches, so
        resume is as exact as without it."""
        import torch

        opt, model = self.optimizer, self.train_model
        n = len(batch[0])
        parts = [p for p in zip(*(t.tensor_split(self.cfg.accumulate) for t in batch)) if len(p[0])]
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for i, part in enumerate(parts):
            sync = i == len(parts) - 1 or not hasattr(model, "no_sync")
            with (contextlib.nullcontext() if sync else model.no_sync()):
                with self._autocast():
                    loss = self.task.loss(model, part) * (len(part[0]) / n)
                self._backward(loss)
            total += loss.detach().float()
        self._update(opt)
        return total

    def _optimize(self, name: str, loss) -> None:
        """One update of optimizer `name` from `loss`: zero its gradients, backpropagate, clip, step."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self._backward(loss)
        self._update(opt)

    def _backward(self, loss) -> None:
        import torch

        with torch.autocast(self.device.type if self.device.type in ("cpu", "cuda") else "cpu", enabled=False):
            # a task's train_step runs under autocast; the backward pass does not belong in it
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _update(self, opt) -> None:
        """Clip the gradients `_backward` left and step (through the AMP scaler when there is one)."""
        with self._warmed_up(opt):
            if self.scaler is not None:
                self.scaler.unscale_(opt)
                self._clip(opt)
                self.scaler.step(opt)
                self.scaler.update()
            else:
                self._clip(opt)
                opt.step()

    @contextlib.contextmanager
    def _warmed_up(self, opt):
        """--warmup W: update s (from 0) of the run steps at (s + 1) / W of the schedule's learning rate while
        s < W. The schedulers never see the factor (it is undone after the step), so every schedule runs as
        without warm-up, and the factor follows from the step count alone: exact on resume."""
        warmup, step = self.cfg.warmup, self.pos.step
        if step >= warmup:
            yield
            return
        saved = [g["lr"] for g in opt.param_groups]
        for g in opt.param_groups:
            g["lr"] = g["lr"] * (step + 1) / warmup
        try:
            yield
        finally:
            for g, lr in zip(opt.param_groups, saved):
                g["lr"] = lr

    def _build_schedulers(self, epochs: int | None = None, steps: int | None = None) -> None:
        self.schedulers = {}
        for name, opt in self.optimizers.items():
            scheduler, self.when = build_scheduler(self.cfg, opt, self.steps_per_epoch, self.mode, epochs=epochs,
                                                   steps=steps)
            if scheduler is not None:
                self.schedulers[name] = scheduler
        self.scheduler = next(iter(self.schedulers.values()), None)

    def _step_schedulers(self, *metric) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step(*metric)

    def _clip(self, optimizer) -> None:
        import torch

        if self.cfg.clip_value is None and self.cfg.clip_norm is None:
            return
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.cfg.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, self.cfg.clip_value)
        if self.cfg.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_norm)

    def _autocast(self):
        import torch

        if self.amp_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return torch.autocast(self.device.type if self.device.type in ("cpu", "cuda") else "cpu", enabled=False)

    # -- the end of an epoch ---------------------------------------------------------------------
    def _end_epoch(self, val_batches, t_epoch: float) -> str | None:
        """Validate, step the epoch scheduler, keep best/last, log. Returns a reason to stop, or None."""
        pos, task = self.pos, self.task
        train_loss = dist.mean_over_ranks(pos.loss_sum / max(1, pos.seen))
        if not math.isfinite(train_loss):
            raise DltoolError(f"training diverged: the loss is {train_loss} in epoch {pos.epoch + 1}",
                              "lower --lr, or use --clip-norm 1.0")
        row = {"epoch": pos.epoch + 1, "train_loss": train_loss, "lr": self.optimizer.param_groups[0]["lr"]}
        extra = dict(task.end_epoch(self.raw_model) or {})
        converged = extra.pop("stop", None)
        row.update(extra)
        if self.has_val:
            row.update({f"val_{k}": v for k, v in self._validate(val_batches).items()})
        row["time_s"] = round(time.perf_counter() - t_epoch, 4)
        if self.budget is not None:
            self._plan_to_budget(t_epoch)
        current = row.get(self.monitor)
        if self.when == "epoch":
            self._step_schedulers()
        elif self.when == "metric":
            self._step_schedulers(current)
        improved = self.keep_last or self.best is None or (current > self.best if self.mode == "max"
                                                           else current < self.best) or self._wins_tie(row)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = current, pos.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.history.append(row)
        self.converged = dist.broadcast(converged) or None  # in last.pt: a resumed run knows it is done
        self.pos = Position(epoch=pos.epoch + 1, step=pos.step, elapsed_s=pos.elapsed_s)  # the next epoch
        if improved:
            self._best_state = cpu_copy(self.kept_model.state_dict())  # every rank: fit ends with these
            if self.main:
                self.files.save(self.run_dir / "best.pt", self.task.payload(self.kept_model), row)
        self._checkpoint(self.run_dir / "last.pt", row)
        if self.main:
            shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float))
            info(f"epoch {row['epoch']}/{self.epochs} {shown}")
            self.files.write_history(self.history)
            if self.writer is not None:
                for k, v in row.items():
                    if k != "epoch" and isinstance(v, (int, float)):
                        self.writer.add_scalar(k, v, row["epoch"])
        stopped = dist.broadcast(call_epoch_callbacks(self.cfg.epoch_callbacks, row) if self.main else None)
        if stopped:
            self.files.check(wait=True)
            raise TrainingStopped(f"{stopped}; {self.run_dir / 'last.pt'} holds epoch {row['epoch']}",
                                  "run the same command with --resume to continue it")
        if self.cfg.early_stop and self.bad_epochs >= self.cfg.early_stop:
            return f"early stop: {self.monitor} has not improved for {self.cfg.early_stop} epochs"
        return self.converged

    def _wins_tie(self, row: dict) -> bool:
        """Whether an epoch that ties the best on the monitored metric beats it on the task's monitor_ties."""
        if self.task.monitor_ties is None or not self.has_val or row.get(self.monitor) != self.best:
            return False
        key = f"val_{self.task.monitor_ties}"
        best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        return best_row is not None and key in row and row[key] < best_row[key]

    def _validate(self, val_batches) -> dict:
        """Every rank validates its shard of the validation set; the metrics are combined over ranks."""
        import torch

        model = self.kept_model
        dist.sync_buffers(model)
        model.eval()
        n = val_batches.items()
        metrics = None
        if n:
            with torch.inference_mode(), self._autocast():
                metrics = self.task.evaluate(model, val_batches)
        parts = [(m, k) for m, k in dist.gather((metrics, n)) if k]
        if len(parts) <= 1:
            return parts[0][0] if parts else {}
        return self.task.combine_metrics(parts)

    def _plan_to_budget(self, t_epoch: float) -> None:
        """--time-limit: after every epoch, the epochs that fit the budget (dltool.core.budget), and the
        scheduler's horizon with them, rebuilt with its steps so far replayed whenever the plan changes."""
        import warnings

        if self.steps_planned is not None and self.pos.step >= self.steps_planned:
            return  # the plan's last step is taken: nothing is left to plan (nor is a shorter epoch's pace)
        planned, steps = self.budget.plan(t_epoch, self.pos.batch, self.pos.epoch + 1)
        if (planned, steps) == (self.epochs, self.steps_planned):
            return
        cut = steps - (planned - 1) * self.steps_per_epoch
        info(f"--time-limit {self.cfg.time_limit:g} min: an epoch takes {self.budget.per_epoch:.3g} s, "
             f"so {planned} epoch{'s' if planned != 1 else ''}"
             + (f", the last of {cut} of its {self.steps_per_epoch} steps" if cut < self.steps_per_epoch else ""))
        self.epochs, self.epochs_planned, self.steps_planned = planned, planned, steps
        if self.when in ("batch", "epoch"):
            for opt in self.optimizers.values():
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"]
            self._build_schedulers(epochs=self.epochs, steps=steps)
            with warnings.catch_warnings():
                # replaying steps the optimizer already took; torch warns about the order otherwise
                warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*", category=UserWarning)
                for _ in range(self.pos.step if self.when == "batch" else self.pos.epoch):
                    self._step_schedulers()

    # -- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, path: Path, metrics: dict) -> None:
        """A resumable checkpoint of the current position. Every rank calls it (their RNG states are
        gathered); rank 0 writes it."""
        state = train_state(self.pos, elapsed_s=self._elapsed(), epochs=self.epochs,
                            epochs_planned=self.epochs_planned, steps_planned=self.steps_planned,
                            optimizers=self.optimizers,
                            schedulers=self.schedulers, scaler=self.scaler, task=self.task, best=self.best,
                            best_epoch=self.best_epoch, bad_epochs=self.bad_epochs, history=self.history,
                            converged=self.converged, ema=self.ema)
        if self.main:
            self.files.save(path, self.task.payload(self.raw_model), metrics, state)

    def _restore(self) -> None:
        state, self.pos = restore(self.run_dir, model=self.raw_model, optimizers=self.optimizers,
                                  schedulers=self.schedulers, scaler=self.scaler, task=self.task, ema=self.ema)
        if self.cfg.time_limit is not None and state["epochs_planned"] is not None:
            self.epochs = self.epochs_planned = state["epochs_planned"]  # the budget's plan so far
            self.steps_planned = state.get("steps_planned")
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.converged = state.get("converged")
        self.history = list(state["history"])
        if self.pos.batch > self.steps_per_epoch:
            raise InputError(f"--resume: the checkpoint is at step {self.pos.batch} of an epoch that now has "
                             f"{self.steps_per_epoch}", "resume with the original data and --batch-size")

    def _finish(self, stop_reason: str | None, seconds: float) -> dict:
        """Write model.pt (the best epoch's), summary.json and curves.png; leave the model holding the
        weights of model.pt on every rank, so a task can go on using it without reading files."""
        if self._best_state is None:  # resumed, and no epoch since was better than before the interruption
            self._best_state = self.files.best_weights()
        self.raw_model.load_state_dict(self._best_state)
        best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), self.history[-1])
        summary = {"run_dir": str(self.run_dir), "model": str(self.run_dir / "model.pt"),
                   "epochs_run": len(self.history), "best_epoch": self.best_epoch, "monitor": self.monitor,
                   "best": self.best, "stopped_early": stop_reason is not None, "stop_reason": stop_reason,
                   "train_time_s": round(seconds, 3),
                   **{k: v for k, v in best_row.items() if k not in ("epoch", "lr", "time_s")}}
        if self.main:
            self.files.publish_model()
            write_json(self.run_dir / "summary.json", summary)
            from dltool.core.plots import plot_curves

            plot_curves(self.history, self.run_dir / "curves.png", best_epoch=self.best_epoch,
                        monitor=None if self.keep_last else self.monitor)
        return summary


def _keep_frozen_batchnorm_fixed(model) -> None:
    """A frozen layer's BatchNorm keeps its running statistics: it stays in eval mode while the rest trains."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.weight is not None and not m.weight.requires_grad:
            m.eval()
