"""Datasets for the worker tests.  They live in an importable module (not
in a test file) so spawn and forkserver workers can unpickle them."""
from __future__ import annotations

import os
import signal
import time

import torch
from torch.utils.data import Dataset, IterableDataset


class SleepyDataset(Dataset):
    """`n` items of a small tensor; item `slow_index` takes `slow_s`."""

    def __init__(self, n: int = 48, item_s: float = 0.001, slow_index: int = -1,
                 slow_s: float = 0.0, fail_index: int = -1, die_index: int = -1,
                 die_signal: int = signal.SIGKILL) -> None:
        self.n = n
        self.item_s = item_s
        self.slow_index = slow_index
        self.slow_s = slow_s
        self.fail_index = fail_index
        self.die_index = die_index
        self.die_signal = die_signal
        self.label = "sleepy"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i == self.die_index:
            os.kill(os.getpid(), self.die_signal)
            time.sleep(5)
        if i == self.fail_index:
            raise ValueError(f"bad item {i}")
        time.sleep(self.slow_s if i == self.slow_index else self.item_s)
        return torch.full((3, 4, 4), float(i)), i


class CountingStream(IterableDataset):
    """An iterable-style dataset yielding `n` items, split across workers."""

    def __init__(self, n: int = 40) -> None:
        self.n = n

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(start, self.n, step):
            time.sleep(0.0005)
            yield torch.tensor([i])
