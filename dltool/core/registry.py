"""A name -> builder registry (torchvision models/_api.py, timm _registry.py)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from dltool.core.applies import Applies, option_flag  # noqa: F401  (option_flag: re-exported)
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

    def takes(self, name: str) -> set[str]:
        """The keyword arguments a builder takes (its signature is the one truth about them)."""
        return set(inspect.signature(self.get(name).builder).parameters)

    def names(self, **where) -> list[str]:
        return [n for n, e in self._entries.items() if all(e.meta.get(k) == v for k, v in where.items())]

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def arch_options(cfg, registry: Registry, options: tuple[str, ...]) -> dict:
    """The architecture options (config field names among `options`) that `cfg.model`'s builder takes,
    with their values. An option the model does not take is refused when the user set it (see
    dltool.core.applies; otherwise it is simply not passed), so a model can never silently ignore one."""
    takes = registry.takes(cfg.model)
    arch_rule(registry, options).check(cfg)
    return {o: getattr(cfg, o) for o in options if o in takes}


def arch_rule(registry: Registry, options: tuple[str, ...]) -> Applies:
    """Which of `options` each model of `registry` takes (its builder's signature says)."""
    return Applies("model", {name: [o for o in options if o in registry.takes(name)] for name in registry.names()})
