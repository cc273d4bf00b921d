"""Start-up time of `dltool --help` (and a sub-command's), with shell completion on (as shipped) and off.

Each variant runs as a fresh interpreter, interleaved, many times; medians are reported, and the
ratio on/off says what `--install-completion`/`--show-completion` cost at start-up. The bare
interpreter (`python -c pass`) is measured in the same run as the floor.

    .venv/bin/python benchmarks/help_startup.py [--repeat 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

SHIPPED = "from dltool.cli import main; main({args!r})"
# the same app with Typer's completion options removed: what `--help` cost before they were switched on
NO_COMPLETION = "from dltool.cli.app import app; app._add_completion = False\n" + SHIPPED


def _time(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=40)
    repeat = ap.parse_args().repeat
    variants = {"python -c pass": "pass"}
    for args in (["--help"], ["vision", "classify", "train", "--help"]):
        variants[f"completion on:  dltool {' '.join(args)}"] = SHIPPED.format(args=args)
        variants[f"completion off: dltool {' '.join(args)}"] = NO_COMPLETION.format(args=args)
    for code in variants.values():  # warm the file cache
        _time(code)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, code in variants.items():  # interleaved, so load on the machine hits all alike
            times[name].append(_time(code))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, m in med.items():
        print(f"{name:48s} median {m * 1000:6.1f} ms  (min {min(times[name]) * 1000:6.1f})")
    for args in ("--help", "vision classify train --help"):
        on, off = f"completion on:  dltool {args}", f"completion off: dltool {args}"
        print(f"ratio=completion on/off for `dltool {args}`: {med[on] / med[off]:.3f} (medians), "
              f"{min(times[on]) / min(times[off]):.3f} (minimums: the least disturbed runs)")


if __name__ == "__main__":
    main()
