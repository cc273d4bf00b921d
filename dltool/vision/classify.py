"""Image classification: train, evaluate, predict, export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dltool.core.console import info
from dltool.core.device import resolve_device
from dltool.core.errors import InputError, ModelFileError, OptionError
from dltool.core.export import Normalized, export_onnx
from dltool.core.io import write_json
from dltool.core.modelfile import load_model_file, load_pretrained
from dltool.core.registry import arch_options
from dltool.core.train import Engine, EngineConfig, start_run
from dltool.vision import data as vdata
from dltool.vision.augment import augment, parse_ops
from dltool.vision.models import MODELS, create_model, model_meta

TASK = "vision-classify"
PRELOAD_LIMIT_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    engine: EngineConfig
    model: str = "cnn"
    img_size: int | None = None
    augment: str | None = None
    activation: str = "relu"
    dropout: float = 0.25
    batch_norm: bool = True
    width: int = 32
    pretrained: Path | None = None
    skip_bad: bool = False
    batch_size: int = 64
    val_split: float = 0.1
    val: Path | None = None
    out: Path | None = None
    force: bool = False
    workers: int = 2
    preload: bool | None = None
    device: str = "auto"
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        self.engine.validate()
        if self.batch_size < 1:
            raise OptionError(f"--batch-size {self.batch_size} must be at least 1")
        if not 0 <= self.val_split < 1:
            raise OptionError(f"--val-split {self.val_split} must be in [0, 1)")
        if self.img_size is not None and self.img_size < 1:
            raise OptionError(f"--img-size {self.img_size} must be positive")
        MODELS.get(self.model)
        meta = model_meta(self.model)
        if self.img_size is not None and self.img_size < meta["min_size"]:
            raise OptionError(f"--img-size {self.img_size} is too small for {self.model}",
                              f"use --img-size {meta['min_size']} or more")
        if self.engine.freezes and self.pretrained is None:
            flag = "--unfreeze-after" if self.engine.unfreeze_after else "--freeze-backbone"
            raise OptionError(f"{flag} needs --pretrained PATH", "pass the weights to start from")
        parse_ops(self.augment)
        arch_options(self, MODELS, ARCH_OPTIONS)  # refuses what the model does not take, before any data is read


# The `train` options that shape an architecture (TrainConfig field names). Which of them a model takes is
# read from its builder's signature, so a builder that does not take one can never silently ignore it.
ARCH_OPTIONS = ("activation", "dropout", "batch_norm", "width")


def _arch_kwargs(cfg: TrainConfig, num_classes: int, in_channels: int) -> dict:
    return {"num_classes": num_classes, "in_channels": in_channels, **arch_options(cfg, MODELS, ARCH_OPTIONS)}


def _image_size(cfg: TrainConfig, paths) -> int:
    if cfg.img_size is not None:
        return cfg.img_size
    meta = model_meta(cfg.model)
    size = max(meta["min_size"], min(vdata.native_size(paths), meta["size"]))
    return min(size, meta.get("max_size", size))


class ClassifyTask:
    """What the engine needs to train a classifier (see dltool.core.train)."""

    monitor = "accuracy"
    monitor_mode = "max"
    channels_last = True

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict, device,
                 augment_ops: tuple[str, ...] = ()):
        self.arch, self.arch_kwargs, self.classes, self.preprocess = arch, arch_kwargs, classes, preprocess
        self.augment_ops = augment_ops
        self.device = device
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(preprocess["mean"], device=device).view(shape)
        self.std = torch.tensor(preprocess["std"], device=device).view(shape)

    def prepare(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """uint8 batch -> normalised float batch (augmented when training)."""
        x = x.float().div_(255)
        if train and self.augment_ops:
            x = augment(x, self.augment_ops)
        x = (x - self.mean) / self.std
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
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


def _batches(images, targets, batch_size, *, shuffle, seed, device, workers=None):
    """Preloaded arrays (targets given) as tensors on the device, or a dataset through a DataLoader."""
    from dltool.core.data import LoaderBatches, TensorBatches

    if targets is not None:
        x = torch.from_numpy(images).to(device)
        y = torch.as_tensor(targets, dtype=torch.long, device=device)
        return TensorBatches((x, y), batch_size, shuffle=shuffle, seed=seed)
    return LoaderBatches(images, batch_size, shuffle=shuffle, seed=seed, workers=workers, device=device)


def _torchvision_keys(state: dict) -> dict:
    """A torchvision state_dict in our names: a classifier's keys get the 'backbone.' prefix; a segmenter's
    already have it, and its 'classifier.' is our 'head.'."""
    if any(k.startswith("backbone.") for k in state):
        return {("head." + k[len("classifier."):] if k.startswith("classifier.") else k): v for k, v in state.items()}
    return {f"backbone.{k}": v for k, v in state.items()}


def torchvision_keys(arch: str, registry=MODELS):
    """load_pretrained's name mapping for a plain state_dict: torchvision's names for a torchvision arch."""
    return _torchvision_keys if arch in registry.names(torchvision=True) else None


def train(cfg: TrainConfig) -> dict:
    cfg.validate()
    device, run_dir = start_run(cfg.engine, device=cfg.device, out=cfg.out, name=TASK, force=cfg.force,
                                options=_recipe(cfg))
    labelled = vdata.scan_labelled(cfg.data)
    val_labelled = vdata.scan_labelled(cfg.val) if cfg.val else None

    mode = vdata.decide_mode(labelled.paths)
    size = _image_size(cfg, labelled.paths)
    in_channels = 1 if mode == "L" else 3
    n_bytes = len(labelled.paths) * in_channels * size * size
    preload = cfg.preload if cfg.preload is not None else n_bytes <= PRELOAD_LIMIT_BYTES

    if preload:
        images, kept = vdata.decode(labelled.paths, size, mode, skip_bad=cfg.skip_bad)
    else:
        kept = vdata.check_readable(labelled.paths, skip_bad=cfg.skip_bad)
        images = None
    names = [labelled.labels[i] for i in kept]
    paths = [labelled.paths[i] for i in kept]
    classes = sorted(set(names))
    if len(classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(classes)} class", "a classifier needs at least two classes")
    targets = np.array([classes.index(c) for c in names])

    if val_labelled is not None:
        unknown = sorted(set(val_labelled.labels) - set(classes))
        if unknown:
            raise InputError(f"--val has classes not in the training data: {', '.join(unknown[:5])}")
        tr_idx = np.arange(len(targets))
        v_kept = vdata.check_readable(val_labelled.paths, skip_bad=cfg.skip_bad)
        v_paths = [val_labelled.paths[i] for i in v_kept]
        v_targets = np.array([classes.index(val_labelled.labels[i]) for i in v_kept])
        v_images = vdata.decode(v_paths, size, mode, skip_bad=False)[0] if preload else None
    else:
        from dltool.core.data import stratified_split

        tr_idx, va_idx = stratified_split(targets, cfg.val_split, cfg.engine.seed)
        v_targets = targets[va_idx] if va_idx is not None else None
        v_paths = [paths[i] for i in va_idx] if va_idx is not None else None
        v_images = images[va_idx] if preload and va_idx is not None else None

    if preload:
        sample = images[tr_idx]
    else:
        sample, _ = vdata.decode([paths[i] for i in tr_idx[:: max(1, len(tr_idx) // 512)]], size, mode,
                                 skip_bad=False)
    pixels = sample.astype(np.float32).transpose(1, 0, 2, 3).reshape(in_channels, -1) / 255
    preprocess = {"img_size": size, "mode": mode, "mean": pixels.mean(1).tolist(),
                  "std": np.maximum(pixels.std(1), 1e-3).tolist()}
    info(f"data: {len(tr_idx)} training images, {0 if v_targets is None else len(v_targets)} validation, "
         f"{len(classes)} classes, {mode} {size}x{size}, {'preloaded on ' + device.type if preload else 'streamed'}")

    arch_kwargs = _arch_kwargs(cfg, len(classes), in_channels)
    model = create_model(cfg.model, **arch_kwargs)
    engine_cfg = cfg.engine
    if cfg.pretrained is not None:
        from dataclasses import replace

        from dltool.core.train import init_weights

        init_weights(model, cfg.engine.init)
        load_pretrained(model, cfg.pretrained, cfg.model, torchvision_keys(cfg.model))
        engine_cfg = replace(engine_cfg, init="default")  # already applied before loading the weights

    if preload:
        train_batches = _batches(images[tr_idx], targets[tr_idx], cfg.batch_size, shuffle=True, seed=cfg.engine.seed,
                                 device=device)
    else:
        dataset = vdata.ImageDataset([paths[i] for i in tr_idx], targets[tr_idx].tolist(), size, mode)
        train_batches = _batches(dataset, None, cfg.batch_size, shuffle=True, seed=cfg.engine.seed, device=device,
                                 workers=cfg.workers)
    val_batches = None
    if v_targets is not None:
        val_size = max(256, cfg.batch_size)
        if preload:
            val_batches = _batches(v_images, v_targets, val_size, shuffle=False, seed=0, device=device)
        else:  # decoded lazily, each process its own shard
            val_batches = _batches(vdata.ImageDataset(v_paths, v_targets.tolist(), size, mode), None, val_size,
                                   shuffle=False, seed=0, device=device, workers=cfg.workers)

    task = ClassifyTask(cfg.model, arch_kwargs, classes, preprocess, device, parse_ops(cfg.augment))
    return Engine(task, model, engine_cfg, run_dir, device, _recipe(cfg)).fit(train_batches, val_batches)


def _recipe(cfg: TrainConfig) -> dict:
    """The options to save in config.toml (and compare on --resume)."""
    return {**cfg.options, "data": str(cfg.data)}


# -- inference --------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    model: torch.nn.Module
    task: ClassifyTask
    classes: list[str]
    preprocess: dict


def load(path, device) -> LoadedModel:
    ckpt = load_model_file(path, task=TASK)
    try:
        model = create_model(ckpt["arch"], **ckpt["arch_kwargs"])
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise ModelFileError(f"'{path}' does not match its architecture '{ckpt.get('arch')}' ({str(e)[:160]})") from None
    model.to(device).eval()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    task = ClassifyTask(ckpt["arch"], ckpt["arch_kwargs"], ckpt["classes"], ckpt["preprocess"], device)
    return LoadedModel(model, task, list(ckpt["classes"]), dict(ckpt["preprocess"]))


def _autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def infer(lm: LoadedModel, images: np.ndarray, batch_size: int, device, embed: bool = False) -> torch.Tensor:
    """uint8 images (N, C, S, S) -> logits, or with embed the forward_features (public: generate score uses it)."""
    outs = []
    for start in range(0, len(images), batch_size):
        x = lm.task.prepare(torch.from_numpy(images[start:start + batch_size]).to(device))
        with _autocast(device):
            out = lm.model.forward_features(x) if embed else lm.model(x)
        outs.append(out.float().cpu())
    return torch.cat(outs)


def evaluate(model_path, data, *, out=None, batch_size=256, device="auto", skip_bad=False) -> dict:
    from dltool.core.classification import classification_metrics, report_evaluation

    if batch_size < 1:
        raise OptionError(f"--batch-size {batch_size} must be at least 1")
    dev = resolve_device(device)
    lm = load(model_path, dev)
    labelled = vdata.scan_labelled(data)
    unknown = sorted(set(labelled.labels) - set(lm.classes))
    if unknown:
        raise InputError(f"'{data}' has classes the model does not know: {', '.join(unknown[:5])}",
                         f"the model's classes are: {', '.join(lm.classes[:20])}")
    images, kept = vdata.decode(labelled.paths, lm.preprocess["img_size"], lm.preprocess["mode"], skip_bad=skip_bad)
    y_true = np.array([lm.classes.index(labelled.labels[i]) for i in kept])
    y_pred = infer(lm, images, batch_size, dev).argmax(1).numpy()
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
    items = vdata.scan_inputs(inputs)
    size, mode = lm.preprocess["img_size"], lm.preprocess["mode"]
    images, kept = vdata.decode([it.path for it in items], size, mode, skip_bad=skip_bad)
    items = [items[i] for i in kept]
    has_truth = any(it.true_label is not None for it in items)
    if embed:
        ids = {"path": [str(it.path) for it in items]}
        if has_truth:
            ids["true_label"] = [it.true_label or "" for it in items]
        write_embeddings(ids, infer(lm, images, batch_size, dev, embed=True).numpy(), output, fmt)
        return
    records = topk_records(infer(lm, images, batch_size, dev).softmax(1), lm.classes, topk)
    records = [{"path": str(it.path), **rec} for it, rec in zip(items, records)]
    for it, rec in zip(items, records):
        if it.true_label is not None:
            rec["true_label"] = it.true_label
    write_records(records, output, fmt)


def export(model_path, output, to: str = "auto", device: str = "auto") -> dict:
    """ONNX files are device-independent; a TorchScript file keeps the device it was traced on
    (torch.jit.load(path, map_location=...) moves it)."""
    output = Path(output)
    fmt = to if to != "auto" else {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
                                   ".torchscript": "torchscript"}.get(output.suffix.lower())
    if fmt not in ("onnx", "torchscript"):
        raise OptionError(f"cannot tell the export format from '{output.name}'",
                          "name the file *.onnx or *.ts, or pass --to onnx|torchscript")
    dev = resolve_device(device)
    lm = load(model_path, dev)
    module = Normalized(lm.model, lm.task.mean, lm.task.std).eval()
    size, channels = lm.preprocess["img_size"], 1 if lm.preprocess["mode"] == "L" else 3
    example = torch.rand(2, channels, size, size, device=dev)
    spec = {"input": {"name": "input", "shape": ["N", channels, size, size], "dtype": "float32", "range": [0, 1]},
            "output": {"name": "logits", "shape": ["N", len(lm.classes)]}, "classes": lm.classes,
            "mode": lm.preprocess["mode"], "traced_on": str(dev)}
    if fmt == "onnx":
        return export_onnx(module, example, output, spec)
    import warnings

    from dltool.core.io import atomic_path

    with atomic_path(output) as tmp, torch.inference_mode(), warnings.catch_warnings():
        # TorchScript is deprecated upstream but is still what many C++/mobile servers load
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(module, example).save(str(tmp))
    spec = {"format": fmt, "path": str(output), **spec}
    write_json(output.with_name(output.name + ".json"), spec)
    return spec
