"""Metric learning and few-shot classification: a network trained to embed (triplet, contrastive or ArcFace
loss, from pytorch-metric-learning), then labels by the nearest class centroid under cosine similarity.

Training (`vision classify train --loss triplet|contrastive|arcface`): the network's output layer (its
`head`) is a projection of --embedding-dim that the loss acts on, not a class layer; the features beneath
it (forward_features) are the embedding used afterwards, as SimCLR (Chen et al. 2020) uses the layer below
its projection head: they transfer better to classes never trained on (benchmarks/few_shot.py measured
both). ArcFace's class weights are a part of the head while training (so they train, checkpoint, resume
and reduce under DDP with it) and are left out of model.pt. Validation reports precision@1 and MAP@R of
the embedding (leave-one-out within the validation set). After training, the centroids of the training
classes are stored in model.pt, so the model classifies its own classes.

Inference (`predict|eval --gallery DIR`): a folder of labelled examples gives new centroids, so a class
is added by adding a folder; any classifier works this way, through its penultimate features. At load, a model is wrapped in `EmbeddingClassifier`, whose logits are the cosine
similarities to the centroids, so eval, predict, explain, attack and export take it unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.applies import Applies, check_range
from dltool.core.errors import InputError, ModelFileError, OptionError, unknown_name
from dltool.vision.classify import ClassifyTask

LOSSES = ("ce", "triplet", "contrastive", "arcface")
#: pytorch-metric-learning's TripletMarginMiner types, and none (every triplet of the batch)
MINERS = ("semihard", "hard", "easy", "all", "none")
#: the options each --loss takes
LOSS_OPTIONS = Applies("loss", {"ce": (), "triplet": ("embedding_dim", "margin", "miner"),
                                "contrastive": ("embedding_dim", "margin"), "arcface": ("embedding_dim", "margin")})
#: --margin when not given: FaceNet's triplet margin (normalised embeddings), pytorch-metric-learning's
#: contrastive negative margin and ArcFace's angular margin (degrees, 0.5 rad)
DEFAULT_MARGIN = {"triplet": 0.2, "contrastive": 1.0, "arcface": 28.6}
LOSS_KEY = "metric_loss"  # ArcFace's module under the head while training


def check(cfg) -> None:
    """The metric-learning options of a train config (loss, embedding_dim, margin, miner, adversarial)."""
    if cfg.loss not in LOSSES:
        raise unknown_name("loss", cfg.loss, LOSSES)
    LOSS_OPTIONS.check(cfg)
    if cfg.loss == "ce":
        return
    if cfg.embedding_dim < 2:
        raise OptionError(f"--embedding-dim {cfg.embedding_dim} must be at least 2")
    check_range("--margin", cfg.margin, low=0, low_open=True)
    if cfg.miner not in MINERS:
        raise unknown_name("miner", cfg.miner, MINERS)
    if cfg.adversarial is not None:
        raise OptionError(f"--adversarial attacks a class layer's cross-entropy; --loss {cfg.loss} trains an "
                          "embedding", "drop --adversarial, or use --loss ce")


def _bare(model):
    """The network under a DDP or torch.compile wrapper."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def l2(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=1)


class MetricTask(ClassifyTask):
    """An embedding network's task: trained on a metric loss (`loss` given), or at inference the task of an
    `EmbeddingClassifier`, whose scores are cosine similarities (not softmax probabilities)."""

    monitor = "mean_average_precision_at_r"  # finer than precision@1, which saturates early on easy data

    def __init__(self, arch, arch_kwargs, classes, preprocess, device, augment_ops=(), *, loss: str | None = None,
                 margin: float | None = None, miner: str = "semihard"):
        super().__init__(arch, arch_kwargs, classes, preprocess, device, augment_ops)
        self.loss_name, self.margin, self.miner_name = loss, margin, miner
        self.loss_fn = self.miner = None
        if loss is not None:
            from pytorch_metric_learning import losses, miners

            m = DEFAULT_MARGIN[loss] if margin is None else margin
            if loss == "triplet":
                self.loss_fn = losses.TripletMarginLoss(margin=m)
                if miner != "none":
                    self.miner = miners.TripletMarginMiner(margin=m, type_of_triplets=miner)
            elif loss == "contrastive":
                self.loss_fn = losses.ContrastiveLoss(pos_margin=0.0, neg_margin=m)

    def attach(self, model) -> None:
        """ArcFace's class weights become a part of the head (trained with it, even with a frozen backbone)."""
        if self.loss_name == "arcface":
            from pytorch_metric_learning import losses

            m = DEFAULT_MARGIN["arcface"] if self.margin is None else self.margin
            model.head.add_module(LOSS_KEY, losses.ArcFaceLoss(num_classes=len(self.classes),
                                                               embedding_size=self.arch_kwargs["num_classes"],
                                                               margin=m))

    def _loss(self, model, emb, y):
        emb = emb.float()
        if self.loss_name == "arcface":
            return getattr(_bare(model).head, LOSS_KEY)(emb, y)
        pairs = self.miner(emb, y) if self.miner is not None else None
        return self.loss_fn(emb, y, pairs)

    def loss(self, model, batch):
        emb, y = self.forward(model, batch, train=True)
        return self._loss(model, emb, y)

    def evaluate(self, model, batches) -> dict:
        """The loss, and precision@1 and MAP@R of each validation item's embedding among the others'
        (leave-one-out)."""
        loss_sum, n, embs, labels = 0.0, 0, [], []
        for batch in batches:
            out, y = self.forward(model, batch)
            loss_sum += self._loss(model, out, y).item() * len(y)
            n += len(y)
            embs.append(_bare(model).forward_features(self.prepare(batch[0])).float())
            labels.append(y)
        return {"loss": loss_sum / n, **retrieval(torch.cat(embs), torch.cat(labels))}

    def payload(self, model) -> dict:
        return {**super().payload(model), "embedding": {"loss": self.loss_name, "dim": self.arch_kwargs["num_classes"]}}

    def scores(self, logits):
        return logits


def retrieval(query, query_labels, reference=None, reference_labels=None) -> dict:
    """precision@1 and MAP@R (pytorch-metric-learning's AccuracyCalculator, cosine similarity): each query
    among the references, or without references among the other queries. A query whose class has no
    other item counts for nothing; none left: 0."""
    import math

    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                              knn_func=CustomKNN(CosineSimilarity()), device=torch.device("cpu"))
    args = (query.detach().float().cpu(), query_labels.cpu())
    if reference is not None:
        args += (reference.detach().float().cpu(), reference_labels.cpu())
    out = calc.get_accuracy(*args)
    return {k: 0.0 if math.isnan(v) else float(v) for k, v in out.items()}


class EmbeddingClassifier(nn.Module):
    """A network labelling by the nearest class centroid: logits are the cosine similarities of its
    L2-normalised embedding, the features under its head (forward_features), to the (unit) centroids."""

    def __init__(self, net: nn.Module, centroids: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("centroids", centroids)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return l2(self.net.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x) @ self.centroids.t()


def centroids_of(emb: torch.Tensor, labels: np.ndarray, classes: list[str]) -> torch.Tensor:
    """One unit vector per class: the normalised mean of its unit embeddings."""
    return l2(torch.stack([emb[torch.from_numpy(labels == c)].mean(0) for c in classes]))


def finish(task: MetricTask, model: nn.Module, batches, run_dir: Path, classes: list[str]) -> None:
    """model.pt of a metric run (rank 0): the best weights without ArcFace's class weights, and the
    training classes' centroids of their embeddings (`batches`: the training images, in eval mode)."""
    from dltool.core.modelfile import load_checkpoint, save_model

    model.eval()
    embs, ys = [], []
    with torch.inference_mode():
        for x, y in batches:
            embs.append(l2(model.forward_features(task.prepare(x))).cpu())
            ys.append(y.cpu())
    labels = np.array(classes, dtype=object)[torch.cat(ys).numpy()]
    payload = task.payload(model)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if f".{LOSS_KEY}." not in k}
    payload["embedding"]["centroids"] = centroids_of(torch.cat(embs), labels, classes)
    best = load_checkpoint(run_dir / "model.pt")  # the engine's: the best epoch's metrics row
    save_model(run_dir / "model.pt", **payload, metrics=best.get("metrics", {}))


# -- inference --------------------------------------------------------------------------------

def wrap(lm, path, need_centroids: bool = True):
    """A loaded vision-classify model with an `embedding` record as an EmbeddingClassifier over its stored
    training-class centroids (`need_centroids`: refuse a checkpoint that has none)."""
    emb = lm.ckpt.get("embedding")
    if not emb:
        return lm
    centroids = emb.get("centroids")
    if centroids is None:
        if need_centroids:
            raise ModelFileError(f"'{path}' holds no class centroids (a checkpoint of a metric-learning run, "
                                 "not its model.pt)", "use the run's model.pt, or pass --gallery DIR")
        centroids = torch.zeros(0, 1)  # a gallery's replace them
    ck = lm.ckpt
    model = EmbeddingClassifier(lm.model, centroids).to(lm.device).eval()
    task = MetricTask(ck["arch"], ck["arch_kwargs"], ck["classes"], ck["preprocess"], lm.device)
    return replace(lm, model=model, task=task)


def scan_gallery(gallery: Path) -> list:
    """The labelled items of a gallery (class folders or CSV path,label); an empty class folder is an error
    (a class with no example cannot be recognised)."""
    from dltool.core import images as vdata
    from dltool.core import inputs
    from dltool.core.io import input_path

    root = input_path(gallery, "gallery")
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not any(vdata.IMAGES.matches(f) for f in d.rglob("*") if f.is_file()):
                raise InputError(f"--gallery class folder '{d}' has no images",
                                 "add examples of that class, or remove the folder")
    return inputs.scan_labelled(root, vdata.IMAGES)


def with_gallery(lm, gallery: Path, batch_size: int, skip_bad: bool = False):
    """`lm` labelling by the centroids of a gallery's classes: returns (model, gallery embeddings, gallery
    labels as class indices)."""
    from dltool.core.classification import infer
    from dltool.vision import classify

    items = scan_gallery(gallery)
    net = lm.model.net if isinstance(lm.model, EmbeddingClassifier) else lm.model
    probe = replace(lm, model=EmbeddingClassifier(net, torch.zeros(0, 1)))
    data = classify.decode(lm, items, _Skip(skip_bad))
    emb = infer(probe, data.inputs, batch_size, embed=True)
    labels = np.array([str(c) for c in data.labels], dtype=object)
    classes = sorted(set(labels.tolist()))
    model = EmbeddingClassifier(net, centroids_of(emb, labels, classes)).to(lm.device).eval()
    ck = lm.ckpt
    task = MetricTask(ck["arch"], ck["arch_kwargs"], classes, ck["preprocess"], lm.device)
    gallery_lm = replace(lm, model=model, task=task, ckpt={**ck, "classes": classes})
    return gallery_lm, emb, torch.tensor([classes.index(c) for c in labels])


class _Skip:
    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad


def evaluate(cfg, gallery: Path | None) -> dict:
    """Nearest-centroid classification metrics (the gallery's classes, or the model's own), and retrieval
    metrics: precision@1 and MAP@R of each item among the gallery's (or, without one, among the others)."""
    from dltool.core.classification import classification_metrics, infer, report_evaluation
    from dltool.vision import classify

    cfg.validate()
    lm = classify.load(cfg.model, cfg.device, need_centroids=gallery is None)
    ref = ref_labels = None
    if gallery is not None:
        lm, ref, ref_labels = with_gallery(lm, gallery, cfg.batch_size, cfg.skip_bad)
    if not isinstance(lm.model, EmbeddingClassifier):
        raise OptionError("internal: evaluate needs an embedding model")
    data = classify.decode(lm, classify.scan_labelled(cfg), cfg)
    unknown = sorted({str(c) for c in data.labels} - set(lm.classes))
    if unknown:
        where = "--gallery has no class" if gallery is not None else "the model has no class"
        raise InputError(f"'{cfg.data}' has labels {where} for: {', '.join(unknown[:5])}",
                         f"the classes are: {', '.join(lm.classes[:20])}")
    y_true = np.array([lm.classes.index(str(c)) for c in data.labels])
    emb = infer(lm, data.inputs, cfg.batch_size, embed=True)
    y_pred = (emb @ lm.model.centroids.cpu().t()).argmax(1).numpy()
    metrics = classification_metrics(y_true, y_pred, lm.classes)
    metrics.update(retrieval(emb, torch.from_numpy(y_true), ref, ref_labels))
    metrics["reference"] = "gallery" if gallery is not None else "leave-one-out"
    report_evaluation(metrics, cfg.out)
    return metrics


def labelled_records(records: list[dict], threshold: float | None) -> list[dict]:
    """An embedding classifier's records get `distance` (cosine, 1 - score of the nearest class); beyond
    `threshold` the label is "unknown" (the nearest class stays first in topk)."""
    for rec in records:
        rec["distance"] = round(1.0 - rec["score"], 6)
        if threshold is not None and rec["distance"] > threshold:
            rec["label"] = "unknown"
    return records


def check_threshold(threshold: float | None) -> None:
    check_range("--threshold", threshold, low=0, high=2, hint="a cosine distance, 1 - cosine similarity, in [0, 2]")
