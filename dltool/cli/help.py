"""How `--help` reads at any terminal width: Typer's rich help, with two fixes, installed when help is rendered.

- A list of choices (`yolo|yolo_tiny|fasterrcnn`, `flip,rot90,scale`) is one word to rich, which crops it with '…'
  in a narrow column: an option's help may also break after '|', ',' and '/', and folds a single longer name.
- Typer reads help as rich markup, so `[space]` or `dltool[hf]` vanished as unknown style tags: help is plain text.
- Typer keeps the source's line breaks in a command's details, so a docstring wrapped at 110 columns breaks
  mid-sentence on screen: single line breaks inside a paragraph become spaces, as in an option's help.

This module imports rich; `dltool.cli.app` imports it only when a help page is rendered.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.markup import escape
from rich.measure import Measurement
from rich.text import Text
from typer import rich_utils

_WORD = re.compile(r"\s*\S+\s*")
#: where a word too wide for its column may break
_SEPARATOR = re.compile(r"[|,/](?=\S)")


def _fold(line: str, start: int, width: int) -> int:
    """The end of the longest piece from `start` that fits `width` cells (at least one character)."""
    end = start + 1
    while end < len(line) and cell_len(line[start:end + 1]) <= width:
        end += 1
    return end


def _piece_ends(line: str, width: int):
    """Where `line` may break: after each word; inside a word wider than `width`, after each '|', ',' and '/',
    and where a piece is still wider, every `width` cells."""
    for word in _WORD.finditer(line):
        start, end = word.span()
        if cell_len(word.group().strip()) <= width:
            yield end
            continue
        for stop in [m.end() for m in _SEPARATOR.finditer(line, start, end)] + [end]:
            while cell_len(line[start:stop].strip()) > width:
                start = _fold(line, start, width)
                yield start
            yield stop
            start = stop


def line_breaks(line: str, width: int) -> list[int]:
    """Offsets at which to cut `line` so every piece fits `width` cells, filling each as far as it goes."""
    cuts, start, previous = [], 0, 0
    for end in _piece_ends(line, width):
        if cell_len(line[start:end].rstrip()) > width and previous > start:
            cuts.append(previous)
            start = previous
        previous = end
    return cuts


class BreakableText:
    """Rich text that wraps at spaces, and a word too wide for the column also after '|', ',' and '/'."""

    def __init__(self, text: Text):
        self.text = text

    def __rich_measure__(self, console, options) -> Measurement:
        plain = self.text.plain
        narrowest = max(map(cell_len, re.split(r"\s+|(?<=[|,/])", plain)), default=0)
        return Measurement(narrowest, max(map(cell_len, plain.split("\n")), default=0))

    def __rich_console__(self, console, options):
        for line in self.text.split("\n", allow_blank=True):
            for piece in line.divide(line_breaks(line.plain, options.max_width)):
                piece.rstrip()
                piece.end = "\n"
                yield piece


def _reflow(paragraphs: list[str], markup_mode) -> str:
    """A command's details, one line per paragraph; a paragraph starting with click's '\\b' keeps its lines."""
    return "\n\n".join(p if p.startswith("\b") else p.replace("\n", " ") for p in paragraphs)


_rich_text, _parameter_help = rich_utils._make_rich_text, rich_utils._get_parameter_help


def _literal_rich_text(*, text: str, style: str = "", markup_mode):
    return _rich_text(text=escape(text), style=style, markup_mode=markup_mode)


def _breakable_parameter_help(**kwargs):
    cell = _parameter_help(**kwargs)  # a rich Columns of the help, the env var, the default, [required]
    cell.renderables = [BreakableText(r) if isinstance(r, Text) else r for r in cell.renderables]
    return cell


def install() -> None:
    """Put the fixes into Typer's help renderer (idempotent)."""
    rich_utils._make_rich_text = _literal_rich_text
    rich_utils._get_parameter_help = _breakable_parameter_help
    rich_utils._fix_linebreaks = _reflow
