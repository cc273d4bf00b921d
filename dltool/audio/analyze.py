"""`audio info`, `audio spectrogram` and `audio mfcc`: metadata, and features per file (.npy), as a
pooled feature table, or as pictures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.audio import features as F
from dltool.audio import io
from dltool.core.console import progress, warn
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.inputs import Item, scan_inputs

CHUNK = 256  # clips per call of the transform


def info(inputs: list[str], *, skip_bad: bool = False):
    """One row per file: path, sample rate, channels, frames, duration, format, subtype, Nyquist."""
    from dltool.core.tables import Table

    items = scan_inputs(inputs, io.AUDIO, labels=False)
    rows = []
    for it in items:
        try:
            rows.append(io.file_info(it.path))
        except InputError:
            if not skip_bad:
                raise
            warn(f"skipping unreadable audio '{it.path}'")
    if len(rows) < len(items):
        warn(f"--skip-bad: skipped {len(items) - len(rows)} of {len(items)} files")
    if not rows:
        raise InputError("none of the audio files could be read")
    return Table({k: np.array([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None)
                  for k in rows[0]})


@dataclass(frozen=True)
class AnalyzeConfig:
    inputs: tuple[str, ...]
    features: F.FeatureConfig
    duration: float | None = None
    pool: str = "none"
    out: Path | None = None
    plot: Path | None = None
    output: str = "-"
    fmt: str = "auto"
    skip_bad: bool = False
    device: str = "auto"
    shard: tuple[int, int] | None = None  # --shard I/N: only the I-th of N contiguous blocks of the inputs

    def validate(self) -> None:
        self.features.validate()
        io.check_load_options(self.features.sr, self.duration)
        if self.pool not in F.POOLS:
            raise unknown_name("--pool", self.pool, F.POOLS)
        if self.pool == "none" and self.out is None and self.plot is None:
            raise OptionError("nothing to write", "give --out DIR for a .npy per file, --pool mean|meanstd|minmax "
                                                  "for a feature table, or --plot DIR for pictures")
        if self.pool != "none":
            from dltool.core.tables import check_table_format

            check_table_format(self.fmt, self.output)


def _targets(items: list[Item], folder: Path | None, suffix: str) -> list[Path] | None:
    """Output paths mirroring the input tree; two inputs landing on one output is an error."""
    if folder is None:
        return None
    paths = [folder / it.rel.with_suffix(suffix) for it in items]
    seen: dict[Path, Path] = {}
    for it, p in zip(items, paths):
        if p in seen:
            raise InputError(f"'{seen[p]}' and '{it.path}' would both be written to '{p}'",
                             "give them in separate runs or rename one")
        seen[p] = it.path
    return paths


def _device(cfg: AnalyzeConfig):
    import torch

    from dltool.core.device import placed_on, resolve_device

    if cfg.features.kind == "cqt":  # librosa's CQT: the whole command runs on the CPU
        return torch.device(placed_on(cfg.device, "the constant-Q transform (librosa)"))
    return resolve_device(cfg.device)


def compute(cfg: AnalyzeConfig):
    """Features of every file; writes --out .npy files and --plot pictures; returns the pooled table or None."""
    import torch

    from dltool.core import distributed as dist
    from dltool.core.inputs import gathered_table, shard

    cfg.validate()
    device = dist.setup(_device(cfg))
    fc = cfg.features
    items = scan_inputs(cfg.inputs, io.AUDIO, labels=False)
    # output paths of every input, so two landing on one file fail alike in each shard; then this one's
    npy_paths, png_paths = _targets(items, cfg.out, ".npy"), _targets(items, cfg.plot, ".png")
    items, npy_paths, png_paths = (None if x is None else shard(x, cfg.shard) for x in (items, npy_paths, png_paths))
    if not items:  # more processes than inputs: this rank has none
        return gathered_table(None, cfg.shard) if cfg.pool != "none" else None
    waves, kept = io.load(items, sr=fc.sr, duration=cfg.duration, device=device, skip_bad=cfg.skip_bad)
    if len(kept) < len(items):
        keep = {it.path for it in kept}
        npy_paths = npy_paths and [p for it, p in zip(items, npy_paths) if it.path in keep]
        png_paths = png_paths and [p for it, p in zip(items, png_paths) if it.path in keep]

    per_file: list = [None] * len(waves)
    pooled: list[dict] = []
    order = []
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        groups.setdefault(len(w), []).append(i)  # equal lengths batch exactly (no padding changes a frame)
    transform = None if fc.kind == "cqt" else F.extractor(fc).to(device)
    if fc.kind == "cqt":
        F.warn_if_too_short_for_cqt(fc, min(len(w) for w in waves))
    names = fc.row_names
    with torch.inference_mode(), progress(f"{fc.kind} features", len(waves)) as advance:
        for idx in groups.values():
            for start in range(0, len(idx), CHUNK):
                chunk = idx[start:start + CHUNK]
                if transform is None:
                    feats = torch.from_numpy(np.stack([F.cqt(fc, waves[i]) for i in chunk]))
                else:
                    feats = transform(torch.stack([waves[i] for i in chunk]))
                if cfg.pool != "none":
                    pooled.append(F.pool(feats, cfg.pool, names))
                    order += chunk
                if npy_paths or png_paths:
                    host = feats.float().cpu().numpy()
                    for j, i in enumerate(chunk):
                        per_file[i] = host[j]
                advance(len(chunk))

    from dltool.core.io import atomic_open

    for i, path in enumerate(npy_paths or []):
        with atomic_open(path, "wb") as f:
            np.save(f, per_file[i])
    for i, path in enumerate(png_paths or []):
        plot(per_file[i], fc, path, title=f"{kept[i].path.name} — {_title(fc)}")
    if cfg.pool == "none":
        return None
    from dltool.core.tables import Table

    columns = {n: np.concatenate([p[n] for p in pooled]) for n in pooled[0]}
    inverse = np.argsort(np.array(order))  # back to input order
    table = {"path": np.array([str(it.path) for it in kept], dtype=object)}
    table.update({n: c[inverse] for n, c in columns.items()})
    return gathered_table(Table(table), cfg.shard)


def _title(fc: F.FeatureConfig) -> str:
    if fc.kind == "mfcc":
        return f"MFCC ({fc.n_mfcc}{', +deltas' * bool(fc.deltas)})"
    return {"stft": "STFT spectrogram", "mel": f"mel spectrogram ({fc.n_mels} bands)",
            "cqt": f"constant-Q ({fc.n_bins} bins)"}[fc.kind]


def plot(data: np.ndarray, fc: F.FeatureConfig, path: Path, title: str) -> None:
    """A picture as librosa.display.specshow draws one: time in seconds, Hz / mel / note axis, colour bar."""
    import librosa.display

    from dltool.core.plots import figure, save_figure

    fig, ax = figure(figsize=(8, 4))
    y_axis = {"stft": "linear", "mel": "mel", "cqt": "cqt_hz", "mfcc": None}[fc.kind]
    kw = {"fmin": fc.f_min, "fmax": fc.f_max} if fc.kind == "mel" else {"fmin": fc.f_min} if fc.kind == "cqt" else {}
    img = librosa.display.specshow(data, sr=fc.sr, hop_length=fc.hop_length, x_axis="time", y_axis=y_axis,
                                   ax=ax, **kw)
    if fc.kind == "mfcc":
        ax.set_ylabel("coefficient")
    elif fc.kind in ("stft", "mel"):  # the last bin's edge lies past the top frequency: no tick beyond it
        ax.set_ylim(top=fc.f_max if fc.kind == "mel" else fc.sr / 2)
    db = fc.db and fc.kind != "mfcc"
    fig.colorbar(img, ax=ax, format="%+2.0f dB" if db else None, label=None if db else "value")
    ax.set_title(title)
    save_figure(fig, path)
