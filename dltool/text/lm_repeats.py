"""Lines mode: how often a new line repeats a training line, as part of the model.

A network trained on lines puts some share M of its probability on the distinct training lines it has
read, a share set by how well it learnt them, not by how often new data repeats them: on makemore's names
the default lstm puts about a third of its probability on training names, where 14% of the test file's names are
training names (names.txt lists some twice) and the rest are new. The model a lines run saves is
therefore the two-part mixture

    P(x) = r * p(x) / M              x a training line (the token sequence of one, end marker included)
    P(x) = (1 - r) * p(x) / (1 - M)  any other line

of the network's p, where r is the share of the validation lines that are training lines (add-one
smoothed). Among the mixtures of this form r maximises the validation likelihood (its derivative in the
weight of the training lines is zero where their share of P equals their share of the validation lines),
and r = M is the network itself, so the mixture's validation loss is never worse but for the smoothing.
Both parts keep the network's preferences: among training lines, and among new ones.

`eval` and `score` add log(weight) to a line's log-probability; `sample` draws from p and keeps a line with
probability weight / the larger weight (rejection sampling: exact, and on average `draws` tries a line).
The training lines travel in the model file as 64-bit hashes of their token ids, never as text.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

#: the mixture is kept only if a sample takes at most this many draws of the network on average: a network
#: that puts nearly all (or almost none) of its probability on the training lines would be sampled slowly
MAX_DRAWS = 20.0


def line_key(ids) -> int:
    """A line's token ids (without the boundary markers) as a signed 64-bit hash, stable across runs."""
    data = b"".join(int(i).to_bytes(4, "little", signed=False) for i in ids)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def holds(keys: torch.Tensor, ids) -> bool:
    """Whether a line of these token ids (None: a line cut short) is among the sorted hashes `keys`."""
    if ids is None or not len(keys):
        return False
    key = line_key(ids)
    at = int(torch.searchsorted(keys, torch.tensor(key)))
    return at < len(keys) and int(keys[at]) == key


@dataclass
class Repeats:
    rate: float            # r: the share of new lines that repeat a training line
    network_share: float   # M: the network's probability on the training lines
    keys: torch.Tensor     # the training lines' hashes, sorted (int64: 8 bytes a line, where a set costs ~70)

    def log_weight(self, ids) -> float:
        """log P(x) - log p(x) for a line of these token ids (None: a line cut short, so not a training line)."""
        if holds(self.keys, ids):
            return math.log(self.rate / self.network_share)
        return math.log((1 - self.rate) / (1 - self.network_share))

    @property
    def draws(self) -> float:
        """The mean number of the network's samples per line kept (the larger of the two weights)."""
        return max(self.rate / self.network_share, (1 - self.rate) / (1 - self.network_share))

    def keep_probability(self, ids) -> float:
        return math.exp(self.log_weight(ids)) / self.draws

    def to_dict(self) -> dict:
        return {"rate": self.rate, "network_share": self.network_share, "keys": self.keys}

    @classmethod
    def from_dict(cls, data: dict | None) -> Repeats | None:
        if not data:
            return None
        return cls(float(data["rate"]), float(data["network_share"]), data["keys"])


def complete_lines(y: torch.Tensor, boundary: int) -> list[tuple[int, ...] | None]:
    """The token ids of each row of `line_tensors`' targets, or None for a line cut by the context (its
    targets do not end at the boundary)."""
    out = []
    for row in y.tolist():
        valid = [t for t in row if t >= 0]
        out.append(tuple(valid[:-1]) if valid and valid[-1] == boundary else None)
    return out


@torch.inference_mode()
def line_logprobs(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The network's log-probability (nats) of each row of (x, y): inputs and targets, the targets padded with
    -1 (as `line_tensors` makes them), float64."""
    import torch.nn.functional as F

    lengths = (y >= 0).sum(1)
    order = lengths.argsort()
    out = torch.zeros(len(y), dtype=torch.float64)
    device = next(model.parameters()).device
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        width = max(int(lengths[idx].max()), 1)
        xb, yb = x[idx, :width].to(device), y[idx, :width].to(device)
        logits, _ = model(xb)
        nll = F.cross_entropy(logits.float().transpose(1, 2), yb, ignore_index=-1, reduction="none")
        out[idx] = -nll.double().sum(1).cpu()
    return out


def fit(model, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None,
        boundary: int, rate: float | None = None) -> tuple[Repeats, dict]:
    """The mixture for a trained network (in eval mode) from the training and validation (x, y) of
    `line_tensors`: r measured on the validation lines unless `rate` is given. Returns it with its figures
    (rate, network share, draws; with validation lines, the share of them that are training lines and the
    mixture's validation loss per token)."""
    first = {}  # a distinct training line's hash -> its first row
    for i, ids in enumerate(complete_lines(train[1], boundary)):
        if ids is not None:
            first.setdefault(line_key(ids), i)
    rows = torch.tensor(sorted(first.values()), dtype=torch.long)
    share = float(line_logprobs(model, train[0][rows], train[1][rows]).exp().sum()) if len(rows) else 0.0
    share = min(max(share, 1e-12), 1 - 1e-12)
    keys = torch.tensor(sorted(first), dtype=torch.int64)
    figures = {}
    if val is not None:
        val_lines = complete_lines(val[1], boundary)
        repeated = sum(holds(keys, ids) for ids in val_lines)
        if rate is None:
            rate = (repeated + 1) / (len(val_lines) + 2)
        figures["val_repeats"] = repeated / len(val_lines)
    repeats = Repeats(rate, share, keys)
    figures = {"repeat_rate": rate, "repeat_network_share": share, "repeat_draws": repeats.draws, **figures}
    if val is not None:
        val_logp = line_logprobs(model, *val)
        tokens = int((val[1] >= 0).sum())
        mixture = sum(float(lp) + repeats.log_weight(ids) for lp, ids in zip(val_logp, val_lines))
        figures["val_loss_repeats"] = -mixture / tokens
    return repeats, figures
