"""Image classification: train, evaluate, predict, export."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dltool.core import classification, inputs
from dltool.core import images as vdata
from dltool.core.applies import Applies, given_fields
from dltool.core.classification import ClassifierTask, Decoded, EvalConfig, PredictConfig
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.export import Normalized, export_onnx
from dltool.core.io import write_json
from dltool.core.modelfile import LoadedModel, load_model, load_pretrained
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, recipe, start
from dltool.core.train import Engine, EngineConfig
from dltool.vision.augment import augment, parse_ops
from dltool.vision.models import MODELS, create_model, model_meta
from dltool.vision.models.cnn import check_pool

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
    pool: str = "avg"
    pretrained: Path | None = None
    workers: int = 2
    preload: bool | None = None
    adversarial: str | None = None  # fgsm | pgd: train on adversarial examples of each batch too
    adv_eps: float = 0.03
    adv_ratio: float = 1.0
    adv_steps: int = 7
    loss: str = "ce"        # ce | triplet | contrastive | arcface (dltool.vision.metric): the latter learn an embedding
    embedding_dim: int = 64
    margin: float | None = None
    miner: str = "semihard"
    run: RunConfig = RunConfig()
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        self.engine.validate()
        if self.img_size is not None and self.img_size < 1:
            raise OptionError(f"--img-size {self.img_size} must be positive")
        MODELS.get(self.model)
        meta = model_meta(self.model)
        check_pool(self.pool)
        if self.img_size is not None and self.img_size < meta["min_size"]:
            raise OptionError(f"--img-size {self.img_size} is too small for {self.model}",
                              f"use --img-size {meta['min_size']} or more")
        if self.engine.freezes and self.pretrained is None:
            flag = "--unfreeze-after" if self.engine.unfreeze_after else "--freeze-backbone"
            raise OptionError(f"{flag} needs --pretrained PATH", "pass the weights to start from")
        parse_ops(self.augment)
        from dltool.vision import metric

        metric.check(self)
        self.adversarial_training().validate()
        arch_options(self, MODELS, ARCH_OPTIONS)  # refuses what the model does not take, before any data is read


    def adversarial_training(self) -> Adversarial:
        return Adversarial(self.adversarial, self.adv_eps, self.adv_ratio, self.adv_steps,
                           given=given_fields(self))


@dataclass(frozen=True)
class Adversarial:
    """Adversarial training (Madry et al. 2018): a share `ratio` of each training batch replaced by its
    FGSM or PGD examples (L-inf ball of `eps`, pixels in [0, 1]), made against the model as it is."""

    adversarial: str | None = None
    adv_eps: float = 0.03
    adv_ratio: float = 1.0
    adv_steps: int = 7
    given: frozenset[str] | None = None

    def validate(self) -> None:
        from dltool.core.applies import check_range
        from dltool.vision.attack import METHODS, check_eps

        if self.adversarial is not None and self.adversarial not in METHODS:
            raise unknown_name("adversarial training method", self.adversarial, METHODS)
        ADVERSARIAL_OPTIONS.check(self)
        check_eps("--adv-eps", self.adv_eps)
        check_range("--adv-ratio", self.adv_ratio, low=0, high=1, low_open=True)
        if self.adv_steps < 1:
            raise OptionError(f"--adv-steps {self.adv_steps} must be at least 1")


#: the adversarial options only --adversarial (or only its pgd) takes
ADVERSARIAL_OPTIONS = Applies("adversarial", {None: (), "fgsm": ("adv_eps", "adv_ratio"),
                                              "pgd": ("adv_eps", "adv_ratio", "adv_steps")})


# The `train` options that shape an architecture (TrainConfig field names). Which of them a model takes is
# read from its builder's signature, so a builder that does not take one can never silently ignore it.
ARCH_OPTIONS = ("activation", "dropout", "batch_norm", "width", "pool")


def _arch_kwargs(cfg: TrainConfig, num_classes: int, in_channels: int) -> dict:
    return {"num_classes": num_classes, "in_channels": in_channels, **arch_options(cfg, MODELS, ARCH_OPTIONS)}


def _image_size(cfg: TrainConfig, paths) -> int:
    if cfg.img_size is not None:
        return cfg.img_size
    meta = model_meta(cfg.model)
    size = max(meta["min_size"], min(vdata.native_size(paths), meta["size"]))
    return min(size, meta.get("max_size", size))


class ClassifyTask(ClassifierTask):
    """An image classifier's batches: uint8 images, normalised (and augmented when training) on the device."""

    name = TASK
    channels_last = True

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict, device,
                 augment_ops: tuple[str, ...] = (), adversarial: Adversarial | None = None):
        super().__init__(arch, arch_kwargs, classes, preprocess)
        self.augment_ops = augment_ops
        self.adversarial = adversarial if adversarial is not None and adversarial.adversarial else None
        self.device = device
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(preprocess["mean"], device=device).view(shape)
        self.std = torch.tensor(preprocess["std"], device=device).view(shape)

    def prepare(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """uint8 batch -> normalised float batch (augmented when training)."""
        return self.normalise(self.pixels(x, train))

    def pixels(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """uint8 batch -> float pixels in [0, 1] (augmented when training)."""
        x = x.float().div_(255)
        if train and self.augment_ops:
            x = augment(x, self.augment_ops)
        return x

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, model, batch, train: bool = False):
        x, y = batch
        if train and self.adversarial is not None:
            return model(self.normalise(self._with_adversarial(model, self.pixels(x, True), y))), y
        return model(self.prepare(x, train=train)), y

    def _with_adversarial(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch with its first adv_ratio share (batches are shuffled) replaced by adversarial examples,
        made on the bare network (not its DDP or compiled wrapper: no extra forward for DDP to reduce) in
        eval mode (the attack's passes leave BatchNorm's statistics alone)."""
        from dltool.vision.attack import perturb

        adv = self.adversarial
        k = round(adv.adv_ratio * len(x))
        if k == 0:
            return x
        net = getattr(model, "module", model)
        net = getattr(net, "_orig_mod", net)
        modes = [(m, m.training) for m in net.modules()]  # frozen BatchNorm layers stay in eval mode
        net.eval()
        try:
            attacked = perturb(lambda z: net(self.normalise(z)), x[:k], y[:k], eps=adv.adv_eps,
                               method=adv.adversarial, steps=adv.adv_steps)
        finally:
            for m, training in modes:
                m.train(training)
        return torch.cat([attacked, x[k:]])

    def model_inputs(self, images: np.ndarray) -> tuple:
        return (self.prepare(torch.from_numpy(images).to(self.device)),)


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
    run = cfg.run
    device, run_dir = start(cfg, TASK)
    labelled = inputs.scan_labelled(cfg.data, vdata.IMAGES)
    val_labelled = inputs.scan_labelled(run.val, vdata.IMAGES) if run.val else None
    all_paths = [it.path for it in labelled]

    mode = vdata.decide_mode(all_paths)
    size = _image_size(cfg, all_paths)
    in_channels = 1 if mode == "L" else 3
    n_bytes = len(all_paths) * in_channels * size * size
    preload = cfg.preload if cfg.preload is not None else n_bytes <= PRELOAD_LIMIT_BYTES

    if preload:
        images, kept = vdata.decode(all_paths, size, mode, skip_bad=run.skip_bad)
    else:
        kept = vdata.check_readable(all_paths, skip_bad=run.skip_bad)
        images = None
    names = [labelled[i].label for i in kept]
    paths = [all_paths[i] for i in kept]
    classes = sorted(set(names))
    if len(classes) < 2:
        raise InputError(f"'{cfg.data}' has {len(classes)} class", "a classifier needs at least two classes")
    targets = np.array([classes.index(c) for c in names])

    if val_labelled is not None:
        unknown = sorted({it.label for it in val_labelled} - set(classes))
        if unknown:
            raise InputError(f"--val has classes not in the training data: {', '.join(unknown[:5])}")
        tr_idx = np.arange(len(targets))
        v_kept = vdata.check_readable([it.path for it in val_labelled], skip_bad=run.skip_bad)
        v_paths = [val_labelled[i].path for i in v_kept]
        v_targets = np.array([classes.index(val_labelled[i].label) for i in v_kept])
        v_images = vdata.decode(v_paths, size, mode, skip_bad=False)[0] if preload else None
    else:
        from dltool.core.data import stratified_split

        tr_idx, va_idx = stratified_split(targets, run.val_split, cfg.engine.seed)
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

    # a metric loss trains an embedding: the network's output layer has --embedding-dim units, not one per class
    arch_kwargs = _arch_kwargs(cfg, len(classes) if cfg.loss == "ce" else cfg.embedding_dim, in_channels)
    if cfg.loss != "ce" and "mlp_head" in MODELS.takes(cfg.model):
        arch_kwargs["mlp_head"] = True  # the embedding under the fully-connected layers (models/lenet.py)
    model = create_model(cfg.model, **arch_kwargs)
    engine_cfg = cfg.engine
    if cfg.pretrained is not None:
        from dataclasses import replace

        from dltool.core.train import init_weights

        init_weights(model, cfg.engine.init)
        load_pretrained(model, cfg.pretrained, cfg.model, torchvision_keys(cfg.model))
        engine_cfg = replace(engine_cfg, init="default")  # already applied before loading the weights

    if preload:
        train_batches = _batches(images[tr_idx], targets[tr_idx], run.batch_size, shuffle=True, seed=cfg.engine.seed,
                                 device=device)
    else:
        dataset = vdata.ImageDataset([paths[i] for i in tr_idx], targets[tr_idx].tolist(), size, mode)
        train_batches = _batches(dataset, None, run.batch_size, shuffle=True, seed=cfg.engine.seed, device=device,
                                 workers=cfg.workers)
    val_batches = None
    if v_targets is not None:
        val_size = max(256, run.batch_size)
        if preload:
            val_batches = _batches(v_images, v_targets, val_size, shuffle=False, seed=0, device=device)
        else:  # decoded lazily, each process its own shard
            val_batches = _batches(vdata.ImageDataset(v_paths, v_targets.tolist(), size, mode), None, val_size,
                                   shuffle=False, seed=0, device=device, workers=cfg.workers)

    if cfg.loss == "ce":
        task = ClassifyTask(cfg.model, arch_kwargs, classes, preprocess, device, parse_ops(cfg.augment),
                            cfg.adversarial_training())
        return Engine(task, model, engine_cfg, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)
    from dltool.core import distributed as dist
    from dltool.vision import metric

    task = metric.MetricTask(cfg.model, arch_kwargs, classes, preprocess, device, parse_ops(cfg.augment),
                             loss=cfg.loss, margin=cfg.margin, miner=cfg.miner)
    task.attach(model)
    summary = Engine(task, model, engine_cfg, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)
    if dist.is_main():  # the training classes' centroids, from every training image (not one rank's shard)
        if preload:
            every = _batches(images[tr_idx], targets[tr_idx], 256, shuffle=False, seed=0, device=device)
        else:
            every = _batches(vdata.ImageDataset([paths[i] for i in tr_idx], targets[tr_idx].tolist(), size, mode),
                             None, 256, shuffle=False, seed=0, device=device, workers=cfg.workers)
        metric.finish(task, model, every, run_dir, classes)
    return summary


# -- inference --------------------------------------------------------------------------------

def load(path, device, need_centroids: bool = True) -> LoadedModel:
    """A vision-classify model file on `device` (a name or a torch.device). A metric-learning model comes
    as an EmbeddingClassifier over its training classes' centroids (dltool.vision.metric)."""
    from dltool.vision import metric

    lm = load_model(path, task=TASK, registry=MODELS, device=device, make_task=lambda ckpt, dev: ClassifyTask(
        ckpt["arch"], ckpt["arch_kwargs"], ckpt["classes"], ckpt["preprocess"], dev))
    return metric.wrap(lm, path, need_centroids)


def is_metric(path) -> bool:
    """Whether a model file was trained with a metric loss (it embeds, and labels by centroids)."""
    from dltool.core.modelfile import load_model_file

    return bool(load_model_file(path, task=TASK).get("embedding"))


def _read_labelled(lm: LoadedModel, cfg: EvalConfig) -> Decoded:
    return decode(lm, scan_labelled(cfg), cfg)


def scan_labelled(cfg) -> list:
    """The labelled image items of cfg.data (class folders or a CSV path,label)."""
    return inputs.scan_labelled(cfg.data, vdata.IMAGES)


def scan(cfg) -> list:
    """The image items a predict-like config's inputs name (files, folders, '-')."""
    return inputs.scan_inputs(cfg.inputs, vdata.IMAGES)


def decode(lm: LoadedModel, items: list, cfg) -> Decoded:
    """Items decoded at the model's size and mode (cfg.skip_bad drops unreadable ones)."""
    size, mode = lm.preprocess["img_size"], lm.preprocess["mode"]
    images, kept = vdata.decode([it.path for it in items], size, mode, skip_bad=cfg.skip_bad)
    items = [items[i] for i in kept]
    return Decoded(images, [it.label for it in items], [{"path": str(it.path)} for it in items])


def evaluate(cfg: EvalConfig, gallery: Path | None = None) -> dict:
    """With a gallery, or for a metric-learning model, nearest-centroid and retrieval metrics
    (dltool.vision.metric.evaluate); otherwise the classifier's."""
    if gallery is not None or is_metric(cfg.model):
        from dltool.vision import metric

        return metric.evaluate(cfg, gallery)
    return classification.evaluate(cfg, load=load, read=_read_labelled)


def predict(cfg: PredictConfig, gallery: Path | None = None, threshold: float | None = None):
    """Records in input order (or the --embed feature table); dltool.core.classification.predict. With a
    gallery, labels by the nearest centroid of its classes; an embedding classifier's records have the
    cosine `distance`, and `threshold` labels the farther ones "unknown"."""
    from dltool.vision import metric

    metric.check_threshold(threshold)
    if gallery is not None and cfg.embed:
        raise OptionError("--embed writes features, --gallery labels by them: use one of them")
    loaded = []

    def load_for(path, device):
        lm = load(path, device, need_centroids=gallery is None)
        if gallery is not None:
            lm = metric.with_gallery(lm, gallery, cfg.batch_size, cfg.skip_bad)[0]
        elif threshold is not None and not isinstance(lm.model, metric.EmbeddingClassifier):
            raise OptionError("--threshold is a distance to class centroids: it needs --gallery DIR "
                              "(or a model trained with a metric --loss)")
        loaded.append(lm)
        return lm

    records = classification.predict(cfg, load=load_for, scan=scan, decode=decode)
    if records is None or cfg.embed or not isinstance(loaded[0].model, metric.EmbeddingClassifier):
        return records
    return metric.labelled_records(records, threshold)


def export(model_path, output, to: str = "auto", device: str = "auto") -> dict:
    """ONNX files are device-independent; a TorchScript file keeps the device it was traced on
    (torch.jit.load(path, map_location=...) moves it)."""
    output = Path(output)
    fmt = to if to != "auto" else {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
                                   ".torchscript": "torchscript"}.get(output.suffix.lower())
    if fmt not in ("onnx", "torchscript"):
        raise OptionError(f"cannot tell the export format from '{output.name}'",
                          "name the file *.onnx or *.ts, or pass --to onnx|torchscript")
    lm = load(model_path, device)
    dev = lm.device
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
