"""Object detection and instance segmentation: train, evaluate (COCO mAP of boxes, and of masks for
Mask R-CNN), predict (JSON Lines, drawings, YOLO txt, COCO json, mask PNGs), export.

Images are letterboxed to a square of --img-size (default: the median longer side of the training
images, rounded up to a multiple of 32, within the model's range: 64 for the shapes set), the boxes
with them. Training holds the letterboxed set in memory and augments whole batches on the device
(dltool.vision.augment, the boxes following the pixels). Evaluation and prediction letterbox each
image the same way and map the boxes back to its own pixels. Instance masks (models whose registry
entry says `masks`) travel beside the boxes, slot for slot: letterboxed with the images for training,
moved by the geometric augmentations, and mapped back to each image's pixels for eval and predict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dltool.core import images as vdata
from dltool.core import run as runs
from dltool.core.console import info
from dltool.core.device import resolve_device
from dltool.core.errors import InputError, OptionError
from dltool.core.inputs import scan_inputs
from dltool.core.io import atomic_open, atomic_path, write_json
from dltool.core.modelfile import LoadedModel, load_model
from dltool.core.registry import arch_options
from dltool.core.run import RunConfig, check_batch_size, recipe
from dltool.core.task import TaskHooks
from dltool.core.train import Engine, EngineConfig
from dltool.vision import augment, detdata, detmetrics
from dltool.vision.models import DETECTORS

TASK = "vision-detect"
ARCH_OPTIONS = ("scale", "backbone", "strides")
PRELOAD_LIMIT_BYTES = 2 * 1024**3
EVAL_CONF = 0.001  # mAP ranks every detection down to this score (COCO practice)
MAX_DET = 100
SMALL_BOX = 32  # px letterboxed: a box under 4 stride-8 cells
MASK_AUGMENT = "flip,scale,colour"  # the default for mask models: a mosaic's tiles cannot carry masks
MASK_THRESHOLD = 0.5  # a pixel belongs to the instance at this mask probability (torchvision's reference)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    engine: EngineConfig
    model: str = "yolo"
    scale: str = "n"
    backbone: str | None = None
    strides: str | None = None
    img_size: int | None = None
    augment: str | None = "flip,scale,colour,mosaic"
    classes: str | None = None
    coco: Path | None = None
    split: str | None = None
    iou: float = 0.6
    pretrained: Path | None = None
    run: RunConfig = RunConfig(batch_size=8, val_split=0.0)
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        self.engine.validate()
        meta = DETECTORS.get(self.model).meta
        if self.img_size is not None and (self.img_size < meta["min_size"] or self.img_size % 32):
            raise OptionError(f"--img-size {self.img_size} must be a multiple of 32, at least {meta['min_size']} "
                              f"for {self.model}", f"use --img-size {max(meta['min_size'], self.img_size // 32 * 32)}")
        _check_iou(self.iou)
        if self.engine.freezes and self.pretrained is None:
            flag = "--unfreeze-after" if self.engine.unfreeze_after else "--freeze-backbone"
            raise OptionError(f"{flag} needs --pretrained PATH", "pass the weights to start from")
        augment.parse_ops(self.augment, labels=_labels(self.model))
        arch_options(self, DETECTORS, ARCH_OPTIONS)  # refuses what the model does not take, before any data is read
        if self.strides is not None:
            from dltool.vision.models.det_yolo import parse_strides

            parse_strides(self.strides)


def has_masks(model: str) -> bool:
    return bool(DETECTORS.get(model).meta.get("masks"))


def _labels(model: str) -> str:
    """What --augment must keep right for this model (augment.LABELS)."""
    return "instances" if has_masks(model) else "boxes"


def _check_iou(iou: float) -> None:
    if not 0 < iou <= 1:
        raise OptionError(f"--iou {iou} must be in (0, 1]")


def _check_conf(conf: float) -> None:
    if not 0 <= conf < 1:
        raise OptionError(f"--conf {conf} must be in [0, 1)")


def class_list(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names or len(set(names)) != len(names):
        raise OptionError(f"--classes {spec!r} must name distinct classes, comma-separated", "e.g. --classes cat,dog")
    return names


# -- the task --------------------------------------------------------------------------------------

class DetectTask(TaskHooks):
    """What the engine needs to train a detector (see dltool.core.train). Validation matches each image's
    detections to its boxes (detmetrics.match): the matches, not means, are what combine over ranks."""

    monitor = "map50"
    monitor_mode = "max"
    channels_last = True

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict, device,
                 augment_ops: tuple[str, ...] = (), iou: float = 0.6):
        self.arch, self.arch_kwargs, self.classes, self.preprocess = arch, arch_kwargs, classes, preprocess
        self.augment_ops, self.iou, self.device = augment_ops, iou, device
        self.masks = has_masks(arch)  # batches are then (images, targets, instance masks)
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(preprocess["mean"], device=device).view(shape)
        self.std = torch.tensor(preprocess["std"], device=device).view(shape)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def loss(self, model, batch):
        x, targets, *masks = batch
        x = x.float().div_(255)
        masks = masks[0] if masks else None
        if self.augment_ops:
            x, masks, targets = augment.apply(x, self.augment_ops, mask=masks, boxes=targets)
        return model(self.normalise(x), targets) if masks is None else model(self.normalise(x), targets, masks)

    def evaluate(self, model, batches) -> dict:
        from dltool.core import distributed as dist

        k = len(self.classes)
        matches, mask_matches = detmetrics.Matches.empty(k), detmetrics.Matches.empty(k)
        for x, targets, *gt_masks in batches:
            x = self.normalise(x.float().div_(255))
            dets = model.detect_masks(x, EVAL_CONF, self.iou, MAX_DET) if self.masks else \
                model.detect(x, EVAL_CONF, self.iou, MAX_DET)
            for i, (d, t) in enumerate(zip(dets, targets.cpu().numpy())):
                keep = t[:, 0] >= 0
                b, s, lab = (v.float().cpu().numpy() for v in d[:3])
                truth = (t[keep, 1:], t[keep, 0].astype(np.int64), k)
                matches = matches + detmetrics.match(b, s, lab.astype(np.int64), *truth)
                if self.masks:
                    mask_matches = mask_matches + detmetrics.match(
                        b, s, lab.astype(np.int64), *truth, masks=(d[3] >= MASK_THRESHOLD).cpu().numpy(),
                        gt_masks=gt_masks[0][i][torch.from_numpy(keep).to(gt_masks[0].device)].cpu().numpy())
        metrics = self._metrics(matches, mask_matches)
        if dist.world_size() > 1:  # the matches travel to combine_metrics only when there are ranks to combine
            metrics["matches"] = matches.to_lists()
            if self.masks:
                metrics["mask_matches"] = mask_matches.to_lists()
        return metrics

    def combine_metrics(self, parts) -> dict:
        total, mask_total = detmetrics.Matches.empty(len(self.classes)), detmetrics.Matches.empty(len(self.classes))
        for m, _ in parts:
            total = total + detmetrics.Matches.from_lists(m["matches"])
            if self.masks:
                mask_total = mask_total + detmetrics.Matches.from_lists(m["mask_matches"])
        return self._metrics(total, mask_total)

    def _metrics(self, matches, mask_matches) -> dict:
        s = detmetrics.summarise(matches, self.classes, conf=0.25)
        out = {"map50": s["map50"], "map": s["map"]}
        if self.masks:
            s = detmetrics.summarise(mask_matches, self.classes, conf=0.25)
            out.update(mask_map50=s["map50"], mask_map=s["map"])
        return out

    def payload(self, model) -> dict:
        return {"task": TASK, "arch": self.arch, "arch_kwargs": self.arch_kwargs, "state_dict": model.state_dict(),
                "classes": self.classes, "preprocess": self.preprocess}


# -- training --------------------------------------------------------------------------------------

def _image_size(cfg: TrainConfig, paths) -> int:
    """--img-size, else the images' median longer side rounded up to a multiple of 32, within the model's
    range: at most its `size`, and small images upscaled to its `small` size, because small objects need
    cells: on the shapes set's 64 px images yolo's finest grid is 8x8, and training at 128 took test
    mAP@0.5 from 0.60 (150 epochs at 64) to 0.81 (120 epochs at 128)."""
    if cfg.img_size is not None:
        return cfg.img_size
    meta = DETECTORS.get(cfg.model).meta
    native = -(-vdata.native_size(paths) // 32) * 32
    return max(meta["min_size"], meta.get("small", 0), min(native, meta["size"]))


def _strides(targets: np.ndarray) -> str:
    """yolo's pyramid when --strides is not given: 4,8,16 (P2-P4) when a tenth of the training boxes'
    longer sides are under SMALL_BOX letterboxed pixels, else 8,16,32 (P3-P5). The shapes set (a tenth
    under 15 px at 128) gets P2-P4, which took its test mAP@0.5 from 0.843 to 0.894 (170 epochs, one
    thread); raccoon's boxes (a tenth under 235 px at 608) keep P3-P5."""
    boxes = targets[targets[..., 0] >= 0]
    sides = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2])
    return "4,8,16" if len(sides) and np.percentile(sides, 10) < SMALL_BOX else "8,16,32"


@dataclass
class Letterboxed:
    images: np.ndarray   # (N, 3, S, S) uint8
    targets: np.ndarray  # (N, M, 5) float32
    paths: list[Path]
    masks: np.ndarray | None = None  # (N, M, S, S) uint8 instance masks, slot for slot with targets


def letterbox_set(ds: detdata.Dataset, size: int, skip_bad: bool, masks: bool = False) -> Letterboxed:
    paths = [s.path for s in ds.samples]
    planes = 3 + (max([len(s.boxes) for s in ds.samples] + [1]) if masks else 0)
    if len(paths) * planes * size * size > PRELOAD_LIMIT_BYTES:
        raise InputError(f"the data decodes to more than 2 GiB at {size}x{size}; detect train holds its data in "
                         "memory", "train on fewer images or pass a smaller --img-size")
    images, kept = vdata.decode_list(paths, None, "RGB", skip_bad=skip_bad)
    boxed, scales = [], []
    for im in images:
        lb, scale = detdata.letterbox(im, size)
        boxed.append(lb)
        scales.append(scale)
    samples = [ds.samples[i] for i in kept]
    targets = detdata.pad_targets([s.boxes for s in samples], [s.labels for s in samples], scales)
    out = Letterboxed(np.stack(boxed), targets, [s.path for s in samples])
    if masks:
        out.masks = np.zeros((len(samples), targets.shape[1], size, size), np.uint8)
        for i, (s, scale) in enumerate(zip(samples, scales)):
            out.masks[i, :len(s.boxes)] = detdata.letterbox_masks(s.masks(), size, scale)
    return out


def _scan(cfg_data, cfg: TrainConfig, classes):
    ds = detdata.scan(cfg_data, classes=classes, coco=cfg.coco if cfg_data == cfg.data else None,
                      split=cfg.split, skip_bad=cfg.run.skip_bad)
    ds.require_boxes()
    if has_masks(cfg.model):
        ds.require_masks(cfg.model)
    return ds


def train(cfg: TrainConfig) -> dict:
    from dataclasses import replace

    from dltool.core.applies import given_fields
    from dltool.core.data import TensorBatches, stratified_split

    masks = has_masks(cfg.model)
    if masks and "augment" not in given_fields(cfg):
        cfg = replace(cfg, augment=MASK_AUGMENT)  # before the recipe is saved, so config.toml repeats the run
    cfg.validate()
    names = class_list(cfg.classes)
    device, run_dir = runs.start(cfg, TASK)
    ds = _scan(cfg.data, cfg, names)
    size = _image_size(cfg, [s.path for s in ds.samples])
    data = letterbox_set(ds, size, cfg.run.skip_bad, masks)
    if cfg.run.val is not None:
        val = letterbox_set(_scan(cfg.run.val, cfg, ds.classes), size, cfg.run.skip_bad, masks)
        tr_idx, v_images, v_targets, v_masks = np.arange(len(data.images)), val.images, val.targets, val.masks
    else:
        tr_idx, va_idx = stratified_split(np.zeros(len(data.images), dtype=np.int64), cfg.run.val_split, cfg.engine.seed)
        v_images, v_targets = (data.images[va_idx], data.targets[va_idx]) if va_idx is not None else (None, None)
        v_masks = data.masks[va_idx] if masks and va_idx is not None else None
    pixels = data.images[tr_idx].reshape(len(tr_idx), 3, -1).transpose(1, 0, 2).reshape(3, -1)
    sample = pixels[:, :: max(1, pixels.shape[1] // 2_000_000)].astype(np.float32) / 255
    preprocess = {"img_size": size, "mode": "RGB", "mean": sample.mean(1).tolist(),
                  "std": np.maximum(sample.std(1), 1e-3).tolist(), "iou": cfg.iou}
    n_boxes = int((data.targets[tr_idx, :, 0] >= 0).sum())
    n_background = int((data.targets[tr_idx, :, 0] < 0).all(1).sum())
    background = f", {n_background} background image{'s' * (n_background != 1)}" if n_background else ""
    chosen = {o: v for o, v in arch_options(cfg, DETECTORS, ARCH_OPTIONS).items() if v is not None}
    if "strides" in DETECTORS.takes(cfg.model) and "strides" not in chosen:
        chosen["strides"] = _strides(data.targets[tr_idx])
    pyramid = f", strides {chosen['strides']}" if "strides" in chosen else ""
    info(f"data: {len(tr_idx)} training images ({n_boxes} boxes{background}), "
         f"{0 if v_images is None else len(v_images)} validation, {len(ds.classes)} classes, "
         f"letterboxed to {size}x{size}{pyramid}")

    arch_kwargs = {"num_classes": len(ds.classes), "in_channels": 3, **chosen,
                   **({"img_size": size} if "img_size" in DETECTORS.takes(cfg.model) else {})}
    model = DETECTORS.create(cfg.model, **arch_kwargs)
    engine_cfg = cfg.engine
    if cfg.pretrained is not None:
        from dltool.core.modelfile import load_pretrained
        from dltool.core.train import init_weights

        init_weights(model, cfg.engine.init)
        load_pretrained(model, cfg.pretrained, cfg.model, convert=model.torchvision_keys)
        engine_cfg = replace(engine_cfg, init="default")  # already applied before loading the weights

    def batches(x, t, m, batch_size, shuffle):
        arrays = (x, t) if m is None else (x, t, m)
        return TensorBatches(tuple(torch.from_numpy(a).to(device) for a in arrays), batch_size,
                             shuffle=shuffle, seed=cfg.engine.seed if shuffle else 0)

    train_batches = batches(data.images[tr_idx], data.targets[tr_idx], data.masks[tr_idx] if masks else None,
                            cfg.run.batch_size, True)
    val_batches = batches(v_images, v_targets, v_masks, max(32, cfg.run.batch_size), False) \
        if v_images is not None else None
    task = DetectTask(cfg.model, arch_kwargs, ds.classes, preprocess, device,
                      augment.parse_ops(cfg.augment, labels=_labels(cfg.model)), cfg.iou)
    return Engine(task, model, engine_cfg, run_dir, device, recipe(cfg)).fit(train_batches, val_batches)



# -- inference -------------------------------------------------------------------------------------

def load(path, device) -> LoadedModel:
    """A vision-detect model file on `device` (a name or a torch.device)."""
    return load_model(path, task=TASK, registry=DETECTORS, device=device, make_task=lambda ckpt, dev: DetectTask(
        ckpt["arch"], ckpt["arch_kwargs"], ckpt["classes"], ckpt["preprocess"], dev))


@torch.inference_mode()
def detect_images(lm: LoadedModel, images: list[np.ndarray], device, *, conf: float, iou: float):
    """uint8 (C, H, W) images at their own size -> per image (boxes (D, 4) in its pixels, scores, labels),
    and for a mask model (lm.task.masks) also the masks (D, H, W) bool in its pixels."""
    import torch.nn.functional as F

    size = lm.preprocess["img_size"]
    boxed, scales = zip(*(detdata.letterbox(im, size) for im in images))
    x = lm.task.normalise(torch.from_numpy(np.stack(boxed)).to(device).float().div_(255))
    dets = lm.model.detect_masks(x, conf, iou, MAX_DET) if lm.task.masks else lm.model.detect(x, conf, iou, MAX_DET)
    out = []
    for d, scale, im in zip(dets, scales, images):
        h, w = im.shape[1:]
        b = (d[0].float() / scale).cpu().numpy()
        b[:, 0::2] = b[:, 0::2].clip(0, w)
        b[:, 1::2] = b[:, 1::2].clip(0, h)
        found = (b, d[1].float().cpu().numpy(), d[2].cpu().numpy().astype(np.int64))
        if lm.task.masks:  # undo the letterbox: the image's part of the square, scaled to its own size
            m = d[3][:, None, :max(1, round(h * scale)), :max(1, round(w * scale))].float()
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False) if len(m) else m.new_zeros(0, 1, h, w)
            found += ((m[:, 0] >= MASK_THRESHOLD).cpu().numpy(),)
        out.append(found)
    return out


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    data: Path
    conf: float = 0.25           # the operating point of precision, recall and the confusion matrix
    iou: float | None = None     # NMS IoU (default: the model's)
    out: Path | None = None      # also write metrics.json, pr_curve.png and confusion.png here
    batch_size: int = 32
    classes: str | None = None   # the data's class names, for formats without them
    coco: Path | None = None
    split: str | None = None
    device: str = "auto"
    skip_bad: bool = False

    def validate(self) -> None:
        _check_inference_options(self)


@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    conf: float = 0.25
    iou: float | None = None
    batch_size: int = 16
    save_vis: Path | None = None   # draw the boxes on the images here
    save_txt: Path | None = None   # YOLO-format predictions, one .txt per image
    coco_json: Path | None = None  # the detections as a COCO results file
    out: Path | None = None        # mask models: a PNG per instance here
    device: str = "auto"
    skip_bad: bool = False
    shard: tuple[int, int] | None = None

    def validate(self) -> None:
        _check_inference_options(self)


def _check_inference_options(cfg) -> None:
    _check_conf(cfg.conf)
    if cfg.iou is not None:
        _check_iou(cfg.iou)
    check_batch_size(cfg.batch_size)


def evaluate(cfg: EvalConfig) -> dict:
    cfg.validate()
    conf, batch_size, skip_bad, out, data = cfg.conf, cfg.batch_size, cfg.skip_bad, cfg.out, cfg.data
    lm = load(cfg.model, cfg.device)
    dev = lm.device
    iou = lm.preprocess.get("iou", 0.6) if cfg.iou is None else cfg.iou
    ds = detdata.scan(data, classes=class_list(cfg.classes) or lm.classes, coco=cfg.coco, split=cfg.split,
                      skip_bad=skip_bad)
    if len(ds.classes) != len(lm.classes):
        raise InputError(f"'{data}' has {len(ds.classes)} classes ({', '.join(ds.classes[:8])}); the model has "
                         f"{len(lm.classes)} ({', '.join(lm.classes[:8])})", "evaluate on data with the model's classes")
    k = len(lm.classes)
    masks = lm.task.masks
    if masks:
        ds.require_masks(lm.arch)
    matches, mask_matches = detmetrics.Matches.empty(k), detmetrics.Matches.empty(k)
    dets, truths = [], []
    for idx, images in vdata.decode_batches([s.path for s in ds.samples], batch_size, "RGB", skip_bad=skip_bad):
        for i, d in zip(idx, detect_images(lm, images, dev, conf=EVAL_CONF, iou=iou)):
            s = ds.samples[i]
            matches = matches + detmetrics.match(*d[:3], s.boxes, s.labels, k)
            if masks:
                mask_matches = mask_matches + detmetrics.match(*d[:3], s.boxes, s.labels, k, masks=d[3],
                                                               gt_masks=s.masks())
            dets.append(d[:3])
            truths.append((s.boxes, s.labels))
    summary = detmetrics.summarise(matches, lm.classes, conf)
    cm = detmetrics.confusion(dets, truths, k, conf)
    metrics = {"map50": summary["map50"], "map": summary["map"], "precision": summary["precision"],
               "recall": summary["recall"], "conf": conf, "iou": iou, "n": len(dets),
               "boxes": int(matches.n_gt.sum()), "classes": lm.classes, "per_class": summary["per_class"],
               "confusion_matrix": cm.tolist()}
    if masks:  # COCO's segm evaluation: the same rules, matched by mask IoU
        mask_summary = detmetrics.summarise(mask_matches, lm.classes, conf)
        metrics.update(mask_map50=mask_summary["map50"], mask_map=mask_summary["map"],
                       mask_per_class={c: {"ap50": v["ap50"], "ap": v["ap"]}
                                       for c, v in mask_summary["per_class"].items()})
    if out is not None:
        out = Path(out)
        write_json(out / "metrics.json", metrics)
        _plot_pr(matches, lm.classes, out / "pr_curve.png")
        model = Path(str(cfg.model))
        model = model.parent if model.name == "model.pt" else model
        _plot_confusion(cm, lm.classes + ["background"], out / "confusion.png",
                        f"{lm.arch} ({model}) on {data}: mAP@0.5 {metrics['map50']:.3f} (boxes at conf {conf:g})")
    return metrics


def _plot_pr(matches, classes, path: Path) -> None:
    from dltool.core.plots import figure, save_figure

    fig, ax = figure()
    for c, name in enumerate(classes):
        r = detmetrics.average_precision(matches, c)
        if r is not None:
            ax.plot(r[2], np.maximum.accumulate(r[1][::-1])[::-1], label=f"{name} AP50 {r[0][0]:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall at IoU 0.5")
    ax.legend(loc="lower left")
    save_figure(fig, path)


def _plot_confusion(cm, labels, path: Path, title: str) -> None:
    import textwrap

    from sklearn.metrics import ConfusionMatrixDisplay

    from dltool.core.plots import figure, save_figure

    size = max(5, len(labels) * 0.7)
    fig, ax = figure(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=labels).plot(ax=ax, colorbar=False)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(textwrap.fill(title, width=int(size * 10), break_on_hyphens=False, break_long_words=False), fontsize=9)
    save_figure(fig, path)


def _prediction_inputs(inputs) -> list[str]:
    """A YOLO folder (DIR/images/...) or a VOC one (DIR/JPEGImages) stands for its images."""
    out = []
    for raw in inputs:
        sub = next((Path(raw) / d for d in ("images", "JPEGImages") if raw != "-" and (Path(raw) / d).is_dir()), None)
        out.append(str(sub) if sub is not None else raw)
    return out


def predict(cfg: PredictConfig):
    """Records `{path, width, height, boxes}` in input order, streaming in one process: one batch of images is
    decoded and detected as the consumer reads. Under torchrun / --nproc each rank detects its block and
    rank 0 returns them all (None on the others); --shard takes one block. --coco-json is written once
    every record has been read."""
    from dltool.core import distributed as dist
    from dltool.core.inputs import gathered, shard

    cfg.validate()
    dev = dist.setup(resolve_device(cfg.device))
    lm = load(cfg.model, dev)
    if cfg.out is not None and not lm.task.masks:
        raise OptionError(f"--out writes instance masks; '{lm.arch}' detects boxes only",
                          "drop --out, or predict with a --model maskrcnn model")
    iou = lm.preprocess.get("iou", 0.6) if cfg.iou is None else cfg.iou
    paths = shard([it.path for it in scan_inputs(_prediction_inputs(cfg.inputs), vdata.IMAGES)], cfg.shard)
    records = gathered(_detect_stream(lm, paths, iou, cfg), cfg.shard)
    if records is None or cfg.coco_json is None:
        return records
    return _with_coco_json(records, lm.classes, cfg.coco_json)


def _detect_stream(lm: LoadedModel, paths: list[Path], iou: float, cfg: PredictConfig):
    for idx, images in vdata.decode_batches(paths, cfg.batch_size, "RGB", skip_bad=cfg.skip_bad):
        for i, im, d in zip(idx, images, detect_images(lm, images, lm.device, conf=cfg.conf, iou=iou)):
            b, s, lab = d[:3]
            path = paths[i]
            h, w = im.shape[1:]
            boxes = [{"label": lm.classes[c], "score": round(float(sc), 5),
                      "box": [round(float(v), 2) for v in box]} for box, sc, c in zip(b, s, lab)]
            masks = d[3] if len(d) > 3 else None
            if masks is not None and cfg.coco_json is not None:
                for box, rle in zip(boxes, _rle(masks)):
                    box["segmentation"] = rle  # taken out again by _with_coco_json
            if masks is not None and cfg.out is not None:
                for k, (box, m) in enumerate(zip(boxes, masks)):
                    box["mask"] = str(_write_mask(m, Path(cfg.out) / f"{path.stem}_{k}.png"))
            if cfg.save_vis is not None:
                _draw(im, boxes, Path(cfg.save_vis) / f"{path.stem}.png", masks)
            if cfg.save_txt is not None:
                _write_yolo_txt(b, s, lab, w, h, Path(cfg.save_txt) / f"{path.stem}.txt")
            yield {"path": str(path), "width": int(w), "height": int(h), "boxes": boxes}


def _rle(masks: np.ndarray) -> list[dict]:
    """(D, H, W) bool -> COCO compressed RLEs, counts as text (pycocotools' own encoding, as COCO results hold)."""
    from pycocotools import mask as coco_mask

    rles = coco_mask.encode(np.asfortranarray(masks.astype(np.uint8).transpose(1, 2, 0))) if len(masks) else []
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def _write_mask(mask: np.ndarray, path: Path) -> Path:
    """One instance: a PNG of the image's size, 255 on it, 0 elsewhere."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format="PNG")
    return path


def _with_coco_json(records, classes: list[str], path: Path):
    """The records passed through; once they are all read, the COCO results file of their boxes (and of
    their masks as RLE, for a mask model)."""
    results = []
    for rec in records:
        for b in rec["boxes"]:
            result = {"image_id": Path(rec["path"]).stem, "file_name": rec["path"],
                      "category_id": classes.index(b["label"]) + 1,
                      "bbox": [b["box"][0], b["box"][1], round(b["box"][2] - b["box"][0], 2),
                               round(b["box"][3] - b["box"][1], 2)], "score": b["score"]}
            if "segmentation" in b:
                result["segmentation"] = b.pop("segmentation")
            results.append(result)
        yield rec
    write_json(path, results)


def _write_yolo_txt(boxes, scores, labels, w: int, h: int, path: Path) -> None:
    """Ultralytics' save_txt with save_conf: `cls cx cy w h conf`, normalised."""
    lines = [f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f} {s:.5f}"
             for (x1, y1, x2, y2), s, c in zip(boxes, scores, labels)]
    with atomic_open(path) as f:
        f.write("".join(line + "\n" for line in lines))


def _draw(image: np.ndarray, boxes: list[dict], path: Path, masks: np.ndarray | None = None) -> None:
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    def colour_of(b):
        return tuple(int(255 * v) for v in colormaps["tab10"](hash(b["label"]) % 10)[:3])

    pixels = image.transpose(1, 2, 0).copy()
    for b, m in zip(boxes, masks if masks is not None else []):  # each instance tinted half in its class colour
        pixels[m] = (pixels[m] * 0.5 + np.array(colour_of(b)) * 0.5).astype(np.uint8)
    im = Image.fromarray(pixels)
    draw = ImageDraw.Draw(im)
    for b in boxes:
        colour = colour_of(b)
        draw.rectangle(b["box"], outline=colour, width=max(1, round(max(im.size) / 200)))
        draw.text((b["box"][0] + 1, b["box"][1] + 1), f"{b['label']} {b['score']:.2f}", fill=colour)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


# -- export ----------------------------------------------------------------------------------------

class _Decoded(torch.nn.Module):
    """Float images in [0, 1] (N, 3, S, S) -> boxes (N, A, 4) in pixels of the letterboxed input and class
    scores (N, A, K): the whole YOLO decoding, so a server only thresholds (or, with nms, nothing)."""

    def __init__(self, lm: LoadedModel):
        super().__init__()
        self.model = lm.model
        self.register_buffer("mean", lm.task.mean.detach().clone())
        self.register_buffer("std", lm.task.std.detach().clone())

    def forward(self, x):
        return self.model.scores((x - self.mean) / self.std)


class _WithNMS(_Decoded):
    """... then class-wise NMS over the batch: rows [image, x1, y1, x2, y2, score, class] (ONNX NonMaxSuppression),
    boxes clipped to the input."""

    def __init__(self, lm: LoadedModel, conf: float, iou: float):
        super().__init__(lm)
        self.conf, self.iou, self.size = conf, iou, lm.preprocess["img_size"]

    def forward(self, x):
        from torchvision.ops import nms

        boxes, scores = super().forward(x)
        best, label = scores.max(-1)
        n, a = best.shape
        image = torch.arange(n, device=x.device)[:, None].expand(n, a).reshape(-1)
        flat_boxes, flat_best, flat_label = boxes.clamp(0, self.size).reshape(-1, 4), best.reshape(-1), label.reshape(-1)
        # batched_nms's trick, written out: each (image, class) group is moved apart so that one NMS never
        # suppresses across groups (batched_nms itself branches on the count, which export cannot trace);
        # the score threshold comes after NMS for the same reason
        group = (flat_label + image * scores.shape[-1]).to(flat_boxes.dtype)
        chosen = nms(flat_boxes + (group * (self.size + 1))[:, None], flat_best, self.iou)
        chosen = chosen[flat_best[chosen] >= self.conf]
        return torch.cat([image[chosen, None].float(), flat_boxes[chosen], flat_best[chosen, None],
                          flat_label[chosen, None].float()], 1)


def _nms_to_onnx(boxes, scores, iou_threshold: float):
    """torchvision's nms as ONNX NonMaxSuppression (one batch, one class): kept indices, best score first."""
    from onnxscript import opset18 as op

    selected = op.NonMaxSuppression(op.Unsqueeze(boxes, [0]), op.Unsqueeze(scores, [0, 1]),
                                    op.Constant(value_ints=[1 << 30]), op.Constant(value_floats=[iou_threshold]))
    return op.Reshape(op.Slice(selected, [2], [3], [1]), [-1])


def export(model_path, output, *, nms: bool = False, conf: float = 0.25, iou: float | None = None,
           device: str = "auto") -> dict:
    from dltool.core.export import check_onnx_path, export_onnx

    output = check_onnx_path(output)
    _check_conf(conf)
    dev = resolve_device(device)
    lm = load(model_path, dev)
    if not hasattr(lm.model, "scores"):
        raise OptionError(f"export covers the yolo models; '{lm.task.arch}' (a torchvision R-CNN) does not "
                          "export to ONNX with its decoding here", "train --model yolo to serve through ONNX")
    iou = lm.preprocess.get("iou", 0.6) if iou is None else iou
    _check_iou(iou)
    size = lm.preprocess["img_size"]
    example = torch.rand(2, 3, size, size, device=dev)
    module = (_WithNMS(lm, conf, iou) if nms else _Decoded(lm)).eval()
    names = ("detections",) if nms else ("boxes", "scores")
    outputs = ({"detections": {"shape": ["D", 7], "columns": ["image", "x1", "y1", "x2", "y2", "score", "class"]}}
               if nms else {"boxes": {"shape": ["N", "A", 4]}, "scores": {"shape": ["N", "A", len(lm.classes)]}})
    spec = {"input": {"name": "input", "shape": ["N", 3, size, size], "dtype": "float32", "range": [0, 1],
                      "letterbox": "scale the longer side to the size, pad right and bottom with grey 114"},
            "output": outputs, "classes": lm.classes, "nms": nms, **({"conf": conf, "iou": iou} if nms else {})}
    import warnings

    import torchvision.ops  # noqa: F401 (registers torch.ops.torchvision)

    translations = {torch.ops.torchvision.nms.default: _nms_to_onnx} if nms else None
    with warnings.catch_warnings():  # torchvision's nms meta kernel warns about a torch API it calls
        warnings.simplefilter("ignore", FutureWarning)
        return export_onnx(module, example, output, spec, output_names=names, translations=translations)
