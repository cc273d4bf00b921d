"""dltool tune run | show | ask | tell: hyperparameter search over any dltool command (Optuna).

Thin: flags merged over the spec file -> a validated Spec -> dltool.tune -> one JSON object or a table.
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import FormatOpt, QuietOpt, apply_console_options

app = typer.Typer(help="Search hyperparameters of any dltool command with Optuna.", no_args_is_help=True)

SpecArg = Annotated[Path | None, typer.Argument(help="TOML spec (command, metric, trials, [space]); flags override its keys.",
                                                dir_okay=False)]
StudyOpt = Annotated[str | None, typer.Option("--study", help="Study name (default: the spec file's name); the same name again resumes it.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Study folder: journal, trial run folders, plots (default: runs/tune/STUDY).")]
CommandOpt = Annotated[list[str] | None, typer.Option("--command", help="The dltool command to tune, as shell words without 'dltool' (spec key command); repeat for a chain whose last command prints the metric.")]
MetricOpt = Annotated[list[str] | None, typer.Option("--metric", help="Metric to optimise, NAME or NAME:max|min; repeat for a multi-objective study.")]
DirectionOpt = Annotated[str | None, typer.Option("--direction", help="maximize|minimize, for metrics without :max/:min (default maximize).")]
TrialsOpt = Annotated[int | None, typer.Option("--trials", help="Trials in the study, all workers together.")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Seconds after which a worker starts no new trial.")]
SamplerOpt = Annotated[str | None, typer.Option("--sampler", help="grid|random|tpe|cmaes|nsga2|qmc (default tpe).")]
PrunerOpt = Annotated[str | None, typer.Option("--pruner", help="none|median|hyperband: stop bad trials at an epoch (default none).")]
PrunerStartupOpt = Annotated[int | None, typer.Option("--pruner-startup", help="median: complete trials before it prunes (default 5).")]
TuneSeedOpt = Annotated[int | None, typer.Option("--seed", help="Sampler seed (default 0): reproducible with one worker.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Local worker processes sharing the study (default 1).")]
IsolateOpt = Annotated[bool | None, typer.Option("--isolate/--in-process", help="Run each trial in a subprocess (default: in this process).")]
StorageOpt = Annotated[str | None, typer.Option("--storage", help="Database URL (postgresql+psycopg://..., mysql://...) for workers on many machines; default: the study folder's journal file.")]
SpaceOpt = Annotated[list[str] | None, typer.Option("--space", help="A [space] entry as TOML, e.g. 'lr = { type = \"float\", low = 1e-4, high = 0.1, log = true }'; repeatable.")]


@functools.lru_cache(maxsize=1)
def _command_tree():
    """dltool's Click command tree (Typer builds it in ~0.5 s: once a process)."""
    from typer.main import get_command

    from dltool.cli.app import app

    return get_command(app)


class Runner:
    """dltool's commands as the tune domain runs them (dltool.tune.trial.Commands): the command layer
    hands this in, so tune imports no CLI. No state: it pickles into --workers processes."""

    def root(self):
        return _command_tree()

    def run(self, args: list[str], epoch_callbacks: tuple = ()) -> int:
        from dltool.cli import main

        try:
            main(list(args), epoch_callbacks=epoch_callbacks)
        except SystemExit as e:  # main() always exits
            return e.code if isinstance(e.code, int) else 1
        return 0

    def isolated(self) -> list[str]:
        return [sys.executable, "-m", "dltool.cli.tune"]


def _spec(spec_file, *, command, metric, direction, trials, timeout, sampler, pruner, seed, workers, isolate,
          storage, space, pruner_startup=None):
    """The spec file's keys with the flags given on top."""
    import shlex

    from dltool.tune.spec import build_spec, parse_space_lines, read_spec_file

    data = read_spec_file(spec_file) if spec_file is not None else {}
    if command:
        data["command"] = [shlex.split(c) for c in command]
    if metric:
        data["metric"] = metric[0] if len(metric) == 1 else list(metric)
    for key, value in (("direction", direction), ("trials", trials), ("timeout", timeout), ("sampler", sampler),
                       ("pruner", pruner), ("pruner_startup", pruner_startup), ("seed", seed), ("workers", workers),
                       ("isolate", isolate), ("storage", storage)):
        if value is not None:
            data[key] = value
    if space:
        data["space"] = {**data.get("space", {}), **parse_space_lines(space)}
    return build_spec(data)


def _new_ref(spec, spec_file, study, out):
    from dltool.core.errors import OptionError
    from dltool.tune.study import JOURNAL, STUDY_FILE, StudyRef, read_study_file

    name = study or (spec_file.stem if spec_file is not None else None)
    if not name:
        raise OptionError("no study name", "give --study NAME (or a spec file, whose name is the default)")
    folder = Path(out) if out is not None else Path("runs") / "tune" / name
    ref = StudyRef(name, folder, spec.storage or str(folder / JOURNAL))
    if (folder / STUDY_FILE).is_file():
        before = read_study_file(folder)
        if (before.name, before.storage) != (ref.name, ref.storage):
            raise OptionError(f"--out {folder} holds study '{before.name}' in {before.shown_storage}",
                              "choose another --out, or resume that study with its --study and --storage")
    return ref


def _existing_ref(study: str, out: Path | None, storage: str | None):
    """A study named by its folder, by --out, or by name with --storage (a database alone)."""
    from dltool.core.errors import InputError
    from dltool.tune.study import STUDY_FILE, StudyRef, read_study_file

    for folder in (Path(study), out, Path("runs") / "tune" / study):
        if folder is not None and (Path(folder) / STUDY_FILE).is_file():
            return read_study_file(Path(folder))
    if storage:
        return StudyRef(study, None, storage)
    raise InputError(f"no study folder '{study}'", "give the --out folder of dltool tune run, or the study name with --out or --storage")


@app.command("run")
def run(
    spec_file: SpecArg = None,
    study: StudyOpt = None,
    out: OutOpt = None,
    command: CommandOpt = None,
    metric: MetricOpt = None,
    direction: DirectionOpt = None,
    trials: TrialsOpt = None,
    timeout: TimeoutOpt = None,
    sampler: SamplerOpt = None,
    pruner: PrunerOpt = None,
    pruner_startup: PrunerStartupOpt = None,
    seed: TuneSeedOpt = None,
    workers: WorkersOpt = None,
    isolate: IsolateOpt = None,
    storage: StorageOpt = None,
    space: SpaceOpt = None,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
):
    """Run (or resume) a study: trials of a dltool command with sampled options.

    Each trial runs the spec's command with its parameters as options (or in {name} placeholders;
    {out} is the trial's folder), in this process unless --isolate, and reads the metric from the
    run's summary.json or the JSON the command prints. Prints the study's summary: counts and the
    best trial (the Pareto front with several metrics) with the command that reproduces it.

    Example: dltool tune run digits.toml --study digits --out runs/tune/digits --trials 20 --pruner median
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.tune import report
    from dltool.tune import study as studies

    spec = _spec(spec_file, command=command, metric=metric, direction=direction, trials=trials, timeout=timeout,
                 sampler=sampler, pruner=pruner, seed=seed, workers=workers, isolate=isolate, storage=storage,
                 space=space, pruner_startup=pruner_startup)
    ref = _new_ref(spec, spec_file, study, out)
    studies.run(spec, ref, Runner())
    result = studies.load_study(ref.storage, ref.name, spec)
    report.check_some_succeeded(result, spec, ref)
    emit_object(report.summarize(result, spec, ref), fmt)


@app.command("show")
def show(
    study: Annotated[str, typer.Argument(help="Study folder (the run's --out), or a study name with --out/--storage.")],
    out: OutOpt = None,
    storage: StorageOpt = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots into STUDY/plots.")] = True,
    best_command: Annotated[bool, typer.Option("--best-command", help="Print only the command line of the best trial.")] = False,
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
):
    """Show a study: trials, the best trial and its command, Pareto front, importances, plots.

    The trials table goes to stdout in --format (with --format json: one object holding everything);
    the best trial, importances and plot paths go to stderr. --best-command prints the shell command
    that reproduces the best trial, writing to STUDY/best (for Makefiles).

    Example: dltool tune show runs/tune/digits --format table
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    import json

    from dltool.core.console import info
    from dltool.core.errors import InputError
    from dltool.core.output import emit_object, emit_records
    from dltool.tune import report
    from dltool.tune import study as studies

    ref = _existing_ref(study, out, storage)
    result = studies.load_study(ref.storage, ref.name)
    spec = studies.stored_spec(result)
    if spec is None:
        raise InputError(f"study '{ref.name}' was not made by dltool tune", "show it with optuna's own tools")
    if best_command:
        summary = report.summarize(result, spec, ref)
        if "best" not in summary:
            raise InputError(f"study '{ref.name}' has no complete trial{'' if not spec.multi_objective else ' (several metrics: see the Pareto front)'}",
                             "run more trials with dltool tune run")
        print(summary["best"]["command"])
        return
    shown = report.show(result, spec, ref, (ref.folder / "plots") if plots and ref.folder else None)
    if fmt == "json":
        emit_object(shown, fmt)
        return
    emit_records(shown.pop("trial_table"), fmt)
    for key, value in shown.items():
        info(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


@app.command("ask")
def ask(
    spec_file: SpecArg = None,
    study: StudyOpt = None,
    out: OutOpt = None,
    command: CommandOpt = None,
    metric: MetricOpt = None,
    direction: DirectionOpt = None,
    sampler: SamplerOpt = None,
    seed: TuneSeedOpt = None,
    storage: StorageOpt = None,
    space: SpaceOpt = None,
    fmt: FormatOpt = "auto",
):
    """Start a trial for a shell loop: print its parameters and command as JSON.

    The trial stays running until `dltool tune tell` reports it. The printed object has "trial",
    "params", "run_dir", "args" (the argument lists) and "command" (a shell line).

    Example: dltool tune ask spec.toml --study s | jq -r .command
    """
    apply_console_options(fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.tune import study as studies

    # ask runs no trial itself: the budget is the caller's loop
    spec = _spec(spec_file, command=command, metric=metric, direction=direction, trials=1, timeout=None,
                 sampler=sampler, pruner=None, seed=seed, workers=None, isolate=None, storage=storage, space=space)
    emit_object(studies.ask(spec, _new_ref(spec, spec_file, study, out), Runner()), fmt)


@app.command("tell")
def tell(
    study: Annotated[str, typer.Argument(help="Study folder (or name with --out/--storage).")],
    trial: Annotated[int, typer.Argument(help="The trial number that dltool tune ask printed.")],
    result: Annotated[str | None, typer.Argument(help="Value(s) ('0.93', '0.93,12.5'), a JSON object of metrics, or '-' for stdin.")] = None,
    state: Annotated[str, typer.Option("--state", help="complete|pruned|fail.")] = "complete",
    out: OutOpt = None,
    storage: StorageOpt = None,
    fmt: FormatOpt = "auto",
):
    """Finish a trial started by ask: its metric value(s), or the JSON its command printed.

    A command's JSON on stdin: dltool cluster evaluate c.csv | dltool tune tell runs/tune/s 3 -

    Example: dltool tune tell runs/tune/s 3 0.93
    """
    apply_console_options(fmt=fmt)
    from dltool.core.output import emit_object
    from dltool.tune import study as studies

    if result == "-":
        result = sys.stdin.read()
    emit_object(studies.tell(_existing_ref(study, out, storage), trial, result, state), fmt)


if __name__ == "__main__":  # an --isolate trial's process (Runner.isolated)
    from dltool.tune.trial import isolated_main

    sys.exit(isolated_main(sys.argv[1:], Runner()))
