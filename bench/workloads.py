"""Workloads shared by the benchmarks in bench/.

Two shapes of Python program matter for a tracing profiler:

* ``fib`` -- recursive Fibonacci: nothing but Python calls, the worst case
  for any tracer (every call is pure overhead on a tiny body).
* ``realistic`` -- a small video-like pipeline: per frame a few Python helper
  calls around numpy arithmetic and cv2.resize, then a small torch forward
  pass per batch.  Many Python calls, but most of the time is spent in
  native code, as in a real data pipeline.

Each workload is a function of no arguments returning a value derived from
its work (so nothing can be optimised away) and is deterministic.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Dict, Optional

FIB_N = 27


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def run_fib() -> int:
    return fib(FIB_N)


def realistic_missing() -> Optional[str]:
    """None when the realistic workload can run here, else why not."""
    missing = [m for m in ("numpy", "cv2", "torch")
               if importlib.util.find_spec(m) is None]
    if missing:
        return "realistic workload needs " + ", ".join(missing) + " (not installed)"
    return None


# Parameters of the realistic workload: BATCHES batches of FRAMES frames of
# SRC_H x SRC_W, resized to DST x DST.
BATCHES = 40
FRAMES = 16
SRC_H, SRC_W = 120, 160
DST = 64

_state: Dict[str, object] = {}


def _setup_realistic() -> None:
    import cv2
    import numpy as np
    import torch

    # One thread each, so the workload occupies one core and is less
    # sensitive to other load on a small machine.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    _state["frames"] = [
        rng.integers(0, 256, size=(SRC_H, SRC_W, 3), dtype=np.uint8)
        for _ in range(FRAMES)
    ]
    _state["model"] = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 4),
    ).eval()


def _resize(frame, size):
    import cv2

    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)


def _normalize(frame):
    import numpy as np

    x = frame.astype(np.float32)
    x *= 1.0 / 255.0
    x -= 0.45
    x /= 0.225
    return x


def _flip(frame, do_flip):
    return frame[:, ::-1] if do_flip else frame


def _jitter(frame, amount):
    return frame * (1.0 + amount)


def _to_chw(frame):
    return frame.transpose(2, 0, 1)


def _process_frame(frame, i):
    x = _resize(frame, DST)
    x = _normalize(x)
    x = _flip(x, i % 2 == 0)
    x = _jitter(x, 0.01 * (i % 5))
    return _to_chw(x)


def _make_batch(b):
    import numpy as np
    import torch

    frames = _state["frames"]
    out = [_process_frame(frames[(b + i) % FRAMES], i) for i in range(FRAMES)]
    return torch.from_numpy(np.ascontiguousarray(np.stack(out)))


def _forward(batch):
    import torch

    with torch.no_grad():
        return _state["model"](batch)


def run_realistic() -> float:
    if not _state:
        _setup_realistic()
    total = 0.0
    for b in range(BATCHES):
        logits = _forward(_make_batch(b))
        total += float(logits.sum())
    return total


WORKLOADS: Dict[str, Callable[[], object]] = {
    "fib": run_fib,
    "realistic": run_realistic,
}


def prepare(name: str) -> Callable[[], object]:
    """Returns the workload callable after one untimed warm-up run."""
    fn = WORKLOADS[name]
    fn()
    return fn
