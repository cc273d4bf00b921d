"""Why a classifier decided: attribution maps over its input pixels (Captum), PNG overlays, and how
faithful a map is (deletion / insertion curves against a random order; the pointing game on masks).

Every method attributes the model's class score to the pixels of the [0, 1] image, the model's
normalisation inside the attributed function (dltool.core.export.Normalized), so maps of models trained
on different data compare. Grad-CAM++ is the one method Captum lacks: its weights are computed here
from the layer's activations and gradients (Chattopadhyay et al. 2018, eq. 19).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dltool.core.applies import Applies
from dltool.core.errors import InputError, OptionError, suggest, unknown_name
from dltool.core.run import check_batch_size

METHODS = ("gradcam", "gradcam++", "saliency", "integrated-gradients", "occlusion")
LAYER_METHODS = ("gradcam", "gradcam++")
#: the options only some methods take
METHOD_OPTIONS = Applies("method", {"gradcam": ("layer",), "gradcam++": ("layer",), "saliency": (),
                                    "integrated-gradients": ("ig_steps",), "occlusion": ()})
CURVE_STEPS = 20  # points of the deletion / insertion curves after the start
#: the default Grad-CAM layer's map has sides of at least this (a ResNet's last stage at 224 px is 7x7): a
#: coarser map cannot point, its bilinear upsampling is flat over the border cells, so the maximum lands there
MIN_CAM_SIDE = 7


@dataclass(frozen=True)
class ExplainConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    method: str = "gradcam"
    target: str = "predicted"   # predicted | true | a class name
    layer: str | None = None    # gradcam(++) only; default: the last convolutional stage
    out: Path | None = None     # overlays and .npy maps
    check: bool = False         # deletion / insertion AUC instead of records
    masks: Path | None = None   # with check: masks mirroring the inputs' tree, for the pointing game
    ig_steps: int = 32
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    skip_bad: bool = False
    given: frozenset[str] | None = None  # the options the user set (None: those off their defaults)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise unknown_name("method", self.method, METHODS)
        METHOD_OPTIONS.check(self)
        if self.out is None and not self.check:
            raise OptionError("explain needs --out DIR for the maps (or --check for the faithfulness figures)")
        if self.masks is not None and not self.check:
            raise OptionError("--masks is read by --check (the pointing game)", "add --check")
        if self.ig_steps < 2:
            raise OptionError(f"--ig-steps {self.ig_steps} must be at least 2")
        check_batch_size(self.batch_size)


# -- the network in pixel space, and its layers ------------------------------------------------------

def pixel_model(lm):
    """The loaded classifier as a function of [0, 1] images: its normalisation inside, eval mode."""
    from dltool.core.export import Normalized

    return Normalized(lm.model, lm.task.mean, lm.task.std).to(lm.device).eval()


def spatial_layers(model, example: torch.Tensor) -> list[tuple[str, tuple]]:
    """(name, output shape) of every named submodule whose output is a feature map (N, C, H, W), in the
    order their forward passes end (a stage after its last layer)."""
    found, handles = [], []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(mod, inp, out, name=name):
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                found.append((name, tuple(out.shape[1:])))
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(found))


def find_layer(model, example: torch.Tensor, name: str | None):
    """(name, module) to attribute at: `name`, or the last feature map with sides of at least MIN_CAM_SIDE
    (the input's own when smaller), else the last larger than 1x1."""
    layers = spatial_layers(model, example)
    names = [n for n, _ in layers]
    if name is None:
        least = min(MIN_CAM_SIDE, *example.shape[-2:])
        big = [n for n, shape in layers if min(shape[1], shape[2]) >= least] or [
            n for n, shape in layers if shape[1] * shape[2] > 1]
        if not big:
            raise OptionError("this model has no feature map larger than 1x1 to explain with Grad-CAM",
                              "use --method integrated-gradients, saliency or occlusion")
        name = big[-1]
    elif name not in names:
        hint = suggest(name, names) or f"layers with feature maps: {', '.join(names[-8:])}"
        raise OptionError(f"--layer '{name}' is not a layer of this model with a feature map", hint)
    return name, model.get_submodule(name)


# -- attribution ----------------------------------------------------------------------------------

def _gradcam_pp(net, layer, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ maps (N, 1, h, w) at `layer`: weights sum alpha * relu(grad) over positions, where
    alpha = g^2 / (2 g^2 + sum(A) g^3) (the exponential-score closed form)."""
    acts = {}
    handle = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    try:
        scores = net(x).gather(1, target[:, None]).sum()
    finally:
        handle.remove()
    a = acts["a"]
    g = torch.autograd.grad(scores, a)[0]
    g2, g3 = g.pow(2), g.pow(3)
    denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    return (weights * a).sum(1, keepdim=True).clamp(min=0).detach()


def attribute(method: str, net, x: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor, *,
              layer=None, ig_steps: int = 32) -> torch.Tensor:
    """Maps (N, H, W) at the input's resolution of the class scores `target` of `net` on [0, 1] images
    `x`; `baseline` (1, C, 1, 1) is what a removed pixel becomes (integrated gradients, occlusion)."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency

    x = x.detach().clone().requires_grad_(True)
    size = x.shape[-2:]
    if method == "gradcam":
        a = LayerGradCam(net, layer).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(a.detach(), size, "bilinear")[:, 0]
    if method == "gradcam++":
        return LayerAttribution.interpolate(_gradcam_pp(net, layer, x, target), size, "bilinear")[:, 0]
    if method == "saliency":
        return Saliency(net).attribute(x, target=target, abs=True).amax(1)
    base = baseline.expand_as(x).contiguous()
    if method == "integrated-gradients":
        a = IntegratedGradients(net).attribute(x, baselines=base, target=target, n_steps=ig_steps,
                                               internal_batch_size=max(len(x), 64))
        return a.detach().sum(1)
    window = max(2, min(size) // 8)
    c = x.shape[1]
    a = Occlusion(net).attribute(x, sliding_window_shapes=(c, window, window), baselines=base, target=target,
                                 strides=(c, max(1, window // 2), max(1, window // 2)))
    return a.detach().mean(1)


# -- faithfulness -----------------------------------------------------------------------------------

def curves(net, x: torch.Tensor, maps: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
           steps: int = CURVE_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (N, steps + 1): the target's probability as the pixels are removed
    from (replaced by the baseline), or added to, the image in the order of the map, highest first."""
    n, c, h, w = x.shape
    order = maps.reshape(n, -1).argsort(1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=x.device).expand(n, -1))
    counts = torch.round(torch.linspace(0, h * w, steps + 1, device=x.device)).long()
    shown = (rank[:, None, :] < counts[None, :, None]).reshape(n, steps + 1, 1, h, w).float()  # 1: in order
    base = baseline.reshape(1, 1, c, 1, 1)
    img = x[:, None]
    out = []
    for keep in (1 - shown, shown):  # deletion keeps what is not yet removed; insertion what is added
        batch = (img * keep + base * (1 - keep)).reshape(-1, c, h, w)
        with torch.no_grad():
            probs = torch.cat([net(part).softmax(1) for part in batch.split(512)])
        out.append(probs.gather(1, target.repeat_interleave(steps + 1)[:, None]).reshape(n, steps + 1))
    return out[0], out[1]


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Area under curves sampled at equal steps over [0, 1], one per row (the trapezoid rule)."""
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)


# -- overlays -----------------------------------------------------------------------------------------

def overlay(image: np.ndarray, heat: np.ndarray, text: str):
    """A PIL image: the map's positive part in the jet colour map over the image (C, H, W uint8), shown at
    least 128 px wide, and `text` in the top-left corner."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image
    base = Image.fromarray(rgb.transpose(1, 2, 0))
    scale = max(1, -(-128 // max(base.size)))
    size = (base.width * scale, base.height * scale)
    base = base.resize(size, Image.Resampling.NEAREST)
    pos = np.clip(heat, 0, None)
    pos = pos / pos.max() if pos.max() > 0 else pos
    coloured = (colormaps["jet"](pos)[..., :3] * 255).astype(np.uint8)
    heat_img = Image.fromarray(coloured).resize(size, Image.Resampling.BILINEAR)
    shown = Image.blend(base.convert("RGB"), heat_img, 0.45)
    draw = ImageDraw.Draw(shown)
    box = draw.textbbox((2, 2), text)
    draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=(0, 0, 0))
    draw.text((2, 2), text, fill=(255, 255, 255))
    return shown


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add .npy to the temporary name
        np.save(f, array.astype(np.float32), allow_pickle=False)


def _save(path: Path, write: Callable[[Path], None]) -> None:
    from dltool.core.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(tmp)


def _targets(cfg: ExplainConfig, lm, labels: list, predicted: torch.Tensor) -> torch.Tensor:
    if cfg.target == "predicted":
        return predicted
    if cfg.target == "true":
        missing = sum(1 for lab in labels if lab in (None, ""))
        if missing:
            raise InputError(f"--target true: {missing} input(s) have no label",
                             "pass class folders (root/<class>/...), or use --target predicted")
        unknown = sorted({str(lab) for lab in labels} - set(lm.classes))
        if unknown:
            raise InputError(f"--target true: labels the model was not trained on: {', '.join(unknown[:5])}")
        return torch.tensor([lm.classes.index(str(lab)) for lab in labels], device=lm.device)
    if cfg.target not in lm.classes:
        raise OptionError(f"--target '{cfg.target}' is not one of the model's classes",
                          suggest(cfg.target, lm.classes) or f"use predicted, true or one of: {', '.join(lm.classes[:20])}")
    return torch.full_like(predicted, lm.classes.index(cfg.target))


def _read_mask(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((size, size), Image.Resampling.NEAREST)) > 0


def explain(cfg: ExplainConfig, *, load: Callable, scan: Callable, decode: Callable):
    """Records `{path, label, score, target, target_score, map, overlay}` in input order, or with
    cfg.check one object of faithfulness figures. `load(model, device)`, `scan(cfg)` and
    `decode(lm, items, cfg)` are the classifier's (dltool.core.classification.predict's)."""
    cfg.validate()
    lm = load(cfg.model, cfg.device)
    if not hasattr(lm.task, "mean"):
        raise OptionError("explain works on image classifiers (their pixels are what it attributes to)")
    items = scan(cfg)
    data = decode(lm, items, cfg)
    if not len(data):
        raise InputError("no readable images to explain")
    net = pixel_model(lm)
    x_all = torch.from_numpy(np.asarray(data.inputs)).float().div(255)
    layer = layer_name = None
    if cfg.method in LAYER_METHODS:
        layer_name, layer = find_layer(lm.model, lm.task.prepare(torch.from_numpy(data.inputs[:1]).to(lm.device)),
                                       cfg.layer)
    baseline = lm.task.mean.reshape(1, -1, 1, 1)  # the mean pixel: zero once normalised
    with torch.no_grad():
        probs = torch.cat([net(part.to(lm.device)).softmax(1) for part in x_all.split(cfg.batch_size)])
    predicted = probs.argmax(1)
    targets = _targets(cfg, lm, data.labels, predicted.to(lm.device))
    masks = None
    if cfg.masks is not None:
        masks = _masks(cfg.masks, items, data, x_all.shape[-1])
    gen = torch.Generator(device=lm.device).manual_seed(cfg.seed)
    records, sums = [], {"deletion": [], "insertion": [], "deletion_random": [], "insertion_random": []}
    hits = []
    for start in range(0, len(data), cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        x, t = x_all[sl].to(lm.device), targets[sl]
        maps = attribute(cfg.method, net, x, t, baseline, layer=layer, ig_steps=cfg.ig_steps)
        if cfg.check:
            d, i = curves(net, x, maps, t, baseline)
            dr, ir = curves(net, x, torch.rand(maps.shape, generator=gen, device=lm.device), t, baseline)
            for key, c in (("deletion", d), ("insertion", i), ("deletion_random", dr), ("insertion_random", ir)):
                sums[key].append(auc(c).cpu())
            if masks is not None:
                flat = maps.reshape(len(maps), -1).argmax(1).cpu().numpy()
                hits += [bool(m.reshape(-1)[j]) for m, j in zip(masks[sl], flat)]
        if cfg.out is not None:
            records += _write(cfg, lm, data, sl, maps.cpu().numpy(), probs[sl].cpu(), t.cpu(), items)
    if cfg.out is not None:
        from dltool.core.output import write_records

        if cfg.check:
            write_records(records, str(cfg.out / "explanations.jsonl"), "jsonl")
    if not cfg.check:
        return records
    result = {"method": cfg.method, "target": cfg.target, "n": len(data), "steps": CURVE_STEPS}
    if layer_name is not None:
        result["layer"] = layer_name
    for key, parts in sums.items():
        result[f"{key}_auc"] = round(float(torch.cat(parts).mean()), 6)
    if masks is not None:
        result["pointing_game"] = round(float(np.mean(hits)), 6)
    result["deletion_beats_random"] = result["deletion_auc"] < result["deletion_random_auc"]
    result["insertion_beats_random"] = result["insertion_auc"] > result["insertion_random_auc"]
    return result


def _masks(root: Path, items: list, data, size: int) -> np.ndarray:
    """Each input's mask: root/<the input's path below its folder>, resized to the model's input."""
    from dltool.core.io import input_path

    root = input_path(root, "--masks folder")
    kept = {str(it.path): it for it in items}
    out = []
    for ids in data.ids:
        rel = kept[ids["path"]].rel
        path = root / rel
        if not path.exists():
            raise InputError(f"--masks: no mask '{path}' for '{ids['path']}'",
                             "the masks folder mirrors the inputs' tree (same sub-folders and names)")
        out.append(_read_mask(path, size))
    return np.stack(out)


def _write(cfg: ExplainConfig, lm, data, sl: slice, maps: np.ndarray, probs, targets, items) -> list[dict]:
    kept = {str(it.path): it for it in items}
    records = []
    for j, (ids, heat, p, t) in enumerate(zip(data.ids[sl], maps, probs, targets)):
        rel = kept[ids["path"]].rel
        npy, png = cfg.out / rel.with_suffix(".npy"), cfg.out / rel.with_suffix(".png")
        label, score = lm.classes[int(p.argmax())], float(p.max())
        tname = lm.classes[int(t)]
        text = f"{label} {score:.2f}" + ("" if tname == label else f" (map: {tname})")
        image = data.inputs[sl.start + j]
        _save(npy, lambda tmp, heat=heat: _save_npy(tmp, heat))
        _save(png, lambda tmp, image=image, heat=heat, text=text: overlay(image, heat, text).save(tmp, format="PNG"))
        rec = {**ids, "label": label, "score": round(score, 6), "target": tname,
               "target_score": round(float(p[int(t)]), 6), "map": str(npy), "overlay": str(png)}
        if data.labels[sl.start + j] not in (None, ""):
            rec["true_label"] = str(data.labels[sl.start + j])
        records.append(rec)
    return records
