"""How small a classifier can be: magnitude pruning (torch.nn.utils.prune), fine-tuning through the engine,
then the masks made permanent, and what that bought (parameters, zeros, file size, CPU time).

Unstructured pruning ranks every conv and linear weight of the network together by magnitude (global);
structured pruning removes whole output channels of each convolution, smallest L2 norm first. With
`schedule` S > 1 the sparsity grows in S steps over the fine-tuning epochs, along Zhu & Gupta's (2017)
cubic schedule, each step pruning from the weights the previous ones left.
"""

from __future__ import annotations

import io
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import prune

from dltool.core import images as vdata
from dltool.core import inputs
from dltool.core.applies import check_range
from dltool.core.console import info
from dltool.core.errors import InputError, OptionError
from dltool.core.modelfile import load_checkpoint, load_model_file, save_model
from dltool.core.run import RunConfig, recipe, start
from dltool.core.train import Engine, EngineConfig
from dltool.vision import classify


@dataclass(frozen=True)
class PruneConfig:
    model: Path
    data: Path | None  # None: the data the model's run trained on (its config.toml)
    engine: EngineConfig
    amount: float = 0.8
    structured: bool = False
    schedule: int = 1
    run: RunConfig = RunConfig()
    options: dict = field(default_factory=dict)
    given: frozenset[str] | None = None

    def validate(self) -> None:
        self.engine.validate()
        check_range("--amount", self.amount, low=0, high=1, low_open=True, high_open=True,
                    hint="the share of the weights to remove, e.g. --amount 0.8")
        if self.schedule < 1:
            raise OptionError(f"--schedule {self.schedule} must be at least 1 (1: prune once, then fine-tune)")
        if self.schedule > self.engine.epochs:
            raise OptionError(f"--schedule {self.schedule} steps need at least as many --epochs (got {self.engine.epochs})",
                              f"use --epochs {self.schedule} or more")


def targets(model: nn.Module, structured: bool) -> list[tuple[nn.Module, str]]:
    """(module, "weight") pairs pruned: every conv and linear weight; structured: the convolutions only
    (a linear head's rows are the classes)."""
    kinds = (nn.Conv1d, nn.Conv2d) if structured else (nn.Conv1d, nn.Conv2d, nn.Linear)
    return [(m, "weight") for m in model.modules() if isinstance(m, kinds)]


def sparsity_steps(amount: float, steps: int) -> list[float]:
    """The sparsity reached after each step: Zhu & Gupta's cubic ramp up to `amount`."""
    return [amount * (1 - (1 - i / steps) ** 3) for i in range(1, steps + 1)]


def prune_to(params: list, structured: bool, before: float, after: float) -> None:
    """Prune from sparsity `before` to `after`: torch's pruning methods take the share of the weights not
    yet pruned, so the step removes (after - before) / (1 - before) of those."""
    amount = (after - before) / (1 - before)
    if structured:
        for module, name in params:
            prune.ln_structured(module, name, amount=amount, n=2, dim=0)
    else:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)


class PruneTask(classify.ClassifyTask):
    """The classifier's task, pruning further at the epochs the schedule says (after the epoch's training,
    before its validation). model.pt is the last epoch's, the end of the decaying fine-tuning schedule (and
    with a schedule the sparsest), not the best validation epoch's: on a small validation split the
    accuracy of fine-tuning epochs ties, and the first of them, the least fine-tuned, would win."""

    monitor_mode = "last"

    def __init__(self, *args, params: list, structured: bool, steps: list[float], epochs: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.params, self.structured, self.steps = params, structured, steps
        self.at_epoch = {math.floor(i * epochs / len(steps)): i for i in range(1, len(steps))}
        self.epochs_done = 0

    def end_epoch(self, model) -> dict:
        self.epochs_done += 1
        step = self.at_epoch.get(self.epochs_done)
        if step is not None:
            prune_to(self.params, self.structured, self.steps[step - 1], self.steps[step])
        return {"sparsity": round(zero_share(self.params), 6)}

    def state_dict(self) -> dict:
        return {"epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict) -> None:
        self.epochs_done = int(state["epochs_done"])


def zero_share(params: list) -> float:
    """The share of the pruned tensors' entries that are zero (masked or made permanent)."""
    zeros = total = 0
    for module, name in params:
        w = getattr(module, name)
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(1, total)


def _labelled(cfg: PruneConfig, lm, data_path: Path):
    items = inputs.scan_labelled(data_path, vdata.IMAGES)
    data = classify.decode(lm, items, cfg.run)
    unknown = sorted({str(c) for c in data.labels} - set(lm.classes))
    if unknown:
        raise InputError(f"'{data_path}' has labels the model was not trained on: {', '.join(unknown[:5])}",
                         "prune fine-tunes on the model's own classes")
    return np.asarray(data.inputs), np.array([lm.classes.index(str(c)) for c in data.labels])


def trained_on(model: Path) -> Path:
    """The data a model's run trained on: `data` in the config.toml beside its model file."""
    import tomllib

    folder = model if model.is_dir() else model.parent
    config = folder / "config.toml"
    data = tomllib.loads(config.read_text()).get("data") if config.is_file() else None
    if not data:
        raise InputError(f"no DATA given and '{folder}' has no config.toml naming the data '{model}' trained on",
                         "pass the labelled data to fine-tune on after MODEL")
    return Path(data)


def train(cfg: PruneConfig) -> dict:
    from dataclasses import replace

    cfg.validate()
    if load_model_file(cfg.model, task=classify.TASK).get("embedding"):  # fails before a run folder exists
        raise InputError(f"'{cfg.model}' was trained with a metric loss: prune fine-tunes a class layer's cross-entropy",
                         "prune a model trained with --loss ce")
    if cfg.data is None:
        cfg = replace(cfg, data=trained_on(Path(cfg.model)))
    run = cfg.run
    device, run_dir = start(cfg, "vision-prune")
    lm = classify.load(cfg.model, device)
    images, labels = _labelled(cfg, lm, cfg.data)
    if run.val is not None:
        tr_idx = np.arange(len(labels))
        v_images, v_labels = _labelled(cfg, lm, run.val)
    else:
        from dltool.core.data import stratified_split

        tr_idx, va_idx = stratified_split(labels, run.val_split, cfg.engine.seed)
        v_images, v_labels = (images[va_idx], labels[va_idx]) if va_idx is not None else (None, None)
    train_batches = classify._batches(images[tr_idx], labels[tr_idx], run.batch_size, shuffle=True,
                                      seed=cfg.engine.seed, device=device)
    val_batches = None
    if v_labels is not None:
        val_batches = classify._batches(v_images, v_labels, max(256, run.batch_size), shuffle=False, seed=0,
                                        device=device)

    model = lm.model
    import copy

    before = _figures(model, lm.ckpt)
    dense = copy.deepcopy(model).cpu()  # timed beside the pruned one at the end, in turn
    params = targets(model, cfg.structured)
    steps = sparsity_steps(cfg.amount, cfg.schedule)
    prune_to(params, cfg.structured, 0.0, steps[0])
    info(f"prune: {'channels of ' if cfg.structured else ''}{len(params)} weight tensors to "
         f"{cfg.amount:.0%} in {cfg.schedule} step(s); {zero_share(params):.1%} zero now")
    ck = lm.ckpt
    task = PruneTask(ck["arch"], ck["arch_kwargs"], ck["classes"], ck["preprocess"], device, params=params,
                     structured=cfg.structured, steps=steps, epochs=cfg.engine.epochs)
    engine = Engine(task, model, cfg.engine, run_dir, device, recipe(cfg))
    summary = engine.fit(train_batches, val_batches)
    if engine.finished and (run_dir / "prune.json").is_file():  # resumed after the end: nothing left to do
        import json

        return {**summary, **json.loads((run_dir / "prune.json").read_text(encoding="utf-8"))}

    for module, name in params:  # the masks made permanent: plain weights with zeros, loadable anywhere
        prune.remove(module, name)
    from dltool.core import distributed as dist

    if not dist.is_main():
        return summary
    after = _figures(model, ck)
    slim = _slim(model) if cfg.structured else None
    times = _cpu_ms({"dense": dense, "pruned": model, **({"slim": slim} if slim is not None else {})}, ck,
                    images[:256])
    before["cpu_ms"], after["cpu_ms"] = times["dense"], times["pruned"]
    if slim is not None:
        after["slim_parameters"] = sum(p.numel() for p in slim.parameters())
        after["slim_cpu_ms"] = times["slim"]
    sparsity = {"amount": cfg.amount, "structured": cfg.structured, "schedule": cfg.schedule,
                "zero_share": round(zero_share(params), 6),
                "zero_share_all": round(after["zeros"] / after["parameters"], 6)}
    best = load_checkpoint(run_dir / "model.pt")  # the engine's: the best epoch's metrics row
    save_model(run_dir / "model.pt", **task.payload(model), metrics=best.get("metrics", {}), sparsity=sparsity,
               pruned_from=str(cfg.model))
    report = {"sparsity": sparsity, "before": before, "after": after,
              "speedup": round(before["cpu_ms"] / after["cpu_ms"], 3),
              "file_ratio": round(after["file_bytes"] / before["file_bytes"], 3),
              "compressed_ratio": round(after["compressed_bytes"] / before["compressed_bytes"], 3)}
    if after.get("slim_cpu_ms"):
        report["slim_speedup"] = round(before["cpu_ms"] / after["slim_cpu_ms"], 3)
    from dltool.core.io import write_json

    write_json(run_dir / "prune.json", report)
    return {**summary, **report}


def _figures(model: nn.Module, ckpt: dict) -> dict:
    """Parameters, zeros, and model-file bytes: dense, zlib-compressed, and as sparse COO tensors."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    n_params = sum(p.numel() for p in model.parameters())
    zeros = sum(int((p == 0).sum()) for p in model.parameters())
    dense = _saved_bytes({**ckpt, "state_dict": state})
    sparse = _saved_bytes({**ckpt, "state_dict": {k: (v.to_sparse() if v.dim() > 1 and (v == 0).float().mean() > 0.5
                                                        else v) for k, v in state.items()}})
    return {"parameters": n_params, "zeros": zeros, "file_bytes": len(dense),
            "compressed_bytes": len(zlib.compress(dense, 6)), "sparse_file_bytes": len(sparse)}


def _saved_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _cpu_ms(models: dict, ckpt: dict, sample: np.ndarray, repeats: int = 5) -> dict:
    """Milliseconds for one forward pass of `sample` on the CPU by each model, run in turn (so load on the
    machine falls on all alike), each its fastest of `repeats` after a warm-up."""
    import copy

    from dltool.core.export import Normalized

    pre = ckpt["preprocess"]
    shape = (1, -1, 1, 1)
    nets = {name: Normalized(copy.deepcopy(m).cpu().eval(), torch.tensor(pre["mean"]).view(shape),
                             torch.tensor(pre["std"]).view(shape)) for name, m in models.items()}
    x = torch.from_numpy(sample).float().div(255)
    best = dict.fromkeys(nets, float("inf"))
    with torch.inference_mode():
        for net in nets.values():
            net(x)
        for _ in range(repeats):
            for name, net in nets.items():
                t = time.perf_counter()
                net(x)
                best[name] = min(best[name], time.perf_counter() - t)
    return {name: round(1000 * t, 3) for name, t in best.items()}


def _slim(model: nn.Module):
    """For a chain of conv / batch-norm / activation / pooling layers ending in global pooling and a linear
    head (dltool's cnn): a copy with the all-zero output channels of each convolution taken out, so dense
    kernels do less work. For timing only: a removed channel's BatchNorm shift, a constant its successor
    saw, is dropped with it, and the model file keeps the dense shapes its arch_kwargs describe. None
    for other architectures (the channel dependencies of residual blocks are not followed here)."""
    import copy

    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Sequential) or not isinstance(head, nn.Linear):
        return None
    slim = copy.deepcopy(model).cpu()
    keep_in = None
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.ReLU, nn.GELU,
               nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Hardswish)
    for layer in slim.features:
        if not isinstance(layer, allowed) or isinstance(layer, nn.Conv2d) and layer.groups != 1:
            return None
        if isinstance(layer, nn.Conv2d):
            w = layer.weight.data
            if keep_in is not None:
                w = w[:, keep_in]
            keep = (w.flatten(1).abs().sum(1) > 0).nonzero().flatten()
            if len(keep) == 0:
                keep = torch.tensor([0])
            layer.weight = nn.Parameter(w[keep].clone())
            if layer.bias is not None:
                layer.bias = nn.Parameter(layer.bias.data[keep].clone())
            layer.in_channels, layer.out_channels = w.shape[1], len(keep)
            keep_in = keep
        elif isinstance(layer, nn.BatchNorm2d) and keep_in is not None:
            for name in ("weight", "bias"):
                setattr(layer, name, nn.Parameter(getattr(layer, name).data[keep_in].clone()))
            layer.running_mean = layer.running_mean[keep_in].clone()
            layer.running_var = layer.running_var[keep_in].clone()
            layer.num_features = len(keep_in)
    if keep_in is not None:
        slim.head.weight = nn.Parameter(slim.head.weight.data[:, keep_in].clone())
        slim.head.in_features = len(keep_in)
    return slim
