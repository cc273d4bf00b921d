"""Tiny shapes sets for the segment tests, written by the generator of sample_data/shapes."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("make_shapes", Path(__file__).parents[2] / "sample_data" / "make_shapes.py")
make_shapes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_shapes)


def write_shapes(root: Path, n: int, seed: int = 0, size: int = 32) -> Path:
    make_shapes.write_split(root, n, size, seed)
    return root


def write_instances(root: Path) -> Path:
    """A shapes split's COCO polygons as instance PNGs (DIR/instances/<stem>.png, pixel = instance number,
    later shapes covering earlier ones as in the images), beside its class masks: Pascal VOC's pair."""
    import json

    from PIL import Image, ImageDraw

    doc = json.loads((root / "annotations.json").read_text())
    (root / "instances").mkdir(exist_ok=True)
    for im in doc["images"]:
        canvas = Image.new("L", (im["width"], im["height"]), 0)
        draw = ImageDraw.Draw(canvas)
        anns = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
        for k, a in enumerate(anns, 1):
            xy = a["segmentation"][0]
            draw.polygon(list(zip(xy[0::2], xy[1::2])), fill=k)
        canvas.save(root / "instances" / f"{Path(im['file_name']).stem}.png")
    return root
