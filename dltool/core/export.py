"""Exporting a trained network for serving: ONNX with a dynamic batch, and a JSON spec beside it.

A command wraps its network so that the exported graph takes what a server has (images in [0, 1],
waveforms) and does the preprocessing itself (see Normalized), then calls export_onnx.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from dltool.core.errors import OptionError
from dltool.core.io import atomic_path, write_json


class Normalized(torch.nn.Module):
    """`model((x - mean) / std)`, with the training statistics as buffers: a served model needs no
    preprocessing code of its own."""

    def __init__(self, model: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def check_onnx_path(output) -> Path:
    """Refuse an output name that is not *.onnx before any work is done."""
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise OptionError(f"cannot export to '{output.name}'", "name the file *.onnx")
    return output


def write_onnx(module: torch.nn.Module, example: torch.Tensor, path, *, input_name: str = "input",
               output_names: tuple[str, ...] = ("logits",), translations: dict | None = None) -> None:
    """torch.onnx (dynamo) export of `module` on `example`, its first dimension dynamic (the batch).
    `translations`: ONNX (onnxscript) functions for operators the exporter has none for, such as
    torchvision's nms (torch.onnx.export's custom_translation_table)."""
    import io
    import logging
    from contextlib import redirect_stdout

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    arg = next(iter(inspect.signature(module.forward).parameters))
    batch = torch.export.Dim("batch", min=1, max=4096)
    with redirect_stdout(io.StringIO()):  # the exporter chats on stdout; stdout is for results
        program = torch.onnx.export(module.eval(), (example,), input_names=[input_name],
                                    output_names=list(output_names), dynamic_shapes={arg: {0: batch}},
                                    dynamo=True, verbose=False, custom_translation_table=translations)
    program.save(str(path))


def export_onnx(module: torch.nn.Module, example: torch.Tensor, output, spec: dict, *, input_name: str = "input",
                output_names: tuple[str, ...] = ("logits",), translations: dict | None = None) -> dict:
    """Write OUTPUT.onnx atomically and OUTPUT.onnx.json (the spec: inputs, outputs, classes...) beside it;
    returns the spec with its format and path."""
    output = check_onnx_path(output)
    with atomic_path(output) as tmp:
        write_onnx(module, example, tmp, input_name=input_name, output_names=output_names, translations=translations)
    spec = {"format": "onnx", "path": str(output), **spec}
    write_json(output.with_name(output.name + ".json"), spec)
    return spec
