"""Scale-out: the same command under `torchrun --nproc-per-node N`, or `--nproc N` as a shortcut.

On CPU the gloo backend is used, so two processes work on any laptop. Rank 0 alone writes files
and prints; the other ranks are quiet.
"""

from __future__ import annotations

import os
import sys


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def setup(device):
    """Join the process group when launched by torchrun; return the device for this rank."""
    import torch
    import torch.distributed as dist

    if world_size() == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    if not is_main():  # rank 0 alone prints results and progress
        from dltool.core.console import set_quiet

        set_quiet(True)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return device


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def broadcast_value(value: float | None) -> float | None:
    """Rank 0's value on every rank (validation metrics are computed on rank 0 only)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    t = torch.tensor([float("nan") if value is None else float(value)], dtype=torch.float64)
    dist.broadcast(t, src=0)
    v = t.item()
    return None if v != v else v


def mean_over_ranks(value: float) -> float:
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def relaunch(nproc: int) -> int:
    """Re-run this very command as N processes through torch.distributed.run (standalone: a free port)."""
    import subprocess

    from dltool.core.errors import OptionError

    if world_size() > 1:
        raise OptionError("--nproc given inside a distributed launch", "use either torchrun or --nproc, not both")
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "dltool", *args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))}
    return subprocess.call(cmd, env=env)
