"""What every classifier's eval and predict share (vision, audio, text): the metrics, the per-class table,
the confusion matrix plot, the top-k prediction records and the embedding table."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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


def report_evaluation(metrics: dict, out: str | Path | None) -> None:
    """The per-class table on stderr; with `out`, metrics.json, confusion.json and confusion.png there."""
    from dltool.core.io import write_json

    print_per_class(metrics)
    if out is not None:
        out = Path(out)
        write_json(out / "metrics.json", metrics)
        write_json(out / "confusion.json", {"classes": metrics["classes"], "matrix": metrics["confusion_matrix"]})
        plot_confusion(np.array(metrics["confusion_matrix"]), metrics["classes"], out / "confusion.png")


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


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    from dltool.core.plots import figure, save_figure

    fig, ax = figure(figsize=(max(4, len(classes) * 0.6), max(4, len(classes) * 0.6)))
    ConfusionMatrixDisplay(cm, display_labels=classes).plot(ax=ax, colorbar=False)
    save_figure(fig, path)


def topk_records(probs, classes: list[str], k: int) -> list[dict]:
    """One `{label, score, topk: [{label, score}, ...]}` per row of class probabilities (a tensor or array)."""
    import torch

    probs = torch.as_tensor(probs)
    top_p, top_i = probs.topk(min(k, len(classes)), dim=1)
    return [{"label": classes[ix[0]], "score": round(ps[0], 6),
             "topk": [{"label": classes[i], "score": round(p, 6)} for p, i in zip(ps, ix)]}
            for ps, ix in zip(top_p.tolist(), top_i.tolist())]


def write_records(records: list[dict], output: str, fmt: str) -> None:
    """Prediction records to stdout ('-') in --format, or atomically to a file (JSON Lines by default)."""
    from dltool.core.io import atomic_open
    from dltool.core.output import emit_records

    if output == "-":
        emit_records(records, fmt)
    else:
        with atomic_open(output) as f:
            emit_records(records, "jsonl" if fmt == "auto" else fmt, stream=f)


def write_embeddings(id_columns: dict, feats: np.ndarray, output: str, fmt: str) -> None:
    """A feature table: the id columns (lists of strings) pass through, then emb0..embN-1."""
    from dltool.core.tables import Table, write_table

    feats = np.asarray(feats, dtype=np.float64)
    cols = {name: np.array(values, dtype=object) for name, values in id_columns.items()}
    cols.update({f"emb{j}": feats[:, j] for j in range(feats.shape[1])})
    write_table(Table(cols), output, fmt)
