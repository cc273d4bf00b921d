"""Which files a command reads, the same way in every domain:

- inputs: files, folders (searched recursively), or '-' for a list of paths on stdin, in the order given;
  a folder of class folders (root/<class>/...) also gives each file its true label;
- labelled data: class folders, or a CSV with a `path,label` header (paths relative to the CSV);
- a `Kind` says which files count (by extension) and how to name them in messages.

A folder whose sub-folders are dataset splits (train/, test/) is refused: the labels would be split names.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dltool.core.errors import InputError
from dltool.core.io import input_path

SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}


@dataclass(frozen=True)
class Kind:
    noun: str                   # "image", "audio file": what messages call one input
    extensions: frozenset[str]  # lower-case suffixes with the dot

    def matches(self, p: Path) -> bool:
        return p.suffix.lower() in self.extensions

    def listed(self) -> str:
        return ", ".join(sorted(self.extensions))


@dataclass(frozen=True)
class Item:
    path: Path
    rel: Path                 # the path below the input it was found in (to mirror the tree in an output folder)
    label: str | None = None  # the class folder or CSV label, when the input says


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    splits = sorted(d.name for d in dirs if d.name.lower() in SPLIT_NAMES)
    if len(splits) >= 2 or (dirs and len(splits) == len(dirs)):
        first = root / next((n for n in splits if n.lower().startswith("train")), splits[0])
        raise InputError(f"'{root}' holds the splits {', '.join(splits)}, not class folders",
                         f"point at one split, e.g. '{first}' (and --val for a validation split)")
    return dirs


def _files(folder: Path, kind: Kind) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and kind.matches(p))


def _in_folder(root: Path, kind: Kind, labels: bool) -> list[Item]:
    """Every file of `kind` below `root`; with `labels`, those in class folders carry the folder's name."""
    has_classes = labels and bool(_class_dirs(root))
    files = _files(root, kind)
    if not files:
        raise InputError(f"no {kind.noun}s found in '{root}'", f"expected files with extensions {kind.listed()}")
    items = []
    for p in files:
        rel = p.relative_to(root)
        items.append(Item(p, rel, rel.parts[0] if has_classes and len(rel.parts) > 1 else None))
    return items


def read_path_list(what: str) -> list[str]:
    """The non-empty lines of stdin: a list of paths piped in."""
    if sys.stdin.isatty():
        raise InputError(f"no {what}s were given (and stdin is a terminal)",
                         "pass files or folders, or pipe a list of paths")
    return [line.strip() for line in sys.stdin if line.strip()]


def scan_inputs(inputs: Iterable[str], kind: Kind, *, labels: bool = True) -> list[Item]:
    """Files, folders (recursively) or '-' (paths on stdin) -> items, in the order given. With `labels`, a
    folder of class folders gives each file its true label (predict reports it beside the prediction)."""
    items: list[Item] = []
    for raw in inputs:
        if raw == "-":
            items += scan_inputs(read_path_list(kind.noun), kind, labels=labels)
            continue
        p = input_path(raw, "input")
        if p.is_dir():
            items += _in_folder(p, kind, labels)
        elif not kind.matches(p):
            raise InputError(f"'{raw}' is not an {kind.noun}" if kind.noun[0] in "aeiou" else
                             f"'{raw}' is not a {kind.noun}",
                             f"give {kind.noun}s ({kind.listed()}) or folders of them")
        else:
            items.append(Item(p, Path(p.name)))
    if not items:
        raise InputError(f"no {kind.noun}s were given", "pass files or folders, or pipe a list of paths")
    return items


def scan_labelled(data: str | Path, kind: Kind) -> list[Item]:
    """root/<class>/... (each class folder searched recursively) or a CSV of path,label -> labelled items."""
    root = input_path(data, "data")
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".tsv", ".txt"):
            raise InputError(f"'{data}' is neither a folder of class folders nor a CSV of path,label",
                             "pass root/ with one sub-folder per class, or a .csv file")
        return _csv_list(root, kind)
    items = [Item(p, p.relative_to(root), d.name) for d in _class_dirs(root) for p in _files(d, kind)]
    if not items:
        loose = [p for p in root.iterdir() if p.is_file() and kind.matches(p)]
        if loose:
            raise InputError(f"'{root}' holds {kind.noun}s but no class folders",
                             "arrange them as root/<class>/..., or give a CSV with path,label")
        raise InputError(f"no {kind.noun}s found in '{root}'",
                         f"arrange them as root/<class>/... ({kind.listed()}), or give a CSV with path,label")
    return items


def _csv_list(path: Path, kind: Kind) -> list[Item]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"'{path}' is not a readable CSV ({e})") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise InputError(f"'{path}' is not a CSV of path,label",
                         "it needs a header row with 'path' and 'label' and at least one row")
    items = []
    for i, r in enumerate(rows):
        p = Path(r["path"]) if Path(r["path"]).is_absolute() else (path.parent / r["path"]).resolve()
        if not p.exists():
            raise InputError(f"'{path}' row {i + 1}: {kind.noun} '{r['path']}' does not exist")
        items.append(Item(p, Path(r["path"]), r["label"]))
    return items


def shard(items: list, spec: tuple[int, int] | None = None) -> list:
    """This process's share of `items`: a contiguous block, so the shards' outputs concatenated in shard
    order are the single-process output. `spec` (I, N) is --shard I/N (a
    cron array job); without it, the rank's block under torchrun or --nproc (all of them in one process)."""
    from dltool.core import distributed as dist
    from dltool.core.errors import OptionError

    if spec is not None and dist.world_size() > 1:
        raise OptionError("--shard with --nproc or torchrun would split the inputs twice", "use one of them")
    index, count = spec if spec is not None else (dist.rank(), dist.world_size())
    start = len(items) * index // count
    return items[start:len(items) * (index + 1) // count]


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """'I/N' (0 <= I < N) -> (I, N); None stays None."""
    from dltool.core.errors import OptionError

    if value is None:
        return None
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise OptionError(f"--shard {value!r} is not I/N", "e.g. --shard 0/4 for the first of four shards") from None
    if not 0 <= index < count:
        raise OptionError(f"--shard {value}: I must be in 0..N-1", f"use 0/{max(count, 1)} .. {max(count, 1) - 1}/"
                                                                    f"{max(count, 1)}")
    return index, count


def gathered(records, spec: tuple[int, int] | None = None):
    """The records of `shard(items, spec)`'s block, as the whole output: in one process (or a --shard run)
    they pass through untouched, streaming; under torchrun / --nproc every rank's are gathered on rank 0
    in rank order, which is input order. None on the other ranks (they write nothing)."""
    from dltool.core import distributed as dist

    if spec is not None or not dist.active():
        return records
    parts = dist.gather(list(records))
    return [r for part in parts for r in part] if dist.is_main() else None


def gathered_table(table, spec: tuple[int, int] | None = None):
    """`gathered` for a feature table: every rank's rows, in rank order, on rank 0; None elsewhere."""
    from dltool.core import distributed as dist

    if spec is not None or not dist.active():
        return table
    parts = [t for t in dist.gather(table) if t is not None and len(t)]
    if not dist.is_main():
        return None
    import numpy as np

    from dltool.core.tables import Table

    return Table({name: np.concatenate([t.columns[name] for t in parts]) for name in parts[0].columns}) if parts \
        else table
