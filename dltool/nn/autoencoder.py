"""The MLP autoencoder that `reduce autoencoder` and `cluster deep` share, and its training task for the
shared engine (dltool.core.train).

`AutoencoderNet` is a fully connected encoder (in -> hidden... -> code) and a mirrored decoder
(code -> reversed hidden... -> in), the course's activation between layers, a linear code and a
linear output. The input scaling travels with the network as buffers (`shift`, `scale`:
x' = (x - shift) / scale), so a saved state_dict alone embeds raw rows (`embed`).

`AutoencoderTask` is what the engine trains; `kind` picks the objective on scaled inputs x:

- undercomplete  MSE(decoder(encoder(x)), x)
- sparse         + sparsity * mean_i ||z_i||_1                      (L1 on the code)
- denoising      MSE(decoder(encoder(corrupt(x))), x); corrupt = x + N(0, noise^2) or a
                 random mask zeroing each value with probability `noise`
- contractive    + contractive * mean_i ||J_encoder(x_i)||_F^2      (Rifai et al. 2011)

The contractive term is exact: the per-row Jacobian of the encoder with respect to its input,
by reverse mode vectorised over the batch (torch.func.vmap(jacrev)), differentiable with respect
to the weights. Validation reports `loss` (clean-input reconstruction MSE plus the penalty),
`recon` (the reconstruction MSE alone) and, for sparse/contractive, `penalty`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.errors import OptionError
from dltool.core.scaling import Scaling, fit_scaling
from dltool.core.task import TaskHooks
from dltool.nn.mlp import mlp

KINDS = ("undercomplete", "sparse", "denoising", "contractive")
CORRUPTIONS = ("gaussian", "mask")


class AutoencoderNet(nn.Module):
    def __init__(self, *, in_features: int, code_dim: int, hidden: tuple[int, ...] | list[int] = (64, 32),
                 activation: str = "relu"):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if in_features < 1:
            raise OptionError(f"in_features={in_features} must be at least 1")
        if code_dim < 1:
            raise OptionError(f"--code-dim {code_dim} must be at least 1", "use --code-dim 2")
        if any(h < 1 for h in hidden):
            raise OptionError(f"--hidden {','.join(map(str, hidden))}: layer widths must be positive",
                              "e.g. --hidden 64,32")
        self.in_features, self.code_dim, self.hidden = in_features, code_dim, hidden
        self.register_buffer("shift", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.encoder = mlp([in_features, *hidden, code_dim], activation)
        self.decoder = mlp([code_dim, *reversed(hidden), in_features], activation)

    def set_scaling(self, shift, scale) -> None:
        self.shift.copy_(torch.as_tensor(shift, dtype=self.shift.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def unscale(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def forward(self, x: torch.Tensor, jacobian: bool = False):
        """Scaled input -> (code, reconstruction[, per-row squared Frobenius norm of d code / d x])."""
        z = self.encoder(x)
        x_hat = self.decoder(z)
        if jacobian:
            return z, x_hat, jacobian_sq_norm(self.encoder, x)
        return z, x_hat

    def embed(self, x_raw: torch.Tensor) -> torch.Tensor:
        """Raw feature rows -> codes."""
        return self.encoder(self.scale_input(x_raw))


def scaled_rows(X, scaling: str, device) -> tuple[Scaling, torch.Tensor]:
    """The scaling fitted on the rows X (dltool.core.scaling) and the scaled rows, float32 on `device`:
    what an autoencoder trains on, the scaling being what its shift/scale buffers hold."""
    fitted = fit_scaling(X, scaling)
    return fitted, torch.as_tensor(fitted.transform(X), dtype=torch.float32, device=device)


def jacobian_sq_norm(fn, x: torch.Tensor) -> torch.Tensor:
    """||d fn(x_i) / d x_i||_F^2 for every row i (exact; differentiable with respect to fn's weights)."""
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(fn))(x)  # (batch, code, in)
    return jac.pow(2).flatten(1).sum(1)


class AutoencoderTask(TaskHooks):
    """What the engine needs to train an AutoencoderNet (see dltool.core.train)."""

    monitor = "loss"
    monitor_mode = "min"
    channels_last = False

    # the weights default to 0 (that term off), not to tuned values: those live in the commands' configs
    def __init__(self, kind: str = "undercomplete", *, sparsity: float = 0.0, noise: float = 0.0,
                 corruption: str = "gaussian", contractive: float = 0.0, payload_fields: dict | None = None):
        if kind not in KINDS:
            raise OptionError(f"--kind '{kind}' is not one of {'|'.join(KINDS)}")
        self.kind, self.sparsity, self.noise = kind, sparsity, noise
        self.corruption, self.contractive = corruption, contractive
        self.payload_fields = payload_fields or {}

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if self.corruption == "mask":
            return x * (torch.rand_like(x) >= self.noise)
        return x + self.noise * torch.randn_like(x)

    def terms(self, model, x: torch.Tensor, *, train: bool):
        """(reconstruction MSE, penalty or None) on scaled inputs x."""
        inp = self.corrupt(x) if train and self.kind == "denoising" else x
        if self.kind == "contractive":
            z, x_hat, jac = model(inp, jacobian=True)
            penalty = self.contractive * jac.mean()
        else:
            z, x_hat = model(inp)
            penalty = self.sparsity * z.abs().sum(1).mean() if self.kind == "sparse" else None
        return F.mse_loss(x_hat.float(), x.float()), penalty

    def loss(self, model, batch):
        recon, penalty = self.terms(model, batch[0], train=True)
        return recon if penalty is None else recon + penalty

    def evaluate(self, model, batches) -> dict:
        import contextlib

        sums = {"recon": 0.0, "penalty": 0.0}
        n = 0
        # the contractive penalty differentiates the encoder, which inference mode forbids
        grad = self.kind == "contractive"
        with contextlib.ExitStack() as stack:
            if grad:
                stack.enter_context(torch.inference_mode(False))
                stack.enter_context(torch.enable_grad())
            for (x,) in batches:
                if grad:
                    x = x.clone()  # a normal tensor even when the batch was made in inference mode
                recon, penalty = self.terms(model, x, train=False)
                sums["recon"] += recon.item() * len(x)
                if penalty is not None:
                    sums["penalty"] += penalty.item() * len(x)
                n += len(x)
        out = {"loss": (sums["recon"] + sums["penalty"]) / n, "recon": sums["recon"] / n}
        if self.kind in ("sparse", "contractive"):
            out["penalty"] = sums["penalty"] / n
        return out

    def payload(self, model) -> dict:
        return {**self.payload_fields, "state_dict": model.state_dict()}
