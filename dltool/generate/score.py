"""`generate score`: how good a folder of samples is, against a folder of real images, in the feature space
of a `vision classify` model (its --embed features, the input of its head):

- fd: the Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al. 2017's FID,
  with the classifier in place of Inception);
- mean_confidence, coverage, class_counts: the classifier's mean top probability on the samples, and how
  many of its classes are predicted at least once;
- precision, recall: Kynkäänniemi et al. 2019, k-NN balls around each real (sample) feature vector as the
  manifold: the share of samples inside the real manifold, and of real images inside the samples';
- class_accuracy (samples in class sub-folders, e.g. from `sample --class`): how often a sample is
  predicted as its folder's class, overall and per class.

With --inception PATH (torchvision's inception_v3 ImageNet state_dict, e.g. inception_v3_google-0cc3c7bd.pth,
which the user supplies: nothing is downloaded) the result also holds `fid`, the Fréchet distance in
Inception's 2048-d pool features at 299x299. Those weights are torchvision's port, not the TensorFlow
graph of the FID paper, so values are close to but not identical with published FIDs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltool.core import images as vdata
from dltool.core.device import resolve_device
from dltool.core.errors import InputError, ModelFileError, OptionError
from dltool.generate import data as gdata


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to the rows."""
    import warnings

    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # features of a ReLU layer often leave some dimensions constant: the product is singular, and its
        # square root is still what the distance needs (the FID reference code warns and carries on too)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.isfinite(covmean).all():  # offset both, as the FID reference code does
            eps = np.eye(len(s_a)) * 1e-6
            covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean.real))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall: a point is on a manifold when it lies within the distance from some
    manifold point to that point's k-th nearest neighbour (itself excluded)."""
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    def radii(x):
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
        return dist[:, -1]

    def inside(points, manifold, r):
        return float((pairwise_distances(points, manifold) <= r[None]).any(1).mean())

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def _read(folder, size: int, mode: str):
    paths, names = gdata.scan(folder)
    images, kept = vdata.decode(paths, size, mode, skip_bad=False)
    return images, None if names is None else [names[i] for i in kept]


def score(samples, real, load_classifier, *, inception: Path | None = None, k: int = 3, batch_size: int = 256,
          device: str = "auto") -> dict:
    """`load_classifier(device)` -> the judging image classifier as a dltool.core.modelfile.LoadedModel (the
    command layer binds it to `vision classify`'s loader: a domain does not import another)."""
    from dltool.core.classification import infer

    if k < 1:
        raise OptionError(f"--k {k} must be at least 1")
    dev = resolve_device(device)
    lm = load_classifier(dev)
    size, mode = lm.preprocess["img_size"], lm.preprocess["mode"]
    fake_x, fake_names = _read(samples, size, mode)
    real_x, _ = _read(real, size, mode)
    for name, x in (("samples", fake_x), ("real images", real_x)):
        if len(x) <= k:
            raise InputError(f"{len(x)} {name}: too few to score with --k {k}", "score at least 10 images of each")
    logits = infer(lm, fake_x, batch_size)
    probs = logits.softmax(1).numpy()
    pred = probs.argmax(1)
    feats_fake = infer(lm, fake_x, batch_size, embed=True).numpy().astype(np.float64)
    feats_real = infer(lm, real_x, batch_size, embed=True).numpy().astype(np.float64)
    precision, recall = precision_recall(feats_real, feats_fake, k)
    counts = np.bincount(pred, minlength=len(lm.classes))
    result = {"samples": str(samples), "real": str(real), "n_samples": len(fake_x), "n_real": len(real_x),
              "fd": frechet_distance(feats_fake, feats_real),
              "mean_confidence": float(probs.max(1).mean()),
              "coverage": float((counts > 0).mean()), "classes_covered": int((counts > 0).sum()),
              "class_counts": {c: int(n) for c, n in zip(lm.classes, counts)},
              "precision": precision, "recall": recall, "k": k}
    if fake_names is not None:
        unknown = sorted(set(fake_names) - set(lm.classes))
        if unknown:
            raise InputError(f"sample folders {', '.join(unknown[:5])} are not classes of the classifier",
                             f"its classes are: {', '.join(lm.classes[:20])}")
        want = np.array([lm.classes.index(c) for c in fake_names])
        result["class_accuracy"] = float((pred == want).mean())
        result["per_class_accuracy"] = {lm.classes[c]: float((pred[want == c] == c).mean()) for c in np.unique(want)}
    if inception is not None:
        result["fid"] = frechet_distance(*(inception_features(x, inception, dev, batch_size) for x in (fake_x, real_x)))
    return result


def inception_features(images: np.ndarray, weights: Path, device, batch_size: int) -> np.ndarray:
    """2048-d pool features of torchvision's inception_v3 with the user's weights, at 299x299 RGB."""
    import torch
    import torch.nn.functional as F
    from torchvision.models import inception_v3

    from dltool.core.modelfile import load_checkpoint

    state = load_checkpoint(weights)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        raise ModelFileError(f"--inception {weights} is not an inception_v3 state_dict ({str(e)[:160]})",
                             "pass torchvision's inception_v3 ImageNet weights (.pth)") from None
    net.fc = torch.nn.Identity()
    net.to(device).eval()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).to(device).float() / 255
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(net((x - mean) / std).float().cpu())
    return torch.cat(out).numpy().astype(np.float64)
