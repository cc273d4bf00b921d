"""How a classifier breaks: adversarial examples by the gradient with respect to the input (FGSM, PGD),
in pixel units of [0, 1] images with the model's normalisation inside the attacked function.

FGSM and PGD are a few lines each and written here: captum.robust's PGD steps by the gradient's sign under
the L2 norm too (an L-inf step, then an L2 projection) and draws its L2 random start on the CPU, and
adversarial training needs the attack on the engine's own module (dltool.vision.classify), with no wrapper
that switches the model's mode or device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dltool.core.applies import Applies
from dltool.core.errors import InputError, OptionError, unknown_name
from dltool.core.run import check_batch_size

METHODS = ("fgsm", "pgd")
NORMS = ("linf", "l2")
#: the options only PGD takes
METHOD_OPTIONS = Applies("method", {"fgsm": (), "pgd": ("steps", "alpha")})


def check_eps(flag: str, eps: float) -> None:
    if not (math.isfinite(eps) and eps >= 0):
        raise OptionError(f"{flag} {eps:g} must be a number >= 0 (pixel units of [0, 1] images)", "e.g. 0.03")


def perturb(net: Callable, x: torch.Tensor, y: torch.Tensor, *, eps: float, method: str = "pgd",
            norm: str = "linf", steps: int = 10, alpha: float | None = None, random_start: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Images within `eps` of `x` (the `norm` ball, clipped to [0, 1]) that raise the cross-entropy of `net`
    on labels `y`. FGSM is one step of size eps from x; PGD (Madry et al. 2018) starts at a random point
    of the ball and takes `steps` steps of `alpha` (default 2.5 eps / steps), projecting after each.
    Under L2 a step follows the gradient scaled to unit norm per image."""
    x = x.detach()
    if eps == 0:
        return x
    if method == "fgsm":
        steps, alpha, random_start = 1, eps, False
    alpha = alpha if alpha is not None else 2.5 * eps / steps
    n = len(x)
    delta = torch.zeros_like(x)
    if random_start:
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
        else:
            d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            r = torch.rand(n, generator=generator, device=x.device, dtype=x.dtype) ** (1 / x[0].numel())
            delta = d / _norms(d) * (eps * r).view(-1, *[1] * (x.dim() - 1))
        delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(net(x + delta).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            if norm == "linf":
                delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
            else:
                delta = delta + alpha * grad / _norms(grad)
                delta = delta * (eps / _norms(delta)).clamp(max=1)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Each item's L2 norm, shaped to broadcast over it (never 0)."""
    return t.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, *[1] * (t.dim() - 1))


@dataclass(frozen=True)
class AttackConfig:
    model: Path
    data: Path
    method: str = "pgd"
    eps: tuple[float, ...] = (0.1,)
    steps: int = 10
    alpha: float | None = None
    norm: str = "linf"
    plot: Path | None = None
    save: Path | None = None
    batch_size: int = 256
    seed: int = 0
    device: str = "auto"
    skip_bad: bool = False
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise unknown_name("method", self.method, METHODS)
        if self.norm not in NORMS:
            raise unknown_name("norm", self.norm, NORMS)
        METHOD_OPTIONS.check(self)
        if not self.eps:
            raise OptionError("--eps needs at least one value", "e.g. --eps 0.05,0.1")
        for e in self.eps:
            check_eps("--eps", e)
        if self.steps < 1:
            raise OptionError(f"--steps {self.steps} must be at least 1")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise OptionError(f"--alpha {self.alpha:g} must be positive", "omit it for 2.5 x eps / steps")
        check_batch_size(self.batch_size)


def parse_eps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise OptionError(f"--eps '{text}' is not a comma-separated list of numbers", "e.g. --eps 0.05,0.1") from None


def attack(cfg: AttackConfig, *, load: Callable, scan: Callable, decode: Callable) -> dict:
    """Clean accuracy and the accuracy under attack at each eps of labelled data (class folders);
    cfg.plot draws the curve, cfg.save writes the adversarial images. `load`, `scan` and `decode` are the
    classifier's (as dltool.core.classification.predict takes them)."""
    from dltool.vision.explain import pixel_model

    cfg.validate()
    lm = load(cfg.model, cfg.device)
    if not hasattr(lm.task, "mean"):
        raise OptionError("attack works on image classifiers (it perturbs their pixels)")
    items = scan(cfg)
    data = decode(lm, items, cfg)
    if not len(data):
        raise InputError(f"no readable images in '{cfg.data}'")
    missing = [ids["path"] for ids, lab in zip(data.ids, data.labels) if lab in (None, "")]
    if missing:
        raise InputError(f"'{cfg.data}' has no labels (e.g. '{missing[0]}')",
                         "attack reads labelled data: class folders (root/<class>/...) or a CSV path,label")
    unknown = sorted({str(c) for c in data.labels} - set(lm.classes))
    if unknown:
        raise InputError(f"'{cfg.data}' has labels the model was not trained on: {', '.join(unknown[:5])}")
    net = pixel_model(lm)
    y_all = torch.tensor([lm.classes.index(str(c)) for c in data.labels], device=lm.device)
    x_all = torch.from_numpy(np.asarray(data.inputs))
    gen = torch.Generator(device=lm.device).manual_seed(cfg.seed)
    correct = {e: 0 for e in cfg.eps}
    clean = 0
    saved = []
    for start in range(0, len(data), cfg.batch_size):
        x = x_all[start:start + cfg.batch_size].to(lm.device).float().div(255)
        y = y_all[start:start + cfg.batch_size]
        with torch.no_grad():
            clean += int((net(x).argmax(1) == y).sum())
        for e in cfg.eps:
            adv = perturb(net, x, y, eps=e, method=cfg.method, norm=cfg.norm, steps=cfg.steps, alpha=cfg.alpha,
                          generator=gen)
            with torch.no_grad():
                correct[e] += int((net(adv).argmax(1) == y).sum())
            if cfg.save is not None:
                folder = cfg.save if len(cfg.eps) == 1 else cfg.save / f"eps{e:g}"
                saved += _save_images(folder, adv, items, data.ids[start:start + cfg.batch_size])
    n = len(data)
    result = {"method": cfg.method, "norm": cfg.norm, "n": n, "clean_accuracy": round(clean / n, 6),
              "eps": list(cfg.eps), "adversarial_accuracy": [round(correct[e] / n, 6) for e in cfg.eps]}
    if cfg.method == "pgd":
        result.update(steps=cfg.steps,
                      alpha=[cfg.alpha if cfg.alpha is not None else round(2.5 * e / cfg.steps, 6) for e in cfg.eps])
    if cfg.plot is not None:
        _plot(result, cfg.plot)
        result["plot"] = str(cfg.plot)
    if cfg.save is not None:
        result["saved"] = len(saved)
    return result


def _save_images(folder: Path, adv: torch.Tensor, items: list, ids: list[dict]) -> list[Path]:
    """The adversarial images as PNG at the model's input size, under their names below the input."""
    from PIL import Image

    from dltool.core.io import atomic_path

    rel = {str(it.path): it.rel for it in items}
    pixels = adv.mul(255).round().clamp(0, 255).byte().cpu().numpy()
    written = []
    for img, row in zip(pixels, ids):
        path = folder / rel[row["path"]].with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
        written.append(path)
    return written


def _plot(result: dict, path: Path) -> None:
    from dltool.core.plots import figure, save_figure

    fig, ax = figure(figsize=(5, 3.5))
    eps = [0.0, *result["eps"]]
    acc = [result["clean_accuracy"], *result["adversarial_accuracy"]]
    order = np.argsort(eps, kind="stable")
    ax.plot(np.array(eps)[order], np.array(acc)[order], marker="o")
    ax.set_xlabel(f"eps ({result['norm']}, pixels in [0, 1])")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{result['method']} attack, {result['n']} images")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
