"""Batches for the training engine.

Small datasets are preloaded as tensors on the device and batched by indexing (no per-item
DataLoader overhead). Larger ones go through a DataLoader with workers and pinned memory.
Either way an epoch's order comes from (seed, epoch) alone, so a resumed run sees the same
batches as an uninterrupted one and can skip the ones it has already trained on.

A task builds its batches for the whole dataset with the global batch size; the engine shards
them over the processes of a distributed run (`shard`): training batches take equal-sized
shards (DDP needs the same number of steps on every rank) and split the batch size, validation
batches take every item exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

from dltool.core.errors import OptionError
from dltool.core.run import check_batch_size


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool, rank: int = 0, world: int = 1, even: bool = True):
    """Item indices of one epoch for one rank; `even` drops the remainder so every rank gets n // world."""
    import torch

    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world > 1:
        order = order[rank::world]
        if even:
            order = order[:n // world]
    return order


def stratified_split(labels, val_split: float, seed: int):
    """(train, validation) index arrays: a seeded hold-out of round(n x val_split) items, stratified by
    label where every class has two items and the hold-out can hold one of each; (all, None) for 0."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    if val_split == 0:
        return idx, None
    counts = np.bincount(labels)
    n_val = max(1, round(len(idx) * val_split))
    stratify = labels if counts[counts > 0].min() >= 2 and n_val >= len(np.unique(labels)) else None
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(va)


class EpochBatches:
    """What both kinds of batches share: the epoch and the first batch to yield (set by the engine),
    and the shard of a distributed run."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int):
        check_batch_size(batch_size)
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.global_batch_size = batch_size
        self.rank, self.world, self.even = 0, 1, True
        self.epoch, self.start_batch = 0, 0

    def shard(self, rank: int, world: int, *, split_batch: bool) -> None:
        """Take this rank's part. `split_batch` (training): the global batch is split evenly over
        the ranks and every rank gets the same number of items; otherwise (validation) the batch
        size stays and the items are dealt out so that each is seen exactly once."""
        size = self.global_batch_size
        if world > 1 and split_batch:
            if size % world:
                lower = size - size % world
                raise OptionError(f"--batch-size {size} does not split evenly over {world} processes",
                                  f"use a multiple of {world}, such as {lower or world} or {lower + world}")
            if self.n < world:
                raise OptionError(f"{self.n} training items cannot be shared by {world} processes",
                                  "use fewer processes (--nproc)")
            size //= world
        self.batch_size = size
        self.rank, self.world, self.even = rank, world, split_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """The epoch to iterate next, starting at batch `start_batch` (a resumed, interrupted epoch)."""
        self.epoch, self.start_batch = epoch, start_batch

    def items(self) -> int:
        """How many items this rank sees in one epoch."""
        if self.world == 1:
            return self.n
        if self.even:
            return self.n // self.world
        return len(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return (self.items() + self.batch_size - 1) // self.batch_size

    def _order(self):
        return epoch_order(self.n, self.seed, self.epoch, self.shuffle, self.rank, self.world, self.even)


class TensorBatches(EpochBatches):
    """Batches of tensors that already sit on the device."""

    def __init__(self, tensors: tuple, batch_size: int, *, shuffle: bool, seed: int = 0):
        super().__init__(len(tensors[0]), batch_size, shuffle, seed)
        self.tensors = tensors

    def __iter__(self) -> Iterator[tuple]:
        order = self._order().to(self.tensors[0].device)
        for start in range(self.start_batch * self.batch_size, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class _EpochBatchSampler:
    """Index batches in the (seed, epoch) order; lives in the main process, so set_epoch reaches it."""

    def __init__(self, owner):
        self.owner = owner

    def __iter__(self):
        o = self.owner
        order = o._order().tolist()
        starts = range(o.start_batch * o.batch_size, len(order), o.batch_size)
        return iter([order[i:i + o.batch_size] for i in starts])

    def __len__(self) -> int:
        return len(self.owner) - self.owner.start_batch


class LoaderBatches(EpochBatches):
    """A DataLoader (workers, pinned memory, persistent workers) moving each batch to the device."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 2, device=None):
        import torch
        from torch.utils.data import DataLoader

        super().__init__(len(dataset), batch_size, shuffle, seed)
        self.dataset = dataset
        self.device = device
        self.pin = device is not None and device.type == "cuda"
        # its own generator: starting workers must not draw from the global RNG, or a resumed run's
        # dropout and augmentation draws would shift by one against an uninterrupted run's
        self.loader = DataLoader(dataset, batch_sampler=_EpochBatchSampler(self), num_workers=workers,
                                 pin_memory=self.pin, persistent_workers=workers > 0,
                                 generator=torch.Generator().manual_seed(seed))

    def __iter__(self) -> Iterator[tuple]:
        for batch in self.loader:
            yield tuple(t.to(self.device, non_blocking=self.pin) for t in batch)


def padded_rows(matrix, rows, pad: int):
    """Rows of a SciPy CSR matrix as (column ids, values), (len(rows), K) each, K the longest row's count of
    stored values (at least 1): the input of nn.EmbeddingBag(mode="sum", per_sample_weights=...), which
    computes the rows' products with its table without the dense matrix. The tail is `pad` with value 0."""
    import numpy as np
    import torch

    indptr = matrix.indptr
    counts = indptr[np.asarray(rows) + 1] - indptr[rows]
    ids = np.full((len(rows), max(1, int(counts.max(initial=0)))), pad, dtype=np.int64)
    values = np.zeros(ids.shape, dtype=np.float32)
    for i, (r, k) in enumerate(zip(rows, counts)):
        ids[i, :k] = matrix.indices[indptr[r]:indptr[r] + k]
        values[i, :k] = matrix.data[indptr[r]:indptr[r] + k]
    return torch.from_numpy(ids), torch.from_numpy(values)


class SparseRowBatches(EpochBatches):
    """Batches of the rows of a SciPy CSR matrix (padded_rows, each batch to its own longest row) and of
    tensors with one item a row, on the device: a bag of n-grams never becomes a dense matrix."""

    def __init__(self, matrix, pad: int, tensors: tuple, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device=None):
        super().__init__(matrix.shape[0], batch_size, shuffle, seed)
        self.matrix, self.pad, self.tensors, self.device = matrix.tocsr(), pad, tensors, device

    def __iter__(self) -> Iterator[tuple]:
        order = self._order().numpy()
        for start in range(self.start_batch * self.batch_size, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            ids, values = padded_rows(self.matrix, idx, self.pad)
            yield (ids.to(self.device), values.to(self.device), *(t[idx].to(self.device) for t in self.tensors))
