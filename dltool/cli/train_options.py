"""Options of every `train` command, defined once: the shared training engine's knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training data.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Samples per step (in total, across --nproc processes).")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate (default: the optimizer's usual one).")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="sgd|momentum|nesterov|adagrad|rmsprop|adadelta|adam|adamw|lbfgs")]
SchedulerOpt = Annotated[str, typer.Option("--scheduler", help="none|step|cosine|onecycle|plateau")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="L2 penalty (decoupled for adamw).")]
ClipNormOpt = Annotated[float | None, typer.Option("--clip-norm", help="Clip the global gradient norm to this value.")]
ClipValueOpt = Annotated[float | None, typer.Option("--clip-value", help="Clip every gradient value to [-v, v].")]
InitOpt = Annotated[str, typer.Option("--init", help="Weight init: default|xavier|he.")]
EarlyStopOpt = Annotated[int, typer.Option("--early-stop", help="Stop after N epochs without improvement of the validation metric (0: off).")]
ValSplitOpt = Annotated[float, typer.Option("--val-split", help="Share of the training data held out (stratified, seeded) for validation.")]
ValDirOpt = Annotated[Path | None, typer.Option("--val", help="A separate validation set (overrides --val-split).")]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="Run folder (default: a new runs/<domain>-<task>/<time>/).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")]
TensorboardOpt = Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard event files to OUT/tensorboard.")]
AmpOpt = Annotated[bool, typer.Option("--amp/--no-amp", help="Automatic mixed precision on CUDA.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the model (slow start, faster steps).")]
NprocOpt = Annotated[int, typer.Option("--nproc", help="Train with N processes (DDP via torch.distributed.run).")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="DataLoader workers when the data is not preloaded.")]
PreloadOpt = Annotated[bool | None, typer.Option("--preload/--no-preload", help="Hold the decoded dataset in memory on the device (default: when it fits in 2 GiB).")]
