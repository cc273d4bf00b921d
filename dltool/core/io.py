"""Atomic output files and run folders: a crash never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from dltool.core.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, land=None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it, rename it over `path`, fsync the folder.

    On any exception (Ctrl-C included) the temporary file is removed and `path` is untouched.
    `land`, an executor (`submit(fn)`), takes over the landing (the fsyncs and the rename): the
    training engine writes checkpoints in line but lets a thread wait on the disk, which costs
    ~12 ms a file here. Until it has landed, `path` still holds its previous content.
    In a distributed run only rank 0 writes: on the other ranks what is written is discarded, so
    no command needs rank checks around its outputs.
    """
    from dltool.core import distributed as dist

    path = Path(path)
    if not dist.is_main() and dist.world_size() > 1:
        with tempfile.TemporaryDirectory(prefix="dltool-rank-") as scratch:
            yield Path(scratch) / path.name
        return
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what a plain open() would
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if land is None:
        _land(tmp, path)
    else:
        land.submit(_land, tmp, path)


def _land(tmp: Path, path: Path) -> None:
    try:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """A rename lives in the folder's entry table: until the folder is synced, a power loss can undo it."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, land=None) -> Iterator[IO]:
    """open() for writing that lands atomically (see atomic_path for `land`); `-` writes to stdout."""
    if str(path) == "-":
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_path(path, land=land) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
        yield f


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


@contextlib.contextmanager
def run_dir_or_temporary(run_dir: str | os.PathLike | None) -> Iterator[Path]:
    """The given run folder, or (for plain Python use without one) a temporary folder removed afterwards."""
    if run_dir is not None:
        yield Path(run_dir)
        return
    with tempfile.TemporaryDirectory(prefix="dltool-run-") as tmp:
        yield Path(tmp)


def prepare_run_dir(out: str | os.PathLike | None, domain_task: str, *, force: bool, resume: bool) -> Path:
    """The run folder: `--out` as given, or a new timestamped one under runs/<domain>-<task>/.

    An existing non-empty folder is only replaced with --force or continued with --resume,
    so a trained model is never lost by accident.
    """
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / domain_task / stamp
        n = 1
        while out.exists():  # two runs in the same second: keep both, the path is printed
            n += 1
            out = Path("runs") / domain_task / f"{stamp}-{n}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder", "choose another --out")
    if resume:
        # a run of several phases (cluster deep) keeps a last.pt per phase, in subfolders
        if not out.is_dir() or not any(out.glob("last.pt")) and not any(out.glob("*/last.pt")):
            raise InputError(f"--resume: no checkpoint {out / 'last.pt'} to resume from",
                             "run without --resume first, or point --out at an existing run")
        return out
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InputError(f"run folder {out} already exists and is not empty",
                             "pass --force to replace it, --resume to continue it, or choose another --out")
        shutil.rmtree(out)
    return out


def input_path(path: str | os.PathLike, what: str = "input") -> Path:
    """A path that must exist, with a clear error when it does not: a close name for the first part of it
    that is missing ('rnu/model.pt' -> 'run/model.pt'), else for a model file the run folders nearby."""
    p = Path(path)
    if not p.exists():
        hint = close_path(p) or (_model_files_near(p) if what == "model file" else None)
        raise InputError(f"{what} '{path}' does not exist", hint or "check the spelling")
    return p


def close_path(p: Path) -> str | None:
    """'did you mean ...' for a path whose first missing part has a close sibling."""
    import difflib

    parts = p.parts
    for i in range(len(parts)):
        head = Path(*parts[:i + 1])
        if head.exists():
            continue
        parent = head.parent
        if not parent.is_dir():
            return None
        close = difflib.get_close_matches(head.name, [c.name for c in parent.iterdir()], n=1, cutoff=0.6)
        return f"did you mean '{Path(parent, close[0], *parts[i + 1:])}'?" if close else None
    return None


def _model_files_near(p: Path) -> str | None:
    """The model files in the run folders around a missing one (runs/*/model.pt and the like), up to 3."""
    base = p.parent if p.parent.is_dir() else Path(".")
    found = sorted({str(f) for pattern in ("*/model.pt", "*/*/model.pt") for f in base.glob(pattern)})
    if not found:
        return None
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return f"model files here: {', '.join(found[:3])}{more}"
