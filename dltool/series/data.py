"""Time series out of a feature table (dltool.core.tables): one or many series, on a regular grid.

`read_series(table, spec)` groups the rows by `--id`, parses `--time` (dates through pandas, or whole
numbers as integer steps), checks that every series is strictly increasing in time (an unsorted or a
repeated timestamp is named), infers one regular frequency (or takes `--freq`) and either refuses the
first gap or fills it (`--fill ffill|interpolate`). Targets and covariates must be numeric; an empty
target cell is a gap too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dltool.core.errors import InputError, OptionError, suggest

FILLS = ("ffill", "interpolate")
#: the usual season of a pandas frequency (its leading letters), used when --season is not given
SEASONS = {"MS": 12, "ME": 12, "M": 12, "W": 52, "QS": 4, "QE": 4, "Q": 4, "D": 7, "B": 5, "h": 24, "H": 24,
           "min": 60, "YS": 1, "YE": 1, "Y": 1, "A": 1, "AS": 1}


@dataclass(frozen=True)
class SeriesSpec:
    """Which columns make the series (saved in a model file, so eval and predict need not be told)."""

    time: str
    targets: tuple[str, ...]
    id: str | None = None
    covariates: tuple[str, ...] = ()
    freq: str | None = None
    fill: str | None = None


@dataclass
class Series:
    id: str
    time: np.ndarray        # datetime64[ns] or int64 steps
    y: np.ndarray           # (n, targets) float64
    x: np.ndarray           # (n, covariates) float64

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> Series:
        return Series(self.id, self.time[:n], self.y[:n], self.x[:n])


@dataclass
class SeriesSet:
    series: list[Series]
    spec: SeriesSpec
    freq: str | int          # a pandas offset alias, or the integer step
    dates: bool

    def future_times(self, s: Series, after: int, horizon: int) -> np.ndarray:
        """The `horizon` times after index `after` of series `s` (on its grid)."""
        last = s.time[after]
        if not self.dates:
            return last + self.freq * np.arange(1, horizon + 1)
        import pandas as pd

        return pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=self.freq)[1:].to_numpy()

    def season(self) -> int:
        """The usual season of the frequency (monthly 12, weekly 52, ...); 1 for integer steps."""
        if not self.dates:
            return 1
        import re

        name = re.sub(r"^\d+", "", str(self.freq)).split("-")[0]
        return SEASONS.get(name, 1)


def format_time(t, dates: bool):
    """A time as a table cell: an int step, or an ISO date (date and time when it has one)."""
    if not dates:
        return int(t)
    import pandas as pd

    ts = pd.Timestamp(t)
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


def check_spec(spec: SeriesSpec) -> None:
    """Checks that need no data."""
    if not spec.targets:
        raise OptionError("--target names no column", "e.g. --target sales (or --target a,b)")
    if spec.fill is not None and spec.fill not in FILLS:
        from dltool.core.errors import unknown_name

        raise unknown_name("--fill", spec.fill, FILLS)
    overlap = {spec.time, spec.id} & set(spec.targets + spec.covariates)
    if overlap:
        raise OptionError(f"column '{sorted(c for c in overlap if c)[0]}' is both the time or id and a target "
                          "or covariate", "give each column one role")
    if spec.freq is not None:
        _offset(spec.freq, dates=not spec.freq.lstrip("-").isdigit())


def _column(table, name: str, flag: str) -> np.ndarray:
    if name not in table.columns:
        raise OptionError(f"{flag}: no column '{name}' in the table",
                          suggest(name, table.names) or f"columns are: {', '.join(table.names)}")
    return table.columns[name]


def _numeric(table, name: str, flag: str) -> np.ndarray:
    col = _column(table, name, flag)
    if not table.is_numeric(name):
        bad = next((v for v in col if v is not None and v != ""), None)
        raise InputError(f"{flag} {name}: the column is not numeric (e.g. {str(bad)!r})",
                         "give a numeric column")
    return col.astype(np.float64)


def _offset(freq: str, dates: bool):
    if not dates:
        try:
            step = int(freq)
        except ValueError:
            raise OptionError(f"--freq {freq!r}: the time column holds integer steps, so --freq is a whole number",
                              "e.g. --freq 1") from None
        if step < 1:
            raise OptionError(f"--freq {freq}: an integer step must be at least 1")
        return step
    import pandas as pd

    try:
        return pd.tseries.frequencies.to_offset(freq).freqstr
    except ValueError:
        raise OptionError(f"--freq {freq!r} is not a pandas frequency",
                          "e.g. --freq D, W, MS, QS, YS, h, or a whole number for integer steps") from None


def parse_times(col: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """(times, dates?) : whole numbers are integer steps, anything else must parse as dates."""
    if col.dtype.kind in "fiub":
        if not np.all(np.isfinite(col)):
            row = int(np.flatnonzero(~np.isfinite(col))[0])
            raise InputError(f"--time {name}: row {row + 1} has no time")
        if not np.all(col == np.round(col)):
            row = int(np.flatnonzero(col != np.round(col))[0])
            raise InputError(f"--time {name}: row {row + 1} is {col[row]}, not a whole step nor a date",
                             "use integer steps or dates such as 2024-01-31")
        return col.astype(np.int64), False
    import pandas as pd

    values = [str(v) for v in col]
    try:
        return pd.to_datetime(values, format="ISO8601").tz_localize(None).to_numpy(), True
    except (ValueError, TypeError):
        pass
    for i, v in enumerate(values):
        try:
            pd.to_datetime(v, format="ISO8601")
        except (ValueError, TypeError):
            raise InputError(f"--time {name}: row {i + 1} is {v!r}, not a date",
                             "use ISO dates such as 2024-01-31 (or integer steps)") from None
    raise InputError(f"--time {name}: the times do not parse as one kind of date")


def _infer_freq(times: np.ndarray, dates: bool, label: str):
    """The grid's step from the first few times (so that a later gap can be named)."""
    if not dates:
        diffs = np.diff(times)
        return int(diffs.min()) if len(diffs) else 1
    import warnings

    import pandas as pd

    for k in range(min(len(times), 12), 2, -1):
        with warnings.catch_warnings():  # pandas 3 announces that infer_freq will return an offset
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(pd.DatetimeIndex(times[:k]))
        if freq is not None:
            return str(freq) if isinstance(freq, str) else freq.freqstr
    raise InputError(f"{label}: cannot infer a regular frequency from its first times",
                     "give --freq (e.g. D, W, MS, QS, YS, h)")


def read_series(table, spec: SeriesSpec, *, holdout: int = 0) -> SeriesSet:
    """The table's series, regular and gap-free (see the module's docstring). `holdout`: drop the last
    that many points of every series (they are the test of a later eval)."""
    import pandas as pd

    check_spec(spec)
    if len(table) == 0:
        raise InputError("the table has no rows")
    times, dates = parse_times(_column(table, spec.time, "--time"), spec.time)
    ys = np.column_stack([_numeric(table, t, "--target") for t in spec.targets])
    xs = np.column_stack([_numeric(table, c, "--covariates") for c in spec.covariates]) if spec.covariates \
        else np.zeros((len(table), 0))
    ids = np.array([str(v) for v in _column(table, spec.id, "--id")], dtype=object) if spec.id \
        else np.full(len(table), "", dtype=object)
    order = list(dict.fromkeys(ids))
    freq = None
    if spec.freq is not None:
        freq = _offset(spec.freq, dates=dates)
    out = []
    for sid in order:
        rows = np.flatnonzero(ids == sid)
        label = f"series '{sid}'" if spec.id else "the series"
        t = times[rows]
        d = np.diff(t)
        if len(d) and not (d > d[:0].dtype.type(0)).all():
            i = int(np.flatnonzero(d <= d.dtype.type(0))[0])
            a, b = format_time(t[i], dates), format_time(t[i + 1], dates)
            if d[i] == d.dtype.type(0):
                raise InputError(f"{label}: time {a} appears twice (rows {rows[i] + 1} and {rows[i + 1] + 1})",
                                 "keep one row per time (aggregate duplicates first)")
            raise InputError(f"{label}: row {rows[i + 1] + 1} (time {b}) comes before row {rows[i] + 1} (time {a})",
                             f"sort the table by {spec.id + ', ' if spec.id else ''}{spec.time}")
        if freq is None:
            freq = _infer_freq(t, dates, label)
        if dates:
            grid = pd.date_range(pd.Timestamp(t[0]), pd.Timestamp(t[-1]), freq=freq).to_numpy()
        else:
            grid = np.arange(t[0], t[-1] + 1, freq)
        off = np.setdiff1d(t, grid)
        if len(off):
            raise InputError(f"{label}: time {format_time(off[0], dates)} is off the regular {freq} grid",
                             "give --freq, or resample the table to one frequency")
        y, x = ys[rows], xs[rows]
        missing = np.setdiff1d(grid, t)
        empty = ~np.isfinite(y).all(axis=1) | ~np.isfinite(x).all(axis=1)
        if (len(missing) or empty.any()) and spec.fill is None:
            first = missing[0] if len(missing) else None
            if empty.any() and (first is None or t[np.flatnonzero(empty)[0]] < first):
                first = t[np.flatnonzero(empty)[0]]
            n_gap = len(missing) + int(empty.sum())
            raise InputError(f"{label}: a gap at {format_time(first, dates)} (no value; {n_gap} missing in all)",
                             "pass --fill ffill or --fill interpolate, or fill the table first")
        if len(missing) or empty.any():
            frame = pd.DataFrame(np.column_stack([y, x]), index=t).reindex(grid)
            frame = frame.ffill() if spec.fill == "ffill" else frame.interpolate(limit_direction="forward")
            frame = frame.bfill()  # a series that starts with a gap takes its first value
            y, x, t = frame.to_numpy()[:, :ys.shape[1]], frame.to_numpy()[:, ys.shape[1]:], grid
        s = Series(str(sid), t, y, x)
        if holdout:
            s = s.head(max(0, len(s) - holdout))
        out.append(s)
    return SeriesSet(out, spec, freq, dates)
