"""Few-shot diagnosis (issue 28): which layer of LeNet-5, trained on digits 0-4 with which loss, transfers to 5-9.

A plain PyTorch loop (not dltool's engine), so every layer's output can be read: LeNet-5 at 32x32 trained
on sample_data/digits/train/0-4 with cross-entropy, triplet (semi-hard), ArcFace or contrastive loss on a
64-unit output; after 1, 4 and 15 epochs each layer's output (conv400: the conv stack's, fc120, fc84,
head) labels the unseen 5-9 by the nearest class centroid (cosine) of 5 gallery images a class, over the
10 episodes benchmarks/few_shot.py uses. Found: fc120-fc84 fold onto the five training classes (0.86 untrained
-> 0.56-0.75 trained) while the conv output keeps 0.87-0.89 whatever the loss: why a metric lenet embeds
under its fully-connected layers (dltool/vision/models/lenet.py, mlp_head).

Usage: python benchmarks/few_shot_layers.py ce,triplet,arcface,contrastive
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from pytorch_metric_learning import losses, miners

torch.set_num_threads(1)
DIGITS = Path(__file__).resolve().parent.parent / "sample_data" / "digits"


def load(split: str, classes) -> tuple[torch.Tensor, np.ndarray]:
    x, y = [], []
    for c in classes:
        for p in sorted((DIGITS / split / str(c)).glob("*.png")):
            x.append(np.asarray(Image.open(p).convert("L").resize((32, 32), Image.BILINEAR), np.float32) / 255)
            y.append(c)
    return torch.tensor(np.stack(x))[:, None], np.array(y)


X_SEEN, Y_SEEN = load("train", range(5))
_a, _b = load("train", range(5, 10)), load("test", range(5, 10))
X_NEW, Y_NEW = torch.cat([_a[0], _b[0]]), np.concatenate([_a[1], _b[1]])
MEAN, STD = X_SEEN.mean(), X_SEEN.std()


def episodes_accuracy(emb: torch.Tensor, n: int = 10, shots: int = 5) -> float:
    """Mean 5-way accuracy of the nearest class centroid (cosine) over benchmarks/few_shot.py's episodes."""
    emb = F.normalize(emb, dim=1).numpy()
    accs = []
    for e in range(n):
        rng = np.random.default_rng(1000 + e)
        gal = [rng.choice(np.flatnonzero(Y_NEW == c), shots, replace=False) for c in range(5, 10)]
        q = np.setdiff1d(np.arange(len(Y_NEW)), np.concatenate(gal))
        cent = np.stack([emb[g].mean(0) for g in gal])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        accs.append((np.arange(5, 10)[(emb[q] @ cent.T).argmax(1)] == Y_NEW[q]).mean())
    return float(np.mean(accs))


class LeNet(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                                  nn.AvgPool2d(2), nn.Flatten())
        self.fc1 = nn.Sequential(nn.Linear(400, 120), nn.Tanh())
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.Tanh())
        self.head = nn.Linear(84, k)

    def layers(self, x) -> dict:
        a = self.conv(x)
        b = self.fc1(a)
        c = self.fc2(b)
        return {"conv400": a, "fc120": b, "fc84": c, "head": self.head(c)}


def report(tag: str, net: LeNet) -> None:
    net.eval()
    with torch.no_grad():
        out = net.layers((X_NEW - MEAN) / STD)
    print(tag, {k: round(episodes_accuracy(v), 3) for k, v in out.items()}, flush=True)


def train(loss: str, epochs: int = 15, dim: int = 64, seed: int = 0) -> None:
    torch.manual_seed(seed)
    net = LeNet(5 if loss == "ce" else dim)
    extra, miner = [], None
    if loss == "arcface":
        fn = losses.ArcFaceLoss(5, dim, margin=28.6)
        extra = list(fn.parameters())
    elif loss == "triplet":
        fn, miner = losses.TripletMarginLoss(margin=0.2), miners.TripletMarginMiner(0.2, type_of_triplets="semihard")
    elif loss == "contrastive":
        fn = losses.ContrastiveLoss(pos_margin=0, neg_margin=1)
    opt = torch.optim.Adam(list(net.parameters()) + extra, 1e-3)
    y = torch.tensor(Y_SEEN)
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            b = perm[i:i + 64]
            out = net.layers((X_SEEN[b] - MEAN) / STD)["head"]
            if loss == "ce":
                value = F.cross_entropy(out, y[b])
            else:
                value = fn(out, y[b], miner(out, y[b])) if miner is not None else fn(out, y[b])
            opt.zero_grad()
            value.backward()
            opt.step()
        if ep + 1 in (1, 4, 15):
            report(f"{loss} epoch {ep + 1}", net)


if __name__ == "__main__":
    print("raw pixels", round(episodes_accuracy(X_NEW.flatten(1)), 3), flush=True)
    report("untrained", LeNet(5))
    for name in (sys.argv[1] if len(sys.argv) > 1 else "ce,triplet,arcface,contrastive").split(","):
        train(name)
