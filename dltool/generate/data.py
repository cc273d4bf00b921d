"""Training images for the generators: a flat folder of images, or class sub-folders (root/<class>/*.png,
the labels of conditional models). Every image is converted to the folder's mode (grayscale when all
are, else RGB) and resized to --img-size x --img-size, so a folder of mixed sizes works: each image is
stretched to the square (bilinear), not cropped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.core import images as vdata
from dltool.core.errors import InputError
from dltool.core.inputs import scan_labelled
from dltool.core.io import input_path


@dataclass
class ImageSet:
    images: np.ndarray          # uint8 (N, C, S, S)
    labels: np.ndarray | None   # int class indices, or None for a flat folder
    classes: list[str]          # the class folder names ([] for a flat folder)
    mode: str                   # "L" or "RGB"

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def scan(root: str | Path) -> tuple[list[Path], list[str] | None]:
    """The image paths under `root`, and their class names when it has class sub-folders."""
    root = input_path(root, "image folder")
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder", "pass a folder of images (flat, or root/<class>/*.png)")
    flat = sorted(p for p in root.iterdir() if p.is_file() and vdata.IMAGES.matches(p))
    if flat:
        return flat, None
    labelled = scan_labelled(root, vdata.IMAGES)  # class sub-folders; fails clearly on an empty folder
    return [it.path for it in labelled], [it.label for it in labelled]


def load_images(root: str | Path, size: int, *, skip_bad: bool = False) -> ImageSet:
    paths, names = scan(root)
    mode = vdata.decide_mode(paths)
    images, kept = vdata.decode(paths, size, mode, skip_bad=skip_bad)
    if names is None:
        return ImageSet(images, None, [], mode)
    names = [names[i] for i in kept]
    classes = sorted(set(names))
    return ImageSet(images, np.array([classes.index(c) for c in names]), classes, mode)


def to_unit(x):
    """uint8 images -> float in [-1, 1] (the generators' range)."""
    return x.float().div(127.5).sub(1)


def to_uint8(x):
    """float images in [-1, 1] -> uint8."""
    return x.clamp(-1, 1).add(1).mul(127.5).round().to("cpu").byte()
