"""Model files (DESIGN.md §3): one .pt of tensors and plain data, loaded with weights_only=True."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dltool.core.errors import ModelFileError
from dltool.core.io import atomic_path, input_path

FORMAT = "dltool-model"
VERSION = 1


def save_model(path: str | os.PathLike, *, task: str, arch: str, arch_kwargs: dict, state_dict: dict,
               classes: list | None = None, preprocess: dict | None = None, metrics: dict | None = None,
               land=None, **extra) -> None:
    """Write a model file atomically (`land`: see dltool.core.io.atomic_path)."""
    import torch

    from dltool import __version__

    payload = {
        "format": FORMAT, "version": VERSION, "task": task, "arch": arch, "arch_kwargs": dict(arch_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "classes": list(classes or []), "preprocess": dict(preprocess or {}), "metrics": dict(metrics or {}),
        "dltool_version": __version__, **extra,
    }
    with atomic_path(path, land=land) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load with weights_only=True: a file that would run code is refused, not executed."""
    import pickle

    import torch

    p = input_path(path, "model file")
    if p.is_dir():
        p = p / "model.pt"
        if not p.exists():
            raise ModelFileError(f"'{path}' is a folder without model.pt", "pass the model file or a run folder")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise ModelFileError(f"refusing to load '{path}': it holds more than tensors and plain data ({first[:160]})",
                             "only load model files written by dltool or other trusted tensors-only files") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise ModelFileError(f"'{path}' is not a readable model file ({str(e).splitlines()[0][:160]})") from None


def load_model_file(path: str | os.PathLike, task: str | None = None) -> dict:
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a dltool model file", "train one with a dltool '... train' command")
    if ckpt.get("version") != VERSION:
        raise ModelFileError(f"'{path}' is a dltool model of format version {ckpt.get('version')}; "
                             f"this dltool reads version {VERSION}", "retrain, or use the dltool that wrote it")
    if task is not None and ckpt.get("task") != task:
        raise ModelFileError(f"'{path}' is a '{ckpt.get('task')}' model, not a '{task}' model",
                             "pass a model trained for this task")
    return ckpt


def load_pretrained(model, path, arch: str, convert=None) -> None:
    """Fill every parameter of `model` whose name and shape match, from a dltool model file of the same
    arch or a plain state_dict of tensors (`convert` maps a foreign state_dict's names to ours, e.g.
    torchvision's). Parameters under `head.` may stay freshly initialised (a head of another shape);
    fewer than half the rest matching is refused, as weights of another architecture."""
    import torch

    from dltool.core.console import info

    ckpt = load_checkpoint(path)
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        if ckpt.get("arch") != arch:
            raise ModelFileError(f"--pretrained {path} is a '{ckpt.get('arch')}' model, not '{arch}'",
                                 f"use --model {ckpt.get('arch')}")
        source = ckpt["state_dict"]
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        source = convert(ckpt) if convert else ckpt
    else:
        raise ModelFileError(f"--pretrained {path} is neither a dltool model nor a state_dict of tensors")
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith("head.")]
    loaded = [k for k in body if k in matched]
    if len(loaded) < len(body) / 2:
        raise ModelFileError(f"--pretrained {path}: only {len(loaded)} of {len(body)} backbone tensors match {arch}",
                             "pass weights of the same architecture")
    model.load_state_dict(matched, strict=False)
    info(f"pretrained: loaded {len(matched)} tensors from {path}; {len(own) - len(matched)} left as initialised")


def build_network(path, ckpt: dict, build):
    """The network a model file describes, its weights loaded: `build(arch, arch_kwargs)` makes it (a
    registry's create). A file whose weights or options do not fit its arch is a ModelFileError."""
    try:
        model = build(ckpt["arch"], ckpt["arch_kwargs"])
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"'{path}' does not match its architecture '{ckpt.get('arch')}' ({first[:160]})") from None
    return model


@dataclass
class LoadedModel:
    """A model file ready for inference: the network on `device` in eval mode, and the task object that
    prepares its inputs as training did (normalisation, features, vocabulary)."""

    model: object
    task: object
    ckpt: dict
    device: object

    @property
    def arch(self) -> str:
        return self.ckpt["arch"]

    @property
    def classes(self) -> list[str]:
        return list(self.ckpt.get("classes") or [])

    @property
    def preprocess(self) -> dict:
        return dict(self.ckpt.get("preprocess") or {})


def load_model(path, *, task: str, registry, make_task, device) -> LoadedModel:
    """One loader for every task's model files: `registry` builds the arch, `make_task(ckpt, device)` the
    task object; `device` a name (auto, cuda:1) or a torch.device. Convnets get channels_last on CUDA."""
    import torch

    from dltool.core.device import resolve_device

    device = device if isinstance(device, torch.device) else resolve_device(device)
    ckpt = load_model_file(path, task=task)
    model = build_network(path, ckpt, lambda arch, kw: registry.create(arch, **kw))
    try:
        task_obj = make_task(ckpt, device)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"'{path}' lacks what its task needs to run ({type(e).__name__}: {str(e)[:120]})") from None
    model.to(device).eval()
    if device.type == "cuda" and getattr(task_obj, "channels_last", False):
        model.to(memory_format=torch.channels_last)
    return LoadedModel(model, task_obj, ckpt, device)
