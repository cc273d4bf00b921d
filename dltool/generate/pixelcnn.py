"""`generate pixelcnn train`: an autoregressive PixelCNN with a 256-way categorical per sub-pixel; the
training loss is the NLL in nats/dim, validation reports it in bits/dim on the held-out split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dltool.core.run import RunConfig
from dltool.generate import common
from dltool.generate.common import GenerativeTask


@dataclass(frozen=True)
class TrainConfig(common.TrainConfig):
    model: str = "pixelcnn"
    run: RunConfig = RunConfig(val_split=0.1)

    family = "pixelcnn"


def nll(model, x_uint8) -> torch.Tensor:
    """Mean negative log-likelihood per sub-pixel, in nats."""
    return F.cross_entropy(model(x_uint8).float(), x_uint8.long())


class PixelCNNTask(GenerativeTask):
    monitor, monitor_mode = "bpd", "min"

    def loss(self, model, batch):
        return nll(model, batch[0])

    def evaluate(self, model, batches) -> dict:
        total, n = 0.0, 0
        for x, _ in batches:
            total += nll(model, x).item() * len(x)
            n += len(x)
        return {"loss": total / n, "bpd": total / n / math.log(2)}

    def sample(self, model, n, labels, generator):
        size, c = self.cfg.img_size, self.arch_kwargs["in_channels"]
        return draw(model, n, (c, size, size), generator)


@torch.no_grad()
def draw(model, n: int, shape, generator: torch.Generator) -> torch.Tensor:
    """Sub-pixel by sub-pixel in raster order (row, column, channel), each drawn from its categorical."""
    device = next(model.parameters()).device
    c, h, w = shape
    x = torch.zeros(n, c, h, w, dtype=torch.uint8, device=device)
    for i in range(h):
        for j in range(w):
            for k in range(c):
                probs = model(x)[:, :, k, i, j].float().softmax(1).cpu()
                x[:, k, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device, torch.uint8)
    return x.float() / 127.5 - 1


def train(cfg: TrainConfig) -> dict:
    return common.train(cfg, PixelCNNTask)
