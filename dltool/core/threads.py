"""Thread policy for small CPU work: one policy, one threshold, for every caller.

A torch op on a small tensor does too little work to share between cores, and on a busy machine
every parallel region waits for a second core. Measured on the 2-core dev machine while other jobs
ran, Adam steps of an MLP autoencoder:
  batch 64, 64-256-128-10 (6.4M multiply-adds):   1 thread 1.6 ms,  2 threads 457 ms
  batch 256, 64-512-256-10 (85M):                  1 thread 9.5 ms,  2 threads 209 ms
  batch 1024, 784-500-500-2000-10 (3.4G):          1 thread 347 ms,  2 threads 861 ms
(on an idle machine two threads win only at the largest size); and k-means' Lloyd steps on digits
(1,797 x 64, k=10, 4 restarts): 0.06 s on one thread, 3-10 s on two.
"""

from __future__ import annotations

import contextlib

# Below this many multiply-adds per step, a CPU run uses one thread (the measurements above).
SINGLE_THREAD_BELOW = 200_000_000


@contextlib.contextmanager
def single_thread_below(device, work: int, threshold: int = SINGLE_THREAD_BELOW):
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
