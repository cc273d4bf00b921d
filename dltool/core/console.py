"""stderr is for people: logs, warnings and progress bars, silenced by --quiet."""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager

_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def info(message: str) -> None:
    if not _state["quiet"]:
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Warnings show even with --quiet: they say something may be wrong."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def show_progress() -> bool:
    return stderr_is_terminal() and not _state["quiet"] and os.environ.get("TERM") != "dumb"


@contextmanager
def progress(description: str, total: int | None):
    """A rich progress bar on stderr when it is a terminal; otherwise a no-op advance()."""
    if not show_progress():
        yield lambda n=1, **fields: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr, no_color="NO_COLOR" in os.environ)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields):
            bar.update(task, advance=n, **fields)

        yield advance


@contextmanager
def library_warnings(rewrite: dict | None = None):
    """Every warning raised inside, shown once each as a `warning:` line on stderr when the block ends.

    `rewrite` maps a warning category to the line said instead (one line for the category, however
    often it was raised): for warnings a caller handles on purpose, such as ConvergenceWarning.
    It yields the list the warnings are recorded in, for a caller that also acts on them.
    """
    rewrite = rewrite or {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    seen = set()
    for w in caught:
        handled = next((line for category, line in rewrite.items() if issubclass(w.category, category)), None)
        text = str(w.message).strip()
        line = handled or (text.splitlines()[0] if text else w.category.__name__)
        if line not in seen:
            seen.add(line)
            warn(line)
