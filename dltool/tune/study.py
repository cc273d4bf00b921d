"""Studies: storage, samplers, pruners and the workers that run trials.

The study folder holds study.toml (the study's name and storage), Optuna's JournalStorage file
journal.log by default (safe for several processes on one machine: it locks the file) and one run
folder per trial under trials/. `--storage URL` puts the study in a database through SQLAlchemy
instead, so that workers on several machines join it. The spec is also kept in the study itself
(a user attribute), so every worker, `tune show` and a resumed run read the same search.

A worker loops: give back the trials of dead workers, stop when the budget is spent, ask Optuna for a
trial, run it, tell Optuna how it went. The budget counts trials that ran or run (complete, pruned,
failed with an error, running); a trial whose worker died (same machine, its process gone) or was
interrupted is marked failed and its parameters are queued again, so killing a worker and starting it
again resumes the study.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tomllib

from dltool.core.console import info, warn
from dltool.core.errors import DltoolError, InputError, OptionError
from dltool.tune.spec import Spec, build_spec

if TYPE_CHECKING:
    from dltool.tune.trial import Commands

STUDY_FILE = "study.toml"
JOURNAL = "journal.log"
SPEC_ATTR = "dltool_spec"


@dataclass(frozen=True)
class StudyRef:
    name: str
    folder: Path | None     # the study folder (run folders, plots); None for a database-only `show`
    storage: str            # a database URL, or the journal file's path

    @property
    def shown_storage(self) -> str:
        return redact(self.storage)


def redact(storage: str) -> str:
    if "://" not in storage:
        return storage
    from sqlalchemy.engine import make_url

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:
        return storage.split("://", 1)[0] + "://..."


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(storage: str):
    """Optuna storage for a journal file path or a database URL; an unreachable database fails clearly."""
    import optuna

    _quiet_optuna()
    if "://" not in storage:
        from optuna.storages.journal import JournalFileBackend

        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(storage)))
    kwargs = {"connect_args": {"connect_timeout": 10}} if storage.startswith("postgresql") else {}
    try:
        return optuna.storages.RDBStorage(storage, engine_kwargs=kwargs)
    except Exception as e:  # SQLAlchemy's connection, driver and URL errors
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OptionError(f"--storage {redact(storage)}: cannot open the database ({reason})",
                          "check the URL and that the server is running and reachable from here") from None


def make_sampler(spec: Spec, worker: int = 0, done: int = 0):
    """The sampler of a worker that joins a study holding `done` trials: seeded from --seed, the worker's
    index and `done`, so one worker is reproducible, while workers, resumed runs and successive
    `tune ask` calls do not draw the same values again."""
    import optuna.samplers as s

    seed = spec.seed + 10_007 * worker + done
    return {
        # grid points are queued in the study (every parameter fixed); the sampler is never consulted
        "grid": lambda: s.RandomSampler(seed=seed),
        "random": lambda: s.RandomSampler(seed=seed),
        "tpe": lambda: s.TPESampler(seed=seed),
        "cmaes": lambda: s.CmaEsSampler(seed=seed, warn_independent_sampling=False),
        "nsga2": lambda: s.NSGAIISampler(seed=seed),
        "qmc": lambda: s.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                    warn_asynchronous_seeding=False),
    }[spec.sampler]()


def make_pruner(spec: Spec):
    import optuna.pruners as p

    return {"none": p.NopPruner, "median": lambda: p.MedianPruner(n_startup_trials=spec.pruner_startup),
            "hyperband": p.HyperbandPruner}[spec.pruner]()


def load_study(storage: str, name: str, spec: Spec | None = None, worker: int = 0):
    """An existing study with this spec's (or its stored spec's) sampler and pruner."""
    import optuna

    handle = open_storage(storage)
    try:
        study = optuna.load_study(study_name=name, storage=handle)
    except KeyError:
        raise InputError(f"no study '{name}' in {redact(storage)}", "start it with dltool tune run") from None
    spec = spec or stored_spec(study)
    if spec is None:
        return study
    done = len(study.get_trials(deepcopy=False))
    return optuna.load_study(study_name=name, storage=handle, sampler=make_sampler(spec, worker, done),
                             pruner=make_pruner(spec))


def stored_spec(study) -> Spec | None:
    raw = study.user_attrs.get(SPEC_ATTR)
    return build_spec(raw) if raw else None


def create_or_load(spec: Spec, ref: StudyRef):
    """The study named ref.name: created with the spec (and its grid queued), or, when it exists,
    resumed, provided it searches the same command, metrics and space."""
    import optuna

    from dltool.tune.space import grid_points

    storage = open_storage(ref.storage)
    directions = [o.direction for o in spec.objectives]
    try:
        study = optuna.create_study(storage=storage, study_name=ref.name, directions=directions)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(study_name=ref.name, storage=storage), False
    saved = None if created else study.user_attrs.get(SPEC_ATTR)
    if saved is not None:
        before = build_spec(saved).identity()
        differ = [k for k, v in spec.identity().items() if before.get(k) != v]
        if differ:
            raise OptionError(f"study '{ref.name}' in {ref.shown_storage} searches another {', '.join(differ)}",
                              "resume it with the same spec, or start a new one with another --study or --out")
    study.set_user_attr(SPEC_ATTR, spec.to_dict())  # a resumed study takes this run's budget and search options
    if created and spec.sampler == "grid":
        for point in grid_points(spec.space):
            study.enqueue_trial(point, user_attrs={"grid_point": True})
    return study


def write_study_file(ref: StudyRef) -> None:
    import tomli_w

    from dltool.core.io import atomic_open

    storage = JOURNAL if ref.storage == str(ref.folder / JOURNAL) else ref.storage
    with atomic_open(ref.folder / STUDY_FILE) as f:
        f.write(tomli_w.dumps({"study": ref.name, "storage": storage}))


def read_study_file(folder: Path) -> StudyRef:
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        raise InputError(f"{folder} is not a study folder (it has no {STUDY_FILE})",
                         "give the --out folder of a dltool tune run")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    storage = data["storage"]
    if "://" not in storage:
        storage = str(Path(folder) / storage)
    return StudyRef(data["study"], Path(folder), storage)


# -- budget and workers ----------------------------------------------------------------------------

def _counted(trials) -> int:
    """Trials that spend the budget: done or running, failures with an error included; not the trials
    of dead workers nor the queued ones."""
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs))


def budget(spec: Spec, study) -> float:
    """How many trials the study runs in all (the grid's size for --sampler grid)."""
    from optuna.trial import TrialState

    limit = spec.trials if spec.trials is not None else float("inf")
    if spec.sampler == "grid":
        queued = sum(1 for t in study.get_trials(deepcopy=False) if "grid_point" in t.user_attrs
                     and (t.state != TrialState.FAIL or "error" in t.user_attrs))
        limit = min(limit, queued)
    return limit


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's worker: it cannot be checked from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _requeue(study, trial, reason: str) -> None:
    """Mark a trial that did not finish as failed (not counted) and queue its parameters again."""
    import optuna
    from optuna.trial import TrialState

    try:
        optuna.trial.Trial(study, trial._trial_id).set_user_attr("lost", reason)
        study.tell(trial.number, state=TrialState.FAIL)
    except (RuntimeError, ValueError):
        return  # another worker got there first
    again = {"retry_of": trial.number, **{k: v for k, v in trial.user_attrs.items() if k == "grid_point"}}
    study.enqueue_trial(trial.params, user_attrs=again)
    warn(f"trial {trial.number}: {reason}; its parameters are queued again")


def recover_lost_trials(study) -> None:
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker and not _alive(worker):
            _requeue(study, t, f"its worker {worker} is gone")


def work(spec: Spec, ref: StudyRef, commands: Commands, worker: int = 0) -> None:
    """Run trials until the budget or the time is spent (one worker; several may share the study)."""
    from optuna.trial import TrialState

    from dltool.tune import trial as trials
    from dltool.tune.space import suggest

    study = load_study(ref.storage, ref.name, spec, worker)
    limit = budget(spec, study)
    start = time.monotonic()
    while True:
        recover_lost_trials(study)
        existing = study.get_trials(deepcopy=False)
        if _counted(existing) >= limit:
            break
        if spec.sampler == "grid" and not any(t.state == TrialState.WAITING for t in existing):
            break
        if spec.timeout is not None and time.monotonic() - start >= spec.timeout:
            info(f"timeout: {spec.timeout:g} s spent")
            break
        trial = study.ask()
        # two workers can pass the check above at once; the storage numbers trials atomically, so the one
        # whose trial lies beyond the budget, counting the trials ahead of it, gives it up
        ahead = _counted(t for t in study.get_trials(deepcopy=False) if t.number < trial.number)
        if ahead >= limit:
            trial.set_user_attr("lost", "over the budget: another worker took the last trial")
            study.tell(trial, state=TrialState.FAIL)
            break
        if spec.sampler == "grid" and "grid_point" not in trial.user_attrs:
            trial.set_user_attr("lost", "another worker took the last grid point")
            study.tell(trial, state=TrialState.FAIL)
            break
        trial.set_user_attr("worker", worker_id())
        params = suggest(trial, spec.space)
        run_dir = ref.folder / "trials" / f"{trial.number:04d}"
        lines = trials.command_lines(spec, params, run_dir, commands)
        trial.set_user_attr("commands", lines)
        try:
            outcome = trials.run_trial(spec, trial, lines, run_dir, ref.storage, ref.name, commands)
        except KeyboardInterrupt:
            _requeue(study, study.get_trials(deepcopy=False)[trial.number], "interrupted")
            raise
        except trials.MetricNotReported as e:
            trial.set_user_attr("error", e.message)
            study.tell(trial, state=TrialState.FAIL)
            raise
        if outcome.state == "complete":
            study.tell(trial, outcome.values)
            shown = ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(spec.objectives, outcome.values))
        elif outcome.state == "pruned":
            trial.set_user_attr("pruned", outcome.error)
            study.tell(trial, state=TrialState.PRUNED)
            shown = outcome.error
        else:
            trial.set_user_attr("error", outcome.error)
            study.tell(trial, state=TrialState.FAIL)
            shown = f"failed: {outcome.error}"
        info(f"trial {trial.number} {outcome.state}: {shown}  {params}")


def _worker_process(spec_dict: dict, ref: StudyRef, commands: Commands, worker: int) -> None:
    """A --workers process: errors become one line and an exit status, as in `dltool`."""
    import sys

    from dltool.core.console import set_quiet

    set_quiet(spec_dict.pop("_quiet", False))
    try:
        work(build_spec(spec_dict), ref, commands, worker)
    except DltoolError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        sys.exit(130)


def run(spec: Spec, ref: StudyRef, commands: Commands) -> None:
    """Create or resume the study, then run its trials in this process or in --workers processes;
    `commands` runs dltool's commands (the command layer hands it in)."""
    from dltool.core.console import is_quiet
    from dltool.tune.trial import check_commands

    check_commands(spec, commands)
    ref.folder.mkdir(parents=True, exist_ok=True)
    create_or_load(spec, ref)
    write_study_file(ref)
    if spec.workers == 1:
        work(spec, ref, commands)
        return
    import multiprocessing

    warn(f"--workers {spec.workers}: trials run in parallel, so the study is not reproducible from --seed")
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    procs = [context.Process(target=_worker_process, args=({**spec.to_dict(), "_quiet": is_quiet()}, ref, commands, i),
                             name=f"dltool-tune-{i}") for i in range(spec.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join()
        raise
    codes = [p.exitcode for p in procs]
    if 130 in codes:
        raise KeyboardInterrupt
    for i, code in enumerate(codes):
        if code:
            how = f"was killed by signal {-code}" if code < 0 else f"ended with status {code}"
            warn(f"worker {i} (pid {procs[i].pid}) {how}")
    if any(c and c > 0 for c in codes) and all(c for c in codes):
        raise DltoolError("every worker failed (their errors are above)", "fix the spec and run again to resume")


# -- shell-driven loops ----------------------------------------------------------------------------

def ask(spec: Spec, ref: StudyRef, commands: Commands) -> dict:
    """Start one trial for another program to evaluate: its parameters and its command lines."""
    from dltool.tune import trial as trials
    from dltool.tune.space import suggest

    trials.check_commands(spec, commands)
    ref.folder.mkdir(parents=True, exist_ok=True)
    create_or_load(spec, ref)
    write_study_file(ref)
    study = load_study(ref.storage, ref.name, spec)
    trial = study.ask()
    params = suggest(trial, spec.space)
    run_dir = ref.folder / "trials" / f"{trial.number:04d}"
    lines = trials.command_lines(spec, params, run_dir, commands)
    trial.set_user_attr("commands", lines)
    return {"study": ref.name, "trial": trial.number, "params": params, "run_dir": str(run_dir),
            "args": lines, "command": trials.shell_line(lines)}


def tell(ref: StudyRef, number: int, result: str | None, state: str) -> dict:
    """Finish a trial started by `ask`: `result` is the objective value(s) ("0.93" or "0.93,12.5") or
    the JSON object a command printed (its metrics are looked up by name)."""
    import json

    import optuna
    from optuna.trial import TrialState

    from dltool.tune.trial import _is_number

    study = load_study(ref.storage, ref.name)
    spec = stored_spec(study)
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None:
        raise InputError(f"study '{ref.name}' has no trial {number}", "give a number printed by dltool tune ask")
    if trial.state != TrialState.RUNNING:
        raise InputError(f"trial {number} is already {trial.state.name.lower()}", "ask for a new trial")
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    if state not in states:
        from dltool.core.errors import unknown_name

        raise unknown_name("--state", state, states)
    values = None
    if state == "complete":
        if not result:
            raise OptionError("tell: no result", "give the value(s), or '-' to read the command's JSON from stdin")
        metrics = None
        try:
            parsed = json.loads(result)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            metrics = parsed
            missing = [o.metric for o in spec.objectives if not _is_number(metrics.get(o.metric))]
            if missing:
                raise OptionError(f"tell: the result has no number '{missing[0]}' (it has: {', '.join(sorted(metrics))})",
                                  "pass the JSON object that the trial's command printed")
            values = [float(metrics[o.metric]) for o in spec.objectives]
        else:
            try:
                values = [float(v) for v in result.split(",")]
            except ValueError:
                raise OptionError(f"tell: result {result!r} is neither numbers nor a JSON object",
                                  "give e.g. 0.93 (or 0.93,12.5 for two metrics)") from None
        if len(values) != len(spec.objectives):
            raise OptionError(f"tell: {len(values)} value(s) for {len(spec.objectives)} metric(s) "
                              f"({', '.join(o.metric for o in spec.objectives)})")
    elif state == "fail":
        reason = result.strip().splitlines()[-1] if result and result.strip() else "failed (dltool tune tell)"
        optuna.trial.Trial(study, trial._trial_id).set_user_attr("error", reason)
    study.tell(number, values, state=states[state])
    return {"study": ref.name, "trial": number, "state": state, "values": values}
