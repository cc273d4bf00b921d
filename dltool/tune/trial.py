"""One trial: the spec's command with the trial's parameters, run in this process (through the same
entry point as `dltool ...`, so imports are paid once) or in a subprocess (--isolate), and its metrics
read from the run's summary.json or the JSON object the command printed.

Nothing here knows any command, nor imports the command layer: the CLI hands tune a `Commands` object
(dltool/cli/tune.py) that shows the command tree and runs a command. A parameter becomes
`--name VALUE` (checked against the command's own options before the first trial), or fills a `{name}`
placeholder; `{out}` is the trial's folder. A command with an --out option gets --out TRIAL_FOLDER
unless the spec gives one.

Pruning: the trial hands the command an epoch callback (dltool.core.train.EngineConfig.epoch_callbacks,
through Commands.run), reports the objective after each epoch, and stops a trial that Optuna prunes
inside its own process; its run folder keeps last.pt, so the run can be continued with --resume.
"""

from __future__ import annotations

import io
import json
import math
import shlex
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dltool.core.errors import OptionError, suggest
from dltool.tune.spec import Param, Spec, spec_error

#: exit status of an isolated trial that was pruned (the command itself exits 1 when stopped)
PRUNED_EXIT = 3


class MetricNotReported(OptionError):
    """The command ran but never reports the metric: no trial can succeed, so the study stops."""


@dataclass
class Outcome:
    state: str                       # "complete" | "pruned" | "failed"
    values: list[float] | None = None
    error: str | None = None
    metrics: dict = field(default_factory=dict)


class Commands(Protocol):
    """dltool's commands as tune uses them, handed in by the command layer (layers point one way: the
    CLI calls tune, tune never imports the CLI). Picklable, so --workers processes get it too."""

    def root(self):
        """The Click group of `dltool` (asked through list_commands/get_command; a command's params)."""

    def run(self, args: list[str], epoch_callbacks: tuple = ()) -> int:
        """Run `dltool ARGS` in this process, its training engines calling `epoch_callbacks`; the exit status."""

    def isolated(self) -> list[str]:
        """The argv of a process that runs one --isolate trial, given STORAGE STUDY NUMBER LINES_JSON after
        it (and calls isolated_main)."""


# -- the command line of a trial ----------------------------------------------------------------

def _leaf_command(args: tuple[str, ...], commands: Commands):
    """The Click command that `dltool ARGS` runs, or a spec error naming the unknown word. Groups are
    asked through get_command/list_commands, so a root that builds its domains lazily works too."""
    cmd, path = commands.root(), []
    for word in args:
        if not hasattr(cmd, "list_commands"):
            return cmd
        names = cmd.list_commands(None)
        sub = cmd.get_command(None, word) if word in names else None
        if sub is None:
            raise spec_error("command", f"'dltool {' '.join([*path, word])}' is not a dltool command",
                             suggest(word, names) or f"'dltool {' '.join(path)}' has: {', '.join(sorted(names))}")
        cmd, path = sub, [*path, word]
    if hasattr(cmd, "list_commands"):
        raise spec_error("command", f"'dltool {' '.join(path)}' needs a subcommand",
                         f"one of: {', '.join(sorted(cmd.list_commands(None)))}")
    return cmd


def _options(cmd) -> dict[str, object]:
    """Every option string of a command -> its Click parameter."""
    return {o: p for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
            if o.startswith("-")}


def placeholders(spec: Spec) -> set[str]:
    """The parameter names the commands use as `{name}`."""
    return {p.name for p in spec.space for c in spec.commands for a in c if "{" + p.name + "}" in a}


def check_commands(spec: Spec, commands: Commands) -> None:
    """Before any trial: every command exists, and every parameter that is not a placeholder is an
    option of the first command (the one being tuned), for each algorithm a categorical placeholder
    can choose (`command = ["cluster", "{algorithm}", ...]`) on the parameter's branch."""
    import itertools

    used = placeholders(spec)
    for p in spec.space:
        if p.name in used and p.when:
            raise spec_error(f"space.{p.name}", "fills a {placeholder} of the command, so it cannot sit on a branch (when)")
    for c in spec.commands[1:]:
        _leaf_command(tuple(c), commands)
    first = spec.commands[0]
    chooser = [p for p in spec.space if p.name in used and p.type == "categorical"
               and any("{" + p.name + "}" in a for a in first)]
    for combo in itertools.product(*(p.choices for p in chooser)):
        chosen = {p.name: v for p, v in zip(chooser, combo)}
        args = tuple(a.format_map(_Fill({k: str(v) for k, v in chosen.items()})) for a in first)
        options = _options(_leaf_command(args, commands))
        for p in spec.space:
            on_branch = all(chosen[parent] in allowed for parent, allowed in p.when if parent in chosen)
            if p.name in used or not on_branch:
                continue
            where = f"'dltool {' '.join(args[:3])}'"
            if p.option not in options:
                raise spec_error(f"space.{p.name}", f"'{p.option}' is not an option of {where}",
                                 suggest(p.option, options) or "name the option with flag = \"--...\", or use {"
                                 + p.name + "} in the command")
            if getattr(options[p.option], "is_flag", False) and not (
                    p.type == "categorical" and all(isinstance(v, bool) for v in p.choices)):
                raise spec_error(f"space.{p.name}", f"'{p.option}' of {where} is a switch",
                                 "make it categorical with choices = [true, false]")


def _value_args(p: Param, value, options: dict) -> list[str]:
    if isinstance(value, bool):
        option = options[p.option]
        if value:
            return [p.option] if p.option in option.opts else [option.opts[0]]
        return [option.secondary_opts[0]] if option.secondary_opts else []
    return [p.option, repr(value) if isinstance(value, float) else str(value)]


def command_lines(spec: Spec, params: dict, run_dir: Path, commands: Commands) -> list[list[str]]:
    """The argument lists of a trial's commands."""
    used = placeholders(spec)
    fills = {"out": str(run_dir), **{k: str(v) for k, v in params.items() if k in used}}
    lines = []
    for i, c in enumerate(spec.commands):
        args = [a.format_map(_Fill(fills)) for a in c]
        if i == 0:
            options = _options(_leaf_command(tuple(args), commands))
            for p in spec.space:
                if p.name in params and p.name not in used:
                    args += _value_args(p, params[p.name], options)
            if "--out" in options and "--out" not in args and not any(a.startswith("--out=") for a in args):
                args += ["--out", str(run_dir)]
        lines.append(args)
    return lines


class _Fill(dict):
    """str.format_map that leaves unknown {words} (say a JSON snippet) as they are."""

    def __missing__(self, key):
        return "{" + key + "}"


def shell_line(lines: list[list[str]]) -> str:
    return " && ".join(shlex.join(["dltool", *args]) for args in lines)


# -- running it ------------------------------------------------------------------------------------

def run_commands(lines: list[list[str]], commands: Commands, on_epoch=None) -> tuple[int, str, str]:
    """Run the commands in this process, one after the other until one fails; returns the last exit
    status and what the commands wrote to stdout (the last one's) and stderr (all)."""
    from dltool.core.console import is_quiet, set_quiet

    code, out, err = 0, "", io.StringIO()
    for args in lines:
        stdout, quiet = io.StringIO(), is_quiet()
        try:
            with redirect_stdout(stdout), redirect_stderr(err):
                code = commands.run(list(args), (on_epoch,) if on_epoch is not None else ())
        finally:
            set_quiet(quiet)  # --quiet of a trial's command is process-wide state
        out = stdout.getvalue()
        if code == 130:
            raise KeyboardInterrupt
        if code != 0:
            break
    return code, out, err.getvalue()


def pruning_reporter(trial, spec: Spec, state: dict):
    """An epoch callback that reports the objective to the trial and stops it when Optuna prunes it."""
    from dltool.core.train import StopTraining

    metric = spec.objectives[0].metric

    def report(epoch: int, metrics: dict):
        value = metrics.get(metric)
        if spec.multi_objective or spec.pruner == "none" or not isinstance(value, (int, float)):
            return
        trial.report(float(value), epoch)
        if trial.should_prune():
            state["pruned"] = f"pruned by tune after epoch {epoch} ({metric} = {value:.4g})"
            raise StopTraining(state["pruned"])

    return report


def run_trial(spec: Spec, trial, lines: list[list[str]], run_dir: Path, storage: str, study_name: str,
              commands: Commands) -> Outcome:
    """Run one trial's commands and read its objectives; its output goes to TRIAL_FOLDER.log."""
    state = {}
    if spec.isolate:
        import subprocess

        proc = subprocess.run([*commands.isolated(), storage, study_name, str(trial.number), json.dumps(lines)],
                              capture_output=True, text=True)
        if proc.returncode == 130:
            raise KeyboardInterrupt
        code, out, err = proc.returncode, proc.stdout, proc.stderr
        if code == PRUNED_EXIT:
            state["pruned"] = _error_line(err, code)
    else:
        code, out, err = run_commands(lines, commands, pruning_reporter(trial, spec, state))
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    (run_dir.parent / f"{run_dir.name}.log").write_text(
        f"$ {shell_line(lines)}\n{err}" + (f"--- stdout ---\n{out}" if out else ""), encoding="utf-8")
    if "pruned" in state:
        return Outcome("pruned", error=state["pruned"])
    if code != 0:
        return Outcome("failed", error=_error_line(err, code))
    metrics = read_metrics(out, run_dir)
    values = []
    for o in spec.objectives:
        if o.metric not in metrics:
            raise MetricNotReported(
                f"metric '{o.metric}': the command never reports it (it reports: "
                f"{', '.join(sorted(k for k, v in metrics.items() if _is_number(v))) or 'nothing'})",
                "name one of those in metric =, or change the command")
        v = metrics[o.metric]
        if not _is_number(v) or not math.isfinite(v):
            return Outcome("failed", error=f"metric '{o.metric}' is {v!r}, not a finite number", metrics=metrics)
        values.append(float(v))
    return Outcome("complete", values=values, metrics=metrics)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _error_line(stderr: str, code: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    line = (errors or lines or [f"exit status {code}"])[-1]
    return line.removeprefix("error:").strip()


def read_metrics(stdout: str, run_dir: Path) -> dict:
    """The run's summary.json (when the command wrote one), updated with the JSON object it printed."""
    metrics = {}
    summary = run_dir / "summary.json"
    if summary.is_file():
        metrics.update(json.loads(summary.read_text(encoding="utf-8")))
    printed = _printed_object(stdout)
    if printed:
        metrics.update(printed)
    return metrics


def _printed_object(text: str) -> dict | None:
    """The JSON object a command printed: all of stdout (--format json), or its last JSON line."""
    for chunk in (text, *reversed(text.splitlines())):
        try:
            obj = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def isolated_main(argv: list[str], commands: Commands) -> int:
    """The process of an --isolate trial (Commands.isolated, then STORAGE STUDY NUMBER LINES_JSON): run
    it, reporting its epochs to the study; its exit status, PRUNED_EXIT when pruned."""
    import optuna

    from dltool.tune.spec import build_spec
    from dltool.tune.study import load_study

    storage, name, number, lines = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    study = load_study(storage, name)
    spec = build_spec(study.user_attrs["dltool_spec"])
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    trial = optuna.trial.Trial(study, frozen._trial_id)
    state = {}
    code, out, err = run_commands(lines, commands, pruning_reporter(trial, spec, state))
    sys.stdout.write(out)
    sys.stderr.write(err)
    if "pruned" in state:
        print(f"error: {state['pruned']}", file=sys.stderr)
        return PRUNED_EXIT
    return code
