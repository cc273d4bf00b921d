"""Audio in: the one loading rule every audio command follows.

- Files: wav, flac, ogg (and mp3, which the installed libsndfile decodes), read with soundfile;
  torchaudio's own I/O is deprecated upstream, so only its transforms are used.
- Inputs (dltool.core.inputs, with the kind AUDIO): files, folders (searched recursively for those
  extensions), or '-' for a list of paths on stdin. Labelled data for `classify`: root/<class>/*.wav,
  or a CSV of path,label.
- Every clip is mixed down to mono (the mean of its channels), resampled to `sr` with torchaudio's
  resampler on the chosen device, then, with `duration`, cropped or zero-padded at the end to
  exactly that many seconds.
- A corrupt, empty or non-audio file is an error naming the file, and nothing is written. Commands
  that read many files take --skip-bad: such files are then skipped with a warning and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltool.core.console import progress, warn
from dltool.core.errors import InputError, OptionError
from dltool.core.inputs import Item, Kind

AUDIO = Kind("audio file", frozenset({".wav", ".flac", ".ogg", ".mp3"}))
SKIP_HINT = "remove or fix the file, or pass --skip-bad to skip unreadable audio"


# -- decoding ------------------------------------------------------------------------------------

def _open_error(path: Path, e: Exception) -> InputError:
    if path.is_file() and path.stat().st_size == 0:
        return InputError(f"audio file '{path}' is empty (0 bytes)", SKIP_HINT)
    reason = str(e).strip().splitlines()[0].replace(f"'{path}'", "").replace("Error opening :", "").strip()
    return InputError(f"cannot read audio '{path}' ({reason[:120]})", SKIP_HINT)


def _declared_wav_frames(path: Path) -> int | None:
    """The frame count a PCM WAV header declares (None for other files): libsndfile silently reads a
    truncated file's remainder, so a shortfall against this is how a cut-off download shows."""
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError):
        return None


def read(path: Path) -> tuple[np.ndarray, int]:
    """(float32 mono samples, sample rate); raises InputError naming the file."""
    import soundfile as sf

    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise _open_error(path, e) from None
    if path.suffix.lower() == ".wav":
        declared = _declared_wav_frames(path)
        if declared is not None and declared > len(y):
            raise InputError(f"audio file '{path}' is truncated: its header declares {declared} frames, "
                             f"the file holds {len(y)}", SKIP_HINT)
    if len(y) == 0:
        raise InputError(f"audio file '{path}' holds no samples", SKIP_HINT)
    if not np.isfinite(y).all():
        raise InputError(f"audio file '{path}' holds NaN or infinite samples", SKIP_HINT)
    return y.mean(axis=1), int(sr)


def file_info(path: Path) -> dict:
    import soundfile as sf

    try:
        i = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise _open_error(path, e) from None
    declared = _declared_wav_frames(path) if path.suffix.lower() == ".wav" else None
    if declared is not None and declared > i.frames:
        raise InputError(f"audio file '{path}' is truncated: its header declares {declared} frames, "
                         f"the file holds {i.frames}", SKIP_HINT)
    if i.frames <= 0:
        raise InputError(f"audio file '{path}' holds no samples", SKIP_HINT)
    return {"path": str(path), "sample_rate": i.samplerate, "channels": i.channels, "frames": i.frames,
            "duration_s": i.frames / i.samplerate, "format": i.format, "subtype": i.subtype,
            "nyquist_hz": i.samplerate / 2}


def check_load_options(sr: int, duration: float | None) -> None:
    if sr < 1000:
        raise OptionError(f"--sr {sr} is too low", "use a sample rate of at least 1000 Hz, e.g. --sr 16000")
    if duration is not None and not duration > 0:
        raise OptionError(f"--duration {duration} must be a positive number of seconds")


def load(items: list[Item], *, sr: int, duration: float | None, device, skip_bad: bool,
         what: str = "reading audio") -> tuple[list, list[Item]]:
    """Decode, mix down, resample on `device` and crop/pad -> (1-D float tensors on `device`, items kept).

    Clips that share a sample rate and length are resampled as one batch."""
    import torch
    import torchaudio.functional as AF

    decoded, kept = [], []
    with progress(what, len(items)) as advance:
        for it in items:
            try:
                decoded.append(read(it.path))
                kept.append(it)
            except InputError:
                if not skip_bad:
                    raise
                warn(f"skipping unreadable audio '{it.path}'")
            advance()
    if len(kept) < len(items):
        warn(f"--skip-bad: skipped {len(items) - len(kept)} of {len(items)} files")
    if not kept:
        raise InputError("none of the audio files could be read")
    out: list = [None] * len(decoded)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (y, rate) in enumerate(decoded):
        groups.setdefault((rate, len(y)), []).append(i)
    for (rate, _), idx in groups.items():
        batch = torch.from_numpy(np.stack([decoded[i][0] for i in idx])).to(device)
        if rate != sr:
            batch = AF.resample(batch, rate, sr)
        for j, i in enumerate(idx):
            out[i] = batch[j]
    if duration is not None:
        n = int(round(duration * sr))
        out = [y[:n] if len(y) >= n else torch.nn.functional.pad(y, (0, n - len(y))) for y in out]
    return out, kept
