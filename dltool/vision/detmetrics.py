"""COCO-style detection metrics, written to match pycocotools' COCOeval (bbox and segm, area "all", maxDets 100).

Written here rather than calling COCOeval because the engine validates every epoch, on every rank's
shard: the matching runs per image (`match`), its results are plain arrays that travel between ranks
and concatenate (`Matches`), and AP is computed once over them (`summarise`). pycocotools is a dev
dependency only: the test compares these figures to COCOeval's on the same predictions.

COCOeval's rules, kept: per image and class the detections are taken by descending score (the best
100), each matched greedily to the unmatched ground truth of highest IoU >= the threshold; per class,
over all images, precision is made monotone and sampled at 101 recall points; AP is their mean, and a
class without ground truth is left out of the mean. Masks (iouType 'segm') match by mask IoU instead
of box IoU, and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) xyxy -> (n, m) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, H, W) x (m, H, W) binary masks -> (n, m) IoU (pycocotools' maskUtils.iou without crowds)."""
    a = a.reshape(len(a), -1).astype(np.float32)
    b = b.reshape(len(b), -1).astype(np.float32)
    inter = (a @ b.T).astype(np.float64)  # whole pixel counts: exact in float32 up to 2**24 pixels
    union = a.sum(1, dtype=np.float64)[:, None] + b.sum(1, dtype=np.float64)[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class Matches:
    """Every kept detection of a set of images: class, score, and whether it matched at each threshold;
    and the ground-truth count per class. Concatenating two (`+`) is evaluating their images together."""
    labels: np.ndarray   # (D,) int
    scores: np.ndarray   # (D,) float
    tp: np.ndarray       # (D, T) bool
    n_gt: np.ndarray     # (K,) int

    @classmethod
    def empty(cls, k: int) -> Matches:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(IOU_THRESHOLDS)), bool), np.zeros(k, np.int64))

    def __add__(self, other: Matches) -> Matches:
        return Matches(np.concatenate([self.labels, other.labels]), np.concatenate([self.scores, other.scores]),
                       np.concatenate([self.tp, other.tp]), self.n_gt + other.n_gt)

    def to_lists(self) -> dict:
        """Plain data (for gathering over ranks)."""
        return {"labels": self.labels.tolist(), "scores": self.scores.tolist(),
                "tp": np.packbits(self.tp, axis=1).tolist() if len(self.tp) else [], "n_gt": self.n_gt.tolist()}

    @classmethod
    def from_lists(cls, d: dict) -> Matches:
        tp = np.unpackbits(np.asarray(d["tp"], np.uint8).reshape(len(d["labels"]), -1), axis=1)
        return cls(np.asarray(d["labels"], np.int64), np.asarray(d["scores"], np.float64),
                   tp[:, :len(IOU_THRESHOLDS)].astype(bool), np.asarray(d["n_gt"], np.int64))


def match(boxes, scores, labels, gt_boxes, gt_labels, k: int, max_det: int = 100, *, masks=None,
          gt_masks=None) -> Matches:
    """One image: detections (D, 4), (D,), (D,) against its ground truth (G, 4), (G,); with masks (D, H, W)
    and gt_masks (G, H, W), matched by mask IoU (COCOeval's segm)."""
    boxes, scores, labels = np.asarray(boxes, np.float64), np.asarray(scores, np.float64), np.asarray(labels)
    gt_boxes, gt_labels = np.asarray(gt_boxes, np.float64).reshape(-1, 4), np.asarray(gt_labels)
    if masks is not None:
        masks, gt_masks = np.asarray(masks, bool), np.asarray(gt_masks, bool)
    out_l, out_s, out_tp = [], [], []
    for c in np.unique(labels):
        d = np.flatnonzero(labels == c)
        d = d[np.argsort(-scores[d], kind="mergesort")][:max_det]
        g = np.flatnonzero(gt_labels == c)
        tp = np.zeros((len(d), len(IOU_THRESHOLDS)), bool)
        if len(g):
            ious = box_iou(boxes[d], gt_boxes[g]) if masks is None else mask_iou(masks[d], gt_masks[g])
            for t, thr in enumerate(IOU_THRESHOLDS):
                taken = np.zeros(len(g), bool)
                for i in range(len(d)):
                    best, best_iou = -1, min(thr, 1 - 1e-10)
                    for j in range(len(g)):
                        if not taken[j] and ious[i, j] >= best_iou:
                            best, best_iou = j, ious[i, j]
                    if best >= 0:
                        taken[best] = True
                        tp[i, t] = True
        out_l.append(np.full(len(d), c))
        out_s.append(scores[d])
        out_tp.append(tp)
    n_gt = np.bincount(gt_labels.astype(np.int64), minlength=k)[:k] if len(gt_labels) else np.zeros(k, np.int64)
    if not out_l:
        return Matches(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(IOU_THRESHOLDS)), bool), n_gt)
    return Matches(np.concatenate(out_l).astype(np.int64), np.concatenate(out_s), np.concatenate(out_tp), n_gt)


def average_precision(m: Matches, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Class c: (AP per threshold (T,), precision (R,) and recall (R,) curves at IoU 0.5); None without GT."""
    n = m.n_gt[c]
    if n == 0:
        return None
    d = np.flatnonzero(m.labels == c)
    d = d[np.argsort(-m.scores[d], kind="mergesort")]
    tp = m.tp[d]
    tps, fps = np.cumsum(tp, 0), np.cumsum(~tp, 0)
    ap = np.zeros(len(IOU_THRESHOLDS))
    for t in range(len(IOU_THRESHOLDS)):
        recall = tps[:, t] / n
        precision = tps[:, t] / np.maximum(tps[:, t] + fps[:, t], np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        sampled = np.where(idx < len(precision), precision[np.minimum(idx, max(len(precision) - 1, 0))]
                           if len(precision) else 0.0, 0.0)
        ap[t] = sampled.mean()
    curve_r = tps[:, 0] / n
    curve_p = tps[:, 0] / np.maximum(tps[:, 0] + fps[:, 0], np.spacing(1))
    return ap, curve_p, curve_r


def summarise(m: Matches, classes: list[str], conf: float) -> dict:
    """mAP@0.5, mAP@0.5:0.95, per-class AP, and precision / recall (IoU 0.5) of detections scoring >= conf."""
    per_class, aps = {}, []
    for c, name in enumerate(classes):
        r = average_precision(m, c)
        if r is None:
            per_class[name] = {"ap50": None, "ap": None, "n": 0}
            continue
        aps.append(r[0])
        per_class[name] = {"ap50": float(r[0][0]), "ap": float(r[0].mean()), "n": int(m.n_gt[c])}
    kept = m.scores >= conf
    tp = int(m.tp[kept, 0].sum())
    n_det, n_gt = int(kept.sum()), int(m.n_gt.sum())
    aps = np.array(aps)
    return {"map50": float(aps[:, 0].mean()) if len(aps) else 0.0, "map": float(aps.mean()) if len(aps) else 0.0,
            "precision": tp / n_det if n_det else 0.0, "recall": tp / n_gt if n_gt else 0.0, "per_class": per_class}


def confusion(dets, truths, k: int, conf: float, iou: float = 0.5) -> np.ndarray:
    """(K+1) x (K+1) counts, rows true class, columns predicted, index K the background (Ultralytics'
    detection confusion matrix): detections >= conf are matched one to one to ground truth of any class
    at IoU >= iou, best IoU first; unmatched truth is a miss (column K), unmatched detection a false
    alarm (row K)."""
    cm = np.zeros((k + 1, k + 1), np.int64)
    for (boxes, scores, labels), (gt_boxes, gt_labels) in zip(dets, truths):
        keep = np.asarray(scores) >= conf
        boxes, labels = np.asarray(boxes).reshape(-1, 4)[keep], np.asarray(labels)[keep]
        gt_boxes, gt_labels = np.asarray(gt_boxes).reshape(-1, 4), np.asarray(gt_labels)
        ious = box_iou(boxes, gt_boxes) if len(boxes) and len(gt_boxes) else np.zeros((len(boxes), len(gt_boxes)))
        det_done, gt_done = np.zeros(len(boxes), bool), np.zeros(len(gt_boxes), bool)
        for i, j in zip(*np.unravel_index(np.argsort(-ious, axis=None, kind="mergesort"), ious.shape)):
            if ious[i, j] < iou:
                break
            if not det_done[i] and not gt_done[j]:
                det_done[i] = gt_done[j] = True
                cm[gt_labels[j], labels[i]] += 1
        for j in np.flatnonzero(~gt_done):
            cm[gt_labels[j], k] += 1
        for i in np.flatnonzero(~det_done):
            cm[k, labels[i]] += 1
    return cm
