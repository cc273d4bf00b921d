"""Audio classification: train, evaluate, predict, export.

Clips are loaded once by the shared rule (dltool.audio.io) and held as waveforms on the device; the
features (log-mel by default, or MFCC) are computed on the device inside every step, after the
waveform augmentations and before SpecAugment's masks. The feature settings and the normalisation
travel in the model file, so eval and predict repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from dltool.audio import io
from dltool.audio.augment import SPEC_OPS, WAVE_OPS, augment_spec, augment_wave, parse_ops
from dltool.audio.features import FeatureConfig, extractor
from dltool.audio.models import MODELS, create_model, model_meta
from dltool.core import classification, inputs
from dltool.core import run as runs
from dltool.core.classification import ClassifierTask, Decoded, EvalConfig, PredictConfig
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.export import Normalized, check_onnx_path, export_onnx
from dltool.core.modelfile import LoadedModel, load_model
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, recipe
from dltool.core.train import Engine, EngineConfig

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
    # every training voice counts: the test voices are new ones (README)
    run: RunConfig = RunConfig(batch_size=32, val_split=0.0)
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


class AudioClassifyTask(ClassifierTask):
    """A classifier's batches of waveforms: features computed on the device, then normalised."""

    name = TASK

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict, device,
                 augment_ops: tuple[str, ...] = ()):
        super().__init__(arch, arch_kwargs, classes, preprocess)
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

    def forward(self, model, batch, train: bool = False):
        x, y = batch
        return model(self.prepare(x, train=train)), y

    def model_inputs(self, waves: torch.Tensor) -> tuple:
        return (self.prepare(waves),)


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
    run = cfg.run
    device, run_dir = runs.start(cfg, TASK)
    items = inputs.scan_labelled(cfg.data, io.AUDIO)
    waves, kept = io.load(items, sr=cfg.sr, duration=cfg.duration, device=device, skip_bad=run.skip_bad)
    classes = sorted({it.label for it in kept})
    if len(classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(classes)} class", "a classifier needs at least two classes")
    x = _stack(waves)
    y = torch.tensor([classes.index(it.label) for it in kept], device=device)
    if run.val is not None:
        v_items = inputs.scan_labelled(run.val, io.AUDIO)
        unknown = sorted({it.label for it in v_items} - set(classes))
        if unknown:
            raise InputError(f"--val has classes not in the training data: {', '.join(unknown[:5])}")
        v_waves, v_kept = io.load(v_items, sr=cfg.sr, duration=cfg.duration, device=device, skip_bad=run.skip_bad,
                                  what="reading validation audio")
        x_tr, y_tr = x, y
        x_va = _stack(v_waves)
        y_va = torch.tensor([classes.index(it.label) for it in v_kept], device=device)
    else:
        from dltool.core.data import stratified_split

        tr, va = stratified_split(y.cpu().numpy(), run.val_split, cfg.engine.seed)
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
    train_batches = TensorBatches((x_tr, y_tr), run.batch_size, shuffle=True, seed=cfg.engine.seed)
    val_batches = (TensorBatches((x_va, y_va), max(256, run.batch_size), shuffle=False)
                   if y_va is not None else None)
    task = AudioClassifyTask(cfg.model, arch_kwargs, classes, preprocess, device, parse_ops(cfg.augment))
    return Engine(task, model, cfg.engine, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)


# -- inference --------------------------------------------------------------------------------

def load(path, device) -> LoadedModel:
    """An audio-classify model file on `device` (a name or a torch.device)."""
    return load_model(path, task=TASK, registry=MODELS, device=device, make_task=lambda ckpt, dev: AudioClassifyTask(
        ckpt["arch"], ckpt["arch_kwargs"], ckpt["classes"], ckpt["preprocess"], dev))


def _scan(cfg: PredictConfig) -> list:
    return inputs.scan_inputs(cfg.inputs, io.AUDIO)


def _decode(lm: LoadedModel, items: list, cfg) -> Decoded:
    """Clips at the model's sample rate and length, on its device."""
    waves, kept = io.load(items, sr=lm.preprocess["features"]["sr"], duration=lm.preprocess["duration"],
                          device=lm.device, skip_bad=cfg.skip_bad)
    return Decoded(torch.stack(waves), [it.label for it in kept], [{"path": str(it.path)} for it in kept])


def _read_labelled(lm: LoadedModel, cfg: EvalConfig) -> Decoded:
    return _decode(lm, inputs.scan_labelled(cfg.data, io.AUDIO), cfg)


def evaluate(cfg: EvalConfig) -> dict:
    return classification.evaluate(cfg, load=load, read=_read_labelled)


def predict(cfg: PredictConfig):
    """Records in input order (or the --embed feature table); dltool.core.classification.predict."""
    return classification.predict(cfg, load=load, scan=_scan, decode=_decode)


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
    lm = load(model_path, "cpu")
    sr = lm.preprocess["features"]["sr"]
    n_samples = int(round(lm.preprocess["duration"] * sr))
    example = torch.randn(2, n_samples) * 0.1
    return export_onnx(_FromWaveform(lm), example, output, {
        "from": "waveform",
        "input": {"name": "waveform", "shape": ["N", n_samples], "dtype": "float32", "sample_rate": sr,
                  "channels": 1, "range": [-1, 1]},
        "output": {"name": "logits", "shape": ["N", len(lm.classes)]}, "classes": lm.classes,
        "features": {"kind": lm.preprocess["feature_kind"], **lm.preprocess["features"]}}, input_name="waveform")
