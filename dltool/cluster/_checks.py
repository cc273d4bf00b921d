"""Parameter checks shared by the estimators: each failure names the option, the value, what is allowed
and what to do (scikit-learn's `_param_validation`, in words a command-line user reads)."""

from __future__ import annotations

import numpy as np

from dltool.core.errors import OptionError, unknown_name


def check_k(k: int, n_rows: int, *, flag: str = "-k", minimum: int = 1) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise OptionError(f"{flag} {k!r} is not a whole number", f"use an integer >= {minimum}")
    if k < minimum:
        raise OptionError(f"{flag} {k} is too small", f"use {flag} >= {minimum}")
    if k > n_rows:
        raise OptionError(f"{flag} {k} is more than the {n_rows} rows", f"use {flag} <= {n_rows}")
    return int(k)


def check_positive(flag: str, value, *, strict: bool = True, integer: bool = False):
    """value > 0 (or >= 0 when strict=False); integers where `integer`."""
    if value is None:
        return value
    if integer and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
        raise OptionError(f"{flag} {value!r} is not a whole number", f"use an integer {'>' if strict else '>='} 0")
    ok = value > 0 if strict else value >= 0
    if not ok or not np.isfinite(value):
        what = "positive" if strict else "zero or positive"
        example = "1" if integer else "0.5"
        raise OptionError(f"{flag} {value} must be {what}", f"use e.g. {flag} {example}")
    return value


def check_choice(flag: str, value: str, allowed) -> str:
    if value not in allowed:
        err = unknown_name(f"{flag} value", value, allowed)
        raise OptionError(f"{flag} '{value}' is not one of {'|'.join(allowed)}", err.hint)
    return value
