"""The classifier family (vision, audio and text classify): the task the engine trains, inference, one
`evaluate` and one `predict` that take the domain's readers, the metrics, the per-class table, the confusion
matrix plot, the top-k prediction records and the embedding table.

A domain supplies what differs: how a training batch reaches its network (`ClassifierTask.forward`), how
decoded inputs become the network's arguments (`ClassifierTask.model_inputs`), how a model file is
loaded, and how inputs are found and decoded (`Decoded`). `predict` spreads its inputs over the processes
of a torchrun / --nproc launch, or takes one --shard of them, and returns them in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltool.core.errors import InputError, OptionError
from dltool.core.run import check_batch_size
from dltool.core.task import TaskHooks


class ClassifierTask(TaskHooks):
    """What the engine needs to train a classifier (dltool.core.train) and inference needs to run one.

    `forward(model, batch, train)` -> (logits, targets) of a training or validation batch;
    `model_inputs(inputs)` -> the network's positional arguments for a slice of decoded inputs.
    """

    name = ""  # the model file's task, e.g. "vision-classify"
    monitor = "accuracy"
    monitor_mode = "max"
    channels_last = False

    def __init__(self, arch: str, arch_kwargs: dict, classes: list[str], preprocess: dict):
        self.arch, self.arch_kwargs, self.classes, self.preprocess = arch, arch_kwargs, list(classes), preprocess

    def forward(self, model, batch, train: bool = False):
        raise NotImplementedError

    def model_inputs(self, inputs) -> tuple:
        raise NotImplementedError

    def scores(self, logits):
        """The class scores predict reports for a batch of logits: softmax probabilities (an embedding
        classifier's logits are already its scores: cosine similarities)."""
        return logits.softmax(1)

    def loss(self, model, batch):
        import torch.nn.functional as F

        logits, y = self.forward(model, batch, train=True)
        return F.cross_entropy(logits, y)

    def evaluate(self, model, batches) -> dict:
        import torch.nn.functional as F

        loss_sum, correct, n = 0.0, 0, 0
        for batch in batches:
            logits, y = self.forward(model, batch)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def payload(self, model) -> dict:
        return {"task": self.name, "arch": self.arch, "arch_kwargs": self.arch_kwargs,
                "state_dict": model.state_dict(), "classes": self.classes, "preprocess": self.preprocess}


def _autocast(device):
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return torch.autocast(device.type, enabled=False)


def infer(lm, inputs, batch_size: int, embed: bool = False):
    """Logits of decoded inputs (an array, tensor or list the task slices), or with `embed` the network's
    forward_features: a CPU float tensor, one row per input."""
    import torch

    outs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            args = lm.task.model_inputs(inputs[start:start + batch_size])
            with _autocast(lm.device):
                out = lm.model.forward_features(*args) if embed else lm.model(*args)
            outs.append(out.float().cpu())
    return torch.cat(outs)


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    data: Path
    out: Path | None = None    # also write metrics.json, confusion.json and confusion.png there
    batch_size: int = 256
    device: str = "auto"
    skip_bad: bool = False

    def validate(self) -> None:
        check_batch_size(self.batch_size)


@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[str, ...] = ("-",)
    topk: int = 3
    embed: bool = False
    batch_size: int = 256
    device: str = "auto"
    skip_bad: bool = False
    shard: tuple[int, int] | None = None  # --shard I/N: only the I-th of N contiguous blocks of the inputs

    def validate(self) -> None:
        if self.topk < 1:
            raise OptionError(f"--topk {self.topk} must be at least 1")
        check_batch_size(self.batch_size)


@dataclass
class Decoded:
    """Inputs read for a classifier, in input order."""

    inputs: object              # what the task's model_inputs takes, sliced: an array, a tensor, a list of texts
    labels: list                # each item's true label (str) where the input says, else None
    ids: list[dict]             # each item's columns that join results back to the input (path; id)
    shown: list[dict] | None = None  # fields a prediction record shows beside them (a text's text)

    def __len__(self) -> int:
        return len(self.ids)


def evaluate(cfg: EvalConfig, *, load: Callable, read: Callable) -> dict:
    """`load(model, device)` -> a loaded model (dltool.core.modelfile.LoadedModel); `read(lm, cfg)` -> the
    labelled data as Decoded. Metrics by sklearn, the per-class table on stderr, files under cfg.out."""
    cfg.validate()
    lm = load(cfg.model, cfg.device)
    data = read(lm, cfg)
    unknown = sorted({str(c) for c in data.labels} - set(lm.classes))
    if unknown:
        raise InputError(f"'{cfg.data}' has labels the model was not trained on: {', '.join(unknown[:5])}",
                         f"the model's labels are: {', '.join(lm.classes[:20])}")
    y_true = np.array([lm.classes.index(c) for c in data.labels])
    y_pred = infer(lm, data.inputs, cfg.batch_size).argmax(1).numpy()
    metrics = classification_metrics(y_true, y_pred, lm.classes)
    if lm.ckpt.get("sparsity"):  # a pruned model (vision classify prune): its share of zero weights
        metrics["sparsity"] = lm.ckpt["sparsity"]["zero_share"]
    report_evaluation(metrics, cfg.out, title=evaluation_title(lm, cfg.model, cfg.data, metrics))
    return metrics


def predict(cfg: PredictConfig, *, load: Callable, scan: Callable, decode: Callable):
    """Predictions as records `{ids..., shown..., label, score, topk, true_label?}` in input order, or with
    cfg.embed the feature table (the id columns, true_label when known, emb0..). `scan(cfg)` lists the
    inputs (cheap: paths, or documents), `decode(lm, items, cfg)` reads this process's share as Decoded.

    Under torchrun / --nproc each process takes a contiguous block of the inputs and rank 0 gathers the
    results in order; --shard I/N takes the I-th block alone. Other ranks return None."""
    from dltool.core import distributed as dist
    from dltool.core.device import resolve_device
    from dltool.core.inputs import gathered, shard

    cfg.validate()
    device = dist.setup(resolve_device(cfg.device))
    lm = load(cfg.model, device)
    items = shard(scan(cfg), cfg.shard)
    part = decode(lm, items, cfg) if items else None
    if part is None:
        rows = []
    elif cfg.embed:  # a row per input: its ids, its label and its features, joined into a table on rank 0
        rows = list(zip(part.ids, part.labels, infer(lm, part.inputs, cfg.batch_size, embed=True).numpy()))
    else:
        logits = infer(lm, part.inputs, cfg.batch_size)
        # a task may say how its logits become scores (ClassifierTask.scores); softmax otherwise (tf-idf's)
        rows = _records(part, lm.task.scores(logits) if hasattr(lm.task, "scores") else logits.softmax(1),
                        lm.classes, cfg.topk)
    rows = gathered(rows, cfg.shard)
    if rows is None or not cfg.embed:
        return rows
    ids, labels, feats = zip(*rows) if rows else ((), (), ())
    return embedding_table(list(ids), list(labels), np.stack(feats) if feats else np.zeros((0, 0)))


def _records(part: Decoded, probs, classes: list[str], k: int) -> list[dict]:
    shown = part.shown or [{}] * len(part)
    records = []
    for ids, extra, label, rec in zip(part.ids, shown, part.labels, topk_records(probs, classes, k)):
        rec = {**ids, **extra, **rec}
        if label not in (None, ""):
            rec["true_label"] = str(label)
        records.append(rec)
    return records


def embedding_table(ids: list[dict], labels: list, feats: np.ndarray):
    """A feature table: the id columns pass through (true_label too when any input has one), then emb0..N-1."""
    from dltool.core.tables import Table

    names = list(dict.fromkeys(k for row in ids for k in row))
    cols = {name: np.array([row.get(name, "") for row in ids], dtype=object) for name in names}
    if any(t not in (None, "") for t in labels):
        cols["true_label"] = np.array(["" if t is None else str(t) for t in labels], dtype=object)
    feats = np.asarray(feats, dtype=np.float64)
    cols.update({f"emb{j}": feats[:, j] for j in range(feats.shape[1] if feats.ndim == 2 else 0)})
    return Table(cols)


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix (class indices in,
    class names out), by sklearn.metrics."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    # The macro averages and the per-class table cover the same classes: those in the data or in the
    # predictions (scikit-learn's default, as in classification_report), so a class the model predicts but
    # the data lacks counts against it in both, and the macro figures are the table's column means.
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    per_class = {classes[c]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                              "support": int(s[i])} for i, c in enumerate(labels)}
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision_macro": float(macro[0]),
            "recall_macro": float(macro[1]), "f1_macro": float(macro[2]),
            "macro_classes": list(per_class), "n": int(len(y_true)),
            "classes": list(classes), "per_class": per_class, "confusion_matrix": cm.tolist()}


def evaluation_title(lm, model_path, data, metrics: dict) -> str:
    """What a confusion matrix shows, for a reader without the command line: model, data and accuracy."""
    model = Path(str(model_path))
    model = model.parent if model.name == "model.pt" else model  # a run folder names the run
    return f"{lm.arch} ({model}) on {data}: accuracy {metrics['accuracy']:.3f}, n={metrics['n']}"


def report_evaluation(metrics: dict, out: str | Path | None, title: str | None = None) -> None:
    """The per-class table on stderr; with `out`, metrics.json, confusion.json and confusion.png (titled) there."""
    from dltool.core.io import write_json

    print_per_class(metrics)
    if out is not None:
        out = Path(out)
        write_json(out / "metrics.json", metrics)
        write_json(out / "confusion.json", {"classes": metrics["classes"], "matrix": metrics["confusion_matrix"]})
        plot_confusion(np.array(metrics["confusion_matrix"]), metrics["classes"], out / "confusion.png", title)


def print_per_class(metrics: dict) -> None:
    from dltool.core.console import is_quiet

    if is_quiet():
        return
    import sys

    from rich.console import Console
    from rich.table import Table

    t = Table("class", "precision", "recall", "f1", "support", title="per class",
              caption="rows: the classes in the data or predicted")
    for c, m in metrics["per_class"].items():
        t.add_row(c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    t.add_section()
    t.add_row("macro", f"{metrics['precision_macro']:.3f}", f"{metrics['recall_macro']:.3f}",
              f"{metrics['f1_macro']:.3f}", str(metrics["n"]))
    Console(file=sys.stderr).print(t)


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str | None = None) -> None:
    import textwrap

    from sklearn.metrics import ConfusionMatrixDisplay

    from dltool.core.plots import figure, save_figure

    size = max(5, len(classes) * 0.6)
    fig, ax = figure(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=classes).plot(ax=ax, colorbar=False)
    if title:
        ax.set_title(textwrap.fill(title, width=int(size * 10), break_on_hyphens=False, break_long_words=False), fontsize=9)
    save_figure(fig, path)


def topk_records(probs, classes: list[str], k: int) -> list[dict]:
    """One `{label, score, topk: [{label, score}, ...]}` per row of class probabilities (a tensor or array)."""
    import torch

    probs = torch.as_tensor(probs)
    top_p, top_i = probs.topk(min(k, len(classes)), dim=1)
    return [{"label": classes[ix[0]], "score": round(ps[0], 6),
             "topk": [{"label": classes[i], "score": round(p, 6)} for p, i in zip(ps, ix)]}
            for ps, ix in zip(top_p.tolist(), top_i.tolist())]
