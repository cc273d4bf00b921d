"""Write the shapes set: circles, squares and triangles on textured, noisy backgrounds (seeded).

Each split folder gets
  images/NNNN.png      RGB, SIZE x SIZE
  masks/NNNN.png       class ids (0 background, 1 circle, 2 square, 3 triangle); later shapes cover earlier ones
  labels/NNNN.txt      YOLO boxes `cls cx cy w h` (normalised; cls 0 circle, 1 square, 2 triangle)
  annotations.json     the same boxes and the shapes' polygons in COCO form
  classes.txt          the mask classes, one per line (line number = pixel value)
  data.yaml            `names:` of the YOLO classes (box class ids: no background), for detection

1-6 objects per image, some small, some overlapping. Usage:
  python sample_data/make_shapes.py sample_data/shapes --train 240 --test 60 --size 64

--single writes a classify view instead (one shape per image, label = its class, for checking
explanations against ground truth): SPLIT/<class>/NNNN.png, and masks/SPLIT/<class>/NNNN.png (255 on
the shape) beside the splits:
  python sample_data/make_shapes.py /tmp/shapes1 --single --train 300 --test 90 --size 32
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle")


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth colour gradient, a random stripe texture, and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 215, 3)
    slope = rng.uniform(-60, 60, (3, 2))
    img = base[:, None, None] + slope[:, 0, None, None] * xx + slope[:, 1, None, None] * yy
    angle, freq = rng.uniform(0, math.pi), rng.uniform(3, 10)
    stripes = np.sin(2 * math.pi * freq * (xx * math.cos(angle) + yy * math.sin(angle)))
    img += rng.uniform(5, 25) * stripes
    img += rng.normal(0, rng.uniform(4, 12), (3, size, size))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8).transpose(1, 2, 0))


def _polygon(kind: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3}.get(kind, 24)  # a circle as a 24-gon for COCO's polygons
    return [(cx + r * math.cos(turn + 2 * math.pi * k / corners), cy + r * math.sin(turn + 2 * math.pi * k / corners))
            for k in range(corners)]


def _image(rng: np.random.Generator, size: int):
    img = _background(rng, size)
    mask = Image.new("L", (size, size), 0)
    draw, mdraw = ImageDraw.Draw(img), ImageDraw.Draw(mask)
    objects = []
    for _ in range(int(rng.integers(1, 7))):
        kind = SHAPES[int(rng.integers(3))]
        r = size * (rng.uniform(0.05, 0.09) if rng.random() < 0.3 else rng.uniform(0.1, 0.22))  # some small
        cx, cy = rng.uniform(r, size - r, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if kind == "circle":
            box = [cx - r, cy - r, cx + r, cy + r]
            draw.ellipse(box, fill=colour)
            mdraw.ellipse(box, fill=1)
            poly = _polygon(kind, cx, cy, r, 0.0)
        else:
            poly = _polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi))
            draw.polygon(poly, fill=colour)
            mdraw.polygon(poly, fill=SHAPES.index(kind) + 1)
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        x1, y1, x2, y2 = max(0, min(xs)), max(0, min(ys)), min(size, max(xs)), min(size, max(ys))
        objects.append({"kind": kind, "box": [x1, y1, x2, y2], "poly": poly})
    img = img.filter(ImageFilter.GaussianBlur(0.4))  # soft edges, as a camera gives
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), mask, objects


def _single(rng: np.random.Generator, size: int):
    """One shape of a random class on the textured background, and its mask."""
    img = _background(rng, size)
    mask = Image.new("L", (size, size), 0)
    kind = SHAPES[int(rng.integers(3))]
    r = size * rng.uniform(0.14, 0.26)
    cx, cy = rng.uniform(r, size - r, 2)
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    for draw, fill in ((ImageDraw.Draw(img), colour), (ImageDraw.Draw(mask), 255)):
        if kind == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(0.4))
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), mask, kind


MARK = ".made-by-make_shapes"  # the folder is this script's to replace


def write_single(root: Path, masks: Path, n: int, size: int, seed: int) -> None:
    """The one-shape classify view: root/<class>/NNNN.png and masks/<class>/NNNN.png."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, mask, kind = _single(rng, size)
        for folder, picture in ((root, img), (masks, mask)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            picture.save(folder / kind / f"{i:04d}.png", optimize=True)


def write_split(root: Path, n: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("background\n" + "\n".join(SHAPES) + "\n")
    # detection reads data.yaml first: its ids are the YOLO labels' (0 circle), not the masks' (1 circle)
    (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {s}\n" for i, s in enumerate(SHAPES)))
    coco = {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": s} for i, s in enumerate(SHAPES)]}
    for i in range(n):
        img, mask, objects = _image(rng, size)
        stem = f"{i:04d}"
        img.save(root / "images" / f"{stem}.png", optimize=True)
        mask.save(root / "masks" / f"{stem}.png", optimize=True)
        lines = []
        coco["images"].append({"id": i, "file_name": f"images/{stem}.png", "width": size, "height": size})
        for o in objects:
            x1, y1, x2, y2 = o["box"]
            cls = SHAPES.index(o["kind"])
            lines.append(f"{cls} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} "
                         f"{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}")
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": i, "category_id": cls + 1,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0,
                "segmentation": [[round(v, 2) for p in o["poly"] for v in p]]})
        (root / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (root / "annotations.json").write_text(json.dumps(coco))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=240)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single", action="store_true", help="one shape per image, in class folders")
    a = ap.parse_args()
    # a second run into the same folder replaces the first one's images (never mixes with them), and
    # touches nothing it did not make
    made = [d for d in (a.out / "train", a.out / "test", a.out / "masks") if d.exists()]
    if made and not (a.out / MARK).exists():
        sys.exit(f"error: {made[0]} exists and was not made by make_shapes.py: choose another folder")
    for d in made:
        shutil.rmtree(d)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / MARK).touch()
    if a.single:
        for split, n, seed in (("train", a.train, a.seed), ("test", a.test, a.seed + 1)):
            write_single(a.out / split, a.out / "masks" / split, n, a.size, seed)
        return
    write_split(a.out / "train", a.train, a.size, a.seed)
    write_split(a.out / "test", a.test, a.size, a.seed + 1)


if __name__ == "__main__":
    main()
