"""`generate gan train`: the GAN game on the engine's two optimizers (see dltool.core.train).

- dcgan: the minimax game of Goodfellow et al. 2014 with DCGAN networks; --loss minimax has the generator
  minimise log(1 - D(G(z))) as written, nonsaturating (the default) maximise log D(G(z)) instead, which
  has strong gradients early on.
- cgan: the same with labels from the class sub-folders, given to both networks.
- wgan-gp: a Wasserstein critic (no sigmoid, no BatchNorm) with the gradient penalty, lambda 10.
--d-steps N: N discriminator updates (one a batch) per generator update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dltool.core.applies import Applies
from dltool.core.errors import OptionError
from dltool.generate import common
from dltool.generate.common import GenerativeTask, noise

KINDS = ("dcgan", "cgan", "wgan-gp")
LOSSES = ("minimax", "nonsaturating")
GP_WEIGHT = 10.0
#: the options only some kinds take (dltool.core.applies)
KIND_OPTIONS = Applies("kind", {"dcgan": ("loss",), "cgan": ("loss",), "wgan-gp": ()})
#: Adam's betas per kind: DCGAN's (0.5, 0.999), WGAN-GP's (0.0, 0.9); other optimizers ignore them
BETAS = {"dcgan": (0.5, 0.999), "cgan": (0.5, 0.999), "wgan-gp": (0.0, 0.9)}


@dataclass(frozen=True)
class TrainConfig(common.TrainConfig):
    model: str = "dcgan"
    kind: str = "dcgan"
    loss: str = "nonsaturating"
    latent_dim: int = 32
    d_steps: int = 1

    family = "gan"

    @property
    def conditional(self) -> bool:
        return self.kind == "cgan"

    def validate(self) -> None:
        super().validate()
        if self.kind not in KINDS:
            from dltool.core.errors import unknown_name

            raise unknown_name("GAN kind", self.kind, KINDS)
        if self.loss not in LOSSES:
            from dltool.core.errors import unknown_name

            raise unknown_name("GAN loss", self.loss, LOSSES)
        KIND_OPTIONS.check(self)  # wgan-gp has the Wasserstein loss: --loss is refused when given
        if self.latent_dim < 1:
            raise OptionError(f"--latent-dim {self.latent_dim} must be at least 1")
        if self.d_steps < 1:
            raise OptionError(f"--d-steps {self.d_steps} must be at least 1")
        if self.run.val_split:
            raise OptionError("a GAN has no validation loss to hold data out for", "drop --val-split")

    def arch_kwargs(self, in_channels: int, num_classes: int) -> dict:
        return {**super().arch_kwargs(in_channels, num_classes), "num_classes": num_classes,
                "latent_dim": self.latent_dim, "batch_norm": self.kind != "wgan-gp"}


class GANTask(GenerativeTask):
    find_unused_parameters = True  # a discriminator update leaves the generator out of the graph

    def optimizers(self, model) -> dict:
        betas = BETAS[self.cfg.kind]
        return {"discriminator": [{"params": list(model.discriminator.parameters()), "betas": betas}],
                "generator": [{"params": list(model.generator.parameters()), "betas": betas}]}

    def train_step(self, model, batch, optimize, step):
        real, y = batch
        real = common.gdata.to_unit(real)
        y = y if self.cfg.conditional else None
        latent = self.arch_kwargs["latent_dim"]
        wgan = self.cfg.kind == "wgan-gp"
        d_real, d_fake, gp = model(real, torch.randn(len(real), latent, device=real.device), y,
                                   part="discriminator", penalty=wgan)
        d_real, d_fake = d_real.float(), d_fake.float()
        if wgan:
            d_loss = d_fake.mean() - d_real.mean() + GP_WEIGHT * gp.float()
        else:
            d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        optimize("discriminator", d_loss)
        if (step + 1) % self.cfg.d_steps == 0:
            g_out = model(real, torch.randn(len(real), latent, device=real.device), y, part="generator").float()
            if wgan:
                g_loss = -g_out.mean()
            elif self.cfg.loss == "minimax":
                g_loss = -F.binary_cross_entropy_with_logits(g_out, torch.zeros_like(g_out))  # min log(1 - D)
            else:
                g_loss = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))    # max log D
            optimize("generator", g_loss)
            raw = getattr(model, "module", model)  # under DDP the wrapper, whose .module is ours
            raw.generator_ema.update_parameters(raw.generator)
        return d_loss  # train_loss: the discriminator's (the critic's) loss

    def process(self) -> dict:
        return {"kind": self.cfg.kind}

    def sample(self, model, n, labels, generator):
        return draw(model, n, labels, generator)


def draw(model, n: int, labels, generator: torch.Generator) -> torch.Tensor:
    device = next(model.parameters()).device
    return generate(model, noise((n, model.latent_dim), generator, device), labels)


def generate(model, z: torch.Tensor, labels) -> torch.Tensor:
    return model.generator_ema.module(z, labels).float()


def train(cfg: TrainConfig) -> dict:
    return common.train(cfg, GANTask)
