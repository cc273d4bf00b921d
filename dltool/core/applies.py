"""Every option applies or is refused: each method or model declares the options it takes, and one check
refuses an option the user set that the chosen one does not take, before any data is read."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields

from dltool.core.errors import OptionError


def option_flag(option: str, value=None) -> str:
    """The command-line flag that set a config field: `--no-x` for a switched-off boolean."""
    return ("--no-" if value is False else "--") + option.replace("_", "-")


def given_fields(cfg) -> frozenset[str]:
    """The config fields the user set: `cfg.given` where the command layer filled it in (see
    dltool.cli.options.given_options); for a config built in Python (given None), those that differ
    from their default."""
    given = getattr(cfg, "given", None)
    if given is not None:
        return frozenset(given)
    changed = set()
    for f in fields(cfg):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)
        if default is MISSING or getattr(cfg, f.name) != default:
            changed.add(f.name)
    return frozenset(changed)


@dataclass(frozen=True)
class Applies:
    """Which options each value of a choosing option takes (`--method genetic` takes `--population`).

    `choice` is the choosing option's config field; `takes` maps each of its values to the options
    (config fields) it takes among `options`, the ones that only some values take (the value None: the
    choosing option left unset); `otherwise` is what any other value takes, where the values are open
    (meanshift's --quantile estimates the bandwidth only without --bandwidth), and `otherwise_named` how
    a hint names those values; `flags` names a field's flag where it is not `--field-name` (`filter_method`:
    `--filter`)."""

    choice: str
    takes: Mapping[str | None, Collection[str]]
    flags: Mapping[str, str] = field(default_factory=dict)
    otherwise: Collection[str] | None = None
    #: the values `otherwise` covers, as a hint names them ("cnn|lstm"): said when a refused option is theirs
    otherwise_named: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """Every option some value takes, in declaration order."""
        taken = [*self.takes.values(), *([self.otherwise] if self.otherwise is not None else [])]
        return tuple(dict.fromkeys(o for options in taken for o in options))

    def flag(self, name: str, value=None) -> str:
        return self.flags.get(name) or option_flag(name, value)

    def check(self, cfg) -> None:
        """Refuse each option `cfg`'s user set that its `choice` value does not take."""
        self.check_values(given_fields(cfg), {f.name: getattr(cfg, f.name) for f in fields(cfg)})

    def check_values(self, given: Collection[str], values: Mapping) -> None:
        """The same for options held in a mapping (a method's parameters); an unknown `choice` value is
        left to the caller's own check, which can suggest a name."""
        value = values[self.choice]
        takes = self.takes.get(value, self.otherwise)
        if takes is None:
            return
        refused = [o for o in self.options if o in given and o not in takes]
        if not refused:
            return
        names = ", ".join(self.flag(o, values.get(o)) for o in refused)
        others = [v for v, taken in self.takes.items() if set(refused) <= set(taken)]
        if self.otherwise_named and set(refused) <= set(self.otherwise or ()):
            others.append(self.otherwise_named)
        hint = ("drop it" if len(refused) == 1 else "drop them") + (
            f", or leave out {self.flag(self.choice)}" if others == [None] else
            f", or use {self.flag(self.choice)} {'|'.join(map(str, others))}" if others else "")
        raise OptionError(f"{names} {'does' if len(refused) == 1 else 'do'} not apply to "
                          f"{self.flag(self.choice)} {value}", hint)


def changed_params(params: Mapping, builder) -> frozenset[str]:
    """For a method's parameters built in Python (no record of what the user set): those that differ
    from the defaults of `builder`'s signature."""
    import inspect

    defaults = {n: p.default for n, p in inspect.signature(builder).parameters.items()}
    return frozenset(n for n, v in params.items() if n not in defaults or v != defaults[n])


def check_range(flag: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                hint: str | None = None) -> None:
    """value within [low, high] (open ends where asked); None passes (an unset option). The message names
    the flag, the value and the range (scikit-learn's "must be between")."""
    if value is None:
        return
    ok = not (isinstance(value, float) and math.isnan(value))
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if ok:
        return
    if low is not None and high is not None:
        allowed = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"{'>' if low_open else '>='} {low}"
    else:
        allowed = f"{'<' if high_open else '<='} {high}"
    raise OptionError(f"{flag} {value} must be {allowed}", hint or "omit it for the default")
