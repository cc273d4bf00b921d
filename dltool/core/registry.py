"""A name -> builder registry (torchvision models/_api.py, timm _registry.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dltool.core.errors import unknown_name


@dataclass
class Entry:
    name: str
    builder: Callable
    meta: dict = field(default_factory=dict)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, **meta):
        def deco(fn):
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._entries[key] = Entry(key, fn, meta)
            return fn

        return deco

    def get(self, name: str) -> Entry:
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def create(self, name: str, **kwargs):
        return self.get(name).builder(**kwargs)

    def names(self, **where) -> list[str]:
        return [n for n, e in self._entries.items() if all(e.meta.get(k) == v for k, v in where.items())]

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def takes(registry: Registry, model: str) -> set[str]:
    """The keyword arguments a registered model's builder takes."""
    import inspect

    return set(inspect.signature(registry.get(model).builder).parameters)


def option_flag(option: str, value) -> str:
    """The command-line flag that set a config field: `--no-x` for a switched-off boolean."""
    return ("--no-" if value is False else "--") + option.replace("_", "-")


def check_arch_options(cfg, registry: Registry, arch_options: tuple[str, ...]) -> None:
    """Refuse an architecture option (a field of the frozen config `cfg`) that `cfg.model`'s builder does not
    take when the user changed it from its default (the default of an option a model does not take is simply
    not passed), so a builder can never silently ignore a flag. Vision classify/segment and text classify."""
    from dataclasses import fields

    from dltool.core.errors import OptionError

    defaults = {f.name: f.default for f in fields(type(cfg))}
    taken = takes(registry, cfg.model)
    refused = [o for o in arch_options if o not in taken and getattr(cfg, o) != defaults[o]]
    if refused:
        others = [m for m in registry.names() if set(refused) <= takes(registry, m)]
        hint = "drop it" + (f", or use --model {' or '.join(others)}" if others else "")
        raise OptionError(f"--model {cfg.model} does not take "
                          f"{', '.join(option_flag(o, getattr(cfg, o)) for o in refused)}", hint)
