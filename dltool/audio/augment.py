"""--augment: named ops, random per clip, batched on the device. Waveform ops (gain, shift, noise) act
before the features are computed, SpecAugment's masks (freqmask, timemask) on the normalised features."""

from __future__ import annotations

import torch

from dltool.core.errors import unknown_name

WAVE_OPS = ("gain", "shift", "noise")
SPEC_OPS = ("freqmask", "timemask")
OPS = WAVE_OPS + SPEC_OPS


def parse_ops(spec: str | None) -> tuple[str, ...]:
    ops = tuple(s.strip() for s in (spec or "").split(",") if s.strip())
    for op in ops:
        if op not in OPS:
            raise unknown_name("--augment op", op, OPS)
    return ops


def _uniform(n: int, low: float, high: float, device) -> torch.Tensor:
    return torch.empty(n, 1, device=device).uniform_(low, high)


def augment_wave(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    """x: (N, samples)."""
    n = x.shape[0]
    if "gain" in ops:  # -6 .. +6 dB
        x = x * 10 ** (_uniform(n, -6, 6, x.device) / 20)
    if "shift" in ops:  # up to a tenth of the clip, either way, wrapping around
        limit = x.shape[1] // 10
        shifts = torch.randint(-limit, limit + 1, (n, 1), device=x.device)
        idx = (torch.arange(x.shape[1], device=x.device) - shifts) % x.shape[1]
        x = x.gather(1, idx)
    if "noise" in ops:  # white noise at 10 .. 40 dB SNR
        snr = 10 ** (_uniform(n, 10, 40, x.device) / 10)
        power = x.pow(2).mean(1, keepdim=True).clamp_min(1e-10)
        x = x + torch.randn_like(x) * (power / snr).sqrt()
    return x


def augment_spec(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    """x: (N, F, frames): SpecAugment masks (torchaudio's), a different mask per clip, at most an eighth
    of the bands and of the frames, set to 0 (the mean, after normalisation)."""
    import torchaudio.transforms as T

    x = x.unsqueeze(1)  # iid_masks needs (N, C, F, T)
    if "freqmask" in ops:
        x = T.FrequencyMasking(max(1, x.shape[2] // 8), iid_masks=True)(x)
    if "timemask" in ops:
        x = T.TimeMasking(max(1, x.shape[3] // 8), iid_masks=True)(x)
    return x.squeeze(1)
