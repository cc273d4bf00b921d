"""Detection data: YOLO, Pascal VOC and COCO folders; letterboxing. (Augmentation, boxes following the
pixels: dltool.vision.augment.)

Formats (one folder per split):
  YOLO  DIR/images/*.jpg|png, DIR/labels/<stem>.txt of `cls cx cy w h` (normalised). Class names from
        --classes a,b,c, else a data.yaml with `names:` in DIR or its parent, else DIR/classes.txt (one
        per line), else the ids themselves. An image without a label file is a background image.
  VOC   DIR/Annotations/*.xml (or annotations/) with the images in DIR/JPEGImages/ (or images/);
        --split NAME reads the stems of DIR/ImageSets/Main/NAME.txt. Class names from --classes, else
        classes.txt, else the names found, sorted.
  COCO  --coco instances.json, file names relative to DIR; class names from its categories. Each
        annotation's `segmentation` (polygons or RLE, decoded by pycocotools as COCO does) is its
        instance mask for Mask R-CNN; a polygon needs at least 3 points.
  Instance PNGs (Pascal VOC's SegmentationObject + SegmentationClass pair) DIR/images/*, DIR/instances/
        <stem>.png (pixel value = instance number, 0 background, 255 void) and DIR/masks/<stem>.png (pixel
        value = class id, as `vision segment` reads them): each instance's class is the most common mask
        value under it, its box the tight box around it. Class names from --classes (values 1, 2, ...),
        else classes.txt (line N names value N; line 0 the background).
A bad label (a malformed line, a class id out of range, a box outside the image, a class not in the
list) is an error naming its file and line; --skip-bad skips it with a warning instead.

Boxes are float (x1, y1, x2, y2) in pixels. Training images are letterboxed: scaled so the longer side
is S, padded right and bottom with grey to S x S, so a box maps back by dividing by the scale.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.core import images as vdata
from dltool.core.console import warn
from dltool.core.errors import InputError
from dltool.core.io import input_path
from dltool.vision.augment import PAD_VALUE

EDGE_TOLERANCE = 0.01  # normalised: a box may overhang the image by this much (then it is clipped)


@dataclass
class Sample:
    path: Path
    boxes: np.ndarray   # (n, 4) float32 x1 y1 x2 y2, pixels of the original image
    labels: np.ndarray  # (n,) int64 class ids
    segments: list | None = None  # per box its COCO segmentation (polygons or RLE), None where it has none
    size: tuple[int, int] | None = None  # (width, height), for decoding the segments
    instances: tuple[Path, list[int]] | None = None  # an instance PNG and the value of each box's instance

    @property
    def has_masks(self) -> bool:
        return self.instances is not None or (self.segments is not None and all(s is not None for s in self.segments))

    def masks(self) -> np.ndarray:
        """(n, H, W) uint8 instance masks, decoded as pycocotools' COCO.annToMask does."""
        from pycocotools import mask as coco_mask

        if self.instances is not None:
            ids = _read_png(self.instances[0])
            return np.stack([ids == v for v in self.instances[1]]).astype(np.uint8) if self.instances[1] else \
                np.zeros((0, *ids.shape), np.uint8)
        w, h = self.size
        out = np.zeros((len(self.boxes), h, w), np.uint8)
        for i, seg in enumerate(self.segments or []):
            if isinstance(seg, list):
                rle = coco_mask.merge(coco_mask.frPyObjects(seg, h, w))
            elif isinstance(seg["counts"], list):
                rle = coco_mask.frPyObjects(seg, h, w)
            else:
                rle = seg
            with warnings.catch_warnings():  # pycocotools' own NumPy 2 deprecation notice, harmless here
                warnings.simplefilter("ignore", DeprecationWarning)
                out[i] = coco_mask.decode(rle)
        return out


@dataclass
class Dataset:
    samples: list[Sample]
    classes: list[str]
    labels: Path  # where the boxes were read: YOLO's labels/, VOC's Annotations/, the COCO json

    @property
    def n_background(self) -> int:
        """Images without a box: background for the detector, as long as other images have boxes."""
        return sum(len(s.boxes) == 0 for s in self.samples)

    def require_boxes(self) -> None:
        """A set without a single box teaches nothing: an error naming where the labels were looked for."""
        if self.samples and self.n_background == len(self.samples):
            raise InputError(f"none of the {len(self.samples)} images has a box in '{self.labels}'",
                             "label the objects there; images without boxes are allowed, as background, only "
                             "beside labelled ones")

    def require_masks(self, model: str) -> None:
        """Every box needs its instance mask for a model that learns masks."""
        bad = next((s for s in self.samples if len(s.boxes) and not s.has_masks), None)
        if bad is not None:
            raise InputError(f"--model {model} learns instance masks, and '{bad.path}' has a box without one in "
                             f"'{self.labels}'", "pass --coco instances.json whose annotations have a "
                             "segmentation (polygons or RLE)")


class _Reporter:
    """A bad label: an error, or a warning and the label skipped under --skip-bad."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad

    def bad(self, where: str, what: str, fix: str) -> None:
        if not self.skip_bad:
            raise InputError(f"{where}: {what}", f"{fix}, or pass --skip-bad to skip bad labels")
        warn(f"skipping the label at {where}: {what}")


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and vdata.IMAGES.matches(p))


def _no_images(folder: Path) -> InputError:
    return InputError(f"no images found in '{folder}'",
                      f"put the images there ({vdata.IMAGES.listed()})")


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # unreadable: reported (or skipped) when decoded
        return None


def scan(data, *, classes: list[str] | None = None, coco: Path | None = None, split: str | None = None,
         skip_bad: bool = False) -> Dataset:
    """Read a split folder in whichever format it is in."""
    root = input_path(data, "data")
    if not root.is_dir():
        raise InputError(f"'{data}' is not a folder", "pass a detection folder (YOLO images/ + labels/, VOC, or "
                                                      "an images folder with --coco instances.json)")
    report = _Reporter(skip_bad)
    if coco is not None:
        return _read_coco(root, input_path(coco, "--coco"), report)
    if any((root / d).is_dir() for d in ("Annotations", "annotations")):
        return _read_voc(root, classes, split, report)
    if (root / "images").is_dir() and (root / "instances").is_dir():
        return _read_instances(root, classes, report)
    if (root / "images").is_dir():
        return _read_yolo(root, classes, report)
    raise InputError(f"'{data}' is not a detection folder",
                     "expected DIR/images + DIR/labels (YOLO), DIR/JPEGImages + DIR/Annotations (VOC), "
                     "or --coco instances.json")


# -- YOLO ------------------------------------------------------------------------------------------

def _yaml_names(root: Path) -> list[str] | None:
    for folder in (root, root.parent):
        path = folder / "data.yaml"
        if path.exists():
            import yaml

            try:
                names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
            except yaml.YAMLError as e:
                raise InputError(f"'{path}' is not valid YAML ({str(e).splitlines()[0]})") from None
            if isinstance(names, dict):  # {0: a, 1: b}
                names = [names[k] for k in sorted(names)]
            if not isinstance(names, list) or not names:
                raise InputError(f"'{path}' has no `names:` list", "add names: [a, b, ...] or names: {0: a, ...}")
            return [str(n) for n in names]
    return None


def _lines_classes(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_yolo(root: Path, classes, report: _Reporter) -> Dataset:
    images = _image_files(root / "images")
    if not images:
        raise _no_images(root / "images")
    names = classes or _yaml_names(root) or _lines_classes(root / "classes.txt")
    samples, top = [], -1
    for path in images:
        label_file = root / "labels" / f"{path.stem}.txt"
        boxes, labels = [], []
        lines = label_file.read_text(encoding="utf-8").splitlines() if label_file.exists() else []
        size = _image_size(path) if lines else None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"'{label_file}' line {n}"
            parts = line.split()
            try:
                cls, values = int(parts[0]), [float(v) for v in parts[1:]]
                if len(values) != 4 or not np.isfinite(values).all():
                    raise ValueError
            except (ValueError, IndexError):
                report.bad(where, f"'{line.strip()[:60]}' is not `cls cx cy w h`", "fix the line")
                continue
            if cls < 0 or (names is not None and cls >= len(names)):
                report.bad(where, f"class id {cls} is out of range (the {len(names or [])} classes are 0-"
                           f"{len(names or []) - 1})", "fix the id, or list every class (data.yaml, --classes)")
                continue
            cx, cy, w, h = values
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            if w <= 0 or h <= 0 or min(x1, y1) < -EDGE_TOLERANCE or max(x2, y2) > 1 + EDGE_TOLERANCE:
                report.bad(where, f"the box {cx:g} {cy:g} {w:g} {h:g} lies outside the image (coordinates are "
                           "normalised to 0-1)", "fix the box")
                continue
            if size is None:
                continue  # unreadable image: decoding reports it
            W, H = size
            boxes.append([max(0, x1) * W, max(0, y1) * H, min(1, x2) * W, min(1, y2) * H])
            labels.append(cls)
            top = max(top, cls)
        samples.append(_sample(path, boxes, labels))
    return Dataset(samples, names or [str(i) for i in range(top + 1)] or ["0"], root / "labels")


def _sample(path: Path, boxes, labels) -> Sample:
    return Sample(path, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


# -- Pascal VOC ------------------------------------------------------------------------------------

def _read_voc(root: Path, classes, split, report: _Reporter) -> Dataset:
    import xml.etree.ElementTree as ET

    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root / "annotations"
    img_dir = root / "JPEGImages" if (root / "JPEGImages").is_dir() else root / "images"
    xmls = sorted(ann_dir.glob("*.xml"))
    if split is not None:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        if not listing.exists():
            raise InputError(f"--split {split}: '{listing}' does not exist", "name a split listed in ImageSets/Main")
        stems = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        xmls = [ann_dir / f"{s}.xml" for s in stems]
    by_stem = {p.stem: p for p in _image_files(img_dir)}
    if not by_stem:
        raise _no_images(img_dir)
    names = classes or _lines_classes(root / "classes.txt")
    parsed = []
    for xml in xmls:
        try:
            tree = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as e:
            report.bad(f"'{xml}'", f"not readable VOC XML ({e})", "fix the file")
            continue
        filename = tree.findtext("filename") or ""
        path = by_stem.get(Path(filename).stem) or by_stem.get(xml.stem)
        if path is None:
            report.bad(f"'{xml}'", f"its image '{filename}' is not in '{img_dir}'", "add the image")
            continue
        W, H = int(float(tree.findtext("size/width") or 0)), int(float(tree.findtext("size/height") or 0))
        if not (W and H):
            W, H = _image_size(path) or (0, 0)
        objects = []
        for k, obj in enumerate(tree.iter("object"), 1):
            where = f"'{xml}' object {k}"
            name = (obj.findtext("name") or "").strip()
            try:
                x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                report.bad(where, "has no numeric bndbox xmin/ymin/xmax/ymax", "fix the object")
                continue
            if names is not None and name not in names:
                report.bad(where, f"names the class '{name}', not in the class list ({', '.join(names)})",
                           "add it to --classes / classes.txt, or fix the name")
                continue
            tol = EDGE_TOLERANCE * max(W, H)
            if not (x2 > x1 and y2 > y1) or min(x1, y1) < -tol or x2 > W + tol or y2 > H + tol:
                report.bad(where, f"the box {x1:g},{y1:g},{x2:g},{y2:g} lies outside the {W}x{H} image", "fix the box")
                continue
            objects.append((name, [max(0, x1), max(0, y1), min(W, x2), min(H, y2)]))
        parsed.append((path, objects))
    if not parsed:
        raise InputError(f"no annotations found in '{ann_dir}'", "put one VOC .xml per image there")
    names = names or sorted({name for _, objs in parsed for name, _ in objs})
    index = {n: i for i, n in enumerate(names)}
    samples = [_sample(p, [b for _, b in objs], [index[n] for n, _ in objs]) for p, objs in parsed]
    return Dataset(samples, list(names), ann_dir)


# -- instance PNGs ---------------------------------------------------------------------------------

def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L") if im.mode in ("RGB", "RGBA", "LA") else im)
    except Exception as e:  # noqa: BLE001 (any decoding failure is the file's fault)
        raise InputError(f"'{path}' is not a readable PNG ({type(e).__name__})", "fix or remove it") from None


def _read_instances(root: Path, classes, report: _Reporter) -> Dataset:
    images = _image_files(root / "images")
    if not images:
        raise _no_images(root / "images")
    names = classes or (_lines_classes(root / "classes.txt") or [None])[1:] or None
    samples, top = [], 0
    for path in images:
        inst_file, class_file = root / "instances" / f"{path.stem}.png", root / "masks" / f"{path.stem}.png"
        if not inst_file.exists():  # no instance file: a background image
            samples.append(_sample(path, [], []))
            continue
        inst = _read_png(inst_file)
        if not class_file.exists():
            raise InputError(f"'{inst_file}' has no class mask '{class_file}'",
                             "put each image's class ids (pixel value = class) in DIR/masks/, same stem")
        cls = _read_png(class_file)
        if cls.shape != inst.shape:
            raise InputError(f"'{class_file}' is {cls.shape[1]}x{cls.shape[0]}, its instances "
                             f"'{inst_file}' {inst.shape[1]}x{inst.shape[0]}", "make them the same size")
        boxes, labels, values = [], [], []
        for v in np.unique(inst):
            if v in (0, 255):
                continue
            on = inst == v
            under = cls[on]
            under = under[(under != 0) & (under != 255)]
            where = f"'{inst_file}' instance {v}"
            if not len(under):
                report.bad(where, "lies on background (class 0) in its class mask", "give it a class in masks/")
                continue
            c = int(np.bincount(under).argmax())
            if names is not None and c > len(names):
                report.bad(where, f"has class {c}, beyond the {len(names)} classes named", "list every class "
                           "(classes.txt line N names value N, or --classes)")
                continue
            ys, xs = np.nonzero(on)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(c - 1)
            values.append(int(v))
            top = max(top, c)
        sample = _sample(path, boxes, labels)
        sample.instances = (inst_file, values)
        samples.append(sample)
    return Dataset(samples, list(names) if names else [str(i) for i in range(1, top + 1)] or ["1"], root / "instances")


# -- COCO ------------------------------------------------------------------------------------------

def _read_coco(root: Path, coco: Path, report: _Reporter) -> Dataset:
    try:
        doc = json.loads(coco.read_text(encoding="utf-8"))
        images, anns, cats = doc["images"], doc.get("annotations", []), doc["categories"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"--coco {coco} is not a COCO instances file ({type(e).__name__}: {str(e)[:80]})",
                         "it needs images, annotations and categories") from None
    if not images:
        raise _no_images(root)
    cats = sorted(cats, key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(cats)}
    per_image: dict = {im["id"]: ([], [], []) for im in images}
    for k, a in enumerate(anns):
        where = f"'{coco}' annotation {a.get('id', k)}"
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
            image = per_image[a["image_id"]]
        except (KeyError, TypeError, ValueError):
            report.bad(where, "has no bbox [x, y, w, h] or names an unknown image_id", "fix the annotation")
            continue
        if a.get("category_id") not in index:
            report.bad(where, f"names the category id {a.get('category_id')}, not in its categories", "fix it")
            continue
        segment, problem = _segment(a.get("segmentation"))
        if problem:
            report.bad(where, problem, "fix or drop it")
            continue
        image[0].append([x, y, x + w, y + h])
        image[1].append(index[a["category_id"]])
        image[2].append(segment)
    samples = []
    for im in images:
        path = root / im["file_name"]
        if not path.exists():
            raise InputError(f"--coco {coco}: image '{path}' does not exist",
                             "pass the images folder the file names are relative to")
        W, H = im.get("width"), im.get("height")
        boxes, labels, segments = per_image[im["id"]]
        keep_b, keep_l, keep_s = [], [], []
        for b, lab, seg in zip(boxes, labels, segments):
            if W and H and (b[2] <= b[0] or b[3] <= b[1] or b[0] < -1 or b[1] < -1 or b[2] > W + 1 or b[3] > H + 1):
                report.bad(f"'{coco}' image {im['id']}", f"the box {b} lies outside the {W}x{H} image", "fix it")
                continue
            keep_b.append([max(0, b[0]), max(0, b[1]), min(W or b[2], b[2]), min(H or b[3], b[3])])
            keep_l.append(lab)
            keep_s.append(seg)
        sample = _sample(path, keep_b, keep_l)
        if any(seg is not None for seg in keep_s):
            sample.segments, sample.size = keep_s, (W, H) if W and H else _image_size(path)
        samples.append(sample)
    return Dataset(samples, [str(c["name"]) for c in cats], coco)


def _segment(seg) -> tuple[object, str | None]:
    """An annotation's `segmentation` -> (it, or None when absent; what is wrong with it, or None)."""
    if seg is None or seg == []:
        return None, None
    if isinstance(seg, dict):
        if isinstance(seg.get("size"), list) and len(seg["size"]) == 2 and isinstance(seg.get("counts"), (list, str)):
            return seg, None
        return None, "has an RLE segmentation without `size` [h, w] and `counts`"
    if not isinstance(seg, list):
        return None, "has a segmentation that is neither polygons nor RLE"
    for k, poly in enumerate(seg):
        if not isinstance(poly, list) or not all(isinstance(v, (int, float)) for v in poly) or len(poly) % 2:
            return None, f"polygon {k} is not a flat list of x, y numbers"
        if len(poly) < 6:
            return None, f"polygon {k} has {len(poly) // 2} point{'s' * (len(poly) != 2)}; a polygon needs at least 3"
    return seg, None


# -- letterbox and tensors -------------------------------------------------------------------------

def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """uint8 (C, H, W) -> (C, size, size), scaled to fit and padded right/bottom; returns the scale."""
    from PIL import Image

    c, h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.full((c, size, size), PAD_VALUE, np.uint8)
    if (nh, nw) == (h, w):
        out[:, :h, :w] = image
    else:
        pil = Image.fromarray(image[0] if c == 1 else image.transpose(1, 2, 0))
        resized = np.asarray(pil.resize((nw, nh), Image.BILINEAR))
        out[:, :nh, :nw] = resized[None] if c == 1 else resized.transpose(2, 0, 1)
    return out, scale


def letterbox_masks(masks: np.ndarray, size: int, scale: float) -> np.ndarray:
    """(n, H, W) uint8 instance masks -> (n, size, size), scaled and padded as letterbox() does the image."""
    import torch
    import torch.nn.functional as F

    n, h, w = masks.shape
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros((n, size, size), np.uint8)
    if n:
        resized = F.interpolate(torch.from_numpy(masks)[None].float(), size=(nh, nw), mode="bilinear",
                                align_corners=False)[0]
        out[:, :nh, :nw] = (resized >= 0.5).numpy()
    return out


def pad_targets(samples_boxes: list[np.ndarray], samples_labels: list[np.ndarray], scales) -> np.ndarray:
    """(N, M, 5) float32 rows of [cls, x1, y1, x2, y2] in letterboxed pixels, cls -1 for padding, M the
    most boxes any image has: a fixed shape, so the engine's batching and sharding take it as it is."""
    m = max([len(b) for b in samples_boxes] + [1])
    out = np.zeros((len(samples_boxes), m, 5), np.float32)
    out[:, :, 0] = -1
    for i, (b, lab, s) in enumerate(zip(samples_boxes, samples_labels, scales)):
        out[i, :len(b), 0] = lab
        out[i, :len(b), 1:] = b * s
    return out
