"""A dataset for test_worker_tracer.py, in an importable module so that
spawn and forkserver workers can unpickle it."""
from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from code_profiler import _core


def wt_fib(n: int) -> int:
    return n if n < 2 else wt_fib(n - 1) + wt_fib(n - 2)


class TracerProbeDataset(Dataset):
    """Item i: recursive Python work, then where it ran and whether the
    Python tracer recorded that worker's calls."""

    def __init__(self, n: int = 16, depth: int = 14) -> None:
        self.n = n
        self.depth = depth

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        wt_fib(self.depth)
        return torch.tensor([i, os.getpid(), int(_core.tracer_on_this_thread())])
