"""The README's commands against the CLI as it is: every `dltool ...` line of a ```sh or ```bash block names a
command that exists and options it takes, with values of the right type and choice. (Parsed, not run: the
commands train and would take the suite's whole budget.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import command_tree

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_lines() -> list[tuple[int, str]]:
    """(line number, command) of each shell command in the README's sh/bash blocks, continuations joined."""
    lines, inside, start, pending = [], False, 0, ""
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() in ("```sh", "```bash") if not inside else False
            continue
        if not inside:
            continue
        text = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not pending:
            start = number
        pending += text.rstrip("\\") + " "
        if not text.endswith("\\"):
            if pending.strip():
                lines.append((start, pending.strip()))
            pending = ""
    return lines


def _dltool_invocations() -> list[tuple[int, list[str]]]:
    """Each `dltool ...` (or `-m dltool ...`) segment of a command line, split into words."""
    found = []
    for number, line in _command_lines():
        for segment in re.split(r"\s(?:\||&&|;)\s", line):
            words = shlex.split(segment.split(" > ")[0].split(" 2>")[0])
            for i, word in enumerate(words):
                if word.endswith("dltool") and (i == 0 or words[i - 1] in ("-m", "env") or "/" in word):
                    found.append((number, words[i + 1:]))
                    break
    return found


INVOCATIONS = _dltool_invocations()


@pytest.fixture(scope="module")
def root():
    return command_tree()


def test_the_readme_has_its_commands():
    assert len(INVOCATIONS) > 150


@pytest.mark.parametrize(("line", "args"), INVOCATIONS, ids=[f"README:{n}" for n, _ in INVOCATIONS])
def test_each_readme_command_parses(root, line, args):
    from typer._click.exceptions import UsageError  # typer's own Click
    from typer.exceptions import Exit

    group, path = root, []
    while hasattr(group, "commands") and args and not args[0].startswith("-"):
        sub = group.get_command(None, args[0])
        assert sub is not None, f"README line {line}: no command '{' '.join([*path, args[0]])}'"
        group, path, args = sub, [*path, args[0]], args[1:]
    if hasattr(group, "commands"):
        assert set(args) <= {"--help", "-h", "--version", "--install-completion", "--show-completion"}, (line, args)
        return
    try:
        group.make_context(" ".join(path), list(args), obj={"argv": ["dltool", *path, *args], "epoch_callbacks": ()})
    except Exit:
        pass  # --help and the like
    except UsageError as e:
        pytest.fail(f"README line {line}: dltool {' '.join(path)}: {e.format_message()}")
