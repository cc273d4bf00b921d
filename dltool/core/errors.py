"""Errors are data: the package raises these, `dltool.cli.main` turns them into one line and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


class DltoolError(Exception):
    """A failure the user can act on: `message` says what happened, `hint` what to do."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class InputError(DltoolError):
    """Bad or missing input data (paths, files, tables)."""


class OptionError(DltoolError):
    """An option value that cannot work (negative learning rate, unknown name, ...)."""


class ModelFileError(DltoolError):
    """A model file that is not a dltool model, is of another task, or is unsafe to load."""


class DeviceError(DltoolError):
    """A requested device that is not available."""


class Interrupted(DltoolError):
    """Training stopped by SIGINT/SIGTERM after saving a resumable checkpoint."""

    exit_code = ExitCode.INTERRUPTED


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """'did you mean ...' text for an unknown name, or None."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> OptionError:
    choices = sorted(choices)
    hint = suggest(name, choices) or f"choose one of: {', '.join(choices)}"
    return OptionError(f"unknown {kind} '{name}'", hint)
