"""`generate sample` and `generate interpolate`: images from a trained generator, as a grid PNG and/or one
PNG per sample. Noise is drawn on the CPU from a generator seeded with --seed, so the same seed gives the
same samples (on the same device)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from dltool.core.device import resolve_device
from dltool.core.errors import OptionError
from dltool.core.run import check_batch_size
from dltool.generate import common
from dltool.generate.common import write_grid


def _labels(loaded: common.Loaded, label: str | None, n: int, device):
    """Class indices for n samples: --class LABEL for all, else the classes in turn (conditional models)."""
    if not loaded.conditional:
        if label is not None:
            raise OptionError(f"--class {label}: this {loaded.family} model is unconditional (trained without labels)",
                              "drop --class, or train a conditional model (gan --kind cgan)")
        return None
    classes = loaded.classes
    if label is None:
        return torch.arange(n, device=device) % len(classes)
    if label not in classes:
        raise OptionError(f"--class {label!r} is not one of the model's classes", f"choose from: {', '.join(classes)}")
    return torch.full((n,), classes.index(label), device=device, dtype=torch.long)


def draw(loaded: common.Loaded, n: int, labels, generator, *, sampler: str | None, steps: int | None,
         batch_size: int = 256) -> torch.Tensor:
    """n samples in [-1, 1] on the CPU, drawn in batches."""
    from dltool.generate import diffusion, gan, pixelcnn, vae

    if loaded.family != "diffusion" and (sampler is not None or steps is not None):
        raise OptionError(f"--sampler and --steps apply to diffusion models; this is a {loaded.family} model",
                          "drop them")
    if sampler is not None and sampler not in diffusion.SAMPLERS:
        from dltool.core.errors import unknown_name

        raise unknown_name("sampler", sampler, diffusion.SAMPLERS)
    size = loaded.ckpt["preprocess"]["img_size"]
    shape = (loaded.ckpt["arch_kwargs"]["in_channels"], size, size)
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            y = None if labels is None else labels[start:start + m]
            if loaded.family == "vae":
                x = vae.draw(loaded.model, m, generator)
            elif loaded.family == "gan":
                x = gan.draw(loaded.model, m, y, generator)
            elif loaded.family == "diffusion":
                x = diffusion.draw(loaded.model, loaded.ckpt["process"], m, shape, generator,
                                   sampler=sampler or "ddpm", steps=steps)
            else:
                x = pixelcnn.draw(loaded.model, m, shape, generator)
            out.append(x.float().cpu())
    return torch.cat(out)


def sample(model_path, *, n: int = 64, grid: Path | None = None, out: Path | None = None, label: str | None = None,
           sampler: str | None = None, steps: int | None = None, seed: int = 0, batch_size: int = 256,
           nrow: int = 8, device: str = "auto") -> dict:
    if n < 1:
        raise OptionError(f"-n {n} must be at least 1")
    if grid is None and out is None:
        raise OptionError("nowhere to write the samples", "pass --grid out.png and/or --out DIR")
    check_batch_size(batch_size)
    dev = resolve_device(device)
    loaded = common.load(model_path, dev)
    labels = _labels(loaded, label, n, dev)
    t0 = time.perf_counter()
    images = draw(loaded, n, labels, torch.Generator().manual_seed(seed), sampler=sampler, steps=steps,
                  batch_size=batch_size)
    seconds = time.perf_counter() - t0
    if grid is not None:
        write_grid(images, Path(grid), f"{loaded.ckpt['arch']} ({model_path}): {n} samples, seed {seed}"
                   + (f", class {label}" if label is not None else ""), nrow=nrow)
    if out is not None:
        _write_each(images, Path(out))
    result = {"model": str(model_path), "family": loaded.family, "n": n, "seed": seed,
              "grid": None if grid is None else str(grid), "out": None if out is None else str(out),
              "sample_time_s": round(seconds, 4)}
    if label is not None:
        result["class"] = label
    if loaded.family == "diffusion":
        result["sampler"] = sampler or "ddpm"
        result["steps"] = steps or (50 if sampler == "ddim" else loaded.ckpt["process"]["timesteps"])
    return result


def _write_each(images: torch.Tensor, folder: Path) -> None:
    """One PNG per sample, sample_00000.png ..., each written atomically."""
    from PIL import Image

    from dltool.core.io import atomic_path
    from dltool.generate.data import to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(to_uint8(images).numpy()):
        with atomic_path(folder / f"sample_{i:05d}.png") as tmp:
            Image.fromarray(x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)).save(tmp, format="PNG")


def interpolate(model_path, *, grid: Path, steps: int = 10, rows: int = 8, label: str | None = None, seed: int = 0,
                device: str = "auto") -> dict:
    """Rows of images along straight lines between two random latent points (VAE and GAN)."""
    from dltool.generate import gan, vae

    if steps < 2:
        raise OptionError(f"--steps {steps} must be at least 2 (the two ends)")
    if rows < 1:
        raise OptionError(f"--rows {rows} must be at least 1")
    dev = resolve_device(device)
    loaded = common.load(model_path, dev, families=("vae", "gan"))
    labels = _labels(loaded, label, rows, dev)
    g = torch.Generator().manual_seed(seed)
    latent = loaded.model.latent_dim
    ends = common.noise((2, rows, latent), g, dev)
    w = torch.linspace(0, 1, steps, device=dev)[None, :, None]
    z = ((1 - w) * ends[0][:, None] + w * ends[1][:, None]).reshape(rows * steps, latent)
    with torch.inference_mode():
        if loaded.family == "vae":
            images = vae.decode(loaded.model, z)
        else:
            images = gan.generate(loaded.model, z, None if labels is None else labels.repeat_interleave(steps))
    write_grid(images.cpu(), Path(grid), f"{loaded.ckpt['arch']} ({model_path}): {rows} latent lines, seed {seed}",
               nrow=steps)
    return {"model": str(model_path), "family": loaded.family, "grid": str(grid), "rows": rows, "steps": steps,
            "seed": seed}
