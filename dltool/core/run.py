"""The run config every train command shares: how and where it runs, whatever it trains. A task's
TrainConfig holds one as `run`, beside the engine's `EngineConfig` and its own options."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from dltool.core.errors import OptionError


@dataclass(frozen=True)
class RunConfig:
    """Validated on construction, so no task checks these again."""

    batch_size: int = 64
    val_split: float = 0.1
    val: Path | None = None     # a separate validation set (overrides val_split)
    out: Path | None = None     # the run folder (default: a new timestamped one under runs/)
    force: bool = False         # replace an existing run folder
    device: str = "auto"
    skip_bad: bool = False      # skip unreadable inputs with a warning instead of failing

    def __post_init__(self) -> None:
        check_batch_size(self.batch_size)
        if not (0 <= self.val_split < 1 and math.isfinite(self.val_split)):
            raise OptionError(f"--val-split {self.val_split} must be in [0, 1)", "e.g. --val-split 0.1, or 0 for none")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def check_batch_size(value: int, least: int = 1) -> None:
    """--batch-size of any command, training or inference."""
    if value < least:
        raise OptionError(f"--batch-size {value} must be at least {least}")


def recipe(cfg) -> dict:
    """What a train config saves in config.toml (and compares on --resume): its command's options and its data."""
    return {**cfg.options, "data": str(cfg.data)}


def start(cfg, name: str, options: dict | None = None):
    """dltool.core.train.start_run for a TrainConfig (its `engine` and `run`) -> (device, run_dir); `options`
    the recipe to save and compare on --resume (default: `recipe(cfg)`)."""
    from dltool.core.train import start_run

    return start_run(cfg.engine, device=cfg.run.device, out=cfg.run.out, name=name, force=cfg.run.force,
                     options=recipe(cfg) if options is None else options)
