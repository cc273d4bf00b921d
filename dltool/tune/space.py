"""The tree-shaped search space: Optuna suggest calls on the active branch, and the grid of a space.

A parameter with `when = { optimizer = "sgd" }` is suggested only in trials whose `optimizer` is
"sgd" (Optuna's define-by-run: a parameter never suggested is absent from the trial), so a trial's
params are exactly its branch.
"""

from __future__ import annotations

from dltool.tune.spec import Param, spec_error


def is_active(param: Param, values: dict) -> bool:
    """Whether `param` exists given the values chosen so far (its parents come before it)."""
    return all(parent in values and values[parent] in allowed for parent, allowed in param.when)


def suggest(trial, space: tuple[Param, ...]) -> dict:
    """The trial's parameter values, asking Optuna only for the parameters on the chosen branch."""
    values = {}
    for p in space:
        if not is_active(p, values):
            continue
        if p.type == "categorical":
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.type == "int":
            values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return values


def grid_values(p: Param) -> list:
    """The grid points of one parameter: its `values`, its choices, `steps` evenly spaced points of its
    range (geometrically with log = true), or every `step` of an int range."""
    import numpy as np

    if p.type == "categorical":
        return list(p.choices)
    if p.values is not None:
        return list(dict.fromkeys(p.values))
    if p.steps is not None:
        points = (np.geomspace if p.log else np.linspace)(p.low, p.high, p.steps)
        if p.type == "int":
            return list(dict.fromkeys(int(round(v)) for v in points))
        return [float(v) for v in points]
    if p.type == "int" and not p.log:
        return list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
    if p.type == "float" and p.step is not None:
        n = int(round((p.high - p.low) / p.step))
        return [float(p.low + i * p.step) for i in range(n + 1) if p.low + i * p.step <= p.high + 1e-12]
    raise spec_error(f"space.{p.name}", f"a {'log ' if p.log else ''}{p.type} range has no grid points",
                     "give it values = [...] or steps = N for --sampler grid")


def grid_points(space: tuple[Param, ...]) -> list[dict]:
    """Every point of the tree-shaped grid once: a branch's parameters vary only under its parent's
    value, so `momentum` multiplies the sgd points alone. (Parents come first in `space`.)"""
    points = [{}]
    for p in space:
        values = grid_values(p)
        points = [new for pt in points
                  for new in ([{**pt, p.name: v} for v in values] if is_active(p, pt) else [pt])]
    return points
