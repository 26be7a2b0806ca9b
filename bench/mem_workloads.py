"""Workloads of bench/bench_memory.py: each takes a scale (1.0 = the
benchmark's size, about 1-3 s bare on the reference machine)."""
from __future__ import annotations


def py_alloc(scale: float) -> int:
    """Allocation-heavy pure Python: records parsed into dicts of strings,
    lists and tuples, kept for a while and dropped (a dataset index being
    built, a JSON-ish parser).  Returns a checksum so nothing is optimised
    away."""
    total = 0
    rounds = max(1, int(60 * scale))
    for r in range(rounds):
        rows = []
        for i in range(5000):
            name = "clip_%d_%d" % (r, i)
            row = {"name": name, "frames": [i, i + 1, i + 2], "span": (i * 0.5, i * 0.5 + 1.0),
                   "tags": name.split("_")}
            rows.append(row)
        total += sum(len(x["tags"]) for x in rows)
        del rows
    return total


def numpy_frames(scale: float) -> float:
    """Video-like frames: fresh uint8 frames, converted to float32,
    normalised and stacked into batches of 8 (720p)."""
    import numpy as np

    acc = 0.0
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(720, 1280, 3), dtype=np.uint8)
    for b in range(max(1, int(40 * scale))):
        frames = []
        for i in range(8):
            f = base.copy()  # a decoded frame: a fresh 2.6 MB buffer
            x = f.astype(np.float32)
            x -= 127.5
            x /= 127.5
            frames.append(x[::2, ::2])  # a resized view
        batch = np.stack(frames)
        acc += float(batch[0, 0, 0, 0])
    return acc


def torch_frames(scale: float) -> float:
    """The same pipeline with torch CPU tensors."""
    import torch

    acc = 0.0
    base = torch.randint(0, 255, (3, 720, 1280), dtype=torch.uint8)
    for b in range(max(1, int(40 * scale))):
        frames = []
        for i in range(8):
            f = base.clone()
            x = f.to(torch.float32)
            x.sub_(127.5).div_(127.5)
            frames.append(x[:, ::2, ::2])
        batch = torch.stack(frames)
        acc += float(batch[0, 0, 0, 0])
    return acc


WORKLOADS = {"py": py_alloc, "numpy": numpy_frames, "torch": torch_frames}
