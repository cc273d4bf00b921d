"""The tuning spec: a TOML file (or CLI flags) parsed and validated before any trial runs.

A wrong key or value fails with the key and the value named (`spec space.lr: low = 0.5 > high = 0.1`).
The spec is plain data: `Spec.to_dict()` is what the study stores, so every worker, `tune show` and a
resumed run read the same one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from dltool.core.errors import OptionError, suggest

SAMPLERS = ("grid", "random", "tpe", "cmaes", "nsga2", "qmc")
PRUNERS = ("none", "median", "hyperband")
PARAM_TYPES = ("float", "int", "categorical")
DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
SPEC_KEYS = ("command", "metric", "direction", "trials", "timeout", "sampler", "pruner", "pruner_startup", "seed",
             "workers", "isolate", "storage", "space")
PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "step", "when", "values", "steps", "flag"),
    "int": ("type", "low", "high", "log", "step", "when", "values", "steps", "flag"),
    "categorical": ("type", "choices", "when", "flag"),
}
#: the keys that define what a study searches: a resumed study must keep them
IDENTITY_KEYS = ("command", "metric", "space")


def spec_error(key: str, message: str, hint: str | None = None) -> OptionError:
    return OptionError(f"spec {key}: {message}", hint)


@dataclass(frozen=True)
class Param:
    """One searched parameter. It is passed to the command as `flag VALUE` (default `--name-with-dashes`),
    or substituted where the command says `{name}`; `when` makes it exist only under some values of
    other (categorical) parameters: ((parent, (allowed values...)), ...)."""
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    when: tuple = ()
    values: tuple | None = None   # grid: the points of a numeric range
    steps: int | None = None      # grid: this many evenly spaced points of a numeric range
    flag: str | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" | "minimize"


@dataclass(frozen=True)
class Spec:
    commands: tuple[tuple[str, ...], ...]   # run in order; the last one's output holds the metric
    objectives: tuple[Objective, ...]
    space: tuple[Param, ...]                 # parents before the parameters that depend on them
    trials: int | None = None
    timeout: float | None = None             # seconds of the whole study, per worker
    sampler: str = "tpe"
    pruner: str = "none"
    pruner_startup: int = 5                  # median pruner: complete trials before it prunes any
    seed: int = 0
    workers: int = 1
    isolate: bool = False
    storage: str | None = None
    raw: dict = field(default_factory=dict, compare=False)  # the spec as given, resolved

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def to_dict(self) -> dict:
        return dict(self.raw)

    def identity(self) -> dict:
        return {k: self.raw.get(k) for k in IDENTITY_KEYS}


def read_spec_file(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"spec file '{path}' does not exist", "give the path of a TOML spec") from None
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"spec file '{path}' is not valid TOML: {e}", "fix the file") from None


def parse_space_lines(lines: list[str]) -> dict:
    """--space 'lr = { type = "float", low = 1e-4, high = 0.1 }' (TOML lines of the [space] table)."""
    try:
        return tomllib.loads("\n".join(lines))
    except tomllib.TOMLDecodeError as e:
        raise OptionError(f"--space is not valid TOML: {e}",
                          "write it as: --space 'lr = { type = \"float\", low = 1e-4, high = 0.1 }'") from None


def build_spec(data: dict) -> Spec:
    """A validated Spec from the spec's keys (file and flags merged; flags win)."""
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise spec_error(unknown[0], "is not a spec key", suggest(unknown[0], SPEC_KEYS)
                         or f"keys are: {', '.join(SPEC_KEYS)}")
    commands = _commands(data.get("command"))
    objectives = _objectives(data.get("metric"), data.get("direction", "maximize"))
    space = _space(data.get("space"))
    trials = _optional_number(data, "trials", int, minimum=1)
    timeout = _optional_number(data, "timeout", float, minimum=0, strict=True)
    sampler = _choice(data, "sampler", SAMPLERS, "tpe")
    pruner = _choice(data, "pruner", PRUNERS, "none")
    pruner_startup = _optional_number(data, "pruner_startup", int, minimum=0)
    pruner_startup = 5 if pruner_startup is None else pruner_startup
    seed = _optional_number(data, "seed", int, minimum=0)
    workers = _optional_number(data, "workers", int, minimum=1) or 1
    isolate = data.get("isolate", False)
    if not isinstance(isolate, bool):
        raise spec_error("isolate", f"{isolate!r} is not true or false")
    storage = data.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise spec_error("storage", f"{storage!r} is not a database URL",
                         "give e.g. postgresql+psycopg://user@host/db (or leave it out for the study folder's journal)")
    if trials is None and timeout is None and sampler != "grid":
        raise spec_error("trials", "is missing (and so is timeout)", "give trials = N or timeout = SECONDS")
    multi = len(objectives) > 1
    if multi and pruner != "none":
        raise spec_error("pruner", f"'{pruner}' cannot prune a multi-objective study", "use pruner = \"none\"")
    if multi and sampler == "cmaes":
        raise spec_error("sampler", "'cmaes' optimises one objective", "use nsga2 or tpe for several metrics")
    if sampler == "grid":
        from dltool.tune.space import grid_points

        grid_points(space)  # fails here, naming the parameter, when a range has no grid points
    raw = {"command": [list(c) for c in commands],
           "metric": [f"{o.metric}:{o.direction[:3]}" for o in objectives],
           "space": {p.name: _param_dict(data["space"][p.name]) for p in space},
           "sampler": sampler, "pruner": pruner, "pruner_startup": pruner_startup, "seed": 0 if seed is None else seed, "workers": workers,
           "isolate": isolate}
    for key, value in (("trials", trials), ("timeout", timeout), ("storage", storage)):
        if value is not None:
            raw[key] = value
    return Spec(commands=commands, objectives=objectives, space=space, trials=trials, timeout=timeout,
                sampler=sampler, pruner=pruner, pruner_startup=pruner_startup, seed=raw["seed"], workers=workers, isolate=isolate,
                storage=storage, raw=raw)


def _param_dict(p: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}


def _commands(value) -> tuple[tuple[str, ...], ...]:
    if value is None:
        raise spec_error("command", "is missing",
                         'give the dltool command to tune, e.g. command = ["cluster", "kmeans", "table.csv"]')
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        commands = value
    elif isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        commands = [value]
    else:
        raise spec_error("command", f"{value!r} is not a list of arguments (or a list of such lists)",
                         'write it as command = ["cluster", "kmeans", "table.csv", "-k", "3"]')
    out = []
    for c in commands:
        if not c or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in c):
            raise spec_error("command", f"{c!r} is not a list of arguments")
        args = tuple(str(v) for v in c)
        if args[0] in ("dltool", "python"):
            raise spec_error("command", f"{list(args)!r} starts with '{args[0]}'",
                             "give the subcommand and its arguments only, e.g. [\"cluster\", \"kmeans\", ...]")
        out.append(args)
    return tuple(out)


def _objectives(value, direction) -> tuple[Objective, ...]:
    if value is None:
        raise spec_error("metric", "is missing", 'name the metric to optimise, e.g. metric = "val_accuracy"')
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise spec_error("metric", f"{value!r} is not a metric name or a list of them",
                         'e.g. metric = ["val_accuracy:max", "train_time_s:min"]')
    if direction not in DIRECTIONS:
        raise spec_error("direction", f"{direction!r} is not maximize or minimize")
    out = []
    for item in items:
        name, _, d = item.rpartition(":") if ":" in item else (item, "", direction)
        if d not in DIRECTIONS:
            raise spec_error("metric", f"{item!r}: direction '{d}' is not max or min", f'write "{name}:max" or "{name}:min"')
        out.append(Objective(name, DIRECTIONS[d]))
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        raise spec_error("metric", f"{items!r} names a metric twice")
    return tuple(out)


def _optional_number(data: dict, key: str, kind, *, minimum, strict: bool = False):
    value = data.get(key)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok or (value <= minimum if strict else value < minimum):
        bound = f"greater than {minimum}" if strict else f"at least {minimum}"
        raise spec_error(key, f"{value!r} is not {'an integer' if kind is int else 'a number'} {bound}")
    return kind(value)


def _choice(data: dict, key: str, choices, default: str) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise spec_error(key, f"unknown {key} {value!r}", suggest(str(value), choices) or f"choose one of: {', '.join(choices)}")
    return value


def _number(name: str, key: str, value, kind=float):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise spec_error(f"space.{name}", f"{key} = {value!r} is not a number")
    if kind is int and not float(value).is_integer():
        raise spec_error(f"space.{name}", f"{key} = {value!r} is not an integer (type = \"int\")")
    return kind(value)


def _space(table) -> tuple[Param, ...]:
    if table is None or table == {}:
        raise spec_error("space", "is missing or empty", 'add a [space] table, e.g. lr = { type = "float", low = 1e-4, high = 0.1, log = true }')
    if not isinstance(table, dict):
        raise spec_error("space", f"{table!r} is not a table of parameters")
    params = {}
    for name, p in table.items():
        if not isinstance(p, dict):
            raise spec_error(f"space.{name}", f"{p!r} is not a table", '(e.g. { type = "int", low = 1, high = 8 })')
        params[name] = _param(name, p)
    for p in params.values():
        for parent, allowed in p.when:
            if parent not in params:
                raise spec_error(f"space.{p.name}.when", f"'{parent}' is not a parameter of the space",
                                 suggest(parent, params) or f"parameters are: {', '.join(params)}")
            q = params[parent]
            if q.type != "categorical":
                raise spec_error(f"space.{p.name}.when", f"'{parent}' is {q.type}; a branch hangs off a categorical parameter")
            bad = [v for v in allowed if v not in q.choices]
            if bad:
                raise spec_error(f"space.{p.name}.when", f"{parent} = {bad[0]!r} is not one of {parent}'s choices {list(q.choices)}")
    return _parents_first(params)


def _param(name: str, p: dict) -> Param:
    kind = p.get("type")
    if kind not in PARAM_TYPES:
        raise spec_error(f"space.{name}.type", f"unknown parameter type {kind!r}",
                         suggest(str(kind), PARAM_TYPES) or f"types are: {', '.join(PARAM_TYPES)}")
    stray = sorted(set(p) - set(PARAM_KEYS[kind]))
    if stray:
        raise spec_error(f"space.{name}", f"'{stray[0]}' is not a key of a {kind} parameter",
                         f"keys are: {', '.join(PARAM_KEYS[kind])}")
    when = _when(name, p.get("when", {}))
    flag = p.get("flag")
    if flag is not None and not (isinstance(flag, str) and flag.startswith("-")):
        raise spec_error(f"space.{name}.flag", f"{flag!r} is not an option name", 'e.g. flag = "--lr"')
    if kind == "categorical":
        choices = p.get("choices")
        if not isinstance(choices, list) or not choices:
            raise spec_error(f"space.{name}.choices", f"{choices!r} is not a non-empty list")
        if any(isinstance(c, (list, dict)) for c in choices) or len(set(map(repr, choices))) != len(choices):
            raise spec_error(f"space.{name}.choices", f"{choices!r} must be distinct numbers, strings or booleans")
        return Param(name, kind, choices=tuple(choices), when=when, flag=flag)
    num = int if kind == "int" else float
    for key in ("low", "high"):
        if key not in p:
            raise spec_error(f"space.{name}", f"{key} is missing", f'give {kind} ranges as {{ type = "{kind}", low = .., high = .. }}')
    low, high = _number(name, "low", p["low"], num), _number(name, "high", p["high"], num)
    if low > high:
        raise spec_error(f"space.{name}", f"low = {low!r} > high = {high!r}", "make low <= high")
    log = p.get("log", False)
    if not isinstance(log, bool):
        raise spec_error(f"space.{name}.log", f"{log!r} is not true or false")
    if log and low <= 0:
        raise spec_error(f"space.{name}", f"log = true needs low > 0, not {low!r}")
    step = p.get("step")
    if step is not None:
        step = _number(name, "step", step, num)
        if step <= 0:
            raise spec_error(f"space.{name}.step", f"{step!r} must be positive")
        if log:
            raise spec_error(f"space.{name}", "step and log = true do not combine", "drop one of them")
    values = p.get("values")
    if values is not None:
        if not isinstance(values, list) or not values:
            raise spec_error(f"space.{name}.values", f"{values!r} is not a non-empty list")
        values = tuple(_number(name, "values", v, num) for v in values)
        outside = [v for v in values if not low <= v <= high]
        if outside:
            raise spec_error(f"space.{name}.values", f"{outside[0]!r} is outside [{low!r}, {high!r}]")
    steps = p.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise spec_error(f"space.{name}.steps", f"{steps!r} is not a count of at least 1")
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when, values=values, steps=steps, flag=flag)


def _when(name: str, when) -> tuple:
    if not isinstance(when, dict):
        raise spec_error(f"space.{name}.when", f"{when!r} is not a table", 'e.g. when = { optimizer = "sgd" }')
    return tuple((parent, tuple(v) if isinstance(v, list) else (v,)) for parent, v in when.items())


def _parents_first(params: dict[str, Param]) -> tuple[Param, ...]:
    """The parameters in an order where each comes after those its `when` names (a cycle fails)."""
    order, state = [], {}

    def visit(p: Param, path: tuple):
        if state.get(p.name) == "done":
            return
        if p.name in path:
            cycle = " -> ".join((*path[path.index(p.name):], p.name))
            raise spec_error(f"space.{p.name}.when", f"the branches form a cycle ({cycle})")
        for parent, _ in p.when:
            visit(params[parent], (*path, p.name))
        state[p.name] = "done"
        order.append(p)

    for p in params.values():
        visit(p, ())
    return tuple(order)
