"""Feature tables: the pipe between subcommands (DESIGN.md §3).

A table is CSV with a header, JSON Lines, `.npy` or `.npz`. Numeric columns are features;
other columns (path, id, label, ...) pass through untouched so results can be joined back.
`-` reads stdin / writes stdout; stdin is sniffed (JSON Lines if it starts with '{', else CSV).
JSON Lines keeps types, so a JSON string "3" is a label, not a feature. CSV has no types, so two
rules keep what one command writes read back the same: identifier columns (`id`, `*_id`, `label`,
`path`, `file`, `filename`) are text in every format, and so is a column with a zero-padded code
("0042"); every other column that parses as numbers is numeric (use --features/--exclude to choose).
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dltool.core.errors import InputError, OptionError
from dltool.core.io import atomic_open, input_path

NUMERIC_SHARE_FOR_TYPO = 0.5  # a column at least this numeric, with a few non-numbers, is a typo
TABLE_FORMATS = ("auto", "table", "jsonl", "csv", "json", "npz")
IDENTIFIER_COLUMNS = {"id", "label", "path", "file", "filename"}


def is_identifier(name: str) -> bool:
    """A column that names or labels a row (never a feature, whatever its values look like)."""
    lower = name.lower()
    return lower in IDENTIFIER_COLUMNS or lower.endswith("_id")


def _zero_padded(v) -> bool:
    """'0042': a code whose leading zeros a number would lose."""
    return isinstance(v, str) and len(v) > 1 and v[0] == "0" and v.isdigit()


def check_table_format(fmt: str, path: str = "-") -> str:
    """The --format a table goes out in, checked before any work (so a bad one leaves no file behind)."""
    if fmt not in TABLE_FORMATS:
        from dltool.core.errors import unknown_name

        raise unknown_name("--format", fmt, TABLE_FORMATS)
    fmt = table_format(path, fmt)
    if fmt == "table" and str(path) != "-":
        raise OptionError(f"--format table is for the terminal; it cannot be written to '{path}'",
                          "use csv, jsonl, json or npz for files")
    return fmt


def check_matrix(X, *, min_rows: int = 1, what: str = "this command") -> np.ndarray:
    """A finite 2-D float64 matrix with at least one column and `min_rows` rows (`what` needs them)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"expected a 2-D feature matrix, got shape {X.shape}")
    if X.shape[1] == 0:
        raise InputError("the feature matrix has no columns", "give at least one numeric feature column")
    n = X.shape[0]
    if n < min_rows:
        raise InputError(f"the table has {n} row{'s' if n != 1 else ''} — {what} needs at least {min_rows}",
                         "give a table with more rows")
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise InputError(f"row {row + 1}, feature {col + 1} is {X[row, col]} (not a finite number)",
                         "clean the data or pass --dropna")
    return X


#: numeric columns of `predict` records that are no features: a table of nothing else was piped from a
#: predict that forgot --embed
PREDICTION_SCORES = {"score"}


@dataclass
class Table:
    """Columns in order; numeric ones as float64 arrays, others as object arrays."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def is_numeric(self, name: str) -> bool:
        return self.columns[name].dtype.kind in "fiub"

    def numeric_names(self) -> list[str]:
        return [n for n in self.columns if self.is_numeric(n)]

    def passthrough_names(self) -> list[str]:
        return [n for n in self.columns if not self.is_numeric(n)]

    def select_rows(self, mask: np.ndarray) -> Table:
        return Table({n: c[mask] for n, c in self.columns.items()})

    def with_columns(self, new: dict[str, np.ndarray]) -> Table:
        """A copy with `new` columns added (or replaced) at the end."""
        cols = {n: c for n, c in self.columns.items() if n not in new}
        cols.update({n: np.asarray(c) for n, c in new.items()})
        return Table(cols)

    def without(self, names) -> Table:
        return Table({n: c for n, c in self.columns.items() if n not in set(names)})

    def feature_names(self, features: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
        """The feature columns: `features` (checked), or every numeric column not in `exclude`."""
        if features:
            missing = [f for f in features if f not in self.columns]
            if missing:
                from dltool.core.errors import suggest

                raise OptionError(f"--features: no column '{missing[0]}' in the table",
                                  suggest(missing[0], self.names) or f"columns are: {', '.join(self.names)}")
            bad = [f for f in features if not self.is_numeric(f)]
            if bad:
                raise InputError(f"--features: column '{bad[0]}' is not numeric",
                                 "identifier columns (id, *_id, label, path, file) and zero-padded codes are "
                                 "read as text" if is_identifier(bad[0]) or any(map(_zero_padded, self.columns[bad[0]]))
                                 else None)
            names = list(features)
        else:
            skip = set(exclude or ())
            names = [n for n in self.numeric_names() if n not in skip]
            if names and set(names) <= PREDICTION_SCORES and "label" in self.columns:
                raise InputError(f"the table's only numeric column is {names[0]!r}, a prediction's confidence, "
                                 "not features of the inputs",
                                 "add --embed to the predict command: it writes the network's features (emb0, ...)")
        if not names:
            raise InputError("the table has no numeric feature columns",
                             f"columns are: {', '.join(self.names) or '(none)'}; numeric columns are features")
        return names

    def feature_matrix(self, features: list[str] | None = None, exclude: list[str] | None = None,
                       *, dropna: bool = False) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(X, feature names, kept-row mask). Fails clearly on no features or NaN/inf."""
        names = self.feature_names(features, exclude)
        if len(self) == 0:
            raise InputError("the table has no rows")
        X = np.column_stack([self.columns[n].astype(np.float64) for n in names])
        finite = np.isfinite(X)
        keep = finite.all(axis=1)
        if not keep.all():
            if not dropna:
                row, col = np.argwhere(~finite)[0]
                raise InputError(f"row {row + 1}, column '{names[col]}' is {X[row, col]} (not a finite number)",
                                 "clean the data or pass --dropna to drop such rows")
            from dltool.core.console import warn

            warn(f"--dropna: dropped {int((~keep).sum())} of {len(keep)} rows with NaN/inf")
            X = X[keep]
            if len(X) == 0:
                raise InputError("no rows left after --dropna")
        return X, names, keep


def _text_column(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)  # filled, not np.asarray: lists of one length stay lists
    column[:] = [_plain(v) for v in values]
    return column


def _coerce_column(name: str, values: list) -> np.ndarray:
    """Numeric if every non-empty value is a number; a mostly-numeric column with a stray word fails.
    Identifier columns and zero-padded codes stay as written (text from CSV, JSON values from JSON Lines)."""
    if is_identifier(name) or any(_zero_padded(v) for v in values):
        return _text_column(values)
    nums, bad = [], None
    n_numeric = 0
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "NaN")):
            nums.append(math.nan)
            continue
        if isinstance(v, bool):
            nums.append(float(v))
            n_numeric += 1
            continue
        if isinstance(v, (int, float)):
            nums.append(float(v))
            n_numeric += 1
            continue
        if isinstance(v, str) and not _from_json_string(v):
            try:
                nums.append(float(v))
                n_numeric += 1
                continue
            except ValueError:
                pass
        if bad is None:
            bad = (i, v)
        nums.append(math.nan)
    if bad is None and n_numeric > 0:
        return np.asarray(nums, dtype=np.float64)
    if bad is not None and n_numeric / max(1, len(values)) >= NUMERIC_SHARE_FOR_TYPO and n_numeric >= 2:
        row, value = bad
        raise InputError(f"row {row + 1}, column '{name}': {str(value)!r} is not a number",
                         "fix the value, or name the feature columns with --features")
    return _text_column(values)


class _JsonString(str):
    """A value that was a JSON string: never coerced to a number."""


def _from_json_string(v) -> bool:
    return isinstance(v, _JsonString)


def _plain(v):
    return str(v) if isinstance(v, _JsonString) else v


def _from_records(records: list[dict], source: str) -> Table:
    if not records:
        raise InputError(f"{source}: the table has no rows")
    names: list[str] = []
    seen = set()
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                names.append(k)
    return Table({n: _coerce_column(n, [r.get(n) for r in records]) for n in names})


def json_object(line: str, source: str, lineno: int) -> dict:
    """One JSON Lines record, or an error naming the file and line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: line {lineno} is not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{source}: line {lineno} is not a JSON object")
    return obj


def _read_jsonl(text: str, source: str) -> Table:
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = json_object(line, source, lineno)
        records.append({k: _JsonString(v) if isinstance(v, str) else v for k, v in obj.items()})
    return _from_records(records, source)


def _read_csv(text: str, source: str) -> Table:
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]
    if not rows:
        raise InputError(f"{source}: the table is empty")
    header, body = rows[0], rows[1:]
    if len(set(header)) != len(header):
        raise InputError(f"{source}: duplicate column names in the header")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise InputError(f"{source}: row {i + 1} has {len(r)} values but the header has {len(header)}")
    return _from_records([dict(zip(header, r)) for r in body], source)


def _read_numpy(path: Path) -> Table:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise InputError(f"{path}: cannot read as a NumPy file ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        arrays = {k: data[k] for k in data.files}
        if "X" not in arrays:
            raise InputError(f"{path}: an .npz table needs an array 'X' (rows x features)")
        X = arrays.pop("X")
        names = [str(n) for n in arrays.pop("columns")] if "columns" in arrays else None
        extra = {k: v for k, v in arrays.items() if v.ndim == 1 and len(v) == len(X)}
    else:
        X, names, extra = data, None, {}
    if X.ndim != 2 or X.dtype.kind not in "fiub":
        raise InputError(f"{path}: expected a 2-D numeric array, got shape {X.shape} of {X.dtype}")
    names = names or [f"x{i}" for i in range(X.shape[1])]
    cols = {n: v if v.dtype.kind in "fiub" and not is_identifier(n) else v.astype(str).astype(object)
            for n, v in extra.items()}
    cols.update({n: X[:, i].astype(np.float64) for i, n in enumerate(names)})
    return Table(cols)


def read_table(path: str) -> Table:
    """Read a feature table from a file or `-` (stdin)."""
    if str(path) == "-":
        if sys.stdin.isatty():
            raise InputError("reading a table from stdin, but stdin is a terminal", "pipe a table in or give a file")
        text = sys.stdin.read()
        source = "stdin"
        if not text.strip():
            raise InputError("stdin: no table was piped in (empty input)")
        return _read_jsonl(text, source) if text.lstrip().startswith("{") else _read_csv(text, source)
    p = input_path(path, "table")
    if p.is_dir():
        raise InputError(f"table '{path}' is a folder", "give a .csv, .jsonl, .npy or .npz file")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _read_numpy(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text table (CSV/JSON Lines) nor .npy/.npz") from None
    if not text.strip():
        raise InputError(f"{path}: the table is empty")
    if suffix in (".jsonl", ".json", ".ndjson") or text.lstrip().startswith("{"):
        return _read_jsonl(text, str(path))
    return _read_csv(text, str(path))


def _integral(col: np.ndarray) -> bool:
    """Integer dtype, or floats that are all whole numbers small enough to be exact."""
    if col.dtype.kind in "iub":
        return True
    return bool(len(col)) and bool(np.all(np.isfinite(col)) and np.all(col == np.round(col))
                                   and np.all(np.abs(col) < 2**53))


def _json_value(v):
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if math.isfinite(float(v)) else ""
    if isinstance(v, (list, dict)):  # a nested value from JSON Lines (a prediction's topk) stays JSON
        return json.dumps(v)
    return str(v)


def table_format(path: str, fmt: str) -> str:
    """Resolve --format for a table written to `path`."""
    if fmt != "auto":
        return fmt
    if str(path) == "-":
        return "table" if sys.stdout.isatty() else "jsonl"
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".npz": "npz"}.get(suffix, "csv")


def write_table(table: Table, path: str = "-", fmt: str = "auto") -> None:
    """Write atomically to a file, or to stdout for `-` (JSON Lines when piped)."""
    fmt = check_table_format(fmt, path)
    names = table.names
    # integer-valued numeric columns (cluster ids) are written as integers
    ints = {n for n in names if table.is_numeric(n) and _integral(table.columns[n])}
    if fmt == "npz":
        numeric = table.numeric_names()
        with atomic_open(path, "wb") as f:
            extra = {n: table.columns[n].astype(str) for n in table.passthrough_names()}
            np.savez(f, X=np.column_stack([table.columns[n] for n in numeric]), columns=np.array(numeric), **extra)
        return
    if fmt == "table":
        from rich.table import Table as RichTable

        from dltool.core.output import results_console

        rt = RichTable(*names)
        for i in range(len(table)):
            rt.add_row(*[_cell(table.columns[n][i]) if n not in ints else str(int(table.columns[n][i])) for n in names])
        results_console().print(rt)
        return
    with atomic_open(path) as f:
        if fmt == "csv":
            import csv

            w = csv.writer(f, lineterminator="\n")
            w.writerow(names)
            for i in range(len(table)):
                w.writerow([int(table.columns[n][i]) if n in ints else _cell(table.columns[n][i]) for n in names])
        elif fmt in ("jsonl", "json"):
            rows = ({n: int(table.columns[n][i]) if n in ints else _json_value(table.columns[n][i]) for n in names}
                    for i in range(len(table)))
            if fmt == "json":
                json.dump(list(rows), f)
                f.write("\n")
            else:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
