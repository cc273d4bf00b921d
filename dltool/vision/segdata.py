"""Segmentation data: DIR/images/*.png|jpg and DIR/masks/*.png of the same stem, optional DIR/classes.txt.

A mask's pixel value is its class id (line N of classes.txt names class N); 0/255 masks of two
classes (binary masks as most tools save them) read as 0 and 1. Pixels of --ignore-index count for
nothing in training and evaluation. Images are decoded by dltool.core.images (its --skip-bad rule
included); a mask's values must be known classes.

Masks as real data ships them are taken too, and the reader says how many it changed: a JPEG mask
(DIR/masks/*.jpg, compression blurs its values along the edges) is a binary one, thresholded at 128 to
0/255; a mask of another size than its image but the same shape (aspect ratios within 2%) is resized
to the image with nearest neighbour (the image is what predict sees; ids stay ids). Any other size
difference is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.core import images as vdata
from dltool.core.console import info, warn
from dltool.core.errors import InputError
from dltool.core.io import input_path

IGNORE = 255  # the id ignored pixels get inside dltool (so at most 255 classes: ids 0-254)
MAX_CLASSES = 255
MASK_SUFFIXES = (".png", ".jpg", ".jpeg")  # in order of preference when a stem has more than one
LOSSY = (".jpg", ".jpeg")
ASPECT_TOLERANCE = 0.02  # a mask this close to its image's shape is the same picture at another size


@dataclass
class Pairs:
    root: Path
    images: list[Path]
    masks: list[Path]
    classes: list[str] | None  # from classes.txt


def scan_pairs(data: str | Path) -> Pairs:
    root = input_path(data, "data")
    img_dir, mask_dir = root / "images", root / "masks"
    if not root.is_dir() or not img_dir.is_dir() or not mask_dir.is_dir():
        raise InputError(f"'{data}' is not a segmentation folder",
                         "expected DIR/images/*.png and DIR/masks/*.png (class ids) with the same stems")
    images = sorted(p for p in img_dir.iterdir() if p.is_file() and vdata.IMAGES.matches(p))
    if not images:
        raise InputError(f"no images found in '{img_dir}'",
                         f"put the images there ({vdata.IMAGES.listed()})")
    found = [p for p in mask_dir.iterdir() if p.is_file() and p.suffix.lower() in MASK_SUFFIXES]
    by_stem = {}
    for p in sorted(found, key=lambda p: -MASK_SUFFIXES.index(p.suffix.lower())):
        by_stem[p.stem] = p  # the preferred suffix comes last, so it wins
    missing = [p for p in images if p.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"image '{missing[0]}'{more} has no mask (expected '{mask_dir / (missing[0].stem + '.png')}')",
                         "add a mask PNG of the same stem for every image, or remove the image")
    return Pairs(root, images, [by_stem[p.stem] for p in images], read_classes(root / "classes.txt"))


def read_classes(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise InputError(f"'{path}' must name at least two distinct classes, one per line")
    if len(names) > MAX_CLASSES:
        raise InputError(f"'{path}' names {len(names)} classes; at most {MAX_CLASSES} are supported")
    return names


def image_size(path: Path):
    """(width, height) from the header, or None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # unreadable: reported (or skipped) by vdata.decode_list
        return None


def _read_mask(path: Path, expected, image: Path) -> tuple[np.ndarray, bool]:
    """(the mask's values at its image's size, whether it had to be resized)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("1", "L", "P", "I", "I;16"):
                raise InputError(f"mask '{path}' is a {im.mode} image, not one of class ids",
                                 "save masks as single-channel PNGs whose pixel value is the class id")
            if path.suffix.lower() in LOSSY:
                im = im.convert("L").point(lambda v: 255 if v >= 128 else 0)
            size = im.size
            resized = expected is not None and size != expected
            if resized and abs(size[0] * expected[1] / (size[1] * expected[0]) - 1) <= ASPECT_TOLERANCE:
                im = im.resize(expected, Image.NEAREST)
            values = np.array(im, dtype=np.int64)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read mask '{path}' ({type(e).__name__})", "fix or remove the mask") from None
    if expected is not None and values.shape[::-1] != tuple(expected):
        raise InputError(f"mask '{path}' is {size[0]}x{size[1]} but its image '{image}' is {expected[0]}x{expected[1]}",
                         "a mask must have its image's size, or its shape at another size (it is then resized)")
    return values, resized


def decide_classes(raw_masks: list[np.ndarray], ignore_index: int | None) -> list[str]:
    """Without classes.txt: 0/255 masks are two classes, otherwise ids 0..max."""
    present = set()
    for m in raw_masks:
        present.update(np.unique(m).tolist())
    present.discard(ignore_index)
    if present <= {0, 255}:
        return ["0", "1"]
    top = max(present)
    if top >= MAX_CLASSES:
        raise InputError(f"a mask has the value {top}; class ids go up to {MAX_CLASSES - 1}",
                         "use --ignore-index for a 'void' value, or ids 0-254")
    return [str(i) for i in range(top + 1)]


def to_ids(raw: np.ndarray, n_classes: int, ignore_index: int | None, path: Path) -> np.ndarray:
    """Raw mask values -> uint8 class ids (IGNORE where ignored); a value that is no class is an error."""
    ids = raw.copy()
    ignored = raw == ignore_index if ignore_index is not None else np.zeros(raw.shape, bool)
    if n_classes == 2 and np.isin(raw[~ignored], (0, 255)).all():
        ids[raw == 255] = 1  # a binary 0/255 mask
    bad = (ids >= n_classes) & ~ignored
    if bad.any():
        value = int(raw[bad][0])
        raise InputError(f"mask '{path}' has the value {value}, not a class id (the classes are 0-{n_classes - 1})",
                         "fix the mask, list every class in classes.txt, or pass --ignore-index "
                         f"{value} to ignore those pixels")
    ids[ignored] = IGNORE
    return ids.astype(np.uint8)


def _resize_mask(ids: np.ndarray, size: int | None) -> np.ndarray:
    from PIL import Image

    if size is None or ids.shape == (size, size):
        return ids
    return np.array(Image.fromarray(ids).resize((size, size), Image.NEAREST))  # ids stay ids


def rescale(image: np.ndarray, mask: np.ndarray | None, side: int) -> tuple[np.ndarray, np.ndarray | None]:
    """An image (C, H, W uint8) and its mask of ids at the size whose shorter side is `side` (--resize):
    the image bilinear with antialiasing (no aliasing when it shrinks), the mask nearest (ids stay ids)."""
    import torch
    import torch.nn.functional as F

    h, w = image.shape[1:]
    size = max(1, round(h * side / min(h, w))), max(1, round(w * side / min(h, w)))
    if size == image.shape[1:]:
        return image, mask
    x = F.interpolate(torch.from_numpy(image)[None].float(), size=size, mode="bilinear", antialias=True,
                      align_corners=False)
    image = x[0].round_().clamp_(0, 255).to(torch.uint8).numpy()
    if mask is not None:
        mask = F.interpolate(torch.from_numpy(mask)[None, None], size=size, mode="nearest-exact")[0, 0].numpy()
    return image, mask


@dataclass
class SegData:
    images: list[np.ndarray]   # uint8 C x H x W
    masks: list[np.ndarray]    # uint8 H x W of class ids (IGNORE for ignored pixels)
    paths: list[Path]
    classes: list[str]


def load(pairs: Pairs, *, size: int | None, mode: str, classes: list[str] | None, ignore_index: int | None,
         skip_bad: bool) -> SegData:
    """Decode images (resized to a `size` square, or at their own size with None) and their masks alike."""
    expected = [image_size(p) for p in pairs.images]
    images, kept = vdata.decode_list(pairs.images, size, mode, skip_bad=skip_bad)
    raw, keep_images, paths, mask_paths, resized = [], [], [], [], 0
    for arr, i in zip(images, kept):
        try:
            values, changed = _read_mask(pairs.masks[i], expected[i], pairs.images[i])
            raw.append(values)
            resized += changed
        except InputError as e:
            if not skip_bad or "cannot read" not in e.message:
                raise
            warn(f"skipping '{pairs.images[i]}': {e.message}")
            continue
        keep_images.append(arr)
        paths.append(pairs.images[i])
        mask_paths.append(pairs.masks[i])
    if not paths:
        raise InputError("none of the image/mask pairs could be read")
    classes = classes or pairs.classes or decide_classes(raw, ignore_index)
    masks = [_resize_mask(to_ids(m, len(classes), ignore_index, mp), size) for m, mp in zip(raw, mask_paths)]
    lossy = sum(p.suffix.lower() in LOSSY for p in mask_paths)
    if lossy or resized:
        said = [f"{lossy} JPEG masks thresholded at 128"] * bool(lossy) + \
               [f"{resized} masks resized to their image's size (nearest neighbour)"] * bool(resized)
        info(f"masks: {' and '.join(said)}")
    return SegData(keep_images, masks, paths, list(classes))
