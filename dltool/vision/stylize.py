"""`dltool vision stylize`: neural style transfer (Gatys, Ecker and Bethge 2016).

The output image is optimised, pixels themselves, so that a VGG network sees the content image's features
at one deep layer (content loss: mean squared difference at conv4_2) and the style image's feature
correlations at several layers (style loss: mean squared difference of Gram matrices F F^T / (C H W) at
conv1_1 .. conv5_1), weighted by --content-weight and --style-weight. The optimiser is L-BFGS, as in the
paper and PyTorch's tutorial, with the image clamped to [0, 1] at every evaluation; each evaluation's loss
goes into the curve.

The VGG's weights come from the user (`--weights`): torchvision's vgg16 / vgg19 (or their _bn variants)
state_dict, the files torchvision itself downloads; only the `features.*` tensors are used, so a file of
just those works too. Nothing is downloaded. A state_dict of any other architecture is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name

INITS = ("content", "noise")
CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
#: the VGG configurations of torchvision.models.vgg (cfgs "D" and "E"), with and without batch norm
ARCHS = {"vgg16": ("D", False), "vgg19": ("E", False), "vgg16_bn": ("D", True), "vgg19_bn": ("E", True)}
WEIGHTS_HINT = ("dltool downloads nothing: get torchvision's ImageNet VGG weights on a machine with internet "
                "(torchvision.models.VGG19_Weights.IMAGENET1K_V1 = https://download.pytorch.org/models/"
                "vgg19-dcbb9e9d.pth, or VGG16's vgg16-397923af.pth) and pass --weights FILE")
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics the VGG weights were trained with
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class StylizeConfig:
    content: Path
    style: Path
    output: Path
    weights: Path | None = None
    steps: int = 300
    style_weight: float = 1e6
    content_weight: float = 1.0
    init: str = "content"
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if self.weights is None:
            raise OptionError("vision stylize needs a VGG's weights (--weights)", WEIGHTS_HINT)
        if self.init not in INITS:
            raise unknown_name("--init", self.init, INITS)
        if self.steps < 1:
            raise OptionError(f"--steps {self.steps} must be at least 1", "use e.g. --steps 300")
        for flag, v in (("--style-weight", self.style_weight), ("--content-weight", self.content_weight)):
            if not v >= 0 or v == float("inf"):
                raise OptionError(f"{flag} {v} must be zero or a positive number", f"use e.g. {flag} 1")
        if self.style_weight == 0 and self.content_weight == 0:
            raise OptionError("--style-weight and --content-weight are both 0: there is nothing to optimise",
                              "give at least one of them a positive weight")
        if self.output.suffix.lower() != ".png":
            raise OptionError(f"-o {self.output}: the stylized image is written as PNG", "name it e.g. out.png")


def expected_shapes(arch: str) -> dict:
    """{features.* key: shape} of torchvision's `arch` features, computed from its configuration."""
    from torchvision.models.vgg import cfgs

    cfg, bn = ARCHS[arch]
    shapes, index, channels = {}, 0, 3
    for v in cfgs[cfg]:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (v, channels, 3, 3)
        shapes[f"features.{index}.bias"] = (v,)
        if bn:
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"features.{index + 1}.{name}"] = (v,)
            shapes[f"features.{index + 1}.num_batches_tracked"] = ()
        index += 3 if bn else 2
        channels = v
    return shapes


def vgg_arch(state: dict, path) -> str:
    """Which of torchvision's VGGs `state` is, or a ModelFileError naming what it holds instead."""
    features = {k: tuple(v.shape) for k, v in state.items() if k.startswith("features.")}
    for arch in ARCHS:
        want = expected_shapes(arch)
        if {k: v for k, v in features.items() if k in want} == want and set(features) == set(want):
            return arch
    keys = ", ".join(list(state)[:3])
    raise ModelFileError(f"--weights {path} is not a VGG16 or VGG19 state_dict in torchvision's format "
                         f"(its tensors start {keys}{', ...' if len(state) > 3 else ''})",
                         "pass torchvision's vgg19 or vgg16 weights (" + WEIGHTS_HINT.split("(", 1)[1])


def load_vgg(path, device):
    """(arch, torchvision VGG features truncated after conv5_1's ReLU, {layer name: index}) in eval mode."""
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    from dltool.core.modelfile import FORMAT, load_checkpoint

    state = load_checkpoint(path)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        raise ModelFileError(f"--weights {path} is a dltool model file ({state.get('arch')}), not a VGG state_dict",
                             WEIGHTS_HINT)
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ModelFileError(f"--weights {path} is not a state_dict of tensors", WEIGHTS_HINT)
    arch = vgg_arch(state, path)
    cfg, bn = ARCHS[arch]
    features = make_layers(cfgs[cfg], batch_norm=bn)
    features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    names, block, conv = {}, 1, 0
    for i, layer in enumerate(features):
        if isinstance(layer, torch.nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(layer, torch.nn.ReLU):
            conv += 1
            names[f"conv{block}_{conv}"] = i  # the layer's output after its ReLU
    last = max(names[n] for n in (CONTENT_LAYER, *STYLE_LAYERS))
    features = features[:last + 1].to(device).eval().requires_grad_(False)
    for layer in features:
        if isinstance(layer, torch.nn.ReLU):
            layer.inplace = False  # the activations we keep must not be overwritten
    return arch, features, names


def read_image(path: Path, what: str, size=None):
    """(1, 3, H, W) float tensor in [0, 1]; `size` (W, H) resizes it."""
    import numpy as np
    import torch

    from dltool.core.images import open_image
    from dltool.core.io import input_path

    p = input_path(path, f"{what} image")
    im = open_image(p)
    if isinstance(im, Exception):
        raise InputError(f"cannot read the {what} image '{path}' ({type(im).__name__}: {str(im)[:120]})",
                         "give a PNG or JPEG file")
    im = im.convert("RGB")
    if size is not None and im.size != tuple(size):
        from PIL import Image

        im = im.resize(tuple(size), Image.BICUBIC)
    return torch.as_tensor(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def gram(f):
    """Feature correlations F F^T / (C H W) of a (1, C, H, W) map."""
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return f @ f.T / (c * h * w)


@dataclass
class StylizeResult:
    output: str
    arch: str
    size: list[int]
    evaluations: int
    loss_start: float
    loss_end: float
    content_loss: float
    style_loss: float
    loss_curve: list[float]
    seconds: float


def stylize(cfg: StylizeConfig) -> StylizeResult:
    """Optimise an image of the content's size; write it to cfg.output (PNG, atomically)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from dltool.core.device import resolve_device
    from dltool.core.io import atomic_path
    from dltool.core.threads import single_thread_below

    cfg.validate()
    device = resolve_device(cfg.device)
    content = read_image(cfg.content, "content")
    size = (content.shape[3], content.shape[2])
    style = read_image(cfg.style, "style", size=size)  # Gram matrices compared at one scale
    if min(size) < 16:
        raise InputError(f"the content image '{cfg.content}' is {size[0]}x{size[1]} pixels; VGG's four poolings "
                         "need at least 16 on each side", "give a larger image")
    arch, net, names = load_vgg(cfg.weights, device)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    wanted = {names[n]: n for n in (CONTENT_LAYER, *STYLE_LAYERS)}

    def activations(x):
        out, h = {}, (x - mean) / std
        for i, layer in enumerate(net):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return out

    content, style = content.to(device), style.to(device)
    with torch.no_grad():
        target = activations(content)[CONTENT_LAYER]
        style_grams = {n: gram(f) for n, f in activations(style).items() if n in STYLE_LAYERS}
    gen = torch.Generator().manual_seed(cfg.seed)
    start = content.clone() if cfg.init == "content" else torch.rand(content.shape, generator=gen).to(device)
    image = start.contiguous().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=cfg.steps, max_eval=cfg.steps, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=50)
    curve, parts = [], {}

    def closure():
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        feats = activations(image)
        c_loss = F.mse_loss(feats[CONTENT_LAYER], target)
        s_loss = sum(F.mse_loss(gram(feats[n]), style_grams[n]) for n in STYLE_LAYERS)
        loss = cfg.content_weight * c_loss + cfg.style_weight * s_loss
        loss.backward()
        curve.append(float(loss.detach()))
        parts.update(content=float(c_loss.detach()), style=float(s_loss.detach()))
        return loss

    t = time.perf_counter()
    # VGG costs ~3e5 multiply-adds per pixel up to conv5_1: a small image runs faster on one CPU thread
    with single_thread_below(device, 300_000 * size[0] * size[1]):
        optimizer.step(closure)
    with torch.no_grad():
        image.clamp_(0, 1)
    seconds = time.perf_counter() - t
    array = (image.detach()[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cfg.output) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return StylizeResult(output=str(cfg.output), arch=arch, size=[size[0], size[1]], evaluations=len(curve),
                         loss_start=curve[0], loss_end=curve[-1], content_loss=parts["content"],
                         style_loss=parts["style"], loss_curve=[float(f"{v:.6g}") for v in curve],
                         seconds=round(seconds, 3))
