"""`generate diffusion train`: DDPM (Ho et al. 2020). The process is one object (GaussianDiffusion: the
noise schedule, the training target and the samplers, DDPM's ancestral one and DDIM's deterministic
one, Song et al. 2021); the network that predicts the noise is another (models/diffusion_unet.py).

EMA weights are the task's, not the engine's: they are part of the model (DiffusionModel.ema, a
torch.optim.swa_utils.AveragedModel updated after every step in train_step), so its state_dict carries
them into every checkpoint, exact resume and model.pt with no engine code, and samplers use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.errors import OptionError
from dltool.generate import common
from dltool.generate.common import GenerativeTask, noise
from dltool.generate.models import NETWORKS

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")


def beta_schedule(name: str, timesteps: int) -> torch.Tensor:
    """linear: Ho et al.'s 1e-4 .. 0.02 (scaled to the number of steps); cosine: Nichol & Dhariwal 2021."""
    if name == "linear":
        scale = 1000 / timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    s = 0.008
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


class GaussianDiffusion(nn.Module):
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I); the network predicts the noise. Constants are
    buffers, so .to(device) moves them."""

    def __init__(self, timesteps: int = 1000, schedule: str = "cosine"):
        super().__init__()
        if timesteps < 2:
            raise OptionError(f"--timesteps {timesteps} must be at least 2")
        if schedule not in SCHEDULES:
            from dltool.core.errors import unknown_name

            raise unknown_name("schedule", schedule, SCHEDULES)
        self.timesteps = timesteps
        betas = beta_schedule(schedule, timesteps)
        abar = torch.cumprod(1 - betas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        for name, value in {"betas": betas, "abar": abar, "abar_prev": abar_prev,
                            "posterior_var": betas * (1 - abar_prev) / (1 - abar)}.items():
            self.register_buffer(name, value.float(), persistent=False)

    @staticmethod
    def _at(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return v[t][:, None, None, None]

    def q_sample(self, x0, t, eps):
        return self._at(self.abar, t).sqrt() * x0 + (1 - self._at(self.abar, t)).sqrt() * eps

    def loss(self, net, x0) -> torch.Tensor:
        """The simple objective: E ||eps - eps_theta(x_t, t)||^2 at a uniform t."""
        t = torch.randint(0, self.timesteps, (len(x0),), device=x0.device)
        eps = torch.randn_like(x0)
        return F.mse_loss(net(self.q_sample(x0, t, eps), t).float(), eps)

    def _x0(self, x, eps, t):
        abar = self._at(self.abar, t)
        return ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)

    @torch.no_grad()
    def sample(self, net, shape, generator: torch.Generator, *, sampler: str = "ddpm", steps: int | None = None):
        """x_T ~ N(0, I) walked back to x_0. ddpm: every one of the T steps, ancestral; ddim: `steps`
        evenly spaced steps, eta 0 (deterministic given x_T)."""
        device = self.abar.device
        x = noise(shape, generator, device)
        if sampler == "ddpm":
            if steps not in (None, self.timesteps):
                raise OptionError(f"--steps {steps}: the DDPM sampler takes all {self.timesteps} steps",
                                  "drop --steps, or use --sampler ddim")
            for i in reversed(range(self.timesteps)):
                t = torch.full((shape[0],), i, device=device, dtype=torch.long)
                x0 = self._x0(x, net(x, t).float(), t)
                abar, abar_prev, beta = (self._at(v, t) for v in (self.abar, self.abar_prev, self.betas))
                mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x) / (1 - abar)
                x = mean + (self._at(self.posterior_var, t).sqrt() * noise(shape, generator, device) if i else 0)
            return x
        steps = steps or 50
        if not 1 <= steps <= self.timesteps:
            raise OptionError(f"--steps {steps} must be between 1 and the model's {self.timesteps} timesteps")
        ts = torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()
        for i, cur in enumerate(ts):
            t = torch.full((shape[0],), cur, device=device, dtype=torch.long)
            eps = net(x, t).float()
            x0 = self._x0(x, eps, t)
            abar_next = self.abar[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=device)
            # the step keeps the network's eps: re-deriving it from the clamped x0 (as some samplers do)
            # drove a 60-epoch digits model off the data (FD 84.7 against 21.5 kept, DDPM's 12.0)
            x = abar_next.sqrt() * x0 + (1 - abar_next).sqrt() * eps
        return x


class DiffusionModel(nn.Module):
    """The trained network and its exponential moving average (the weights samplers use)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        from dltool.core.ema import ema_copy

        self.net = net
        self.ema = ema_copy(net)

    def forward(self, x, t):
        return self.net(x, t)


def build_model(arch: str, **arch_kwargs) -> DiffusionModel:
    """The model the engine trains and model files hold: the registry's network with its EMA copy."""
    return DiffusionModel(NETWORKS.create(arch, **arch_kwargs))


@dataclass(frozen=True)
class TrainConfig(common.TrainConfig):
    model: str = "unet"
    timesteps: int = 1000
    schedule: str = "cosine"

    family = "diffusion"

    def validate(self) -> None:
        super().validate()
        GaussianDiffusion(self.timesteps, self.schedule)  # validates both


class DiffusionTask(GenerativeTask):
    def __init__(self, *args):
        super().__init__(*args)
        self.diffusion = GaussianDiffusion(self.cfg.timesteps, self.cfg.schedule).to(self.device)

    def optimizers(self, model) -> dict:
        return {"model": list(model.net.parameters())}

    def train_step(self, model, batch, optimize, step):
        raw = getattr(model, "module", model)  # under DDP the wrapper, whose .module is ours
        loss = self.diffusion.loss(model, common.gdata.to_unit(batch[0]))
        optimize("model", loss)
        raw.ema.update_parameters(raw.net)
        return loss

    def evaluate(self, model, batches) -> dict:
        losses, n = 0.0, 0
        for x, _ in batches:
            losses += self.diffusion.loss(model.ema.module, common.gdata.to_unit(x)).item() * len(x)
            n += len(x)
        return {"loss": losses / n}

    def process(self) -> dict:
        return {"timesteps": self.cfg.timesteps, "schedule": self.cfg.schedule}

    def sample(self, model, n, labels, generator):
        size, c = self.cfg.img_size, self.arch_kwargs["in_channels"]
        steps = min(50, self.cfg.timesteps)  # progress grids: DDIM, quick
        return self.diffusion.sample(model.ema.module, (n, c, size, size), generator, sampler="ddim", steps=steps)


def draw(model: DiffusionModel, process: dict, n: int, shape, generator, *, sampler="ddpm", steps=None):
    diffusion = GaussianDiffusion(process["timesteps"], process["schedule"]).to(next(model.parameters()).device)
    return diffusion.sample(model.ema.module, (n, *shape), generator, sampler=sampler, steps=steps)


def train(cfg: TrainConfig) -> dict:
    return common.train(cfg, DiffusionTask)
