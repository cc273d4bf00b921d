"""Batches for the training engine.

Small datasets are preloaded as tensors on the device and batched by indexing (no per-item
DataLoader overhead). Larger ones go through a DataLoader with workers and pinned memory.
Either way an epoch's order comes from (seed, epoch) alone, so a resumed run sees the same
batches as an uninterrupted one, and under DDP each rank takes its own equal-sized shard.
"""

from __future__ import annotations

from collections.abc import Iterator


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool, rank: int = 0, world: int = 1):
    import torch

    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world > 1:
        per_rank = n // world  # equal step counts on every rank, as DDP needs
        order = order[rank::world][:per_rank]
    return order


class _EpochBatches:
    """What both kinds of batches share: the epoch (set by the engine), and the batch count per rank."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int, world: int):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world = rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.n // self.world if self.world > 1 else self.n
        return (n + self.batch_size - 1) // self.batch_size


class TensorBatches(_EpochBatches):
    """Batches of tensors that already sit on the device."""

    def __init__(self, tensors: tuple, batch_size: int, *, shuffle: bool, seed: int = 0,
                 rank: int = 0, world: int = 1):
        super().__init__(len(tensors[0]), batch_size, shuffle, seed, rank, world)
        self.tensors = tensors

    def __iter__(self) -> Iterator[tuple]:
        order = epoch_order(self.n, self.seed, self.epoch, self.shuffle, self.rank, self.world)
        device = self.tensors[0].device
        order = order.to(device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class _EpochBatchSampler:
    """Index batches in the (seed, epoch) order; lives in the main process, so set_epoch reaches it."""

    def __init__(self, owner):
        self.owner = owner

    def __iter__(self):
        o = self.owner
        order = epoch_order(o.n, o.seed, o.epoch, o.shuffle, o.rank, o.world).tolist()
        return iter([order[i:i + o.batch_size] for i in range(0, len(order), o.batch_size)])

    def __len__(self) -> int:
        return len(self.owner)


class LoaderBatches(_EpochBatches):
    """A DataLoader (workers, pinned memory, persistent workers) moving each batch to the device."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 2,
                 device=None, rank: int = 0, world: int = 1):
        from torch.utils.data import DataLoader

        super().__init__(len(dataset), batch_size, shuffle, seed, rank, world)
        self.dataset = dataset
        self.device = device
        self.pin = device is not None and device.type == "cuda"
        self.loader = DataLoader(dataset, batch_sampler=_EpochBatchSampler(self), num_workers=workers,
                                 pin_memory=self.pin, persistent_workers=workers > 0)

    def __iter__(self) -> Iterator[tuple]:
        for batch in self.loader:
            yield tuple(t.to(self.device, non_blocking=self.pin) for t in batch)
