import torch

from dltool.core.threads import SINGLE_THREAD_BELOW, single_thread_below


def test_small_cpu_work_runs_on_one_thread_and_the_count_is_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with single_thread_below("cpu", SINGLE_THREAD_BELOW - 1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with single_thread_below("cpu", SINGLE_THREAD_BELOW):
            assert torch.get_num_threads() == 2
        with single_thread_below("meta", 1):  # not a CPU device: left alone
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
