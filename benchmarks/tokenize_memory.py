"""`dltool text tokenize` keeps memory flat: peak RSS on a generated 200 MB file against a 2 MB file.

The files are random sentences over lee_background.cor's vocabulary (so the vocabulary, the one
thing --stats holds, is the same size in both). Each size runs as its own process; the peak RSS
comes from the kernel (wait4's ru_maxrss). Prints MB/s and peak RSS per size, and the ratio.
Usage: python benchmarks/tokenize_memory.py [--small-mb 2] [--large-mb 200] [--args --lower --strip-punct]
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gensim.test.utils import datapath


def generate(path: Path, megabytes: float, seed: int = 0) -> None:
    words = sorted(set(Path(datapath("lee_background.cor")).read_text(encoding="utf-8").split()))
    rng = random.Random(seed)
    target = int(megabytes * 1e6)
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < target:
            line = " ".join(rng.choices(words, k=rng.randint(5, 60))) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dltool", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, args
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-mb", type=float, default=2)
    ap.add_argument("--large-mb", type=float, default=200)
    ap.add_argument("--args", nargs=argparse.REMAINDER, default=["--lower", "--strip-punct"])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for mb in (a.small_mb, a.large_mb):
        path = tmp / f"{mb:g}mb.txt"
        generate(path, mb)
        rss, seconds = peak_rss_mb(["text", "tokenize", str(path), *a.args, "--stats", str(tmp / "stats.csv")])
        results[mb] = rss
        print(f"{mb:g} MB: peak RSS {rss:.1f} MB, {seconds:.1f}s ({mb / seconds:.2f} MB/s)")
        path.unlink()
    print(f"peak RSS ratio {a.large_mb:g} MB / {a.small_mb:g} MB = {results[a.large_mb] / results[a.small_mb]:.3f}")


if __name__ == "__main__":
    main()
