"""Tiny shapes sets for the segment tests, written by the generator of sample_data/shapes."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("make_shapes", Path(__file__).parents[2] / "sample_data" / "make_shapes.py")
make_shapes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_shapes)


def write_shapes(root: Path, n: int, seed: int = 0, size: int = 32) -> Path:
    make_shapes.write_split(root, n, size, seed)
    return root
