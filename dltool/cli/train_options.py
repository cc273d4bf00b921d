"""Options of every `train` command, defined once: the shared training engine's knobs, and how a
command's options become a task's config (`task_config`)."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    ForceOpt,
    FormatOpt,
    QuietOpt,
    SeedOpt,
    declared_parameters,
    given_options,
    shared_options,
)


def _launch_processes(ctx: typer.Context, param, value: int):
    """--nproc N > 1: run this very command (as main() was given it) as N processes and exit with their
    code. Every train command gets scale-out by declaring the option; its body never sees N > 1."""
    if value is None or value == 1:
        return value
    from dltool.core import distributed as dist

    root = ctx.find_root()
    argv = (root.obj or {}).get("argv")
    if argv is None:
        raise typer.BadParameter("--nproc needs the dltool entry point (dltool.cli.main)")
    raise typer.Exit(dist.relaunch(value, dist.without_nproc(argv)))


EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training data.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Samples per step (in total, across --nproc processes).")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate (default: the optimizer's usual one).")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="sgd|momentum|nesterov|adagrad|rmsprop|adadelta|adam|adamw|lbfgs")]
MomentumOpt = Annotated[float | None, typer.Option("--momentum", help="Momentum of sgd and rmsprop (default 0), momentum and nesterov (default 0.9); other optimizers have none.")]
SchedulerOpt = Annotated[str, typer.Option("--scheduler", help="none|step|cosine|onecycle|plateau")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="L2 penalty (decoupled for adamw).")]
ClipNormOpt = Annotated[float | None, typer.Option("--clip-norm", help="Clip the global gradient norm to this value.")]
ClipValueOpt = Annotated[float | None, typer.Option("--clip-value", help="Clip every gradient value to [-v, v].")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Ramp the learning rate linearly from 0 over the first N optimizer steps, then follow --scheduler (0: off).")]
AccumulateOpt = Annotated[int, typer.Option("--accumulate", help="Compute each batch in N micro-batches, adding their gradients before one update: --batch-size that does not fit in memory.")]
EmaOpt = Annotated[float, typer.Option("--ema", help="Keep a moving average of the weights with this decay a step (say 0.999): it is validated and saved instead of the last step's weights (0: off).")]
InitOpt = Annotated[str, typer.Option("--init", help="Weight init: default|xavier|he.")]
EarlyStopOpt = Annotated[int, typer.Option("--early-stop", help="Stop after N epochs without improvement of the validation metric (0: off).")]
ValSplitOpt = Annotated[float, typer.Option("--val-split", help="Share of the training data held out (stratified, seeded) for validation.")]
ValDirOpt = Annotated[Path | None, typer.Option("--val", help="A separate validation set (overrides --val-split).")]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="Run folder (default: a new runs/<domain>-<task>/<time>/).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")]
TensorboardOpt = Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard event files to OUT/tensorboard.")]
AmpOpt = Annotated[bool | None, typer.Option("--amp/--no-amp", help="Automatic mixed precision: on CUDA unless --no-amp (bfloat16 or float16); on a CPU only with --amp (bfloat16: faster where the CPU computes it natively, AVX512-BF16 or AMX).")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the model (slow start, faster steps).")]
NprocOpt = Annotated[int, typer.Option("--nproc", callback=_launch_processes,
                                        help="Train with N processes on this machine (DDP, as under torchrun; --batch-size is split over them).")]
#: --nproc of the commands that run a model over many inputs (predict, embed): the inputs are split instead
InferNprocOpt = Annotated[int, typer.Option("--nproc", callback=_launch_processes,
                                            help="Spread the inputs over N processes on this machine; the output keeps their order.")]
ShardOpt = Annotated[str | None, typer.Option("--shard", help="I/N: only the I-th of N equal blocks of the inputs (0-based), for an array of jobs; their outputs concatenated in order are the whole.")]
SaveEveryOpt = Annotated[int, typer.Option("--save-every", help="Also write a resumable last.pt every N steps (0: at the end of each epoch only).")]
TimeLimitOpt = Annotated[float | None, typer.Option("--time-limit", help="Train for at most this many minutes: the epochs (and the schedule) are set from the first one's time.")]
FreezeBackboneOpt = Annotated[bool, typer.Option("--freeze-backbone", help="Train only the head; the frozen layers keep their BatchNorm statistics (with --pretrained).")]
UnfreezeAfterOpt = Annotated[int, typer.Option("--unfreeze-after", help="Train the head alone for N epochs, then the whole network (implies --freeze-backbone; 0: never).")]
BackboneLrScaleOpt = Annotated[float, typer.Option("--backbone-lr-scale", help="After --unfreeze-after, the backbone learns at this times the head's rate.")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="DataLoader workers when the data is not preloaded.")]
PreloadOpt = Annotated[bool | None, typer.Option("--preload/--no-preload", help="Hold the decoded dataset in memory on the device (default: when it fits in 2 GiB).")]


#: the engine's options, (name, type, default) in the order --help lists them after a command's own;
#: @engine_options gives them to a train command
ENGINE_OPTIONS = (
    ("epochs", EpochsOpt, 10),
    ("batch_size", BatchSizeOpt, 64),
    ("lr", LrOpt, None),
    ("optimizer", OptimizerOpt, "adam"),
    ("momentum", MomentumOpt, None),
    ("scheduler", SchedulerOpt, "none"),
    ("weight_decay", WeightDecayOpt, 0.0),
    ("clip_norm", ClipNormOpt, None),
    ("clip_value", ClipValueOpt, None),
    ("warmup", WarmupOpt, 0),
    ("accumulate", AccumulateOpt, 1),
    ("ema", EmaOpt, 0.0),
    ("init", InitOpt, "default"),
    ("early_stop", EarlyStopOpt, 0),
    ("val_split", ValSplitOpt, 0.1),
    ("val", ValDirOpt, None),
    ("out", OutDirOpt, None),
    ("force", ForceOpt, False),
    ("resume", ResumeOpt, False),
    ("save_every", SaveEveryOpt, 0),
    ("time_limit", TimeLimitOpt, None),
    ("tensorboard", TensorboardOpt, False),
    ("amp", AmpOpt, None),
    ("compile", CompileOpt, False),
    ("nproc", NprocOpt, 1),
    ("device", DeviceOpt, "auto"),
    ("seed", SeedOpt, 0),
    ("fmt", FormatOpt, "auto"),
    ("quiet", QuietOpt, False),
    ("config", ConfigOpt, None),
)


def engine_options(*, without: tuple[str, ...] = (), **defaults):
    """Give a train command the engine's options (ENGINE_OPTIONS) after its own, so that each is declared
    once and a new engine option reaches every train command.

    The command declares its own options, then a keyword-only `options: dict` that receives every option
    by name, its own and the engine's, and `given`, the names the user set (given_options): what
    `task_config` takes. The decorator's keywords set this
    command's defaults (`epochs=150, lr=0.004`); `without` names engine options the command does not offer
    (the generators have no --early-stop); an engine option the command declares itself replaces the
    shared one (text classify's --val is a file, not a folder; table commands' --format also takes npz)."""
    shared = shared_options(ENGINE_OPTIONS, "engine_options", {*defaults, *without})

    def decorate(command):
        declared = declared_parameters(command, "engine_options", "options", "dict")
        twice = sorted((set(defaults) | set(without)) & set(declared))
        if twice:
            raise TypeError(f"{command.__name__} declares {twice} itself: set the default or leave it out there")
        own = [p for name, p in declared.items() if name != "options"]
        contexts = {p.name for p in own if p.annotation is typer.Context}  # Typer's, not an option
        engine = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                    default=defaults.get(name, default))
                  for name, (kind, default) in shared.items() if name not in declared and name not in without]
        # the context tells which options the user set (options["given"], see given_options)
        context = [] if contexts else [inspect.Parameter("engine_ctx", inspect.Parameter.KEYWORD_ONLY,
                                                         annotation=typer.Context)]
        ctx_name = next(iter(contexts), "engine_ctx")

        @functools.wraps(command)
        def run(**values):
            options = {k: v for k, v in values.items() if k not in contexts and k != ctx_name}
            options["given"] = given_options(values[ctx_name])
            return command(**{p.name: values[p.name] for p in own}, options=options)

        # Typer reads a command's options from its signature
        run.__signature__ = inspect.Signature(own + engine + context)
        run.__annotations__ = {p.name: p.annotation for p in own + engine + context}
        return run

    return decorate


#: options the command layer itself uses (output, launch, console): no config field takes them;
#: `given` (what the user set) goes to a config that has the field
COMMAND_OPTIONS = ("config", "nproc", "fmt", "quiet", "given")
#: options that say where results go, not how the model is trained: left out of a run's config.toml,
#: so `--config runs/x/config.toml --out runs/y` repeats the recipe
UNSAVED_OPTIONS = ("out", "force", "resume", "config", "nproc", "fmt", "quiet", "given")


def task_config(cls, options: dict, *, command_options: tuple[str, ...] = (), unsaved: tuple[str, ...] = ()):
    """A task's frozen train config from a train command's options (the `options` @engine_options passes): the
    fields `cls` names, the engine's fields as `engine`, the shared run options as `run` (dltool.core.run,
    when `cls` has that field), and the recipe to save in config.toml as `options`.

    Every option must land somewhere: an option that matches no field (a renamed field, a typo) is a
    bug that would silently disconnect a flag, so it fails here. `command_options` names the
    command's own extra ones (e.g. the input table it reads itself); `unsaved` the options, fields or
    not, that say where results go rather than how to train (left out of config.toml). Column lists
    (`features`, `exclude`) come as comma-separated text."""
    from dataclasses import replace

    from dltool.cli.options import csv_list
    from dltool.core.run import RunConfig
    from dltool.core.train import EngineConfig

    engine_fields = EngineConfig.__dataclass_fields__
    run_fields = RunConfig.field_names() if "run" in cls.__dataclass_fields__ else ()
    own_fields = set(cls.__dataclass_fields__) - {"engine", "run", "options"}
    stray = sorted(set(options) - own_fields - set(engine_fields) - set(run_fields) - set(COMMAND_OPTIONS)
                   - set(command_options))
    if stray:
        raise TypeError(f"{cls.__name__}: options {stray} match no config field")
    own = {}
    for name in own_fields & set(options):
        value = options[name]
        if name in ("features", "exclude"):
            value = tuple(csv_list(value) if isinstance(value, str) else value or ()) or None
        own[name] = value
    if run_fields:  # the task's own run defaults (a GAN holds nothing out) for what the command does not offer
        own["run"] = replace(cls.__dataclass_fields__["run"].default, **{k: options[k] for k in run_fields if k in options})
    engine = EngineConfig(**{k: options[k] for k in engine_fields if k in options}, epoch_callbacks=_epoch_callbacks())
    saved = {k: v for k, v in options.items() if k not in UNSAVED_OPTIONS + tuple(unsaved)}
    return cls(engine=engine, options=saved, **own)


def _epoch_callbacks() -> tuple:
    """The epoch callbacks that whoever runs this command in-process gave main() (the tuner's runner)."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return tuple((ctx.find_root().obj or {}).get("epoch_callbacks", ())) if ctx is not None else ()
