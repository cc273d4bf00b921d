"""dltool vision stylize: neural style transfer (Gatys) with a VGG whose weights the user supplies.

Thin: options -> dltool.vision.stylize.StylizeConfig -> one call -> one JSON object. Nothing heavy at
module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltool.cli.options import (
    ConfigOpt,
    DeviceOpt,
    FormatOpt,
    QuietOpt,
    SeedOpt,
    apply_console_options,
)
from dltool.vision.stylize import StylizeConfig

_D = StylizeConfig  # the defaults, written once there


def stylize(
    content: Annotated[Path, typer.Argument(help="The content image (PNG, JPEG, ...): the output has its size.")],
    style: Annotated[Path, typer.Option("--style", help="The style image (resized to the content's size).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The stylized image (PNG).")],
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="torchvision's vgg19 or vgg16 (or _bn) state_dict, e.g. vgg19-dcbb9e9d.pth; nothing is downloaded.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="L-BFGS evaluations of the loss.")] = _D.steps,
    style_weight: Annotated[float, typer.Option("--style-weight", help="Weight of the Gram-matrix style loss (conv1_1 .. conv5_1).")] = _D.style_weight,
    content_weight: Annotated[float, typer.Option("--content-weight", help="Weight of the feature content loss (conv4_2).")] = _D.content_weight,
    init: Annotated[str, typer.Option("--init", help="content|noise: the image the optimisation starts from.")] = _D.init,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = "auto",
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
):
    """Neural style transfer (Gatys): repaint an image in another image's style with a VGG you supply.

    Optimises the pixels against a VGG's content features and style Gram matrices; prints one JSON object
    (losses at start and end, the loss per evaluation, the VGG found, seconds).

    Example: dltool vision stylize photo.jpg --style starry.jpg --weights vgg19-dcbb9e9d.pth --steps 300 -o out.png
    """
    apply_console_options(quiet=quiet, fmt=fmt)
    from dataclasses import asdict

    from dltool.core.console import info
    from dltool.core.output import emit_object
    from dltool.vision import stylize as task

    cfg = StylizeConfig(content=content, style=style, output=output, weights=weights, steps=steps,
                        style_weight=style_weight, content_weight=content_weight, init=init, seed=seed, device=device)
    cfg.validate()
    result = task.stylize(cfg)
    info(f"{result.arch}: loss {result.loss_start:.4g} -> {result.loss_end:.4g} in {result.evaluations} evaluations "
         f"({result.seconds:.1f}s); wrote {result.output}")
    emit_object(asdict(result), fmt)
