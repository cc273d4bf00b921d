"""--augment: named ops applied per sample, batched, on the device (float images in [0, 1]).

Geometric ops (registered with geometric=True) take and return (image, mask): a segmentation mask
(N, H, W of class ids) moves exactly as its image does, sampled nearest so ids stay ids; without a
mask they move the image alone. Colour ops take the image only: a mask never changes colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dltool.core.registry import Registry

AUGMENTS = Registry("--augment op")


def parse_ops(spec: str | None) -> tuple[str, ...]:
    if not spec:
        return ()
    ops = tuple(s.strip() for s in spec.split(",") if s.strip())
    for op in ops:
        AUGMENTS.get(op)  # an unknown name fails here, with a suggestion
    return ops


def _per_sample(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.empty(x.shape[0], 1, 1, 1, device=x.device).uniform_(low, high)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x


@AUGMENTS.register(geometric=True)
def flip(x, mask=None):
    chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    if mask is not None:
        mask = torch.where(chosen[:, 0], mask.flip(-1), mask)
    return torch.where(chosen, x.flip(-1), x), mask


@AUGMENTS.register(geometric=True)
def rot90(x, mask=None):
    """A random multiple of 90 degrees per sample, for views with no natural up (shapes, aerial and
    microscope images). The images are square, so the batch keeps its shape."""
    turns = torch.randint(0, 4, (x.shape[0],), device=x.device)
    for turn in (1, 2, 3):  # a sample with k turns takes the first k quarter turns
        chosen = turns >= turn
        x = torch.where(chosen[:, None, None, None], x.rot90(1, dims=(-2, -1)), x)
        if mask is not None:
            mask = torch.where(chosen[:, None, None], mask.rot90(1, dims=(-2, -1)), mask)
    return x, mask


@AUGMENTS.register(geometric=True)
def crop(x, mask=None):
    """Random resized crop: scale 0.8-1.0 of the side, shifted anywhere inside, resized back."""
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
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False), mask


@AUGMENTS.register()
def blur(x):
    from torchvision.transforms.v2.functional import gaussian_blur

    mask = torch.rand(x.shape[0], device=x.device) < 0.5
    if mask.any():
        sigma = float(torch.empty(1).uniform_(0.1, 1.2))
        x = x.clone()
        x[mask] = gaussian_blur(x[mask], kernel_size=[3, 3], sigma=[sigma, sigma])
    return x


@AUGMENTS.register()
def contrast(x):
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * _per_sample(x, 0.6, 1.4) + mean).clamp(0, 1)


@AUGMENTS.register()
def saturation(x):
    if x.shape[1] != 3:
        return x  # grayscale has no saturation
    g = _gray(x)
    return ((x - g) * _per_sample(x, 0.5, 1.5) + g).clamp(0, 1)


@AUGMENTS.register()
def gamma(x):
    return x.clamp_min(1e-6).pow(_per_sample(x, 0.7, 1.5))


OPS = tuple(AUGMENTS.names())


def augment(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    return augment_with_mask(x, None, ops)[0]


def augment_with_mask(x: torch.Tensor, mask: torch.Tensor | None, ops: tuple[str, ...]):
    """-> (x, mask): geometric ops move both alike, colour ops change the image only."""
    for op in ops:
        entry = AUGMENTS.get(op)
        if entry.meta.get("geometric"):
            x, mask = entry.builder(x, mask)
        else:
            x = entry.builder(x)
    return x, mask
