"""What a task gives the training engine (dltool.core.train.Engine): the contract in code.

A task is any object with the members of `LossTask` or of `StepTask` (a typing.Protocol, checked
structurally: a task need not inherit anything). `check_task` checks them when the Engine is built, so
a new task's mistake fails there with a TypeError naming what is missing, not mid-epoch. The optional
hooks have defaults in `TaskHooks`: a task may inherit it and override what it needs; the engine reads
every hook through `hooks(task)`, which fills the ones a task lacks from these defaults.

Required of every task:
  payload(model) -> dict                     model-file fields: task, arch, arch_kwargs, ...
  monitor, monitor_mode                      the metric early stopping and best.pt follow; mode "min",
                                             "max", or "last": every epoch replaces best.pt, for losses
                                             against a moving target that rank no epochs
  channels_last                              whether the model is a convnet (channels_last memory on CUDA)
and one way to train:
  loss(model, batch) -> scalar tensor        forward + loss on one training batch (LossTask), or
  optimizers(model) -> {name: params}        for a model trained by more than one optimizer (a GAN's
  train_step(model, batch, optimize, step)   generator and discriminator): see StepTask
and of a task whose runs validate (every one but the GAN's, which has no validation loss):
  evaluate(model, batches) -> dict           validation metrics over the batches given, "loss" among
                                             them; means over items, or see combine_metrics
A model that supports --freeze-backbone has a `head` submodule: everything else is the backbone.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

MONITOR_MODES = ("min", "max", "last")


@runtime_checkable
class _TaskBase(Protocol):
    """What every task has (see the module's docstring)."""

    monitor: str
    monitor_mode: str
    channels_last: bool

    def payload(self, model) -> dict: ...


@runtime_checkable
class LossTask(_TaskBase, Protocol):
    """A task trained by one optimizer on a loss (the engine does the update: AMP, clipping, L-BFGS)."""

    def loss(self, model, batch) -> Any: ...


@runtime_checkable
class StepTask(_TaskBase, Protocol):
    """A task that drives its own updates: `optimizers` gives each optimizer's parameters (tensors, or
    param-group dicts that may set "lr" or "betas"; each gets --optimizer, --lr, --weight-decay and its
    own --scheduler); `train_step` runs one training step, calling `optimize(name, loss)` for each update
    (which zeroes that optimizer's gradients, backpropagates `loss`, scaled under AMP, clips and steps);
    `step` counts steps since the start of the run, exact on resume (for schedules such as --d-steps); it
    returns the loss to log as train_loss.

    Under DDP each `optimize` must follow exactly one forward of `model` (one call of the wrapped model per
    backward), so a task computes each update's loss in a single forward. Checkpoints hold every
    optimizer's and scheduler's state by name. A task with one optimizer may use this too, to act after
    each update (diffusion updates its EMA weights there: part of the model's state_dict, so it is
    checkpointed, resumed and saved in model.pt with no engine code)."""

    def optimizers(self, model) -> dict: ...

    def train_step(self, model, batch, optimize, step: int) -> Any: ...


Task = LossTask | StepTask


class TaskHooks:
    """The optional hooks of a task, with their defaults; a task class may inherit this."""

    #: True when one forward leaves some parameters out of the graph, as a discriminator step does the
    #: generator: DDP then looks for them
    find_unused_parameters: ClassVar[bool] = False
    #: a validation metric ("loss") that decides between epochs whose monitored metric ties, where that one
    #: is coarse (exact match on a small validation set, 0 for the first epochs); it is minimised. None: the
    #: earlier epoch stays
    monitor_ties: ClassVar[str | None] = None

    def evaluate(self, model, batches) -> dict:
        """Validation metrics over the batches given, "loss" among them (see the module's docstring). Without
        one of its own, a task trains only without validation data (the Engine refuses it before training)."""
        raise TypeError(f"{type(self).__name__} has no evaluate, so its runs cannot validate")

    def end_epoch(self, model) -> dict | None:
        """After each training epoch, on every rank: extra numbers for the epoch's row; a "stop" key with a
        reason ends training after this epoch (e.g. a convergence test)."""
        return None

    def state_dict(self) -> dict | None:
        """State the task keeps between steps (DEC's target distribution): saved in every checkpoint and
        given back to load_state_dict on resume; the same on every rank. None: nothing to keep."""
        return None

    def load_state_dict(self, state: dict) -> None:
        return None

    def combine_metrics(self, parts: list[tuple[dict, int]]) -> dict:
        """Validation under several processes: `parts` holds every rank's (metrics, n_items). The default is
        the mean weighted by items, exact for means such as loss and accuracy; a task whose metrics do not
        average (mAP) returns partial sums from evaluate and combines them here."""
        total = sum(k for _, k in parts)
        return {key: (sum(m[key] * k for m, k in parts) / total if isinstance(value, (int, float)) else value)
                for key, value in parts[0][0].items()}


_HOOKS = ("find_unused_parameters", "monitor_ties", "evaluate", "end_epoch", "state_dict", "load_state_dict",
          "combine_metrics")


class _WithHooks(TaskHooks):
    """A task that does not inherit TaskHooks, its missing hooks filled with the defaults."""

    def __init__(self, task):
        self._task = task
        for name in _HOOKS:
            if hasattr(task, name):
                setattr(self, name, getattr(task, name))

    def __getattr__(self, name: str):  # the required members, and anything else the task has
        return getattr(self._task, name)


def check_task(task) -> None:
    """A TypeError naming what `task` lacks of the Task protocol (or a monitor_mode it cannot have)."""
    name = type(task).__name__
    missing = [m for m in ("payload", "monitor", "monitor_mode", "channels_last")
               if not hasattr(task, m)]
    steps = [m for m in ("optimizers", "train_step") if hasattr(task, m)]
    if len(steps) == 1:
        other = "train_step" if steps == ["optimizers"] else "optimizers"
        missing.append(f"{other} (it has {steps[0]}: a task that drives its own updates needs both)")
    elif not steps and not hasattr(task, "loss"):
        missing.append("loss (or optimizers and train_step)")
    if missing:
        raise TypeError(f"{name} is not an engine task: it has no {', '.join(missing)} "
                        "(see dltool.core.task)")
    for m in ("evaluate", "payload", "loss", "optimizers", "train_step"):
        if hasattr(task, m) and not callable(getattr(task, m)):
            raise TypeError(f"{name}.{m} must be a method (see dltool.core.task)")
    if task.monitor_mode not in MONITOR_MODES:
        raise TypeError(f"{name}.monitor_mode is {task.monitor_mode!r}, not one of {'|'.join(MONITOR_MODES)}")
    if overrides(task, "state_dict") != overrides(task, "load_state_dict"):
        has, lacks = ("state_dict", "load_state_dict") if overrides(task, "state_dict") else \
            ("load_state_dict", "state_dict")
        raise TypeError(f"{name} has {has} but no {lacks}: a resumed run would lose the task's state")


def overrides(task, hook: str) -> bool:
    """Whether the task has a hook of its own (not TaskHooks' default)."""
    return hasattr(task, hook) and getattr(type(task), hook, None) is not getattr(TaskHooks, hook)


def hooks(task) -> TaskHooks:
    """`task` checked, as an object that has every optional hook: itself when it inherits TaskHooks."""
    check_task(task)
    return task if isinstance(task, TaskHooks) else _WithHooks(task)


def trains_by_steps(task) -> bool:
    """Whether the task drives its own updates (StepTask) rather than giving a loss."""
    return isinstance(task, StepTask)
