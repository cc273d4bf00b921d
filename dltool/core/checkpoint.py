"""A training run's files and its exact resume (DESIGN.md §4), apart from the loop (dltool.core.train).

`RunFiles` writes best.pt and last.pt (model files, written atomically; last.pt also holds the whole
state of training), metrics.jsonl and config.toml. `train_state` is that state at a position of the
loop (every rank's random state, the optimizers', schedulers' and task's), and `restore` loads it back
for --resume, so a resumed run ends identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dltool.core import distributed as dist
from dltool.core.errors import DltoolError, OptionError
from dltool.core.io import atomic_open, atomic_path
from dltool.core.modelfile import load_checkpoint, save_model


@dataclass
class Position:
    """Where training stands: the epoch under way and how far into it (all a resume needs besides the
    model, optimizer, scheduler, scaler and RNG states)."""
    epoch: int = 0          # 0-based epoch under way
    batch: int = 0          # batches of it already trained on
    loss_sum: float = 0.0   # sum of item losses over those batches
    seen: int = 0           # items in those batches
    step: int = 0           # optimizer steps since the start of the run (for --save-every)
    elapsed_s: float = 0.0  # training time before this process started (for --time-limit)


class RunFiles:
    """The files of a run folder. Model files and metrics.jsonl are written through one writer, in
    order, and land atomically; `check` re-raises a failed write, `check(wait=True)` waits for all.

    Checkpoints and metrics are written on a background thread when the model trains on an
    accelerator (the host is idle). On a CPU run every core is training and a thread that serialises
    stalls their parallel regions (measured on 2 cores: 1.16x a hand loop's time vs 1.10x in line,
    benchmarks/train_overhead.py), so there files are serialised in line and only their landing (fsync,
    rename, fsync of the folder: ~12 ms a file, waiting on the disk, not the CPU) goes to a thread."""

    def __init__(self, run_dir: Path, device):
        from concurrent.futures import ThreadPoolExecutor

        self.run_dir = Path(run_dir)
        self.background = device.type != "cpu"
        self._pending = []
        if self.background:
            self._io, self._land = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dltool-checkpoint"), None
        else:
            self._io, self._land = _InLine(), _Landing(self._pending)

    def save(self, path: Path, payload: dict, metrics: dict, train_state: dict | None = None) -> None:
        """Write a model file atomically; in the background, from a CPU snapshot, on an accelerator."""
        snapshot = cpu_copy if self.background else (lambda obj: obj)
        payload = snapshot(payload)
        extra = {"train_state": snapshot(train_state)} if train_state is not None else {}
        self.check()
        self._pending.append(self._io.submit(save_model, path, **payload, metrics=dict(metrics), land=self._land,
                                             **extra))

    def write_history(self, history: list[dict]) -> None:
        """metrics.jsonl, rewritten atomically through the same writer as the checkpoints (after them)."""
        import json

        text = "".join(json.dumps(row) + "\n" for row in history)

        def write():
            with atomic_open(self.run_dir / "metrics.jsonl", land=self._land) as f:
                f.write(text)

        self._pending.append(self._io.submit(write))

    def write_config(self, options: dict) -> None:
        """config.toml: `options` as TOML has them (see dltool.core.train.toml_ready)."""
        import tomli_w

        with atomic_open(self.run_dir / "config.toml") as f:
            f.write(tomli_w.dumps(options))

    def check(self, wait: bool = False) -> None:
        """Re-raise a failed background write; with wait, block until every write has landed."""
        still = []
        for f in self._pending:
            if wait or f.done():
                f.result()
            else:
                still.append(f)
        self._pending[:] = still  # the same list: _Landing adds to it

    def best_weights(self) -> dict:
        """best.pt's weights (for a resumed run whose best epoch came before the interruption)."""
        return load_checkpoint(self.run_dir / "best.pt")["state_dict"]

    def publish_model(self) -> None:
        """model.pt: a copy of best.pt, landed atomically."""
        import shutil

        with atomic_path(self.run_dir / "model.pt") as tmp:
            shutil.copyfile(self.run_dir / "best.pt", tmp)


def train_state(pos: Position, *, elapsed_s: float, epochs: int, epochs_planned: int | None,
                steps_planned: int | None = None, optimizers: dict,
                schedulers: dict, scaler, task, best, best_epoch: int, bad_epochs: int, history: list[dict],
                converged: str | None = None, ema=None) -> dict:
    """The whole state of training at `pos`, for last.pt. Every rank calls it (their random states and
    loss sums are gathered); what it returns is for rank 0 to write."""
    return {"epoch": pos.epoch, "batch": pos.batch, "seen": pos.seen,
            "step": pos.step, "elapsed_s": elapsed_s,
            "epochs": epochs, "epochs_planned": epochs_planned, "steps_planned": steps_planned,
            "world": dist.world_size(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
            "scaler": scaler.state_dict() if scaler is not None else None,
            # what differs across ranks: random states, and the loss sum over the rank's own shard
            "ranks": dist.gather({"rng": rng_state(), "loss_sum": pos.loss_sum}),
            "task": task.state_dict(),
            "best": best, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
            "history": history, "converged": converged,
            "ema": ema.state_dict() if ema is not None else None}


def restore(run_dir: Path, *, model, optimizers: dict, schedulers: dict, scaler, task,
            ema=None) -> tuple[dict, Position]:
    """Load last.pt of `run_dir` into the model, optimizers, schedulers, scaler, task, the weights' moving
    average (--ema) and this process's random state; returns the saved state (for the loop's own numbers)
    and the position to go on from."""
    path = Path(run_dir) / "last.pt"
    ckpt = load_checkpoint(path)
    state = ckpt.get("train_state")
    if not state:
        raise DltoolError(f"{path} has no training state to resume from")
    if "ranks" not in state or "optimizers" not in state:
        raise DltoolError(f"{path} was written by an older dltool and cannot be resumed",
                          "start the run again without --resume")
    if state["world"] != dist.world_size():
        raise OptionError(f"--resume: the run was trained with {state['world']} process(es), this launch has "
                          f"{dist.world_size()}", f"resume with --nproc {state['world']} (or the same torchrun layout)")
    try:
        model.load_state_dict(ckpt["state_dict"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if ema is not None:
            ema.load_state_dict(state["ema"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise DltoolError(f"cannot resume {run_dir}: the checkpoint does not match these options ({e})",
                          "resume with the options of the original run (see its config.toml)") from None
    for name, scheduler in schedulers.items():
        if name in state["schedulers"]:
            scheduler.load_state_dict(state["schedulers"][name])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    if state.get("task") is not None:
        task.load_state_dict(state["task"])
    own = state["ranks"][dist.rank()]
    set_rng_state(own["rng"])
    pos = Position(epoch=int(state["epoch"]), batch=int(state["batch"]), loss_sum=float(own["loss_sum"]),
                   seen=int(state["seen"]), step=int(state["step"]), elapsed_s=float(state["elapsed_s"]))
    return state, pos


def rng_state() -> dict:
    """This process's random states (torch CPU and CUDA, NumPy, Python), as tensors and plain data."""
    import random

    import numpy as np
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def cpu_copy(obj):
    """A deep copy with every tensor cloned to CPU, safe to write while training mutates the originals."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class _Landing:
    """Lands atomic writes (fsync, rename) on a thread; the futures join the files' pending writes."""

    def __init__(self, pending: list):
        from concurrent.futures import ThreadPoolExecutor

        self.pending = pending
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dltool-fsync")

    def submit(self, fn, *args):
        future = self.pool.submit(fn, *args)
        self.pending.append(future)
        return future


class _InLine:
    """The executor interface, running each job at once on the calling thread."""

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future
