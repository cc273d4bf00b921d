"""Write sample_data/digits/{train,test}/<digit>/*.png from sklearn's load_digits().

Real handwriting: 1,797 8x8 grayscale digits (UCI), split 80/20, stratified, seed 0. Pixel
values 0..16 are scaled to 0..255. Re-running gives byte-identical files.
Usage: python sample_data/make_digits.py [OUT_DIR]
       python sample_data/make_digits.py --pixels TABLE.jsonl   # all 1,797 digits as a feature table
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main(out: Path) -> None:
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    idx = np.arange(len(images))
    train, test = train_test_split(idx, test_size=0.2, random_state=0, stratify=digits.target)
    for split, chosen in (("train", train), ("test", test)):
        for i in sorted(chosen):
            folder = out / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(folder / f"{i:04d}.png", optimize=True)
    print(f"wrote {len(train)} train and {len(test)} test images under {out}")


def pixels_table(path: Path) -> None:
    """One JSON line per digit: id, label (a string, so it passes through), p0..p63 (0..16)."""
    import json

    digits = load_digits()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (x, y) in enumerate(zip(digits.data, digits.target)):
            row = {"id": f"{i:04d}", "label": str(y), **{f"p{j}": float(v) for j, v in enumerate(x)}}
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--pixels":
        pixels_table(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "digits")
