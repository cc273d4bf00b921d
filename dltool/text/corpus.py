"""Reading documents: the one place every text command gets its input from (DESIGN.md §3).

Inputs are files or `-` (stdin), read as a stream so memory stays flat on a large file:
- plain text: one document a line (blank lines are skipped); a line that starts with fastText's
  `__label__x` tokens carries them as its `label`;
- CSV (`.csv`), TSV (`.tsv`) and JSON Lines (`.jsonl`, `.ndjson`): the text is in `--column`
  (default `text`), every other column travels with the document. A JSON Lines record without the
  text column but with a `tokens` list is already tokenized (`dltool text tokenize --format jsonl`).
  TSV has no quoting (a field never holds a tab), so a text may start with a quote; CSV fields
  may be quoted and span lines.
  On stdin, JSON Lines is recognised by a first line starting with `{`; CSV/TSV only when
  `--column` is given (TSV when the header line has a tab).

Every document has a string `id`: the `id` column (`--id-column`) when there is one, else the line
number in its file (the row number for tables). With more than one input, a `path` field says
which file it came from, so (path, id) joins results back.

Bytes that are not valid in `--encoding` (UTF-8 unless told) are an error naming the file, line
and byte, never replaced silently.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dltool.core.errors import InputError, OptionError, suggest
from dltool.core.io import input_path

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
LABEL_PREFIX = "__label__"


@dataclass(frozen=True)
class Document:
    id: str
    text: str | None                   # None when the input was already tokenized
    tokens: tuple[str, ...] | None = None
    fields: dict = field(default_factory=dict)  # every other column (label, path, ...)


@dataclass(frozen=True)
class CorpusSpec:
    """Where the documents are and how to read them: plain data, cheap to copy into configs."""

    inputs: tuple[str, ...]
    column: str | None = None          # text column of a CSV/TSV/JSONL input (default "text")
    id_column: str = "id"
    encoding: str = "utf-8"
    stdin_copy: str | None = None      # set by spooled(): this file holds what came on stdin

    def __post_init__(self):
        if not self.inputs:
            raise OptionError("no input given", "name one or more files, or '-' to read stdin")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise OptionError(f"--encoding '{self.encoding}' is not an encoding Python knows",
                              "use utf-8, latin-1, cp1252, ...") from None


def decoded_lines(raw_lines, source: str, encoding: str) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline); a byte the encoding rejects names line and byte."""
    for lineno, raw in enumerate(raw_lines, 1):
        if isinstance(raw, str):  # a text stream (stdin replaced in-process)
            yield lineno, raw.rstrip("\r\n")
            continue
        try:
            yield lineno, raw.decode(encoding).rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: line {lineno} is not valid {encoding} (byte 0x{raw[e.start]:02x} "
                             f"at column {e.start + 1})",
                             "convert the file to UTF-8 (iconv -f latin1 -t utf-8) or pass its --encoding") from None


def open_binary(path: str):
    """(binary stream, whether to close it) for a file or `-` (stdin), with one-line errors."""
    if path == "-":
        if sys.stdin.isatty():
            raise InputError("reading documents from stdin, but stdin is a terminal",
                             "pipe text in or name a file")
        return getattr(sys.stdin, "buffer", sys.stdin), False
    p = input_path(path, "input")
    if p.is_dir():
        raise InputError(f"input '{path}' is a folder", "name text, CSV, TSV or JSON Lines files")
    return open(p, "rb"), True


def _kind(path: str, first_line: str | None, column: str | None) -> str:
    if path != "-":
        kind = TABLE_SUFFIXES.get(Path(path).suffix.lower(), "lines")
        return kind
    if first_line is not None and first_line.lstrip().startswith("{"):
        return "jsonl"
    if column is not None:
        return "tsv" if first_line is not None and "\t" in first_line else "csv"
    return "lines"


def _plain_lines(lines, source: str) -> Iterator[Document]:
    for lineno, line in lines:
        if not line.strip():
            continue
        fields = {}
        if line.startswith(LABEL_PREFIX):
            words = line.split()
            labels = [w[len(LABEL_PREFIX):] for w in words if w.startswith(LABEL_PREFIX)]
            n = len(labels)
            if words[:n] == [LABEL_PREFIX + x for x in labels]:  # only leading labels count
                fields["label"] = labels[0] if n == 1 else " ".join(labels)
                line = " ".join(words[n:])
        yield Document(id=str(lineno), text=line, fields=fields)


def _missing_column(source: str, column: str, names) -> InputError:
    names = list(names)
    return InputError(f"{source}: no text column '{column}' (columns: {', '.join(names) or 'none'})",
                      suggest(column, names) or "name the text column with --column")


def _table_rows(lines, source: str, kind: str, spec: CorpusSpec) -> Iterator[Document]:
    from dltool.core.tables import json_object

    column = spec.column or "text"
    if kind == "jsonl":
        for lineno, line in lines:
            if not line.strip():
                continue
            yield _record(json_object(line, source, lineno), column, spec.id_column, str(lineno), source, lineno)
        return
    # lines go back with their newline so quoted CSV fields may span lines; TSV has no quoting
    # (a tab never occurs inside a field), so a message that starts with a quote stays one field
    reader = (csv.reader((line + "\n" for _, line in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
              if kind == "tsv" else csv.reader(line + "\n" for _, line in lines))
    header = next(reader, None)
    if header is None:
        return
    if column not in header:
        raise _missing_column(source, column, header)
    for rowno, values in enumerate(reader, 1):
        if not values:
            continue
        if len(values) != len(header):
            raise InputError(f"{source}: row {rowno} has {len(values)} values but the header has {len(header)}",
                             "quote fields that contain the delimiter")
        yield _record(dict(zip(header, values)), column, spec.id_column, str(rowno), source, rowno)


def _record(row: dict, column: str, id_column: str, default_id: str, source: str, where: int) -> Document:
    text = row.pop(column, None)
    tokens = None
    if text is None:
        tokens = row.pop("tokens", None)
        if not isinstance(tokens, list):
            raise _missing_column(source, column, row)
        tokens = tuple(str(t) for t in tokens)
    elif not isinstance(text, str):
        raise InputError(f"{source}: row {where}: the text column '{column}' holds {type(text).__name__}, not text")
    doc_id = row.pop(id_column, None)
    return Document(id=str(doc_id) if doc_id is not None else default_id, text=text, tokens=tokens, fields=row)


def read_documents(spec: CorpusSpec) -> Iterator[Document]:
    """Every document of every input, in order, streamed. Empty input is an error (after the stream)."""
    count = 0
    several = len(spec.inputs) > 1
    for path in spec.inputs:
        as_stdin = path == "-" or path == spec.stdin_copy  # named and sniffed as stdin
        stream, owned = open_binary(path) if path != spec.stdin_copy else (open(path, "rb"), True)
        source = "stdin" if as_stdin else path
        try:
            lines = decoded_lines(stream, source, spec.encoding)
            first = next(lines, None)
            if first is None:
                continue
            kind = _kind("-" if as_stdin else path, first[1], spec.column)
            if kind == "lines" and spec.column is not None and not as_stdin:
                raise OptionError(f"--column {spec.column}: '{path}' is plain text (one document a line), not a table",
                                  "give a .csv, .tsv or .jsonl file, or leave out --column")
            rest = _chain(first, lines)
            docs = _plain_lines(rest, source) if kind == "lines" else _table_rows(rest, source, kind, spec)
            for doc in docs:
                if several:
                    doc = Document(doc.id, doc.text, doc.tokens, {"path": "-" if as_stdin else path, **doc.fields})
                count += 1
                yield doc
        finally:
            if owned:
                stream.close()
    if count == 0:
        names = ", ".join("stdin" if p in ("-", spec.stdin_copy) else p for p in spec.inputs)
        raise InputError(f"no documents in {names} (the input is empty)", "give text with one document a line")


def _chain(first, rest):
    yield first
    yield from rest


@contextlib.contextmanager
def rereadable(spec: CorpusSpec) -> Iterator[CorpusSpec]:
    """A spec whose documents can be read more than once (two passes, training epochs).

    Files are re-read from disk, so memory stays flat; stdin is first copied to a temporary file,
    removed again when the block ends.
    """
    if "-" not in spec.inputs:
        yield spec
        return
    if sys.stdin.isatty():
        raise InputError("reading documents from stdin, but stdin is a terminal", "pipe text in or name a file")
    fd, tmp = tempfile.mkstemp(prefix="dltool-stdin-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as f:
            src = getattr(sys.stdin, "buffer", None)
            if src is not None:
                shutil.copyfileobj(src, f)
            else:  # a text stream (stdin replaced in-process)
                f.write(sys.stdin.read().encode(spec.encoding))
        inputs = tuple(tmp if p == "-" else p for p in spec.inputs)
        yield dataclasses.replace(spec, inputs=inputs, stdin_copy=tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def document_table(docs: list[Document], numeric: dict):
    """id, every pass-through field (and the text), then the numeric columns: one row per document.

    Ids and fields are strings, so `cluster` and `reduce` never take them for features.
    """
    import numpy as np

    from dltool.core.tables import Table

    names: list[str] = []
    for d in docs:
        for k in d.fields:
            if k not in names:
                names.append(k)
    cols = {"id": np.array([d.id for d in docs], dtype=object)}
    for name in names:
        cols[name] = np.array(["" if d.fields.get(name) is None else str(d.fields.get(name)) for d in docs],
                              dtype=object)
    if any(d.text is not None for d in docs):
        cols["text"] = np.array([d.text if d.text is not None else " ".join(d.tokens) for d in docs], dtype=object)
    cols.update(numeric)
    return Table(cols)
