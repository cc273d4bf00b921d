"""`generate vae train`: a convolutional VAE; loss = Bernoulli reconstruction + beta x KL(q(z|x) || N(0, I)),
per image (beta 1 is the ELBO; Higgins et al.'s beta-VAE above 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dltool.core.errors import OptionError
from dltool.core.run import RunConfig
from dltool.generate import common
from dltool.generate.common import GenerativeTask, noise


@dataclass(frozen=True)
class TrainConfig(common.TrainConfig):
    model: str = "vae"
    latent_dim: int = 16
    beta: float = 1.0
    run: RunConfig = RunConfig(val_split=0.1)

    family = "vae"

    def validate(self) -> None:
        super().validate()
        if self.latent_dim < 1:
            raise OptionError(f"--latent-dim {self.latent_dim} must be at least 1")
        if not self.beta >= 0:
            raise OptionError(f"--beta {self.beta} must be >= 0")

    def arch_kwargs(self, in_channels: int, num_classes: int) -> dict:
        return {**super().arch_kwargs(in_channels, num_classes), "latent_dim": self.latent_dim}


def elbo_terms(model, x_uint8):
    """(reconstruction, KL), each summed over an image's pixels / latent dims and averaged over the batch."""
    x = x_uint8.float() / 255
    logits, mu, logvar = model(x * 2 - 1)
    recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / len(x)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).float().sum() / len(x)
    return recon, kl


class VAETask(GenerativeTask):
    monitor, monitor_mode = "loss", "min"

    def loss(self, model, batch):
        recon, kl = elbo_terms(model, batch[0])
        return recon + self.cfg.beta * kl

    def evaluate(self, model, batches) -> dict:
        sums, n = {"recon": 0.0, "kl": 0.0}, 0
        for x, _ in batches:
            recon, kl = elbo_terms(model, x)
            sums["recon"] += recon.item() * len(x)
            sums["kl"] += kl.item() * len(x)
            n += len(x)
        recon, kl = sums["recon"] / n, sums["kl"] / n
        return {"loss": recon + self.cfg.beta * kl, "recon": recon, "kl": kl}

    def sample(self, model, n, labels, generator):
        return draw(model, n, generator)


def draw(model, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I) decoded to the decoder's mean, in [-1, 1]."""
    device = next(model.parameters()).device
    return decode(model, noise((n, model.latent_dim), generator, device))


def decode(model, z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(model.decode(z).float()) * 2 - 1


def train(cfg: TrainConfig) -> dict:
    from dltool.generate.plan import plan_vae

    return common.train(cfg, VAETask, plan_vae)
