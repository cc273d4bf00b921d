"""Shared fixtures: run the real CLI in-process and capture what a user would see."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest

from dltool.cli import main


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _fresh_console():
    """--quiet is process-wide state: every test starts with it off, as a new process would."""
    from dltool.core.console import set_quiet

    set_quiet(False)
    yield
    set_quiet(False)


def command_tree():
    """The root Click group with every domain loaded (the CLI loads only the one a command line names)."""
    from typer.main import get_command

    from dltool.cli.app import DOMAINS, app

    root = get_command(app)
    for name in DOMAINS:
        root.get_command(None, name)
    return root


def run_main(capture, args) -> CliResult:
    """dltool's main() in this process; `capture` is pytest's capsys, or capfd to see child processes too."""
    capture.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capture.readouterr()
    return CliResult(code, out, err)


@pytest.fixture
def cli(capsys, monkeypatch):
    """cli("vision", "classify", ..., input="...") -> CliResult(code, stdout, stderr)."""

    def run(*args, input: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.StringIO(input if input is not None else ""))
        return run_main(capsys, args)

    return run


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def same_rows(got: list[str], want: list[str]) -> bool:
    """JSON Lines equal row by row: the same keys and values, numbers to 1e-5 (a block of the inputs is
    batched differently, which may move a float's last bits)."""
    import json
    import math

    def same(a, b) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(same, a, b))
        if isinstance(a, float) and isinstance(b, (int, float)):
            return math.isclose(a, b, abs_tol=1e-5)
        return a == b

    return len(got) == len(want) and all(same(json.loads(g), json.loads(w)) for g, w in zip(got, want))


def assert_shards_concatenate(cli, *args, shards: int = 2) -> list[str]:
    """The JSON Lines of a command run whole, and equal to its `--shard I/N` runs concatenated in order."""
    whole = cli(*args, "--format", "jsonl")
    assert whole.code == 0, whole.stderr
    lines = whole.stdout.splitlines()
    parts = []
    for i in range(shards):
        r = cli(*args, "--format", "jsonl", "--shard", f"{i}/{shards}")
        assert r.code == 0, r.stderr
        parts.append(r.stdout.splitlines())
    assert len(lines) >= shards and all(parts)
    assert same_rows([line for p in parts for line in p], lines)
    return lines
