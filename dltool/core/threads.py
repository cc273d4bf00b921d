"""Thread policy for small CPU work.

A torch op on a small tensor does too little work to share between cores, and on a busy machine
every parallel region waits for a second core (measured here: one Adam step of a small MLP took
1.6 ms on one thread and 457 ms on two while other jobs ran). Callers pass their own threshold,
measured for their workload.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def single_thread_below(device, work: int, threshold: int):
    """Run the block on one torch thread when `work` (multiply-adds per step) is under `threshold`
    on a CPU device; the previous thread count is restored afterwards."""
    import torch

    if torch.device(str(device)).type != "cpu" or work >= threshold or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
