"""Tiny generated audio: tones, noise, and the broken files every loader must refuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def tone(freq: float, sr: int = 16000, seconds: float = 1.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def write(path: Path, y: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, subtype=subtype)
    return path


LOW_TONES = (220, 250)


@pytest.fixture
def clips(tmp_path) -> Path:
    """root/a/*.wav (low tones) and root/b/*.flac (high tones): four one-second clips in a two-level tree."""
    root = tmp_path / "clips"
    for i, f in enumerate(LOW_TONES):
        write(root / "a" / f"t{i}.wav", tone(f, seed=i))
        write(root / "b" / f"t{i}.flac", tone(f * 10, seed=10 + i))
    return root


TONE_CLASSES = {"low": (300, 500), "mid": (900, 1300), "high": (2000, 3000)}


def write_tone_classes(root: Path, per_class: int, seed: int, sr: int = 8000) -> Path:
    """root/<low|mid|high>/*.wav: short noisy chirps in three frequency bands, at random times and
    loudness, easy to tell apart in seconds of training."""
    rng = np.random.default_rng(seed)
    for name, (lo, hi) in TONE_CLASSES.items():
        for i in range(per_class):
            n = int(sr * rng.uniform(0.2, 0.45))
            t = np.arange(n) / sr
            f0, f1 = rng.uniform(lo, hi, 2)
            phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1]))
            y = rng.uniform(0.2, 0.8) * np.sin(phase) * np.hanning(n) + 0.02 * rng.standard_normal(n)
            write(root / name / f"{name}{i:02d}.wav", y.astype(np.float32), sr=sr)
    return root


def truncated_wav(path: Path) -> Path:
    full = write(path.with_name("full-" + path.name), tone(440))
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def bad_file(kind: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        return truncated_wav(folder / "cut.wav")
    if kind == "empty":
        p = folder / "empty.wav"
        p.write_bytes(b"")
        return p
    p = folder / "notes.wav"
    p.write_text("this is a text file, not audio\n")
    return p


BAD_KINDS = ("truncated", "empty", "text")
