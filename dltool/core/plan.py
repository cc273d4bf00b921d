"""Defaults planned from the data (nnU-Net's "fingerprint -> plan"): before training, a domain's planner
measures its dataset (item count, class frequencies, lengths or sizes) and proposes values for options;
`apply` keeps those the user did not set, puts them into the train config and its recipe, and returns the
`Plan` that is printed in one line and saved in config.toml (its `[plan]` table: the planned values and
the fingerprint they came from). A flag the user sets always wins; the same data gives the same plan.

A resumed run keeps the plan it saved (`saved`), so a planner that changes between versions cannot
change a run halfway; one saved before plans existed resumes with the command's defaults.

A planner is a function (fingerprint, config) -> {option: value} in its domain (dltool.text.plan); an
option is any field of the task's config, of its `engine` (EngineConfig) or of its `run` (RunConfig).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path

from dltool.core.applies import given_fields


@dataclass(frozen=True)
class Plan:
    values: dict                      # option -> the planned value that the run uses
    fingerprint: dict                 # what the planner measured
    user_set: tuple[str, ...] = ()    # options the planner would set, left as the user set them
    resumed: bool = False             # read back from the run's config.toml (--resume)
    proposed: dict = field(default_factory=dict, compare=False)

    def line(self) -> str:
        """One line for people: the planned values, what they came from, and which the user set."""
        shown = " ".join(f"{k}={_short(v)}" for k, v in self.values.items()) or "nothing (every option set)"
        facts = ", ".join(f"{k} {_short(v)}" for k, v in self.fingerprint.items())
        yours = f"; set by you: {', '.join(self.user_set)}" if self.user_set else ""
        source = " (saved with the run)" if self.resumed else ""
        return f"plan{source}: {shown} (from {facts}){yours}"

    def record(self) -> dict:
        """config.toml's [plan] table."""
        return {"values": dict(self.values), "fingerprint": dict(self.fingerprint)}


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,}"
    return str(v)


def user_set(cfg) -> frozenset[str]:
    """The options the user set, over the task's config and its `engine` and `run` parts: the command
    layer's record (`cfg.given`, see dltool.cli.options.given_options), or for a config built in Python
    the fields that differ from their dataclass defaults."""
    if getattr(cfg, "given", None) is not None:
        return frozenset(cfg.given)
    changed = set(given_fields(cfg))
    for part in ("engine", "run"):
        sub = getattr(cfg, part, None)
        if sub is not None:
            changed |= {f.name for f in fields(sub) if f.compare and f.default is not MISSING
                        and getattr(sub, f.name) != f.default}
    return frozenset(changed)


def apply(cfg, proposed: dict, fingerprint: dict, *, resumed: bool = False):
    """(cfg with the proposed values the user did not set, the Plan). The values also go into the config's
    recipe (`cfg.options`, what config.toml holds), with the plan's record as `plan`."""
    given = user_set(cfg)
    values = {k: v for k, v in proposed.items() if k not in given}
    parts = {"engine": {}, "run": {}, "": {}}
    for name, value in values.items():
        parts[_part_of(cfg, name)][name] = value
    changes = {part: replace(getattr(cfg, part), **kw) for part, kw in parts.items() if part and kw}
    plan = Plan(values, fingerprint, tuple(k for k in proposed if k in given), resumed, dict(proposed))
    options = {**cfg.options, **values, "plan": plan.record()}
    return replace(cfg, **changes, **parts[""], options=options), plan


def _part_of(cfg, name: str) -> str:
    for part in ("engine", "run"):
        sub = getattr(cfg, part, None)
        if sub is not None and name in {f.name for f in fields(sub)}:
            return part
    if name not in {f.name for f in fields(cfg)}:
        raise TypeError(f"the plan sets '{name}', which is no field of {type(cfg).__name__}")
    return ""


def saved(run_dir: Path | None) -> dict | None:
    """The [plan] table of a run folder's config.toml ({"values", "fingerprint"}), or None."""
    import tomllib

    if run_dir is None or not (Path(run_dir) / "config.toml").is_file():
        return None
    return tomllib.loads((Path(run_dir) / "config.toml").read_text(encoding="utf-8")).get("plan")


def plan_run(cfg, planner, measure):
    """The whole sequence for a train config: on --resume the saved plan (none for a run saved before plans);
    otherwise `planner(measure(), cfg)`. `measure` is called only when a plan is made. Returns (cfg, Plan
    or None), the config validated again with the planned values; the caller prints `plan.line()`."""
    if cfg.engine.resume:
        record = saved(cfg.run.out)
        if record is None:
            return cfg, None
        cfg, plan = apply(cfg, dict(record.get("values", {})), dict(record.get("fingerprint", {})), resumed=True)
        cfg = replace(cfg, options={**cfg.options, "plan": record})  # kept whole for the next resume
    else:
        fingerprint = measure()
        cfg, plan = apply(cfg, planner(fingerprint, cfg), fingerprint)
    cfg.validate()
    return cfg, plan
