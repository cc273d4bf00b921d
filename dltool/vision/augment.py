"""--augment: one registry of named ops for classify, segment and detect, applied per sample, batched, on
the device (float images in [0, 1]).

An op changes the images and carries their labels along: a class needs nothing; a segmentation mask
(N, H, W of class ids) moves exactly as its image does, sampled nearest so ids stay ids; detection boxes
(N, M, 5 rows of [cls, x1, y1, x2, y2] in pixels, cls -1 for padding) move with the pixels, and a box that
leaves the image (or keeps under a fifth of its area inside) becomes padding. Colour ops change the image
alone, so they keep every label. Each op declares the labels it keeps right (`keeps`), and parse_ops
refuses it for a task with other labels: crop's mirrored border shows objects that have no box, scale's
grey border has no class in a mask, and a mosaic of four images has no single class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dltool.core.errors import OptionError
from dltool.core.registry import Registry

AUGMENTS = Registry("--augment op")
LABELS = {"class": "a class per image (classify)", "mask": "segmentation masks", "boxes": "detection boxes",
          "instances": "instance masks (detect --model maskrcnn)"}
PAD_VALUE = 114  # the letterbox grey (Ultralytics' value); scale and mosaic fill what they uncover with it


def ops_for(labels: str) -> tuple[str, ...]:
    """The ops that keep `labels` ('class', 'mask' or 'boxes') right."""
    return tuple(n for n in AUGMENTS.names() if labels in AUGMENTS.get(n).meta["keeps"])


def _entry(op: str, labels: str):
    entry = AUGMENTS.get(op)  # an unknown name fails here, with a suggestion
    if labels not in entry.meta["keeps"]:
        raise OptionError(f"--augment {op} cannot keep {LABELS[labels]} right",
                          f"drop it; the ops that can: {', '.join(ops_for(labels))}")
    return entry


def parse_ops(spec: str | None, labels: str = "class") -> tuple[str, ...]:
    """'flip,rot90' -> ('flip', 'rot90'), each op known and able to carry `labels` along."""
    ops = tuple(s.strip() for s in (spec or "").split(",") if s.strip())
    for op in ops:
        _entry(op, labels)
    return ops


def apply(x: torch.Tensor, ops: tuple[str, ...], *, mask: torch.Tensor | None = None,
          boxes: torch.Tensor | None = None):
    """-> (x, mask, boxes): geometric ops move the image and whichever labels are given, alike; colour ops
    change the image only. With boxes, `mask` is their instance masks (N, M, H, W), slot for slot."""
    labels = ("instances" if mask is not None else "boxes") if boxes is not None else \
        "mask" if mask is not None else "class"
    for op in ops:
        entry = _entry(op, labels)
        if entry.meta["geometric"]:
            x, mask, boxes = entry.builder(x, mask, boxes)
        else:
            x = entry.builder(x)
    return x, mask, boxes


def augment(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    return apply(x, ops)[0]


def augment_with_mask(x: torch.Tensor, mask: torch.Tensor | None, ops: tuple[str, ...]):
    """-> (x, mask)"""
    x, mask, _ = apply(x, ops, mask=mask)
    return x, mask


def _geometric(*keeps: str):
    """Registers an op (x, mask, boxes) -> (x, mask, boxes) that moves pixels and the labels it keeps."""
    return AUGMENTS.register(geometric=True, keeps=("class", *keeps))


def _colour(fn):
    """Registers an op x -> x that changes colours only, which keeps every label."""
    return AUGMENTS.register(geometric=False, keeps=tuple(LABELS))(fn)


def _each(chosen: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A per-sample choice (N,) shaped to select among masks (N, H, W) or instance masks (N, M, H, W)."""
    return chosen.view(-1, *[1] * (mask.dim() - 1))


def _per_sample(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.empty(x.shape[0], 1, 1, 1, device=x.device).uniform_(low, high)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x


def _keep_inside(boxes, before_area, size: float):
    """Clips boxes to the image; those with little left inside become padding."""
    boxes = boxes.clone()
    boxes[..., 1:] = boxes[..., 1:].clamp(0, size)
    area = (boxes[..., 3] - boxes[..., 1]).clamp_min(0) * (boxes[..., 4] - boxes[..., 2]).clamp_min(0)
    gone = (area < 0.2 * before_area) | (boxes[..., 3] - boxes[..., 1] < 2) | (boxes[..., 4] - boxes[..., 2] < 2)
    boxes[..., 0] = torch.where(gone, torch.full_like(boxes[..., 0], -1), boxes[..., 0])
    return boxes


# -- geometric ops ---------------------------------------------------------------------------------

@_geometric("mask", "boxes", "instances")
def flip(x, mask=None, boxes=None):
    chosen = torch.rand(x.shape[0], device=x.device) < 0.5
    if mask is not None:
        mask = torch.where(_each(chosen, mask), mask.flip(-1), mask)
    if boxes is not None:
        size = x.shape[-1]
        flipped = boxes.clone()
        flipped[..., 1], flipped[..., 3] = size - boxes[..., 3], size - boxes[..., 1]
        boxes = torch.where(chosen[:, None, None], flipped, boxes)
    return torch.where(chosen[:, None, None, None], x.flip(-1), x), mask, boxes


@_geometric("mask", "boxes", "instances")
def rot90(x, mask=None, boxes=None):
    """A random multiple of 90 degrees per sample, for views with no natural up (shapes, aerial and
    microscope images). The images are square (letterboxed for detection), so the batch keeps its shape.
    One quarter turn (torch.rot90 over H, W) takes pixel (x, y) to (y, S - x), so a box [x1, y1, x2, y2]
    to [y1, S - x2, y2, S - x1]; a sample with k turns takes the first k such steps."""
    size = x.shape[-1]
    turns = torch.randint(0, 4, (x.shape[0],), device=x.device)
    for turn in (1, 2, 3):
        chosen = turns >= turn
        x = torch.where(chosen[:, None, None, None], x.rot90(1, dims=(-2, -1)), x)
        if mask is not None:
            mask = torch.where(_each(chosen, mask), mask.rot90(1, dims=(-2, -1)), mask)
        if boxes is not None:
            turned = torch.stack([boxes[..., 0], boxes[..., 2], size - boxes[..., 3], boxes[..., 4],
                                  size - boxes[..., 1]], -1)
            boxes = torch.where(chosen[:, None, None], turned, boxes)
    return x, mask, boxes


@_geometric("mask")
def crop(x, mask=None, boxes=None):
    """Random resized crop: scale 0.8-1.0 of the side, shifted anywhere inside, resized back; the border
    it uncovers is mirrored (no boxes: the mirror would show objects without one)."""
    n = x.shape[0]
    scale = torch.empty(n, device=x.device).uniform_(0.8, 1.0)
    shift = (1 - scale)[:, None] * torch.empty(n, 2, device=x.device).uniform_(-1, 1)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if mask is not None:
        moved = F.grid_sample(mask[:, None].float(), grid, mode="nearest", padding_mode="reflection",
                              align_corners=False)
        mask = moved[:, 0].to(mask.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False), mask, boxes


@_geometric("boxes", "instances")
def scale(x, mask=None, boxes=None):
    """Random zoom 0.6-1.4x about a random point (a scale/crop), grey outside (no segmentation masks: the
    grey has no class; an instance mask is empty there)."""
    n, size = x.shape[0], x.shape[-1]
    s = torch.empty(n, device=x.device).uniform_(0.6, 1.4)
    shift = torch.empty(n, 2, device=x.device).uniform_(-1, 1) * (1 - s).abs()[:, None]  # normalised, -1..1
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / s  # output (normalised) u maps to input (u - shift) / s
    theta[:, :, 2] = -shift / s[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x - PAD_VALUE / 255, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out + PAD_VALUE / 255
    if mask is not None:
        mask = F.grid_sample(mask.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(mask.dtype)
    if boxes is not None:
        before = (boxes[..., 3] - boxes[..., 1]) * (boxes[..., 4] - boxes[..., 2]) * (s ** 2)[:, None]
        moved = boxes.clone()
        half = size / 2
        for k, axis in ((1, 0), (2, 1), (3, 0), (4, 1)):  # pixel p -> ((p / half - 1) * s + shift + 1) * half
            moved[..., k] = ((boxes[..., k] / half - 1) * s[:, None] + shift[:, axis, None] + 1) * half
        boxes = _keep_inside(moved, before, size)
    return out, mask, boxes


@AUGMENTS.register(geometric=True, keeps=("boxes",))
def mosaic(x, mask=None, boxes=None):
    """Half the images become a 2x2 mosaic of four images of the batch at half size (YOLOv4's mosaic),
    their boxes halved and moved to their quarter (detection only: a mosaic has no single class)."""
    n, size = x.shape[0], x.shape[-1]
    if n < 2:
        return x, mask, boxes
    half = size // 2
    small = F.interpolate(x, size=(half, half), mode="bilinear", align_corners=False, antialias=True)
    picks = torch.stack([torch.arange(n, device=x.device)] + [torch.randint(0, n, (n,), device=x.device)
                                                                for _ in range(3)], 1)  # (n, 4)
    out = torch.full_like(x, PAD_VALUE / 255)
    m = boxes.shape[1]
    tiles = torch.full((n, 4 * m, 5), -1.0, device=boxes.device, dtype=boxes.dtype)
    for q, (oy, ox) in enumerate(((0, 0), (0, half), (half, 0), (half, half))):
        out[:, :, oy:oy + half, ox:ox + half] = small[picks[:, q]]
        part = boxes[picks[:, q]].clone()
        part[..., 1:] = part[..., 1:] * (half / size) + torch.tensor([ox, oy, ox, oy], device=boxes.device,
                                                                     dtype=boxes.dtype)
        part[..., 0] = torch.where(boxes[picks[:, q]][..., 0] < 0, -1.0, part[..., 0])
        tiles[:, q * m:(q + 1) * m] = part
    chosen = torch.rand(n, device=x.device) < 0.5
    plain = torch.cat([boxes, torch.full((n, 3 * m, 5), -1.0, device=boxes.device, dtype=boxes.dtype)], 1)
    tiles = _keep_inside(tiles, (tiles[..., 3] - tiles[..., 1]) * (tiles[..., 4] - tiles[..., 2]), size)
    return torch.where(chosen[:, None, None, None], out, x), mask, torch.where(chosen[:, None, None], tiles, plain)


# -- colour ops ------------------------------------------------------------------------------------

@_colour
def blur(x):
    from torchvision.transforms.v2.functional import gaussian_blur

    chosen = torch.rand(x.shape[0], device=x.device) < 0.5
    if chosen.any():
        sigma = float(torch.empty(1).uniform_(0.1, 1.2))
        x = x.clone()
        x[chosen] = gaussian_blur(x[chosen], kernel_size=[3, 3], sigma=[sigma, sigma])
    return x


@_colour
def contrast(x):
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * _per_sample(x, 0.6, 1.4) + mean).clamp(0, 1)


@_colour
def saturation(x):
    if x.shape[1] != 3:
        return x  # grayscale has no saturation
    g = _gray(x)
    return ((x - g) * _per_sample(x, 0.5, 1.5) + g).clamp(0, 1)


@_colour
def gamma(x):
    return x.clamp_min(1e-6).pow(_per_sample(x, 0.7, 1.5))


@_colour
def colour(x):
    """contrast, saturation and gamma in turn (detect's default colour jitter)."""
    return gamma(saturation(contrast(x)))


OPS = tuple(AUGMENTS.names())
