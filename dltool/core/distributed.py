"""Scale-out: the same command under `torchrun --nproc-per-node N` (multi-node too), or `--nproc N` (one machine).

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


#: set in the workers of `--nproc` (relaunch), as torchrun sets TORCHELASTIC_RUN_ID in its own
LAUNCHED = "DLTOOL_NPROC_WORKER"


def launched() -> bool:
    """Started by `--nproc`, torchrun or torch.distributed.run (also with a single process)."""
    return LAUNCHED in os.environ or "TORCHELASTIC_RUN_ID" in os.environ or world_size() > 1


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
    """Run the command `args` (as given to `dltool`, without --nproc) as N processes on this machine, each
    told its rank the way torchrun tells it (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT: a free port,
    so two jobs on one machine don't collide). Not through torch.distributed.run itself: its launcher
    imports torch and starts an elastic agent, for restarts and rendezvous a one-machine job does not use,
    before any worker starts (2.5 s of a short 2-process run: benchmarks/nproc_launch.py); several
    machines use torchrun.

    A worker that fails stops the others (they would wait for it in their next collective) and its exit
    code is the launch's; the error is printed once. Ctrl-C reaches every process (the terminal signals the whole group): the
    workers agree on a step, save a checkpoint and exit 130, and so does this launcher once they are done."""
    import collections
    import signal
    import socket
    import subprocess
    import threading
    import time

    from dltool.core.errors import OptionError

    if nproc < 1:
        raise OptionError(f"--nproc {nproc} must be at least 1")
    if launched():
        raise OptionError("--nproc given inside a distributed launch", "use either torchrun or --nproc, not both")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), LAUNCHED: "1"}
    interrupted, procs = [], []

    def handle(signum, frame):
        interrupted.append(signum)
        if signum == signal.SIGTERM:
            for p in procs:  # a SIGINT from the terminal reached the workers already
                p.send_signal(signum)

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cmd = [sys.executable, "-m", "dltool", *args]
        # rank 0 writes to the terminal; the others' stderr is kept and shown only when a failure is theirs
        # alone (a bad input makes every rank print the same error before it knows its rank is not 0)
        tails, readers = [collections.deque(maxlen=100) for _ in range(nproc)], []
        for r in range(nproc):
            procs.append(subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, text=True,
                                          stderr=subprocess.PIPE if r else None))
            if r:
                readers.append(threading.Thread(target=tails[r].extend, args=(procs[r].stderr,), daemon=True))
                readers[-1].start()
        failed = None
        while None in [p.poll() for p in procs]:  # every one polled, each time
            bad = next((p for p in procs if p.returncode not in (None, 0, 130)), None)  # 130: interrupted, saving
            if bad is not None and failed is None and not interrupted:
                failed = bad
                _stop(procs)
            time.sleep(0.05)
        for t in readers:
            t.join(timeout=5)
        if failed is not None and failed is not procs[0] and procs[0].returncode != failed.returncode:
            sys.stderr.write("".join(tails[procs.index(failed)]))
        code = (failed or next((p for p in procs if p.returncode), procs[0])).returncode
        code = code if code >= 0 else 128 - code  # killed by a signal: the shell's convention
        return 130 if interrupted and code != 0 else code
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for s, h in old.items():
            signal.signal(s, h)


def _stop(procs, patience: float = 2.0, grace: float = 10.0) -> None:
    """After one worker failed: `patience` seconds for the others to end by themselves (a bad input fails
    every rank alike, each a moment apart), then SIGTERM, then SIGKILL after `grace` seconds."""
    import time

    def wait(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and None in [p.poll() for p in procs]:
            time.sleep(0.05)

    wait(patience)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    wait(grace)
    for p in procs:
        if p.poll() is None:
            p.kill()


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
