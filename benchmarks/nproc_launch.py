"""`--nproc 2` against torchrun, end to end: the same short training (one epoch of cnn_tiny on the sample
digits, two processes on the CPU) started by dltool's own launcher and by `python -m torch.distributed.run
--standalone --nproc-per-node 2 -m dltool ...` (what --nproc ran before), alternated, median of --repeat runs
each. The difference is the launcher: torchrun's imports torch and starts an elastic agent before the
workers start.

    python benchmarks/nproc_launch.py [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*cmd, "--out", str(out), "--force", "--quiet"], check=True, cwd=ROOT, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    train = ["vision", "classify", "train", "sample_data/digits/train", "--model", "cnn_tiny", "--epochs", "1"]
    ours = [sys.executable, "-m", "dltool", *train, "--nproc", "2"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "dltool",
                *train]
    times = {"dltool --nproc 2": [], "torchrun": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeat):
            times["dltool --nproc 2"].append(timed(ours, Path(tmp) / "ours"))
            times["torchrun"].append(timed(torchrun, Path(tmp) / "torchrun"))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<18} median {v:6.2f} s  ({', '.join(f'{t:.2f}' for t in times[k])})")
    print(f"torchrun / --nproc: {med['torchrun'] / med['dltool --nproc 2']:.2f}x  (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
