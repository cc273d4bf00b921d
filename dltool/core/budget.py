"""--time-limit: how many epochs fit the time budget, planned after every epoch from the pace so far."""

from __future__ import annotations

import time

from dltool.core import distributed as dist

#: the share of the budget kept in reserve (the last epoch's validation, the final files)
RESERVE = 0.05
#: the least share of an epoch the budget's tail must hold to be trained as a last, shorter epoch
MIN_PART = 0.25


class TimeBudget:
    """As many epochs as fit the rest of the budget at the recent pace (Ultralytics' time=). The first
    epoch's pace leaves out its first step, which pays one-time costs (lazy imports, cuDNN autotuning);
    later epochs are timed whole. The loop tells it when an epoch's steps begin and end (`step`,
    `trained`), asks `late()` after each step, and `plan` at the end of each epoch."""

    def __init__(self, minutes: float, steps_per_epoch: int):
        self.minutes, self.steps_per_epoch = minutes, steps_per_epoch
        self.deadline = None
        self.per_epoch = None       # seconds an epoch takes, as the last plan measured it
        self._epoch_s = []          # every epoch's measured time
        self._pace = None           # (batch, time) after the first step of this process's current epoch
        self._trained_at = None     # when the current epoch's last step ended

    def start(self, t_start: float, elapsed_s: float) -> None:
        """The loop starts at `t_start`, the run having trained `elapsed_s` seconds before (a resume)."""
        self.deadline = t_start + self.minutes * 60 - elapsed_s

    def begin_epoch(self) -> None:
        self._pace = None

    def step(self, batch: int) -> None:
        """After a training step, `batch` steps into the epoch."""
        if self._pace is None:
            self._pace = (batch, time.perf_counter())  # after the first step's one-time costs

    def late(self) -> bool:
        return time.perf_counter() > self.deadline

    def trained(self) -> None:
        """The epoch's training steps are done (validation follows)."""
        self._trained_at = time.perf_counter()

    def plan(self, t_epoch: float, batch: int, epochs_done: int) -> tuple[int, int]:
        """(epochs, steps): the epochs that fit the budget, the same on every rank: `epochs_done` and as many
        more as the rest of it holds, the last of them cut short where the rest holds at least a quarter of
        one but not all of it (a schedule that ends with the budget uses its tail too); `steps` counts the
        run's optimizer steps to the end of the last. `t_epoch`: when this epoch began; `batch`: the steps it
        trained in this process."""
        now = time.perf_counter()
        validation_s = now - self._trained_at
        if not self._epoch_s:
            first_batch, t_first = self._pace
            timed = batch - first_batch
            per_step = (self._trained_at - t_first) / timed if timed > 0 else self._trained_at - t_epoch
            self._epoch_s.append(per_step * self.steps_per_epoch + validation_s)
        else:
            self._epoch_s.append(now - t_epoch)
        self.per_epoch = sum(self._epoch_s[-3:]) / len(self._epoch_s[-3:])
        left = self.deadline - RESERVE * self.minutes * 60 - now
        whole = max(0, int(left // self.per_epoch))
        step_s = max(self.per_epoch - validation_s, 1e-9) / self.steps_per_epoch
        part = int((left - whole * self.per_epoch - validation_s) / step_s + 1e-9)  # 5.9999... steps are 6
        part = part if MIN_PART * self.steps_per_epoch <= part < self.steps_per_epoch else 0
        epochs = epochs_done + whole + (part > 0)
        steps = (epochs_done + whole) * self.steps_per_epoch + part
        return dist.broadcast((epochs, steps))
