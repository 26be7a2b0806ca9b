"""The guide's data-loading code blocks (section "Data Loading Profiling",
"Data Loader Profiling" and Example 2), run as written in subprocesses.

Each block is copied verbatim from the guide; a preamble defines the names
the guide leaves to the reader (``profiler``, ``dataset``, ``train_loader``,
``rotate``, ``color_jitter``...) and an epilogue checks what was measured.
"""
from __future__ import annotations

import pytest

from test_seed_blocks import IMPORTS, run_ok, script

pytestmark = pytest.mark.slow

BLOCKS = {
    "data_loader_profiling": r'''
# Profile data loader
profiled_loader = profiler.profile_data_loader(train_loader)

# Use profiled loader
for batch in profiled_loader:
    # Training code
    pass

# Get statistics
stats = profiled_loader.get_stats()
print(f"Average batch time: {stats['avg_batch_time']:.3f}s")
''',
    "dataset_profiling": r'''
# Profile dataset access
profiled_dataset = profiler.profile_dataset(dataset)

# Use profiled dataset
for i in range(100):
    item = profiled_dataset[i]

# Get dataset statistics
stats = profiled_dataset.get_stats()
print(f"Average load time: {stats['avg_load_time']:.3f}s")
print(f"Slow loads: {stats['slow_loads']}")
''',
    "preprocessing_profiling": r'''
@profiler.profile_preprocessing
def preprocess_image(image):
    # Resize image
    resized = cv2.resize(image, (224, 224))
    
    # Normalize
    normalized = resized / 255.0
    
    # Convert to tensor
    tensor = torch.from_numpy(normalized).float()
    
    return tensor
''',
    "augmentation_profiling": r'''
@profiler.profile_augmentation
def augment_image(image):
    # Random rotation
    angle = np.random.uniform(-15, 15)
    rotated = rotate(image, angle)
    
    # Random flip
    if np.random.random() > 0.5:
        rotated = np.fliplr(rotated)
    
    # Color jitter
    jittered = color_jitter(rotated)
    
    return jittered
''',
    "data_loading_report": r'''
# Get data loading report
data_report = profiler.data_loading_profiler.get_data_loading_report()

# Analyze data loading
if 'data_loading' in data_report:
    dl_stats = data_report['data_loading']
    print(f"Average load time: {dl_stats['avg_load_time']:.3f}s")
    print(f"Slow loads: {dl_stats['slow_loads']}")
    
    # Identify bottleneck indices
    for idx in dl_stats['bottleneck_indices']:
        print(f"Slow loading at index: {idx}")

# Analyze preprocessing
if 'preprocessing' in data_report:
    pre_stats = data_report['preprocessing']
    print(f"Average preprocessing time: {pre_stats['avg_preprocess_time']:.3f}s")
    
    # Function breakdown
    for func_name, func_stats in pre_stats['function_breakdown'].items():
        print(f"{func_name}: {func_stats['count']} calls, avg {func_stats['avg_time']:.3f}s")

# Analyze augmentation
if 'augmentation' in data_report:
    aug_stats = data_report['augmentation']
    print(f"Average augmentation time: {aug_stats['avg_augment_time']:.3f}s")
''',
    "example2": r'''
# Profile data loading
profiled_loader = profiler.profile_data_loader(train_loader)
profiled_dataset = profiler.profile_dataset(dataset)

# Use profiled components
for batch in profiled_loader:
    # Training code
    pass

# Analyze results
loader_stats = profiled_loader.get_stats()
dataset_stats = profiled_dataset.get_stats()

print(f"Average batch time: {loader_stats['avg_batch_time']:.3f}s")
print(f"Average load time: {dataset_stats['avg_load_time']:.3f}s")

# Optimize based on results
if loader_stats['avg_batch_time'] > 0.1:
    print("Consider increasing num_workers or batch_size")

if dataset_stats['avg_load_time'] > 0.05:
    print("Consider caching or preprocessing data")
''',
}

# A dataset of images whose item 42 is slow, a loader with two worker
# processes over it, helpers the augmentation block names, and a started
# profiler.
SETUP = r'''
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class FrameDataset(Dataset):
    def __len__(self):
        return 120

    def __getitem__(self, i):
        time.sleep(0.15 if i == 42 else 0.001)
        rng = np.random.default_rng(i)
        return rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)


def rotate(image, angle):
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, m, (w, h))


def color_jitter(image):
    return np.clip(image * np.random.uniform(0.8, 1.2), 0, 255).astype(np.uint8)


dataset = FrameDataset()
train_loader = DataLoader(dataset, batch_size=8, num_workers=2)
profiler = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))
profiler.start_profiling()
'''


def needs_data_stack():
    pytest.importorskip("torch")
    pytest.importorskip("cv2")


def test_data_loader_profiling_block(tmp_path):
    needs_data_stack()
    res = run_ok(tmp_path, script(IMPORTS, SETUP, BLOCKS["data_loader_profiling"], '''
assert stats["batches"] == 15 and stats["items"] == 120
assert stats["avg_batch_time"] > 0 and stats["num_workers"] == 2
report = profiler.get_comprehensive_report()["data_loading"]
# item times measured in the two workers reached this report, once each
assert report["datasets"][0]["count"] == 120
assert {w["worker"] for w in report["workers"]} == {0, 1}
'''))
    assert "Average batch time: " in res.stdout


def test_dataset_and_stage_blocks(tmp_path):
    needs_data_stack()
    res = run_ok(tmp_path, script(IMPORTS, SETUP, BLOCKS["dataset_profiling"],
                                  BLOCKS["preprocessing_profiling"],
                                  BLOCKS["augmentation_profiling"], '''
for i in range(6):
    augment_image(preprocess_image(profiled_dataset[i]).numpy())
''', BLOCKS["data_loading_report"], '''
assert stats["count"] == 100 and stats["bottleneck_indices"][0] == 42
fb = data_report["preprocessing"]["function_breakdown"]
assert [v["count"] for k, v in fb.items() if k.endswith("preprocess_image")] == [6]
assert data_report["augmentation"]["avg_augment_time"] > 0
'''))
    out = res.stdout
    assert "Average load time: " in out and "Slow loads: " in out
    assert "Slow loading at index: 42" in out
    assert "preprocess_image: 6 calls" in out
    assert "Average augmentation time: " in out


def test_example2_data_loading_optimization(tmp_path):
    needs_data_stack()
    res = run_ok(tmp_path, script(IMPORTS, SETUP, BLOCKS["example2"], '''
# The dataset was wrapped after the loader was built: its items, loaded in
# the loader's workers, are still this dataset's.
assert dataset_stats["count"] == 120
assert loader_stats["batches"] == 15
'''))
    assert "Average batch time: " in res.stdout and "Average load time: " in res.stdout


# The guide's data blocks never call start_profiling(): like contexts, the
# first use of a profiled loader or dataset of an enabled profiler starts its
# session (without the tracer), so they measure instead of printing zeros.
SETUP_NO_START = SETUP.replace("profiler.start_profiling()\n", "")


def test_example2_without_start_profiling(tmp_path):
    needs_data_stack()
    assert SETUP_NO_START != SETUP
    res = run_ok(tmp_path, script(IMPORTS, SETUP_NO_START, BLOCKS["example2"], '''
assert not profiler.is_profiling
assert loader_stats["batches"] == 15 and loader_stats["avg_batch_time"] > 0
# items loaded in the two worker processes reached the report
assert dataset_stats["count"] == 120 and dataset_stats["avg_load_time"] > 0
'''))
    assert "recorded nothing" not in res.stderr


def test_dataset_block_without_start_profiling(tmp_path):
    needs_data_stack()
    run_ok(tmp_path, script(IMPORTS, SETUP_NO_START, BLOCKS["dataset_profiling"], '''
assert stats["count"] == 100 and stats["avg_load_time"] > 0
assert 42 in stats["bottleneck_indices"]
'''))
