"""Scale-out: the same command under `torchrun --nproc-per-node N` (multi-node too), or `--nproc N`.

The training engine calls `setup` when the process was started by a launcher (WORLD_SIZE > 1):
it joins the process group (NCCL on CUDA, gloo on CPU, so two processes work on any laptop) and
opens a second, gloo group for the engine's own small messages (stop decisions, metrics,
checkpoint state), which never waits on the GPU's stream. Rank 0 alone writes files and prints;
the other ranks are quiet.
"""

from __future__ import annotations

import os
import sys

_control = None  # the gloo group for the engine's control messages


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def launched() -> bool:
    """Started by torchrun / torch.distributed.run (also with a single process)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or world_size() > 1


def active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def setup(device):
    """Join the process group when launched with more than one process; return this rank's device."""
    import atexit

    import torch
    import torch.distributed as dist

    global _control
    if world_size() == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(teardown)
    if _control is None:
        _control = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD
    if not is_main():  # rank 0 alone prints results and progress
        from dltool.core.console import set_quiet

        set_quiet(True)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return device


def teardown() -> None:
    import torch.distributed as dist

    global _control
    if dist.is_initialized():
        dist.destroy_process_group()
    _control = None


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier(group=_control)


def any_rank(*flags: bool) -> list[bool]:
    """For each flag, whether it is set on any rank (one small all-reduce on the control group)."""
    if not active():
        return [bool(f) for f in flags]
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(f) for f in flags], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_control)
    return [bool(v) for v in t.tolist()]


def max_over_ranks(value: float) -> float:
    if not active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_control)
    return t.item()


def mean_over_ranks(value: float) -> float:
    if not active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, group=_control)
    return t.item() / dist.get_world_size()


def gather(obj) -> list:
    """Every rank's `obj` (plain data or CPU tensors), in rank order, on every rank."""
    if not active():
        return [obj]
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=_control)
    return out


def broadcast(obj):
    """Rank 0's `obj` on every rank."""
    if not active():
        return obj
    import torch.distributed as dist

    holder = [obj]
    dist.broadcast_object_list(holder, src=0, group=_control)
    return holder[0]


def sync_buffers(model) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank, so all ranks validate the model rank 0 saves."""
    if not active():
        return
    import torch.distributed as dist

    for b in model.buffers():
        dist.broadcast(b, src=0)


def relaunch(nproc: int, args: list[str]) -> int:
    """Run the command `args` (as given to `dltool`, without --nproc) as N processes through
    torch.distributed.run in standalone mode (a free port, so two jobs on one machine don't collide).

    Ctrl-C reaches every process (the terminal signals the whole group): the workers agree on a step,
    save a checkpoint and exit 130, and so does this launcher once they are done."""
    import signal
    import subprocess

    from dltool.core.errors import OptionError

    if nproc < 1:
        raise OptionError(f"--nproc {nproc} must be at least 1")
    if launched():
        raise OptionError("--nproc given inside a distributed launch", "use either torchrun or --nproc, not both")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "dltool", *args]
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    interrupted, proc = [], None

    def handle(signum, frame):
        interrupted.append(signum)
        if signum == signal.SIGTERM and proc is not None:
            proc.send_signal(signum)  # a SIGINT from the terminal reached the workers already

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(cmd, env=env)
        code = proc.wait()
        return 130 if interrupted and code != 0 else code
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def without_nproc(args: list[str]) -> list[str]:
    """`args` with every `--nproc N` / `--nproc=N` removed."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out
