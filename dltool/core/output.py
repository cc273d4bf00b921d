"""Results to stdout in --format auto|table|jsonl|csv|json (auto: table on a terminal, JSON when piped)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable

FORMATS = ("auto", "table", "jsonl", "csv", "json")


def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def resolve_format(fmt: str) -> str:
    if fmt not in FORMATS:
        from dltool.core.errors import unknown_name

        raise unknown_name("--format", fmt, FORMATS)
    return ("table" if sys.stdout.isatty() else "jsonl") if fmt == "auto" else fmt


def results_console():
    """A rich Console for results on stdout: on a terminal its width; piped or redirected, never narrower
    than the table (rich would cut cells at 80 columns, and a file has no width)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=100_000)


def emit_object(obj: dict, fmt: str = "auto") -> None:
    """One result object (metrics): one JSON line when piped, a key/value table on a terminal."""
    obj = _clean(obj)
    fmt = resolve_format(fmt)
    if fmt == "table":
        from rich.table import Table

        t = Table("metric", "value", show_header=False)
        for k, v in obj.items():
            t.add_row(k, _fmt_nested(v) if isinstance(v, (dict, list)) else _fmt_scalar(v))
        results_console().print(t)
    elif fmt == "json":
        print(json.dumps(obj, indent=2), flush=True)
    elif fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        flat = {k: v for k, v in obj.items() if not isinstance(v, (dict, list))}
        w.writerow(flat.keys())
        w.writerow(flat.values())
    else:
        print(json.dumps(obj), flush=True)


def emit_records(records: Iterable[dict], fmt: str = "auto", stream=None) -> None:
    """Per-item results (predictions), streamed as JSON Lines or CSV, or collected into a table."""
    stream = stream or sys.stdout
    fmt = resolve_format(fmt) if stream is sys.stdout else ("jsonl" if fmt in ("auto", "table") else fmt)
    if fmt == "jsonl":
        for r in records:
            stream.write(json.dumps(_clean(r)) + "\n")
        stream.flush()
        return
    records = [_clean(r) for r in records]
    if fmt == "json":
        json.dump(records, stream)
        stream.write("\n")
    elif fmt == "csv":
        import csv

        keys = list(records[0]) if records else []
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(keys)
        for r in records:
            w.writerow([json.dumps(r[k]) if isinstance(r.get(k), (dict, list)) else r.get(k) for k in keys])
    else:
        from rich.table import Table

        keys = list(records[0]) if records else []
        t = Table(*keys)
        for r in records:
            t.add_row(*[json.dumps(r[k]) if isinstance(r.get(k), (dict, list)) else _fmt_scalar(r.get(k)) for k in keys])
        results_console().print(t)


def _fmt_nested(v, limit: int = 70) -> str:
    """Short nested values in full; long ones (a confusion matrix) point to the JSON output."""
    text = json.dumps(v)
    return text if len(text) <= limit else f"{text[:limit - 20]}... (all of it: --format json)"


def _fmt_scalar(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_records(records: list[dict], output: str, fmt: str) -> None:
    """Prediction records to stdout ('-') in --format, or atomically to a file (JSON Lines by default)."""
    from dltool.core.io import atomic_open

    if output == "-":
        emit_records(records, fmt)
    else:
        with atomic_open(output) as f:
            emit_records(records, "jsonl" if fmt == "auto" else fmt, stream=f)


def write_predictions(result, output: str, fmt: str) -> None:
    """What a `predict` returned, written by the command: a feature table by dltool.core.tables, records (a
    list, or an iterator that streams) as JSON Lines or --format to stdout or atomically to a file. Nothing
    on ranks other than 0 (None)."""
    from dltool.core.tables import Table, write_table

    if result is None:
        return
    if isinstance(result, Table):
        write_table(result, output, fmt)
    else:
        write_records(result, output, fmt)

