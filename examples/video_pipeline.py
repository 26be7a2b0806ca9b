#!/usr/bin/env python
"""The reference video pipeline, profiled with code_profiler.

A small but complete video-training pipeline that runs on a CPU in well
under a minute:

1. generate   -- short synthetic videos (a bright square moving in one of
                 four directions = the class) written with cv2.VideoWriter
                 into a cache directory that later runs reuse;
2. decode     -- the Dataset's __getitem__ opens a clip with
                 cv2.VideoCapture and decodes K frames (stage decode_clip);
3. preprocess -- cv2.resize, BGR->RGB, normalisation (preprocess_clip);
4. augment    -- random horizontal flip and brightness jitter (augment_clip);
5. collate    -- a tensor [C, T, H, W] per item, batched by a DataLoader
                 with worker processes;
6. train      -- a small 3D CNN trained with SGD for a few epochs.

Profiling uses the seed API: VideoOpusClipProfiler(create_profiler_config(
"detailed")), profiler.profile_data_loader(loader) (the wait for every
batch, the step between batches, and -- through the loader's dataset -- each
item's load time, measured inside the worker processes),
profiler.profile_preprocessing / profiler.profile_augmentation on the
per-item stages, profiler.profile_function on the training step and a
profiling_context per epoch.  At the end it prints the findings (the one
whose fix would save the most time first) and the data-loading summary,
and saves the JSON report.

Run it directly or under the profiler's command (tracer on):

    python examples/video_pipeline.py
    codeprof run examples/video_pipeline.py

Planted bottlenecks.  ``--plant NAME`` runs a variant with one known cause
of slowness, small enough to finish in about 5-15 s on 2 CPUs; the
profiler's top finding should name it (tests/python/integration/
test_planted_bottlenecks.py checks that it does):

    none           the reference pipeline as is
    slow-reads     every clip read waits 40 ms (slow storage): decode_clip
                   dominates item time and the loop stalls, with as many
                   workers as CPUs (so more workers cannot help)
    heavy-augment  an expensive augmentation (25 Gaussian blurs per frame,
                   heavy_augment_clip) dominates item time, as many workers
                   as CPUs
    few-workers    num_workers=0: items load in the training process and the
                   cheap step waits for them
    slow-clips     three clips (indices 3, 13 and 26) take ~80x as long as
                   the rest, every epoch; a heavier step (model width 32)
                   lets the loop keep up otherwise
    two-slow       2 of 20 items (indices 4 and 15) take ~30x the median,
                   every epoch: both must be named (a p99 gate found one)
    compute-bound  a wide model makes the step heavy and items are cheap: the
                   loop never waits, and no finding may say "add workers"
    compute-inline as compute-bound, with num_workers=0 and a 1 s warm-up in
                   the first batch (collate_fn's first call): the start-up is
                   not a stall and must not bring "raise num_workers from 0"

Every stage is a plain module-level function listed in `Stages`; a variant
of the pipeline replaces entries of `Stages` in `build_stages()` without
touching the rest.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from code_profiler import VideoOpusClipProfiler, create_profiler_config, get_current_profiler

# ImageNet-style normalisation constants, RGB order.
MEAN = np.array([0.45, 0.45, 0.45], dtype=np.float32)
STD = np.array([0.225, 0.225, 0.225], dtype=np.float32)

# Bump when render_frame changes, so cached videos of an older look are
# regenerated rather than reused.
RENDER_VERSION = 2

# Colour of the moving square per class (BGR): red, green, blue, yellow.
SQUARE_BGR = ((40, 40, 240), (40, 230, 40), (240, 60, 40), (30, 230, 240))

# (fourcc, extension) pairs tried in order when writing videos.
CODECS: Sequence[Tuple[str, str]] = (("MJPG", ".avi"), ("mp4v", ".mp4"))

# Gaussian blurs per frame in heavy_augment_clip (the heavy-augment plant):
# about 15-25 ms per 8-frame 48x48 clip on one core.
HEAVY_AUGMENT_BLURS = 25


def cpu_workers(cap: int = 8) -> int:
    """As many DataLoader workers as this process may use CPUs (at most
    `cap`): the plants whose fix is "make items cheaper" use this, so that
    adding workers cannot help."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, cap))


# ---------------------------------------------------------------------------
# Options and planted bottlenecks
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Options:
    videos: int = 16
    frames: int = 32            # frames per generated video
    width: int = 160            # generated video size
    height: int = 120
    clip_len: int = 8           # frames decoded per item (K)
    input_size: int = 48        # frames are resized to input_size^2
    classes: int = 4
    epochs: int = 3
    batch_size: int = 8
    num_workers: int = 2
    model_width: int = 8        # channels of the first conv layer
    torch_threads: int = 0      # torch intra-op threads; 0: CPUs - num_workers (>= 1)
    lr: float = 0.05
    seed: int = 0
    fps: int = 15
    data_dir: Optional[str] = None
    output_dir: str = "profiles"
    level: str = "detailed"     # create_profiler_config level, or "off"
    report_name: str = "video_pipeline_profile.json"
    report: Optional[str] = None  # explicit report path (overrides the two above)
    # A load slower than this is a slow load (CP-DATA-002).  An item of this
    # pipeline takes about 10 ms, so 200 ms is slow here (the profiler's
    # default, 1 s, suits pipelines whose items are whole videos).
    slow_load_s: float = 0.2
    # planted bottlenecks (see PLANTS)
    plant: str = "none"
    read_latency_s: float = 0.0        # waited before every clip read
    slow_indices: Tuple[int, ...] = ()  # items whose read waits slow_latency_s
    slow_latency_s: float = 0.0
    heavy_augment: bool = False
    warmup_s: float = 0.0               # waited in the first collate_fn call


# Each plant: the Options fields it changes (options given on the command
# line win), and the cause the profiler should name first.  Every plant
# runs the step on one torch thread, so that its timings hold up on a busy
# machine (several intra-op threads slow down sharply when other processes
# take their cores).
PLANTS: Dict[str, Dict[str, Any]] = {
    "none": {},
    "slow-reads": {"read_latency_s": 0.04, "num_workers": cpu_workers(), "epochs": 2,
                   "torch_threads": 1},
    "heavy-augment": {"heavy_augment": True, "num_workers": cpu_workers(), "epochs": 2,
                      "torch_threads": 1},
    "few-workers": {"num_workers": 0, "epochs": 2, "torch_threads": 1},
    "slow-clips": {"videos": 8, "slow_indices": (3, 13, 26), "slow_latency_s": 0.4,
                   "model_width": 32, "epochs": 2, "torch_threads": 1},
    "two-slow": {"videos": 5, "slow_indices": (4, 15), "slow_latency_s": 0.15,
                 "model_width": 32, "epochs": 2, "torch_threads": 1},
    "compute-bound": {"model_width": 128, "epochs": 2, "torch_threads": 1},
    "compute-inline": {"num_workers": 0, "model_width": 128, "warmup_s": 1.0, "epochs": 2,
                       "torch_threads": 1},
}

PLANT_CAUSES: Dict[str, str] = {
    "none": "nothing planted",
    "slow-reads": "every clip read waits 40 ms: decode_clip dominates item time",
    "heavy-augment": "heavy_augment_clip (25 blurs per frame) dominates item time",
    "few-workers": "num_workers=0: the cheap step waits for items loaded in the loop",
    "slow-clips": "indices 3, 13 and 26 load ~80x slower than the rest, every epoch",
    "two-slow": "indices 4 and 15 of 20 load ~30x slower than the median, every epoch",
    "compute-bound": "a wide model: the step dominates, items are cheap",
    "compute-inline": "a wide model, items loaded in the loop (num_workers=0), a 1 s "
                      "warm-up in the first batch: the step dominates",
}


def parse_size(text: str) -> Tuple[int, int]:
    try:
        w_s, h_s = text.lower().split("x")
        w, h = int(w_s), int(h_s)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size: expected WIDTHxHEIGHT such as 160x120, got {text!r}")
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(
            f"--size: width and height must be >= 16, got {text!r}")
    return w, h


def positive(name: str, minimum: int = 1) -> Callable[[str], int]:
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer, got {text!r}")
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name}: expected >= {minimum}, got {v}")
        return v
    return conv


def positive_float(name: str) -> Callable[[str], float]:
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected a number, got {text!r}")
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name}: expected > 0, got {v}")
        return v
    return conv


def parse_args(argv: Optional[Sequence[str]] = None) -> Options:
    d = Options()
    ap = argparse.ArgumentParser(description="Profiled reference video pipeline (CPU).")
    ap.add_argument("--plant", default="none", choices=list(PLANTS),
                    help="plant one known bottleneck (default none); see the module doc")
    ap.add_argument("--videos", type=positive("--videos"), default=None,
                    help=f"number of generated videos (default {d.videos})")
    ap.add_argument("--frames", type=positive("--frames", 2), default=None,
                    help=f"frames per generated video (default {d.frames})")
    ap.add_argument("--size", type=parse_size, default=None,
                    metavar="WxH", help=f"generated frame size (default {d.width}x{d.height})")
    ap.add_argument("--clip-len", type=positive("--clip-len"), default=None,
                    help=f"frames decoded per item (default {d.clip_len})")
    ap.add_argument("--input-size", type=positive("--input-size", 8), default=None,
                    help=f"side of the resized frames fed to the model (default {d.input_size})")
    ap.add_argument("--epochs", type=positive("--epochs"), default=None,
                    help=f"(default {d.epochs})")
    ap.add_argument("--batch-size", type=positive("--batch-size"), default=None,
                    help=f"(default {d.batch_size})")
    ap.add_argument("--num-workers", type=positive("--num-workers", 0), default=None,
                    help=f"DataLoader worker processes (default {d.num_workers})")
    ap.add_argument("--model-width", type=positive("--model-width"), default=None,
                    help=f"channels of the model's first layer (default {d.model_width})")
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--slow-load-ms", type=positive_float("--slow-load-ms"),
                    default=d.slow_load_s * 1e3,
                    help="an item load above this is reported as slow "
                         f"(default {d.slow_load_s * 1e3:g})")
    ap.add_argument("--data-dir", default=None,
                    help="video cache directory (default: a folder under the system temp dir)")
    ap.add_argument("--output-dir", default=d.output_dir,
                    help=f"where the profile report is saved (default {d.output_dir}/)")
    ap.add_argument("--report", default=None, metavar="PATH",
                    help=f"write the JSON report to PATH (default "
                         f"OUTPUT_DIR/{d.report_name})")
    ap.add_argument("--level", default=d.level,
                    choices=["basic", "detailed", "comprehensive", "off"],
                    help="profiling level (default detailed); 'off' runs with the "
                         "profiler disabled, for comparison")
    a = ap.parse_args(argv)

    values: Dict[str, Any] = dict(PLANTS[a.plant])
    explicit = {"videos": a.videos, "frames": a.frames, "clip_len": a.clip_len,
                "input_size": a.input_size, "epochs": a.epochs, "batch_size": a.batch_size,
                "num_workers": a.num_workers, "model_width": a.model_width}
    values.update({k: v for k, v in explicit.items() if v is not None})
    if a.size is not None:
        values["width"], values["height"] = a.size
    opts = dataclasses.replace(d, plant=a.plant, lr=a.lr, seed=a.seed,
                               slow_load_s=a.slow_load_ms / 1e3, data_dir=a.data_dir,
                               output_dir=a.output_dir, report=a.report, level=a.level,
                               **values)
    if opts.clip_len > opts.frames:
        ap.error(f"--clip-len ({opts.clip_len}) must not exceed --frames ({opts.frames})")
    n_items = opts.videos * (opts.frames // opts.clip_len)
    bad = [i for i in opts.slow_indices if i >= n_items]
    if bad:
        ap.error(f"--plant {a.plant}: slow clip indices {bad} do not exist: the dataset has "
                 f"{n_items} items (--videos x (--frames // --clip-len))")
    return opts


# ---------------------------------------------------------------------------
# Stage 1: synthetic videos, cached
# ---------------------------------------------------------------------------

def cache_dir(opts: Options) -> str:
    if opts.data_dir:
        return opts.data_dir
    key = f"r{RENDER_VERSION}_v{opts.videos}_f{opts.frames}_{opts.width}x{opts.height}_c{opts.classes}_s{opts.seed}"
    return os.path.join(tempfile.gettempdir(), "codeprof_video_cache", key)


def render_frame(label: int, t: int, opts: Options, noise: np.ndarray) -> np.ndarray:
    """One BGR frame: a square of the class's colour moving in the class's
    direction over a dark noisy background."""
    h, w = opts.height, opts.width
    frame = noise.copy()
    side = max(4, min(h, w) // 3)
    progress = t / max(1, opts.frames - 1)
    cx, cy = w // 2, h // 2
    span_x, span_y = (w - side) // 2, (h - side) // 2
    dx, dy = [(1, 0), (-1, 0), (0, 1), (0, -1)][label % 4]
    x0 = int(cx - side // 2 + dx * span_x * (progress - 0.5) * 1.6)
    y0 = int(cy - side // 2 + dy * span_y * (progress - 0.5) * 1.6)
    x0 = min(max(x0, 0), w - side)
    y0 = min(max(y0, 0), h - side)
    frame[y0:y0 + side, x0:x0 + side] = SQUARE_BGR[label % len(SQUARE_BGR)]
    return frame


def write_video(path_stem: str, label: int, opts: Options,
                rng: np.random.Generator) -> str:
    """Writes one video with the first codec that round-trips; returns the
    path.  Written under a temporary name and renamed, so an interrupted run
    never leaves a truncated video in the cache."""
    base = rng.integers(0, 60, size=(opts.height, opts.width, 3), dtype=np.uint8)
    for fourcc, ext in CODECS:
        tmp, final = path_stem + ".partial" + ext, path_stem + ext
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), float(opts.fps),
                                 (opts.width, opts.height))
        if not writer.isOpened():
            continue
        for t in range(opts.frames):
            writer.write(render_frame(label, t, opts, base))
        writer.release()
        if count_frames(tmp) == opts.frames:
            os.replace(tmp, final)
            return final
        os.unlink(tmp)
    raise RuntimeError(
        f"{path_stem}: no codec among {[c for c, _ in CODECS]} could write and read back "
        f"{opts.frames} frames with this OpenCV build ({cv2.__version__})")


def count_frames(path: str) -> int:
    cap = cv2.VideoCapture(path)
    n = 0
    try:
        while cap.isOpened():
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
    finally:
        cap.release()
    return n


def generate_videos(opts: Options) -> List[Tuple[str, int]]:
    """Returns [(path, label)], generating the videos unless a cache made
    with the same parameters is present."""
    root = cache_dir(opts)
    manifest_path = os.path.join(root, "manifest.json")
    params = {"videos": opts.videos, "frames": opts.frames, "width": opts.width,
              "height": opts.height, "classes": opts.classes, "seed": opts.seed,
              "render_version": RENDER_VERSION, "fps": opts.fps}
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("params") == params and all(
                os.path.exists(os.path.join(root, p)) for p, _ in manifest["items"]):
            return [(os.path.join(root, p), int(lbl)) for p, lbl in manifest["items"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(opts.seed)
    items = []
    for i in range(opts.videos):
        label = i % opts.classes
        path = write_video(os.path.join(root, f"clip_{i:04d}"), label, opts, rng)
        items.append((os.path.basename(path), label))
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"params": params, "items": items}, f)
    os.replace(tmp, manifest_path)
    return [(os.path.join(root, p), lbl) for p, lbl in items]


# ---------------------------------------------------------------------------
# Stages 2-5: decode, preprocess, augment, to tensor (run in loader workers)
# ---------------------------------------------------------------------------

def decode_clip(path: str, start: int, count: int, latency_s: float = 0.0) -> np.ndarray:
    """Decodes `count` frames from frame `start`: uint8 [T, H, W, 3] BGR.
    A clip shorter than asked for is padded by repeating its last frame.
    `latency_s` is waited before the read: the storage latency of a slow
    disk or network share (the slow-reads and slow-clips plants)."""
    if latency_s > 0:
        time.sleep(latency_s)
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise RuntimeError(f"{path}: cv2.VideoCapture could not open the video")
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        frames = []
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"{path}: no frame decoded from frame {start}")
    while len(frames) < count:
        frames.append(frames[-1])
    return np.stack(frames)


def preprocess_clip(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize each frame to size x size, BGR->RGB, scale to [0, 1] and
    normalise: float32 [T, size, size, 3]."""
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.float32)
    for t, frame in enumerate(frames):
        resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        out[t] = resized[:, :, ::-1]
    out *= 1.0 / 255.0
    out -= MEAN
    out /= STD
    return out


def augment_clip(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip (whole clip) and brightness jitter."""
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1, :]
    clip = clip * np.float32(rng.uniform(0.8, 1.2))
    return np.ascontiguousarray(clip, dtype=np.float32)


def heavy_augment_clip(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """augment_clip plus a random-strength blur applied HEAVY_AUGMENT_BLURS
    times per frame: a deliberately expensive augmentation (the
    heavy-augment plant)."""
    clip = augment_clip(clip, rng)
    sigma = float(rng.uniform(0.5, 1.5))
    out = np.empty_like(clip)
    for t, frame in enumerate(clip):
        f = frame
        for _ in range(HEAVY_AUGMENT_BLURS):
            f = cv2.GaussianBlur(f, (31, 31), sigma)
        out[t] = f
    return out


def to_tensor(clip: np.ndarray) -> torch.Tensor:
    """[T, H, W, C] float32 -> torch [C, T, H, W]."""
    return torch.from_numpy(clip).permute(3, 0, 1, 2).contiguous()


@dataclasses.dataclass
class Stages:
    """The per-item stages the Dataset calls, in order.  Swap entries to
    build a variant of the pipeline."""
    decode: Callable[..., np.ndarray] = decode_clip
    preprocess: Callable[[np.ndarray, int], np.ndarray] = preprocess_clip
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] = augment_clip
    to_tensor: Callable[[np.ndarray], torch.Tensor] = to_tensor


class VideoClipDataset(Dataset):
    """Items are (clip tensor [C, T, H, W], label); each video yields
    frames // clip_len non-overlapping clips."""

    def __init__(self, videos: List[Tuple[str, int]], opts: Options, stages: Stages):
        self.opts = opts
        self.stages = stages
        self.epoch = 0
        per_video = opts.frames // opts.clip_len
        self.items = [(path, label, k * opts.clip_len)
                      for path, label in videos for k in range(per_video)]
        # storage latency per item: the slow-reads / slow-clips plants
        slow = set(opts.slow_indices)
        self.latency = [opts.slow_latency_s if i in slow else opts.read_latency_s
                        for i in range(len(self.items))]

    def set_epoch(self, epoch: int) -> None:
        """Workers are re-created each epoch and copy this, so augmentation
        differs per epoch yet is reproducible."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label, start = self.items[index]
        rng = np.random.default_rng([self.opts.seed, self.epoch, index])
        frames = self.stages.decode(path, start, self.opts.clip_len, self.latency[index])
        clip = self.stages.preprocess(frames, self.opts.input_size)
        clip = self.stages.augment(clip, rng)
        return self.stages.to_tensor(clip), label


# ---------------------------------------------------------------------------
# Stage 6: model and training
# ---------------------------------------------------------------------------

class Small3DCNN(nn.Module):
    def __init__(self, classes: int, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, width, kernel_size=3, stride=(1, 2, 2), padding=1),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),
            nn.Conv3d(width, 2 * width, kernel_size=3, padding=1),
            nn.BatchNorm3d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool3d(1),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: nn.Module, batch) -> Tuple[float, int]:
    """One SGD step; returns (loss, number of correct predictions)."""
    clips, labels = batch
    optimizer.zero_grad()
    logits = model(clips)
    loss = loss_fn(logits, labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), int((logits.argmax(1) == labels).sum())


def seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one core per worker; OpenCV's own threads would fight them


# ---------------------------------------------------------------------------
# Wiring: profiler + pipeline
# ---------------------------------------------------------------------------

def build_stages(profiler: VideoOpusClipProfiler, opts: Options) -> Stages:
    """The pipeline's stages, each wrapped by the profiler: decode and
    preprocess are preprocessing stages, augment an augmentation stage
    (attributed to the item that calls them, in the loader's workers too)."""
    augment = heavy_augment_clip if opts.heavy_augment else augment_clip
    return Stages(decode=profiler.profile_preprocessing(decode_clip),
                  preprocess=profiler.profile_preprocessing(preprocess_clip),
                  augment=profiler.profile_augmentation(augment),
                  to_tensor=to_tensor)


class WarmupCollate:
    """default_collate, whose first call waits `warmup_s` first: a one-time
    warm-up (lazy initialisation) paid inside the first batch (the
    compute-inline plant)."""

    def __init__(self, warmup_s: float):
        self.warmup_s = warmup_s
        self.warm = False

    def __call__(self, samples):
        if not self.warm:
            self.warm = True
            time.sleep(self.warmup_s)
        return default_collate(samples)


def build_loader(dataset: Dataset, opts: Options) -> DataLoader:
    collate = WarmupCollate(opts.warmup_s) if opts.warmup_s > 0 else None
    return DataLoader(dataset, batch_size=opts.batch_size, shuffle=True,
                      num_workers=opts.num_workers, worker_init_fn=seed_worker,
                      collate_fn=collate,
                      generator=torch.Generator().manual_seed(opts.seed))


def describe_finding(item) -> str:
    """One line for a bottleneck entry: subject, measured value, threshold."""
    if not isinstance(item, dict):
        return str(item)
    subject = item.get("subject") or item.get("function") or "?"
    value, threshold, unit = item.get("value"), item.get("threshold"), item.get("unit", "")
    if isinstance(value, (int, float)) and isinstance(threshold, (int, float)):
        return f"[{item.get('rule', '?')}] {subject}: {value:.3g} {unit} " \
               f"(threshold {threshold:.3g} {unit})"
    return str(subject)


def print_bottlenecks(bottlenecks) -> None:
    print("\n=== Performance Bottlenecks ===")
    for category, items in bottlenecks.items():
        if category == "recommendations" or not items:
            continue
        print(f"\n{category}:")
        for item in items:
            print(f"  - {describe_finding(item)}")


def print_top_finding(report: Dict[str, Any]) -> None:
    findings = report.get("findings") or []
    print("\n=== Top finding ===")
    if not findings:
        print("(none: no rule fired)")
        return
    def rank(f: Dict[str, Any]) -> str:
        # findings are ranked by the time a fix would save (saving_s)
        if isinstance(f.get("saving_s"), (int, float)):
            return f"saves up to {f['saving_s']:.2f} s"
        return f"severity {f.get('severity', 0):.2f}"

    top = findings[0]
    print(f"rule:           {top.get('rule')} ({top.get('category')}), {rank(top)}, "
          f"subject {top.get('subject')}")
    print(f"recommendation: {top.get('recommendation')}")
    if len(findings) > 1:
        print("then: " + ", ".join(f"{f.get('rule')} {f.get('subject')} ({rank(f)})"
                                   for f in findings[1:6]))


def _ms(s: Any) -> str:
    return f"{1e3 * s:.2f} ms" if isinstance(s, (int, float)) else "?"


def print_data_loading(report: Dict[str, Any]) -> None:
    dl = report.get("data_loading") or {}
    summary = dl.get("data_loading") or {}
    stall = dl.get("stall") or {}
    print("\n=== Data loading ===")
    print(f"items: {summary.get('count', 0)}, avg load {_ms(summary.get('avg_load_time'))}, "
          f"slow loads {summary.get('slow_loads', 0)}, "
          f"bottleneck indices {summary.get('bottleneck_indices', [])}")
    frac = stall.get("data_stall_fraction")
    print(f"stall: {stall.get('verdict', 'unknown')}"
          + (f", the loop waits for data {100 * frac:.0f}% of its time "
             f"(threshold {100 * stall.get('threshold', 0):.0f}%)"
             if isinstance(frac, (int, float)) else ""))
    for L in dl.get("loaders") or []:
        print(f"loader {L.get('name')}: {L.get('batches')} batches, "
              f"avg wait {_ms(L.get('avg_wait_time'))}, avg step {_ms(L.get('avg_step_time'))}, "
              f"first batch {_ms(L.get('first_batch_latency'))}, "
              f"{L.get('samples_per_s', 0):.1f} samples/s, num_workers={L.get('num_workers')}")
    for st in (dl.get("stages") or [])[:5]:
        print(f"  stage {st.get('function')} ({st.get('kind')}): {st.get('calls')} calls, "
              f"avg {_ms(st.get('avg_time'))}, "
              f"{100 * st.get('share_of_item_time', 0):.0f}% of item time")
    workers = [w for w in dl.get("workers") or [] if w.get("worker", -1) >= 0]
    if workers:
        print("  workers: " + ", ".join(
            f"#{w['worker']} {w.get('items')} items"
            + (f" {100 * w['utilization']:.0f}% busy" if w.get("utilization") is not None
               else "") for w in workers))


def run(opts: Options) -> int:
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    # Leave the loader's workers their cores: torch's intra-op threads
    # spinning on cores the workers use slow both down (oversubscription).
    torch.set_num_threads(opts.torch_threads if opts.torch_threads > 0
                          else max(1, cpu_workers(cap=64) - opts.num_workers))
    t_start = time.perf_counter()

    videos = generate_videos(opts)
    print(f"videos: {len(videos)} x {opts.frames} frames {opts.width}x{opts.height} "
          f"in {cache_dir(opts)}")
    if opts.plant != "none":
        print(f"plant: {opts.plant} -- {PLANT_CAUSES[opts.plant]}")

    # Under `codeprof run` a profiler with the tracer is already running (one
    # tracing session per process): record into it, and leave starting and
    # stopping to its owner.  Run directly, create and own one.
    outer = get_current_profiler()
    owns = not outer.is_profiling
    if owns:
        # The report is saved explicitly below under a stable name, so the
        # automatic timestamped save at stop_profiling() is switched off.
        level = "basic" if opts.level == "off" else opts.level
        config = create_profiler_config(level, output_dir=opts.output_dir,
                                        save_profiles=False, enabled=opts.level != "off",
                                        slow_data_loading_threshold_s=opts.slow_load_s)
        profiler = VideoOpusClipProfiler(config)
    else:
        profiler = outer
        print("profiler: recording into the running profiler (codeprof run)")

    stages = build_stages(profiler, opts)
    dataset = VideoClipDataset(videos, opts, stages)
    # The profiled loader times every wait for a batch and every step between
    # batches; it also instruments the loader's dataset in place, so each
    # item's load time is measured in the worker that loads it.
    loader = profiler.profile_data_loader(build_loader(dataset, opts))
    model = Small3DCNN(opts.classes, opts.model_width)
    optimizer = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step = profiler.profile_function(train_step)

    if owns:
        profiler.start_profiling()
    for epoch in range(opts.epochs):
        dataset.set_epoch(epoch)
        with profiler.profiling_context(f"epoch_{epoch}"):
            total_loss, correct, seen = 0.0, 0, 0
            for batch in loader:
                loss, ok = step(model, optimizer, loss_fn, batch)
                n = int(batch[1].shape[0])
                total_loss += loss * n
                correct += ok
                seen += n
        print(f"epoch {epoch}: loss {total_loss / max(1, seen):.4f}, "
              f"train accuracy {correct / max(1, seen):.2%} ({seen} clips)")
    if owns:
        profiler.stop_profiling()

    if opts.level == "off":
        print(f"profiler off; total time: {time.perf_counter() - t_start:.1f}s")
        return 0

    print_bottlenecks(profiler.identify_bottlenecks())
    report = profiler.get_comprehensive_report()
    print_top_finding(report)
    print_data_loading(report)

    if opts.report:
        report_path = os.path.abspath(opts.report)
    else:
        os.makedirs(opts.output_dir, exist_ok=True)
        report_path = os.path.abspath(os.path.join(opts.output_dir, opts.report_name))
    saved = profiler.save_comprehensive_report(report_path)
    print(f"\nreport: {saved if isinstance(saved, str) else report_path}")
    print(f"total time: {time.perf_counter() - t_start:.1f}s")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
