"""Workloads of the sampling integration tests.  They live in an importable
module (not in a test file) so that spawn DataLoader workers can unpickle
the dataset, and so that subprocess scripts share them."""
from __future__ import annotations

import time


def burn(seconds: float) -> int:
    """Spins on the CPU until `seconds` of wall time have passed."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def seventy(seconds: float) -> int:
    return burn(seconds)


def thirty(seconds: float) -> int:
    return burn(seconds)


def split_70_30(total_s: float = 2.5, round_s: float = 0.01) -> dict:
    """Alternates 70% of each round in seventy() and 30% in thirty();
    returns the wall time each one really took (the ground truth)."""
    spent = {"seventy": 0.0, "thirty": 0.0}
    end = time.perf_counter() + total_s
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        seventy(0.7 * round_s)
        t1 = time.perf_counter()
        thirty(0.3 * round_s)
        t2 = time.perf_counter()
        spent["seventy"] += t1 - t0
        spent["thirty"] += t2 - t1
    return spent


def compute(seconds: float) -> int:
    return burn(seconds)


def rest(seconds: float) -> None:
    time.sleep(seconds)


def compute_sleep(total_s: float = 2.0, phase_s: float = 0.005) -> dict:
    """Alternates `phase_s` of computing and `phase_s` of sleeping; returns
    the wall time of each phase and the thread's CPU time."""
    spent = {"compute": 0.0, "rest": 0.0}
    c0 = time.thread_time()
    end = time.perf_counter() + total_s
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        compute(phase_s)
        t1 = time.perf_counter()
        rest(phase_s)
        t2 = time.perf_counter()
        spent["compute"] += t1 - t0
        spent["rest"] += t2 - t1
    spent["cpu"] = time.thread_time() - c0
    return spent


def decode_clip(i: int) -> int:
    """What a worker spends its item time in (spinning, so it is sampled)."""
    return burn(0.02) + i


try:  # torch is optional: the DataLoader tests skip without it
    from torch.utils.data import Dataset

    class SpinningClips(Dataset):
        """`n` items, each spending ~20 ms in decode_clip()."""

        def __init__(self, n: int = 32) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> int:
            decode_clip(i)
            return i
except ImportError:  # pragma: no cover
    pass
