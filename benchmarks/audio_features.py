"""MFCCs of a folder of clips: `dltool audio mfcc DIR --pool mean` against a plain librosa loop, in the same run.

    .venv/bin/python benchmarks/audio_features.py                 # 500 one-second clips at 16 kHz, CPU
    .venv/bin/python benchmarks/audio_features.py --device cuda   # also the GPU figure (where one is lent)
    .venv/bin/python benchmarks/audio_features.py --clips 100     # smaller, for a smoke test

Both sides read the same WAV files and compute 13 MFCCs with matched parameters (16 kHz, n_fft 512,
hop 128, 64 Slaney mel bands, power-to-dB with top_db 80, orthonormal DCT-II) and their mean over
frames, then write one CSV table. Two comparisons, in the same run, each side `--repeats` times in
turn, keeping its best time:
- as a user runs them (the bar's figure): a fresh `dltool audio mfcc` process against a fresh Python
  process running the librosa loop (start-up, imports and librosa's numba compilation included);
- the work alone: both in this warm process, after a warm-up call each.
ratio = librosa time / dltool time: above 1 means dltool is faster. Bar: ratio >= 2 on CPU.
The tables are compared too (max abs difference of the pooled MFCCs), so speed is not bought with
different numbers.

The last line reads `cpu ratio=<x>` (and `cuda ratio=<y>` with --device cuda).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SR, N_FFT, HOP, N_MELS, N_MFCC = 16000, 512, 128, 64, 13


def make_clips(folder: Path, n: int) -> None:
    """Seeded one-second clips: a few harmonics of a random pitch, an envelope and noise."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    for i in range(n):
        f0 = rng.uniform(100, 400)
        y = sum(rng.uniform(0.1, 0.5) / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
        y = y * np.hanning(SR) + 0.01 * rng.standard_normal(SR)
        sf.write(folder / f"clip{i:04d}.wav", y.astype(np.float32), SR, subtype="PCM_16")


def librosa_loop(folder: Path, out: Path) -> None:
    import librosa

    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path"] + [f"mfcc{i}_mean" for i in range(N_MFCC)])
        for p in sorted(folder.glob("*.wav")):
            y, _ = librosa.load(p, sr=SR)
            m = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
            w.writerow([str(p)] + m.mean(1).tolist())


def librosa_process(folder: Path, out: Path) -> None:
    subprocess.run([sys.executable, __file__, "--librosa-only", str(folder), str(out)], check=True)


def dltool_run(folder: Path, out: Path, device: str, threads: int | None) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "dltool", "audio", "mfcc", str(folder), "--pool", "mean", "--sr", str(SR),
           "--n-fft", str(N_FFT), "--hop", str(HOP), "--n-mels", str(N_MELS), "--n-mfcc", str(N_MFCC),
           "--device", device, "-o", str(out), "--quiet"]
    subprocess.run(cmd, check=True, env=env)


def dltool_in_process(folder: Path, device: str) -> float:
    """The same work without the process start-up (torch's import: seconds on a busy machine)."""
    sys.path.insert(0, str(ROOT))
    from dltool.audio import analyze
    from dltool.audio.features import FeatureConfig

    cfg = analyze.AnalyzeConfig(inputs=(str(folder),), pool="mean", device=device,
                                features=FeatureConfig(kind="mfcc", sr=SR, n_fft=N_FFT, hop=HOP, n_mels=N_MELS,
                                                       n_mfcc=N_MFCC))
    analyze.compute(cfg)  # warm-up
    t = time.perf_counter()
    analyze.compute(cfg)
    return time.perf_counter() - t


def read(path: Path) -> np.ndarray:
    with path.open() as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in r[1:]] for r in sorted(rows)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda to report both")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for dltool (default: torch's)")
    ap.add_argument("--librosa-only", nargs=2, metavar=("DIR", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.librosa_only:  # the baseline as its own process
        librosa_loop(Path(args.librosa_only[0]), Path(args.librosa_only[1]))
        return
    import librosa

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = tmp / "clips"
        clips.mkdir()
        make_clips(clips, args.clips)
        librosa.feature.mfcc(y=np.zeros(SR, dtype=np.float32), sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
        devices = ["cpu"] + (["cuda"] if args.device.startswith("cuda") else [])
        best = {k: float("inf") for k in ["librosa", "librosa-warm", *devices]}
        for _ in range(args.repeats):
            t = time.perf_counter()
            librosa_process(clips, tmp / "librosa.csv")
            best["librosa"] = min(best["librosa"], time.perf_counter() - t)
            t = time.perf_counter()
            librosa_loop(clips, tmp / "librosa-warm.csv")
            best["librosa-warm"] = min(best["librosa-warm"], time.perf_counter() - t)
            for dev in devices:
                t = time.perf_counter()
                dltool_run(clips, tmp / f"dltool-{dev}.csv", args.device if dev != "cpu" else "cpu", args.threads)
                best[dev] = min(best[dev], time.perf_counter() - t)
        ref = read(tmp / "librosa.csv")
        print(f"{args.clips} clips of 1 s at {SR} Hz, best of {args.repeats}: librosa loop {best['librosa']:.2f} s "
              f"as a process, {best['librosa-warm']:.2f} s warm")
        ratios = []
        for dev in devices:
            diff = np.abs(read(tmp / f"dltool-{dev}.csv") - ref).max()
            print(f"dltool audio mfcc --device {dev}: {best[dev]:.2f} s (whole process), "
                  f"max |difference| of pooled MFCCs {diff:.2e}")
            inner = dltool_in_process(clips, args.device if dev != "cpu" else "cpu")
            print(f"  the work alone (warm): {inner:.2f} s, ratio {best['librosa-warm'] / inner:.2f}")
            ratios.append(f"{dev} ratio={best['librosa'] / best[dev]:.2f}")
        print(" ".join(ratios))


if __name__ == "__main__":
    main()
