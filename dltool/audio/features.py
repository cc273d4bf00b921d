"""Spectrograms and MFCCs: torchaudio's transforms on the chosen device, many clips per call; the
constant-Q transform with librosa on the CPU.

Conventions match librosa's defaults for the same parameters, so the numbers agree with
`librosa.feature.melspectrogram` / `librosa.feature.mfcc` (tests/audio/test_features.py checks it):
frames centred with zero padding (librosa's pad_mode="constant"), a periodic window, Slaney's mel
scale with Slaney-normalised filters, dB as 10*log10(max(S, 1e-10)) clipped to 80 dB below each
clip's own peak, and an orthonormal DCT-II for MFCCs. One convention differs: deltas are
torchaudio's (a 9-frame regression whose edges repeat the first and last frame) where librosa's
`feature.delta` fits its edges by interpolation, so the first and last four delta frames differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dltool.core.errors import OptionError, unknown_name

KINDS = ("stft", "mel", "cqt", "mfcc")
WINDOWS = ("hann", "hamming", "blackman", "bartlett", "rect")
POOLS = ("none", "mean", "meanstd", "minmax")
TOP_DB = 80.0
CQT_FMIN = 32.70319566257483  # C1, librosa's default


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "mel"
    sr: int = 16000
    n_fft: int = 512
    hop: int | None = None          # default n_fft // 4, as librosa
    win_length: int | None = None   # default n_fft
    window: str = "hann"
    n_mels: int = 64
    fmin: float | None = None       # default 0 Hz (CQT: C1)
    fmax: float | None = None       # default sr / 2
    power: float = 2.0
    db: bool = True
    n_mfcc: int = 13
    deltas: int = 0
    n_bins: int = 84                # CQT bins (7 octaves of 12)

    @property
    def hop_length(self) -> int:
        return self.hop or self.n_fft // 4

    @property
    def f_min(self) -> float:
        return self.fmin if self.fmin is not None else (CQT_FMIN if self.kind == "cqt" else 0.0)

    @property
    def f_max(self) -> float:
        return self.fmax if self.fmax is not None else self.sr / 2

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise unknown_name("--kind", self.kind, KINDS)
        if self.window not in WINDOWS:
            raise unknown_name("--window", self.window, WINDOWS)
        if self.n_fft < 16:
            raise OptionError(f"--n-fft {self.n_fft} is too small", "use 256, 512 or more")
        if self.hop is not None and self.hop < 1:
            raise OptionError(f"--hop {self.hop} must be at least 1")
        if self.win_length is not None and not 1 <= self.win_length <= self.n_fft:
            raise OptionError(f"--win-length {self.win_length} must be between 1 and --n-fft {self.n_fft}")
        if not self.power > 0:
            raise OptionError(f"--power {self.power} must be positive (1: magnitude, 2: power)")
        if self.db and self.power not in (1.0, 2.0):
            raise OptionError(f"--db needs --power 1 (magnitude) or 2 (power), not {self.power}",
                              "use --power 1 or 2, or --no-db")
        nyquist = self.sr / 2
        if self.fmax is not None and not 0 < self.fmax <= nyquist:
            raise OptionError(f"--fmax {self.fmax} must be in (0, {nyquist:g}], the Nyquist frequency at --sr {self.sr}")
        if not 0 <= self.f_min < self.f_max:
            raise OptionError(f"--fmin {self.f_min:g} must be at least 0 and below --fmax {self.f_max:g}")
        if self.deltas not in (0, 1, 2):
            raise OptionError(f"--deltas {self.deltas} must be 0, 1 or 2")
        if self.kind == "mfcc" and not 1 <= self.n_mfcc <= self.n_mels:
            raise OptionError(f"--n-mfcc {self.n_mfcc} must be between 1 and --n-mels {self.n_mels}")
        if self.kind == "cqt" and self.n_bins < 1:
            raise OptionError(f"--n-bins {self.n_bins} must be at least 1")
        if self.kind in ("mel", "mfcc"):
            self._check_mel_filters()

    def _check_mel_filters(self) -> None:
        """Too many mel bands for the FFT's frequency bins leaves some filters empty: an error, not
        torchaudio's warning and rows of zeros (-100 dB) in every output."""
        import torchaudio.functional as AF

        if self.n_mels < 1:
            raise OptionError(f"--n-mels {self.n_mels} must be at least 1")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the same finding as torchaudio's warning, as an error
            fb = AF.melscale_fbanks(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels, self.sr,
                                    norm="slaney", mel_scale="slaney")
        empty = int((fb.sum(0) == 0).sum())
        if empty:
            raise OptionError(f"--n-mels {self.n_mels} is too many for --n-fft {self.n_fft} at --sr {self.sr}: "
                              f"{empty} mel filters fall between FFT bins and stay empty",
                              "use fewer --n-mels or a larger --n-fft")

    @property
    def row_names(self) -> list[str]:
        """A name per feature row (for pooled tables)."""
        if self.kind == "mfcc":
            base = [f"mfcc{i}" for i in range(self.n_mfcc)]
            return base + [f"d{'d' * (k - 1)}_{n}" for k in range(1, self.deltas + 1) for n in base]
        n = {"stft": self.n_fft // 2 + 1, "mel": self.n_mels, "cqt": self.n_bins}[self.kind]
        return [f"{self.kind}{i}" for i in range(n)]


def _window_fn(name: str):
    import torch

    return {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window,
            "bartlett": torch.bartlett_window, "rect": lambda n, **kw: torch.ones(n, **kw)}[name]


def extractor(cfg: FeatureConfig):
    """A torch module: waveforms (B, T) -> features (B, F, frames). Not for CQT (see cqt())."""
    import torch
    import torchaudio.transforms as T

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            spec = dict(n_fft=cfg.n_fft, win_length=cfg.win_length or cfg.n_fft, hop_length=cfg.hop_length,
                        window_fn=_window_fn(cfg.window), power=cfg.power, center=True, pad_mode="constant")
            mel = dict(spec, f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, norm="slaney", mel_scale="slaney")
            if cfg.kind == "stft":
                self.transform = T.Spectrogram(**spec)
            elif cfg.kind == "mel":
                self.transform = T.MelSpectrogram(sample_rate=cfg.sr, **mel)
            else:  # torchaudio's MFCC takes the dB of the mel power spectrogram itself, as librosa does
                mel["power"] = 2.0
                self.transform = T.MFCC(sample_rate=cfg.sr, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho",
                                        log_mels=False, melkwargs=mel)
            self.to_db = (T.AmplitudeToDB("magnitude" if cfg.power == 1 else "power", top_db=TOP_DB)
                          if cfg.db and cfg.kind != "mfcc" else None)
            self.deltas = T.ComputeDeltas(win_length=9) if cfg.kind == "mfcc" and cfg.deltas else None

        def forward(self, wave):
            # (B, 1, T): torchaudio's dB clipping takes the peak over the dimensions after the batch,
            # so with a channel axis each clip is clipped against its own peak, not the batch's
            x = self.transform(wave.unsqueeze(1))
            if self.to_db is not None:
                x = self.to_db(x)
            x = x.squeeze(1)
            if self.deltas is not None:
                d1 = self.deltas(x)
                x = torch.cat([x, d1] + ([self.deltas(d1)] if cfg.deltas == 2 else []), dim=1)
            return x

    return Features()


def cqt(cfg: FeatureConfig, wave) -> np.ndarray:  # noqa: F821
    """Constant-Q transform of one clip with librosa (CPU) -> (n_bins, frames)."""
    import warnings

    import librosa
    import numpy as np

    from dltool.core.console import library_warnings

    y = wave.detach().cpu().numpy().astype(np.float32)
    try:
        with library_warnings():
            warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large")  # see warn_if_too_short_for_cqt
            c = np.abs(librosa.cqt(y, sr=cfg.sr, hop_length=cfg.hop_length, fmin=cfg.f_min, n_bins=cfg.n_bins,
                                   window=cfg.window if cfg.window != "rect" else "boxcar"))
    except librosa.ParameterError as e:
        raise OptionError(f"CQT: {e}", "lower --n-bins or --fmin, or use a --hop that is a multiple of a "
                                       "power of two (e.g. 256)") from None
    c = c ** cfg.power
    if cfg.db:
        to_db = librosa.power_to_db if cfg.power == 2 else librosa.amplitude_to_db
        c = to_db(c, ref=1.0, top_db=TOP_DB)
    return c.astype(np.float32)


def warn_if_too_short_for_cqt(cfg: FeatureConfig, n_samples: int) -> None:  # noqa: F821
    """The lowest CQT bin's filter needs a window (a power of two at least its length) that a short clip may not
    fill: its bins are then computed mostly from padding (librosa says so per clip and octave). Said once, for
    the shortest clip, naming the --fmin that fits it."""
    import math

    import librosa

    lowest_two = librosa.cqt_frequencies(n_bins=2, fmin=cfg.f_min)  # librosa's bandwidths need two bins
    longest, _ = librosa.filters.wavelet_lengths(freqs=lowest_two, sr=cfg.sr,
                                                 window=cfg.window if cfg.window != "rect" else "boxcar")
    window = 2 ** math.ceil(math.log2(longest[0]))
    if window <= n_samples:
        return
    fits = math.ceil(cfg.f_min * longest[0] / 2 ** math.floor(math.log2(n_samples)) * 10) / 10
    from dltool.core.console import warn

    warn(f"--kind cqt: a clip of {n_samples} samples is shorter than the {window}-sample window of the lowest bin "
         f"(--fmin {cfg.f_min:.1f} Hz), so the lowest bins are mostly padding; --fmin {fits:g} fits it")


def pool(feats, how: str, names: list[str]) -> dict:
    """(B, F, frames) tensor -> columns name_stat: the statistics over time of each feature row."""
    stats = {"mean": ("mean",), "meanstd": ("mean", "std"), "minmax": ("min", "max")}[how]
    columns = {}
    values = {"mean": lambda: feats.mean(-1), "std": lambda: feats.std(-1, correction=0),
              "min": lambda: feats.amin(-1), "max": lambda: feats.amax(-1)}
    computed = {s: values[s]().double().cpu().numpy() for s in stats}
    for s in stats:
        for i, n in enumerate(names):
            columns[f"{n}_{s}"] = computed[s][:, i]
    return columns
