"""Deep embedded clustering (DEC, Xie et al. 2016): the network and the clustering task for the engine.

`ClusterNet` is the shared autoencoder of dltool.nn (its encoder maps scaled rows to codes z) plus k
trainable cluster centres mu_j in code space. Its soft assignment is the Student-t kernel

    q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2),  normalised over j.

`DeepClusterTask` trains it with KL(P || Q) against the sharpened target distribution

    p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'),   f_j = sum_i q_ij  (soft cluster frequencies),

plus `recon_weight` x the reconstruction MSE (IDEC's guard against a distorted code space; 0 gives
plain DEC). P is recomputed from the whole table every `update_interval` batches, or after every
epoch when it is 0; each recomputation also counts the share of rows whose hard assignment
(argmax_j q_ij) changed since the previous one, and training stops (through the engine's
end_epoch hook) once that share falls below `tol`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dltool.core.task import TaskHooks
from dltool.nn.autoencoder import AutoencoderNet

CHUNK = 8192


def soft_assign(z: torch.Tensor, centers: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t soft assignments q (rows sum to 1), computed in float32 or better."""
    z, centers = z.float(), centers.float()
    d2 = (z[:, None, :] - centers[None, :, :]).pow(2).sum(-1)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target p: q squared, divided by the cluster frequency, rows normalised."""
    w = q.pow(2) / q.sum(0)
    return w / w.sum(1, keepdim=True)


class ClusterNet(nn.Module):
    def __init__(self, *, in_features: int, code_dim: int, n_clusters: int, hidden=(256, 128),
                 activation: str = "relu", alpha: float = 1.0):
        super().__init__()
        self.autoencoder = AutoencoderNet(in_features=in_features, code_dim=code_dim, hidden=hidden,
                                          activation=activation)
        self.centers = nn.Parameter(torch.zeros(n_clusters, code_dim))
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor):
        """Scaled rows -> (soft assignments q, reconstruction)."""
        z, x_hat = self.autoencoder(x)
        return soft_assign(z, self.centers, self.alpha), x_hat

    def proba(self, x_raw: torch.Tensor) -> torch.Tensor:
        """Raw feature rows -> soft assignments."""
        return soft_assign(self.autoencoder.embed(x_raw), self.centers, self.alpha)


class DeepClusterTask(TaskHooks):
    """What the engine needs for DEC's clustering phase (see dltool.core.train)."""

    monitor = "loss"
    monitor_mode = "last"  # KL to a target that moves every update ranks no epochs: keep the final one
    channels_last = False

    def __init__(self, X: torch.Tensor, *, update_interval: int = 0, tol: float = 1e-3, recon_weight: float = 0.1,
                 payload_fields: dict | None = None):
        self.X = X  # every scaled row, on the device: the target distribution covers the whole table
        self.update_interval, self.tol, self.recon_weight = update_interval, tol, recon_weight
        self.payload_fields = payload_fields or {}
        self.p = None
        self.labels = None
        self.delta = None
        self.converged = None
        self.steps_since_update = 0

    @torch.no_grad()
    def _update(self, model) -> None:
        q = torch.cat([model(self.X[s:s + CHUNK])[0].float() for s in range(0, len(self.X), CHUNK)])
        self.p = target_distribution(q)
        labels = q.argmax(1)
        if self.labels is not None:
            self.delta = (labels != self.labels).float().mean().item()
            if self.delta < self.tol and self.converged is None:
                self.converged = f"{self.delta:.4%} of the assignments changed, below --tol {self.tol:g}"
        self.labels = labels
        self.steps_since_update = 0

    def loss(self, model, batch):
        x, idx = batch
        if self.p is None or (self.update_interval and self.steps_since_update >= self.update_interval):
            self._update(model)
        self.steps_since_update += 1
        q, x_hat = model(x)
        kl = F.kl_div(q.clamp_min(1e-12).log(), self.p[idx], reduction="batchmean")
        if not self.recon_weight:
            return kl
        return kl + self.recon_weight * F.mse_loss(x_hat.float(), x.float())

    def state_dict(self) -> dict:
        """What a resume from the middle of an epoch needs besides the model (the engine saves it)."""
        return {"p": self.p, "labels": self.labels, "delta": self.delta, "converged": self.converged,
                "steps_since_update": self.steps_since_update}

    def load_state_dict(self, state: dict) -> None:
        device = self.X.device
        self.p = None if state["p"] is None else state["p"].to(device)
        self.labels = None if state["labels"] is None else state["labels"].to(device)
        self.delta, self.converged = state["delta"], state["converged"]
        self.steps_since_update = state["steps_since_update"]

    def end_epoch(self, model) -> dict:
        if not self.update_interval:
            self._update(model)
        out = {} if self.delta is None else {"changed": self.delta}
        if self.converged:
            out["stop"] = self.converged
        return out

    def evaluate(self, model, batches) -> dict:  # the clustering phase has no validation split
        q_sum, n = 0.0, 0
        for x, _ in batches:
            q, _ = model(x)
            q_sum += F.kl_div(q.clamp_min(1e-12).log(), target_distribution(q), reduction="sum").item()
            n += len(x)
        return {"loss": q_sum / max(1, n)}

    def payload(self, model) -> dict:
        return {**self.payload_fields, "state_dict": model.state_dict()}
