"""Audio classification: train, evaluate, predict, export.

Clips are loaded once by the shared rule (dltool.audio.io) and held as waveforms on the device; the
features (log-mel by default, or MFCC) are computed on the device inside every step, after the
waveform augmentations and before SpecAugment's masks. The feature settings and the normalisation
travel in the model file, so eval and predict repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dltool.audio import io
from dltool.audio.augment import SPEC_OPS, WAVE_OPS, augment_spec, augment_wave, parse_ops
from dltool.audio.features import FeatureConfig, extractor
from dltool.audio.models import MODELS, create_model, model_meta
from dltool.core.console import info
from dltool.core.device import resolve_device
from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name
from dltool.core.export import Normalized, check_onnx_path, export_onnx
from dltool.core.modelfile import load_model_file
from dltool.core.registry import arch_options
from dltool.core.train import Engine, EngineConfig, start_run

TASK = "audio-classify"
FEATURES = ("logmel", "mfcc")


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    engine: EngineConfig
    model: str = "conv1d"  # with the augmentation below: the best on voices never heard in training (README)
    feature_type: str | None = None  # --features; default: the model's (logmel for CNNs, mfcc for sequence models)
    sr: int = 16000
    duration: float = 1.0
    n_fft: int = 512
    hop: int | None = None
    n_mels: int = 64
    n_mfcc: int = 20
    augment: str | None = "shift,freqmask,timemask"
    activation: str = "relu"
    dropout: float = 0.25
    width: int | None = None
    skip_bad: bool = False
    batch_size: int = 32
    val_split: float = 0.0  # every training voice counts: the test voices are new ones (README)
    val: Path | None = None
    out: Path | None = None
    force: bool = False
    device: str = "auto"
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    @property
    def feature_kind(self) -> str:
        return self.feature_type or model_meta(self.model)["features"]

    def feature_config(self) -> FeatureConfig:
        kind = "mel" if self.feature_kind == "logmel" else "mfcc"
        return FeatureConfig(kind=kind, sr=self.sr, n_fft=self.n_fft, hop=self.hop, n_mels=self.n_mels,
                             n_mfcc=self.n_mfcc, db=True)

    def validate(self) -> None:
        self.engine.validate()
        if self.batch_size < 1:
            raise OptionError(f"--batch-size {self.batch_size} must be at least 1")
        if not 0 <= self.val_split < 1:
            raise OptionError(f"--val-split {self.val_split} must be in [0, 1)")
        MODELS.get(self.model)
        if self.feature_type is not None and self.feature_type not in FEATURES:
            raise unknown_name("--features", self.feature_type, FEATURES)
        io.check_load_options(self.sr, self.duration)
        self.feature_config().validate()
        parse_ops(self.augment)
        arch_options(self, MODELS, ARCH_OPTIONS)  # refuses what the model does not take, before any audio is read
        if self.engine.freezes:
            raise OptionError("--freeze-backbone/--unfreeze-after need pretrained weights, which audio "
                              "classify does not load yet", "drop the option")


ARCH_OPTIONS = ("activation", "dropout", "width")


def _arch_kwargs(cfg: TrainConfig, num_classes: int, in_features: int) -> dict:
    return {"num_classes": num_classes, "in_features": in_features, **arch_options(cfg, MODELS, ARCH_OPTIONS)}


class AudioClassifyTask:
    """What the engine needs to train a classifier on waveforms (see dltool.core.train)."""

    monitor = "accuracy"
    monitor_mode = "max"
    channels_last = False

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict, device,
                 augment_ops: tuple[str, ...] = ()):
        self.arch, self.arch_kwargs, self.classes, self.preprocess = arch, arch_kwargs, classes, preprocess
        self.wave_ops = tuple(o for o in augment_ops if o in WAVE_OPS)
        self.spec_ops = tuple(o for o in augment_ops if o in SPEC_OPS)
        self.features = extractor(FeatureConfig(**preprocess["features"])).to(device)
        self.mean = torch.tensor(preprocess["mean"], device=device).view(1, -1, 1)
        self.std = torch.tensor(preprocess["std"], device=device).view(1, -1, 1)

    def prepare(self, wave: torch.Tensor, train: bool = False) -> torch.Tensor:
        """Waveforms (N, samples) -> normalised features (N, F, frames), augmented when training."""
        if train and self.wave_ops:
            wave = augment_wave(wave, self.wave_ops)
        with torch.autocast(wave.device.type, enabled=False):  # spectra in float32, whatever the model runs in
            x = (self.features(wave.float()) - self.mean) / self.std
        if train and self.spec_ops:
            x = augment_spec(x, self.spec_ops)
        return x

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(self.prepare(x, train=True)), y)

    def evaluate(self, model, batches) -> dict:
        loss_sum, correct, n = 0.0, 0, 0
        for x, y in batches:
            logits = model(self.prepare(x)).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def payload(self, model) -> dict:
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "classes": self.classes, "preprocess": self.preprocess}


@torch.inference_mode()
def _feature_stats(fc: FeatureConfig, waves: torch.Tensor, chunk: int = 256) -> tuple[list, list]:
    """Per-band mean and std of the training features (over clips and frames), for normalisation."""
    feats = extractor(fc).to(waves.device)
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(waves), chunk):
        x = feats(waves[start:start + chunk]).double()
        total = total + x.sum((0, 2))
        total_sq = total_sq + x.pow(2).sum((0, 2))
        count += x.shape[0] * x.shape[2]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-6).sqrt()
    return mean.float().tolist(), std.float().tolist()


def _stack(waves: list) -> torch.Tensor:
    return torch.stack(waves) if waves else torch.empty(0)


def train(cfg: TrainConfig) -> dict:
    from dltool.core.data import TensorBatches

    cfg.validate()
    device, run_dir = start_run(cfg.engine, device=cfg.device, out=cfg.out, name=TASK, force=cfg.force,
                                options=_recipe(cfg))
    items = io.scan_labelled(cfg.data)
    waves, kept = io.load(items, sr=cfg.sr, duration=cfg.duration, device=device, skip_bad=cfg.skip_bad)
    classes = sorted({it.label for it in kept})
    if len(classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(classes)} class", "a classifier needs at least two classes")
    x = _stack(waves)
    y = torch.tensor([classes.index(it.label) for it in kept], device=device)
    if cfg.val is not None:
        v_items = io.scan_labelled(cfg.val)
        unknown = sorted({it.label for it in v_items} - set(classes))
        if unknown:
            raise InputError(f"--val has classes not in the training data: {', '.join(unknown[:5])}")
        v_waves, v_kept = io.load(v_items, sr=cfg.sr, duration=cfg.duration, device=device, skip_bad=cfg.skip_bad,
                                  what="reading validation audio")
        x_tr, y_tr = x, y
        x_va = _stack(v_waves)
        y_va = torch.tensor([classes.index(it.label) for it in v_kept], device=device)
    else:
        from dltool.core.data import stratified_split

        tr, va = stratified_split(y.cpu().numpy(), cfg.val_split, cfg.engine.seed)
        x_tr, y_tr = x[tr], y[tr]
        x_va, y_va = (x[va], y[va]) if va is not None else (None, None)

    fc = cfg.feature_config()
    mean, std = _feature_stats(fc, x_tr)
    preprocess = {"features": fc.as_dict(), "duration": cfg.duration, "feature_kind": cfg.feature_kind,
                  "mean": mean, "std": std}
    n_frames = 1 + int(round(cfg.duration * cfg.sr)) // fc.hop_length
    info(f"data: {len(y_tr)} training clips, {0 if y_va is None else len(y_va)} validation, {len(classes)} classes, "
         f"{cfg.feature_kind} {len(mean)} x {n_frames} frames, on {device.type}")
    arch_kwargs = _arch_kwargs(cfg, len(classes), len(mean))
    model = create_model(cfg.model, **arch_kwargs)
    train_batches = TensorBatches((x_tr, y_tr), cfg.batch_size, shuffle=True, seed=cfg.engine.seed)
    val_batches = (TensorBatches((x_va, y_va), max(256, cfg.batch_size), shuffle=False)
                   if y_va is not None else None)
    task = AudioClassifyTask(cfg.model, arch_kwargs, classes, preprocess, device, parse_ops(cfg.augment))
    return Engine(task, model, cfg.engine, run_dir, device, _recipe(cfg)).fit(train_batches, val_batches)


def _recipe(cfg: TrainConfig) -> dict:
    """The options to save in config.toml (and compare on --resume)."""
    return {**cfg.options, "data": str(cfg.data)}


# -- inference --------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    model: torch.nn.Module
    task: AudioClassifyTask
    classes: list[str]
    preprocess: dict


def load(path, device) -> LoadedModel:
    ckpt = load_model_file(path, task=TASK)
    try:
        model = create_model(ckpt["arch"], **ckpt["arch_kwargs"])
        model.load_state_dict(ckpt["state_dict"])
        task = AudioClassifyTask(ckpt["arch"], ckpt["arch_kwargs"], ckpt["classes"], ckpt["preprocess"], device)
    except (RuntimeError, KeyError, TypeError) as e:
        raise ModelFileError(f"'{path}' does not match its architecture '{ckpt.get('arch')}' ({str(e)[:160]})") from None
    model.to(device).eval()
    return LoadedModel(model, task, list(ckpt["classes"]), dict(ckpt["preprocess"]))


def _load_clips(lm: LoadedModel, items, device, skip_bad: bool):
    fc = lm.preprocess["features"]
    waves, kept = io.load(items, sr=fc["sr"], duration=lm.preprocess["duration"], device=device, skip_bad=skip_bad)
    return torch.stack(waves), kept


@torch.inference_mode()
def _run(lm: LoadedModel, waves: torch.Tensor, batch_size: int, embed: bool = False) -> torch.Tensor:
    outs = []
    for start in range(0, len(waves), batch_size):
        x = lm.task.prepare(waves[start:start + batch_size])
        out = lm.model.forward_features(x) if embed else lm.model(x)
        outs.append(out.float().cpu())
    return torch.cat(outs)


def evaluate(model_path, data, *, out=None, batch_size=256, device="auto", skip_bad=False) -> dict:
    from dltool.core.classification import classification_metrics, report_evaluation

    if batch_size < 1:
        raise OptionError(f"--batch-size {batch_size} must be at least 1")
    dev = resolve_device(device)
    lm = load(model_path, dev)
    items = io.scan_labelled(data)
    unknown = sorted({it.label for it in items} - set(lm.classes))
    if unknown:
        raise InputError(f"'{data}' has classes the model does not know: {', '.join(unknown[:5])}",
                         f"the model's classes are: {', '.join(lm.classes[:20])}")
    waves, kept = _load_clips(lm, items, dev, skip_bad)
    y_true = np.array([lm.classes.index(it.label) for it in kept])
    y_pred = _run(lm, waves, batch_size).argmax(1).numpy()
    metrics = classification_metrics(y_true, y_pred, lm.classes)
    report_evaluation(metrics, out)
    return metrics


def predict(model_path, inputs, *, output="-", topk=3, embed=False, batch_size=256, device="auto",
            skip_bad=False, fmt="auto") -> None:
    from dltool.core.classification import topk_records, write_embeddings, write_records

    if topk < 1:
        raise OptionError(f"--topk {topk} must be at least 1")
    if batch_size < 1:
        raise OptionError(f"--batch-size {batch_size} must be at least 1")
    dev = resolve_device(device)
    lm = load(model_path, dev)
    items = io.scan_predict(inputs)
    waves, kept = _load_clips(lm, items, dev, skip_bad)
    has_truth = any(it.label is not None for it in kept)
    if embed:
        ids = {"path": [str(it.path) for it in kept]}
        if has_truth:
            ids["true_label"] = [it.label or "" for it in kept]
        write_embeddings(ids, _run(lm, waves, batch_size, embed=True).numpy(), output, fmt)
        return
    records = topk_records(_run(lm, waves, batch_size).softmax(1), lm.classes, topk)
    records = [{"path": str(it.path), **rec} for it, rec in zip(kept, records)]
    for it, rec in zip(kept, records):
        if it.label is not None:
            rec["true_label"] = it.label
    write_records(records, output, fmt)


class _FromWaveform(torch.nn.Module):
    """Takes mono waveforms (N, samples) at the model's sample rate and length, computes the features
    (the same torchaudio transforms as training: the STFT exports as ONNX's STFT op), normalises and
    returns logits: a served model needs no feature code of its own."""

    def __init__(self, lm: LoadedModel):
        super().__init__()
        self.features = lm.task.features
        self.classify = Normalized(lm.model, lm.task.mean.cpu(), lm.task.std.cpu())

    def forward(self, wave):
        return self.classify(self.features(wave))


def export(model_path, output) -> dict:
    """ONNX from the waveform (see _FromWaveform); a JSON spec beside it gives the input and the classes."""
    output = check_onnx_path(output)
    lm = load(model_path, torch.device("cpu"))
    sr = lm.preprocess["features"]["sr"]
    n_samples = int(round(lm.preprocess["duration"] * sr))
    example = torch.randn(2, n_samples) * 0.1
    return export_onnx(_FromWaveform(lm), example, output, {
        "from": "waveform",
        "input": {"name": "waveform", "shape": ["N", n_samples], "dtype": "float32", "sample_rate": sr,
                  "channels": 1, "range": [-1, 1]},
        "output": {"name": "logits", "shape": ["N", len(lm.classes)]}, "classes": lm.classes,
        "features": {"kind": lm.preprocess["feature_kind"], **lm.preprocess["features"]}}, input_name="waveform")
