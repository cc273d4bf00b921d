"""What a study found: its trials, the best trial and the command that reproduces it, the Pareto front
of a multi-objective study, parameter importances, and PNG plots (Optuna's matplotlib plots)."""

from __future__ import annotations

from pathlib import Path

from dltool.core.console import info
from dltool.core.errors import DltoolError
from dltool.tune.spec import Spec
from dltool.tune.study import StudyRef
from dltool.tune.trial import shell_line


def trial_rows(study, spec: Spec) -> list[dict]:
    """One row a trial: number, state, each objective, each parameter (None off its branch), seconds,
    and why it failed or was pruned."""
    rows = []
    names = [p.name for p in spec.space]
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name.lower()}
        values = t.values if t.values is not None and t.state.name == "COMPLETE" else [None] * len(spec.objectives)
        row.update({o.metric: v for o, v in zip(spec.objectives, values)})
        row.update({n: t.params.get(n) for n in names})
        row["seconds"] = round(t.duration.total_seconds(), 3) if t.duration is not None else None
        row["note"] = t.user_attrs.get("error") or t.user_attrs.get("pruned") or t.user_attrs.get("lost")
        rows.append(row)
    return rows


def _trial_summary(t, spec: Spec, ref: StudyRef) -> dict:
    lines = t.user_attrs.get("commands")
    best = {"trial": t.number, **{o.metric: v for o, v in zip(spec.objectives, t.values)}, "params": t.params}
    if lines:
        run_dir = str(ref.folder / "trials" / f"{t.number:04d}") if ref.folder else None
        best["run_dir"] = run_dir
        if run_dir:  # the trial's own folder is taken: the command writes to STUDY/best instead
            best_dir = str(ref.folder / "best")
            lines = [[a.replace(run_dir, best_dir) for a in args] for args in lines]
        best["command"] = shell_line(lines)
    return best


def summarize(study, spec: Spec, ref: StudyRef) -> dict:
    """The study in one object: counts, and the best trial (or the Pareto front)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    count = {s: sum(1 for t in trials if t.state == getattr(TrialState, s.upper())) for s in
             ("complete", "pruned", "fail", "running", "waiting")}
    out = {"study": ref.name, "folder": str(ref.folder) if ref.folder else None, "storage": ref.shown_storage,
           "trials": len(trials), "complete": count["complete"], "pruned": count["pruned"],
           "failed": count["fail"], "running": count["running"]}
    if count["complete"]:
        if spec.multi_objective:
            out["pareto_front"] = [_trial_summary(t, spec, ref) for t in study.best_trials]
        else:
            out["best"] = _trial_summary(study.best_trial, spec, ref)
    return out


def check_some_succeeded(study, spec: Spec, ref: StudyRef) -> None:
    """A study whose every trial failed ends with an error naming the first failure."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials):
        return
    failed = [t for t in trials if "error" in t.user_attrs]
    if failed:
        first = failed[0]
        raise DltoolError(f"all {len(failed)} trials of study '{ref.name}' failed; trial {first.number}: "
                          f"{first.user_attrs['error']}",
                          f"run it by hand to see why: {shell_line(first.user_attrs.get('commands', []))}")


def importances(study, spec: Spec) -> dict:
    """fANOVA importances of the parameters every complete trial has, per objective; {} with fewer than
    two complete trials or nothing that varies."""
    import optuna
    from optuna.trial import TrialState

    if sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE) < 2:
        return {}
    out = {}
    for i, o in enumerate(spec.objectives):
        target = (lambda t, i=i: t.values[i]) if spec.multi_objective else None
        try:
            out[o.metric] = optuna.importance.get_param_importances(
                study, target=target, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        except (RuntimeError, ValueError) as e:
            info(f"no parameter importances for {o.metric}: {e}")
    return out


def write_plots(study, spec: Spec, folder: Path) -> list[str]:
    """Optimisation history, importances, parallel coordinates and (several objectives) the Pareto front,
    as PNGs in `folder`; a plot that the trials cannot make yet is left out, saying why."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ov
    from optuna.trial import TrialState

    from dltool.core.io import atomic_path

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    plots = {"history": lambda **kw: ov.plot_optimization_history(study, **kw),
             "importances": lambda **kw: ov.plot_param_importances(study, **kw),
             "parallel": lambda **kw: ov.plot_parallel_coordinate(study, **kw)}
    if spec.multi_objective:
        plots["pareto"] = lambda **kw: ov.plot_pareto_front(study, target_names=[o.metric for o in spec.objectives])
    written = []
    for name, plot in plots.items():
        kwargs = {}
        if spec.multi_objective and name != "pareto":
            o = spec.objectives[0]
            kwargs = {"target": lambda t: t.values[0], "target_name": o.metric}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = plot(**kwargs)
        except (RuntimeError, ValueError, ZeroDivisionError) as e:
            info(f"no {name} plot: {e}")
            continue
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        path = Path(folder) / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(str(path))
    return written


def show(study, spec: Spec, ref: StudyRef, plots_dir: Path | None) -> dict:
    report = summarize(study, spec, ref)
    report["importances"] = importances(study, spec)
    report["plots"] = write_plots(study, spec, plots_dir) if plots_dir is not None else []
    report["trial_table"] = trial_rows(study, spec)
    return report
