"""Tagged sentences in and out: CoNLL-U (Universal Dependencies), CoNLL-2003-style columns and JSON Lines.

- CoNLL-U (`.conllu`): ten tab-separated columns a token, `#` comments (`# sent_id` names the sentence,
  `# text` is its raw text), a blank line after each sentence; multi-word token ranges (`1-2`) and empty
  nodes (`8.1`) are skipped, as UD's own tools do for tagging. `column` is upos (default), xpos or deprel.
- columns (any other file): the token first, tags in later columns (`token POS chunk NER`), whitespace
  separated, a blank line between sentences, `-DOCSTART-` lines skipped. `column` is the tag column's
  number counting the token as 1 (default: the last).
- JSON Lines (`.jsonl`, `.json`): `{"tokens": [...], "tags": [...]}` a line (an `id` is carried).

Without tags (predict) the same readers give tokens only; raw text, one sentence a line, is split by
`dltool text tokenize`'s tokenizer (dltool.text.tokenize).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dltool.core.errors import InputError, OptionError, unknown_name

FORMATS = ("conllu", "conll", "jsonl")
CONLLU_COLUMNS = {"upos": 3, "xpos": 4, "deprel": 7}
SUFFIXES = {".conllu": "conllu", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclass
class Sentences:
    """Sentences in input order: each one's id, tokens and (where the input has them) tags."""

    ids: list[str]
    tokens: list[list[str]]
    tags: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, idx) -> Sentences:
        return Sentences([self.ids[i] for i in idx], [self.tokens[i] for i in idx],
                         None if self.tags is None else [self.tags[i] for i in idx])


def file_format(path, fmt: str = "auto") -> str:
    """conllu | conll | jsonl: `fmt` as given, or from the file's suffix (anything else: CoNLL columns)."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise unknown_name("--input-format", fmt, FORMATS)
        return fmt
    return SUFFIXES.get(Path(str(path)).suffix.lower(), "conll")


def check_column(fmt: str, column: str | None) -> None:
    """Refuse a --column the format has no such column for, before any data is read."""
    if column is None or fmt == "jsonl":
        if column is not None:
            raise OptionError(f"--column {column} does not apply to JSON Lines input (its tags are 'tags')",
                              "drop --column")
        return
    if fmt == "conllu":
        if column not in CONLLU_COLUMNS:
            raise unknown_name("CoNLL-U --column", column, CONLLU_COLUMNS)
        return
    if not column.isdigit() or int(column) < 2:
        raise OptionError(f"--column {column} must be the tag column's number, 2 or more (1 is the token)",
                          "e.g. --column 4 for CoNLL-2003's entity tags, or leave it out for the last column")


def read_tagged(path, fmt: str = "auto", column: str | None = None, *, tagged: bool = True,
                encoding: str = "utf-8") -> Sentences:
    """The sentences of a file ('-': stdin); with `tagged`, every token must have a tag."""
    fmt = file_format(path, fmt)
    check_column(fmt, column)
    text = read_text(path, encoding)
    read = {"conllu": _conllu, "conll": _columns, "jsonl": _jsonl}[fmt]
    sents = read(text.splitlines(), str(path), column, tagged)
    if not len(sents):
        raise InputError(f"'{path}' holds no sentences", "pass a tagged file (CoNLL-U, CoNLL columns or JSON Lines)")
    return sents


def read_text(path, encoding: str = "utf-8") -> str:
    """A whole input file ('-': stdin) as text; bytes that are not `encoding` are an error naming the line."""
    import sys

    from dltool.core.io import input_path

    if str(path) == "-":
        if sys.stdin.isatty():
            raise InputError("reading sentences from stdin, but stdin is a terminal", "pipe text in or name a file")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        p = input_path(path, "input")
        if p.is_dir():
            raise InputError(f"input '{path}' is a folder", "name a CoNLL-U, CoNLL or JSON Lines file")
        data = p.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not valid {encoding} (byte 0x{data[e.start]:02x})",
                         "convert the file to UTF-8 or pass its --encoding") from None


def _conllu(lines, where: str, column: str | None, tagged: bool) -> Sentences:
    col = CONLLU_COLUMNS[column or "upos"]
    out = Sentences([], [], [] if tagged else None)
    tokens, tags, sid, start = [], [], None, 1

    def close(lineno):
        nonlocal tokens, tags, sid
        if tokens:
            _add(out, sid or str(len(out) + 1), tokens, tags if tagged else None)
        elif sid is not None:
            raise InputError(f"{where}: the sentence at line {start} ('{sid}') has no tokens",
                             "remove the empty sentence")
        tokens, tags, sid = [], [], None

    for n, line in enumerate(lines, 1):
        if not line.strip():
            close(n)
            continue
        if line.startswith("#"):
            if not tokens and line[1:].strip().startswith("sent_id"):
                sid, start = line.split("=", 1)[-1].strip(), n
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise InputError(f"{where}: line {n} has {len(fields)} tab-separated fields, CoNLL-U has 10",
                             "check the file is CoNLL-U (tabs, not spaces), or pass --input-format conll")
        if "-" in fields[0] or "." in fields[0]:
            continue  # a multi-word token's range or an empty node: not a token of the sentence
        if not tokens:
            start = n if sid is None else start
        tokens.append(fields[1])
        if tagged:
            if fields[col] in ("", "_"):
                raise InputError(f"{where}: line {n} has no {column or 'upos'} tag ('{fields[col]}')",
                                 "tag every token, or choose another --column (upos, xpos, deprel)")
            tags.append(fields[col])
    close(len(lines) + 1)
    return out


def _columns(lines, where: str, column: str | None, tagged: bool) -> Sentences:
    out = Sentences([], [], [] if tagged else None)
    tokens, tags, start, width = [], [], 1, None
    col = int(column) - 1 if column is not None else None
    for n, line in enumerate([*lines, ""], 1):
        fields = line.split()
        if fields and fields[0] == "-DOCSTART-":
            fields = []
        if not fields:
            if tokens:
                _add(out, f"{where}:{start}" if where != "-" else str(start), tokens, tags if tagged else None)
            tokens, tags = [], []
            continue
        if not tokens:
            start = n
        tokens.append(fields[0])
        if tagged:
            if width is None:
                width = (len(fields), n)
            c = width[0] - 1 if col is None else col  # default: the last column of the first token line
            if len(fields) != width[0] and col is None or c < 1 or c >= len(fields):
                plural = "s" if len(fields) != 1 else ""
                seen = (f"where line {width[1]} has {width[0]}" if col is None else f"no tag in column {c + 1}")
                raise InputError(f"{where}: line {n} has {len(fields)} column{plural}, {seen}",
                                 "give every token its tag (token ... tag), in the same columns")
            tags.append(fields[c])
    return out


def _jsonl(lines, where: str, column: str | None, tagged: bool) -> Sentences:
    out = Sentences([], [], [] if tagged else None)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise InputError(f"{where}: line {n} is not JSON ({e})") from None
        tokens = row.get("tokens") if isinstance(row, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"{where}: line {n} has no 'tokens' list of strings", 'write {"tokens": [...], "tags": [...]}')
        if not tokens:
            raise InputError(f"{where}: line {n} is an empty sentence (no tokens)", "remove it")
        tags = row.get("tags")
        if tagged:
            if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
                raise InputError(f"{where}: line {n} has no 'tags' list of strings", "tag every token")
            if len(tags) != len(tokens):
                raise InputError(f"{where}: line {n} has {len(tokens)} tokens but {len(tags)} tags",
                                 "give every token exactly one tag")
        _add(out, str(row.get("id", n)), tokens, tags if tagged else None)
    return out


def _add(out: Sentences, sid: str, tokens: list[str], tags: list[str] | None) -> None:
    out.ids.append(sid)
    out.tokens.append(list(tokens))
    if out.tags is not None:
        out.tags.append(list(tags))


def read_raw(path, tokenizer, encoding: str = "utf-8") -> Sentences:
    """Raw text, one sentence a line, split into tokens by `tokenizer` (text -> tokens); blank lines skipped."""
    out = Sentences([], [])
    for n, line in enumerate(read_text(path, encoding).splitlines(), 1):
        tokens = tokenizer(line) if line.strip() else []
        if tokens:
            _add(out, str(n), tokens, None)
    if not len(out):
        raise InputError(f"'{path}' holds no text", "pass one sentence a line")
    return out


def conll_lines(tokens: list[str], tags: list[str]) -> str:
    """One sentence as CoNLL columns (token TAB tag a line) and its closing blank line."""
    return "".join(f"{w}\t{t}\n" for w, t in zip(tokens, tags)) + "\n"


def entity_spans(tokens: list[str], tags: list[str]) -> list[dict]:
    """The entities of a BIO/BIOES-tagged sentence as `{type, start, end, text}` (token offsets, end
    exclusive), by seqeval's own chunking (the spans its F1 counts)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [{"type": kind, "start": start, "end": end + 1, "text": " ".join(tokens[start:end + 1])}
            for kind, start, end in get_entities(list(tags))]


def is_bio(tags) -> bool:
    """Whether a tag set is BIO/BIOES-style (entity tags): every tag is O or B-/I-/E-/S-/L-/U- something,
    with at least one B-."""
    tags = set(tags)
    prefixed = all(t == "O" or (len(t) > 2 and t[1] == "-" and t[0] in "BIESLU") for t in tags)
    return prefixed and any(t.startswith(("B-", "S-", "U-")) for t in tags)
