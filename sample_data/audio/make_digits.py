"""Regenerate sample_data/audio: spoken digits 0-9 synthesised with espeak-ng (Debian package `espeak-ng`).

    python sample_data/audio/make_digits.py      # writes train/<digit>/*.wav and test/<digit>/*.wav

Every clip is one word in one voice (an accent with a voice variant), at a seeded random pitch and
speed, trimmed of silence, with light noise added (20-35 dB SNR), 8 kHz 16-bit mono. The split is by
voice: the test accents are never heard in training, so test accuracy measures speakers the model
has not met. Output is the same for the same espeak-ng build (seeded; no clock, no randomness
from the system).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SR = 8000
SEED = 0
# accents x variants: each pair is one "voice"; train and test share no accent
TRAIN_ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"]
TEST_ACCENTS = ["en-gb-x-gbclan", "en-gb-x-gbcwmd"]
TRAIN_VARIANTS = ["m1", "m3", "m5", "m6", "f1", "f3", "f4", "f5"]
TEST_VARIANTS = ["m2", "m4", "f2"]


def synthesise(word: str, voice: str, pitch: int, speed: int, tmp: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wav = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), word],
                   check=True, capture_output=True)
    y, sr = sf.read(wav, dtype="float32")
    return y, sr


def clip(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    import librosa

    y, _ = librosa.effects.trim(y, top_db=35)
    y = librosa.resample(y, orig_sr=sr, target_sr=SR)[:SR]  # at most one second
    y = y / (np.abs(y).max() + 1e-9) * 0.8
    snr_db = rng.uniform(20, 35)
    noise = rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10))
    return np.clip(y + noise, -1, 1)


def main(root: Path) -> None:
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        sys.exit("error: espeak-ng is not installed — apt-get install -y espeak-ng")
    rng = np.random.default_rng(SEED)
    for split, accents, variants in (("train", TRAIN_ACCENTS, TRAIN_VARIANTS), ("test", TEST_ACCENTS, TEST_VARIANTS)):
        shutil.rmtree(root / split, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            for accent in accents:
                for variant in variants:
                    voice = f"{accent}+{variant}"
                    for digit, word in enumerate(WORDS):
                        pitch, speed = int(rng.integers(25, 76)), int(rng.integers(120, 201))
                        y, sr = synthesise(word, voice, pitch, speed, Path(tmp))
                        out = root / split / str(digit) / f"{accent}_{variant}_{digit}.wav"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        sf.write(out, clip(y, sr, rng), SR, subtype="PCM_16")
        print(f"{split}: {sum(1 for _ in (root / split).rglob('*.wav'))} clips")


if __name__ == "__main__":
    main(Path(__file__).resolve().parent)
