"""The guide's code blocks for this issue, run as written in subprocesses.

Each block below is copied verbatim from the guide (sections "Profiling
Levels", "Profiling Configuration", "Performance Profiling", "Bottleneck
Identification", "Caching", "Best Practices" and Examples 1 and 5).  The
guide leaves some names to the reader (``profiler``, ``train_loader``,
``model``, ``optimizer``, ``time``, ``torch``, ``logger``...); a preamble
defines them, and an epilogue checks what the block produced.  Blocks that
need PyTorch are skipped where it is not installed.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import run_code

pytestmark = pytest.mark.slow

SEED_BLOCKS = {
    # 1. Basic Profiling
    'levels_basic': r'''
# Minimal profiling for quick assessment
config = create_profiler_config("basic")
''',
    # 2. Detailed Profiling
    'levels_detailed': r'''
# Comprehensive profiling with memory and GPU tracking
config = create_profiler_config("detailed")
''',
    # 3. Comprehensive Profiling
    'levels_comprehensive': r'''
# Full profiling with all features enabled
config = create_profiler_config("comprehensive")
''',
    # Basic Configuration
    'basic_configuration': r'''
from code_profiler import ProfilerConfig, VideoOpusClipProfiler

# Create basic configuration
config = ProfilerConfig(
    enabled=True,
    profile_level="detailed",
    enable_cprofile=True,
    enable_memory_profiler=True,
    enable_gpu_profiler=True,
    save_profiles=True
)

# Create profiler
profiler = VideoOpusClipProfiler(config)
''',
    # Advanced Configuration
    'advanced_configuration': r'''
config = ProfilerConfig(
    # General settings
    enabled=True,
    profile_level="comprehensive",
    
    # Performance profiling
    enable_cprofile=True,
    enable_line_profiler=True,
    enable_memory_profiler=True,
    enable_gpu_profiler=True,
    
    # Memory profiling
    enable_memory_tracking=True,
    enable_gc_profiling=True,
    memory_snapshots=True,
    
    # GPU profiling
    enable_cuda_profiling=True,
    profile_cuda_memory=True,
    profile_cuda_operations=True,
    
    # Data loading profiling
    profile_data_loading=True,
    profile_preprocessing=True,
    profile_augmentation=True,
    
    # Output settings
    save_profiles=True,
    output_dir="profiles",
    detailed_reports=True,
    
    # Sampling settings
    sample_interval=0.1,
    max_samples=10000
)
''',
    # 1. Development Profiling
    'strategy_development': r'''
# Lightweight profiling for development
config = ProfilerConfig(
    enabled=True,
    profile_level="basic",
    enable_cprofile=True,
    enable_memory_profiler=False,
    enable_gpu_profiler=False,
    save_profiles=False
)
''',
    # 2. Performance Analysis
    'strategy_performance_analysis': r'''
# Comprehensive profiling for performance analysis
config = ProfilerConfig(
    enabled=True,
    profile_level="detailed",
    enable_cprofile=True,
    enable_line_profiler=True,
    enable_memory_profiler=True,
    enable_gpu_profiler=True,
    save_profiles=True
)
''',
    # 3. Production Monitoring
    'strategy_production_monitoring': r'''
# Minimal profiling for production monitoring
config = ProfilerConfig(
    enabled=True,
    profile_level="basic",
    enable_cprofile=True,
    enable_memory_profiler=True,
    enable_gpu_profiler=False,
    save_profiles=True,
    detailed_reports=False
)
''',
    # Function Profiling
    'function_profiling': r'''
from code_profiler import profile_function

# Profile a single function
@profile_function("detailed")
def slow_function():
    time.sleep(0.1)
    return "result"

# Profile a class
@profile_class("detailed")
class MyModel:
    def __init__(self):
        self.weights = torch.randn(1000, 1000)
    
    def forward(self, x):
        return torch.mm(x, self.weights)
''',
    # Manual Profiling
    'manual_profiling': r'''
# Manual profiling with context manager
with profiler.profiling_context("training_epoch"):
    for batch in train_loader:
        loss = model(batch)
        loss.backward()
        optimizer.step()
''',
    # Performance Analysis
    'performance_analysis': r'''
# Get performance statistics
perf_stats = profiler.performance_profiler.get_profile_stats()

# Analyze slow functions
for func in perf_stats['slow_functions']:
    print(f"Slow function: {func['function']} took {func['execution_time']:.2f}s")

# Analyze memory intensive functions
for func in perf_stats['memory_intensive_functions']:
    print(f"Memory intensive: {func['function']} used {func['memory_delta'] / 1024 / 1024:.1f}MB")
''',
    # Automatic Bottleneck Detection
    'automatic_bottleneck_detection': r'''
# Identify bottlenecks
bottlenecks = profiler.identify_bottlenecks()

# Analyze results
print("=== Performance Bottlenecks ===")
for category, items in bottlenecks.items():
    if items:
        print(f"\n{category}:")
        for item in items:
            print(f"  - {item}")
''',
    # 1. Slow Functions
    'bottleneck_slow_functions': r'''
# Functions taking more than 1 second
for func in bottlenecks['slow_functions']:
    print(f"Slow function: {func}")
''',
    # 2. Memory Intensive Functions
    'bottleneck_memory_intensive': r'''
# Functions using more than 100MB
for func in bottlenecks['memory_intensive_functions']:
    print(f"Memory intensive: {func}")
''',
    # 3. Slow Data Loading
    'bottleneck_slow_data_loading': r'''
# Data loading taking more than 1 second
for item in bottlenecks['slow_data_loading']:
    print(f"Slow data loading: {item}")
''',
    # 4. Slow Preprocessing
    'bottleneck_slow_preprocessing': r'''
# Preprocessing taking more than 500ms
for item in bottlenecks['slow_preprocessing']:
    print(f"Slow preprocessing: {item}")
''',
    # 5. Slow GPU Operations
    'bottleneck_slow_gpu_operations': r'''
# GPU operations taking more than 100ms
for item in bottlenecks['slow_gpu_operations']:
    print(f"Slow GPU operation: {item}")
''',
    # Recommendations
    'recommendations': r'''
# Get optimization recommendations
for recommendation in bottlenecks['recommendations']:
    print(f"Recommendation: {recommendation}")
''',
    # Caching
    'caching': r'''
from functools import lru_cache

@lru_cache(maxsize=128)
@profiler.profile_function
def expensive_computation(x):
    # Expensive computation
    return complex_math_operation(x)
''',
    # Development Workflow
    'development_workflow': r'''
# 1. Start with basic profiling
config = create_profiler_config("basic")
profiler = VideoOpusClipProfiler(config)

# 2. Identify bottlenecks
bottlenecks = profiler.identify_bottlenecks()

# 3. Use detailed profiling for specific areas
config = create_profiler_config("detailed")
detailed_profiler = VideoOpusClipProfiler(config)

# 4. Optimize and re-profile
''',
    # Production Monitoring
    'production_monitoring': r'''
# Lightweight production profiling
config = ProfilerConfig(
    enabled=True,
    profile_level="basic",
    save_profiles=True,
    detailed_reports=False
)

profiler = VideoOpusClipProfiler(config)
''',
    # Regular Profiling
    'regular_profiling': r'''
# Schedule regular profiling
def scheduled_profiling():
    profiler.start_profiling()
    
    # Run normal operations
    run_training_epoch()
    
    profiler.stop_profiling()
    
    # Save report
    profiler.save_comprehensive_report()
    
    # Analyze bottlenecks
    bottlenecks = profiler.identify_bottlenecks()
    
    # Log results
    logger.info(f"Profiling completed. Found {len(bottlenecks['slow_functions'])} slow functions")
''',
    # Example 1: Basic Profiling
    'example1_basic_profiling': r'''
from code_profiler import VideoOpusClipProfiler, create_profiler_config

# Create profiler
config = create_profiler_config("basic")
profiler = VideoOpusClipProfiler(config)

# Start profiling
profiler.start_profiling()

# Profile training loop
@profiler.profile_function
def training_epoch():
    for batch in train_loader:
        loss = model(batch)
        loss.backward()
        optimizer.step()

# Run training
for epoch in range(5):
    training_epoch()

# Stop profiling and get report
profiler.stop_profiling()
report = profiler.get_comprehensive_report()
bottlenecks = profiler.identify_bottlenecks()

print("Profiling Results:")
print(json.dumps(report, indent=2))
''',
    # Example 5: Comprehensive Analysis
    'example5_comprehensive_analysis': r'''
# Comprehensive profiling
config = create_profiler_config("comprehensive")
profiler = VideoOpusClipProfiler(config)

# Start profiling
profiler.start_profiling()

# Profile entire training pipeline
with profiler.profiling_context("full_training"):
    for epoch in range(3):
        with profiler.profiling_context(f"epoch_{epoch}"):
            for batch_idx, batch in enumerate(train_loader):
                with profiler.profiling_context(f"batch_{batch_idx}"):
                    # Training step
                    loss = model(batch)
                    loss.backward()
                    optimizer.step()

# Stop profiling
profiler.stop_profiling()

# Get comprehensive report
report = profiler.get_comprehensive_report()
bottlenecks = profiler.identify_bottlenecks()

# Save report
profiler.save_comprehensive_report("training_profile.json")

# Print summary
print("=== Profiling Summary ===")
print(f"Total functions profiled: {report['performance']['total_functions_profiled']}")
print(f"Slow functions: {len(bottlenecks['slow_functions'])}")
print(f"Memory intensive functions: {len(bottlenecks['memory_intensive_functions'])}")
print(f"Slow data loading: {len(bottlenecks['slow_data_loading'])}")

# Print recommendations
print("\n=== Recommendations ===")
for recommendation in bottlenecks['recommendations']:
    print(f"- {recommendation}")
''',
}

IMPORTS = r'''
import json
import logging
import os
import time
from code_profiler import (ProfilerConfig, VideoOpusClipProfiler, create_profiler_config,
                           profile_class, profile_function)
'''

TORCH_SETUP = r'''
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
torch.set_num_threads(1)
features = torch.randn(64, 16)
labels = (features[:, :4].sum(dim=1) > 0).long()
train_loader = DataLoader(TensorDataset(features, labels), batch_size=16)


class LossModel(nn.Module):
    """forward(batch) returns the batch's loss, as the guide's loops expect."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, batch):
        x, y = batch
        return self.loss_fn(self.net(x), y)


model = LossModel()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
'''

# A started profiler with thresholds low enough for a quick workload to
# produce a slow function and a memory-intensive one.
WORKLOAD = r'''
profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="basic",
                                                slow_function_threshold_s=0.05,
                                                memory_intensive_threshold_mb=8.0))
profiler.start_profiling()
_kept = []

@profiler.profile_function
def decode_clip():
    time.sleep(0.1)

@profiler.profile_function
def load_frames():
    _kept.append(b"\x01" * (32 * 1024 * 1024))

decode_clip()
load_frames()
profiler.stop_profiling()
'''

CHECK_HELPERS = r'''
def entry(report, name, kind=None):
    found = [f for f in report["performance"]["functions"]
             if (f["function"] == name or f["function"].endswith("." + name))
             and (kind is None or f["kind"] == kind)]
    assert len(found) == 1, (name, [f["function"] for f in report["performance"]["functions"]])
    return found[0]
'''


def script(*parts: str) -> str:
    return "\n".join(textwrap.dedent(p) for p in parts) + "\nprint('SEED-OK')\n"


def run_ok(tmp_path: Path, code: str, timeout: float = 180):
    res = run_code(code, tmp_path, timeout=timeout)
    assert res.returncode == 0, f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}"
    assert "SEED-OK" in res.stdout
    return res


def needs_torch():
    pytest.importorskip("torch")


def test_profiling_levels(tmp_path):
    run_ok(tmp_path, script(IMPORTS, SEED_BLOCKS["levels_basic"], '''
assert config.profile_level == "basic" and not config.enable_cprofile
''', SEED_BLOCKS["levels_detailed"], '''
assert config.profile_level == "detailed" and config.enable_cprofile
''', SEED_BLOCKS["levels_comprehensive"], '''
assert config.profile_level == "comprehensive" and config.enable_gc_profiling
'''))


def test_basic_configuration(tmp_path):
    run_ok(tmp_path, script(SEED_BLOCKS["basic_configuration"], '''
assert isinstance(profiler, VideoOpusClipProfiler)
assert profiler.config.enable_cprofile and profiler.config.save_profiles
'''))


def test_advanced_configuration(tmp_path):
    run_ok(tmp_path, script(IMPORTS, SEED_BLOCKS["advanced_configuration"], '''
profiler = VideoOpusClipProfiler(config)
assert config.profile_level == "comprehensive" and config.max_samples == 10000
assert profiler.get_comprehensive_report()["config"]["max_samples"] == 10000
'''))


def test_configuration_strategies(tmp_path):
    run_ok(tmp_path, script(
        IMPORTS,
        SEED_BLOCKS["strategy_development"], "assert config.save_profiles is False\n",
        SEED_BLOCKS["strategy_performance_analysis"], "assert config.enable_line_profiler\n",
        SEED_BLOCKS["strategy_production_monitoring"], "assert config.detailed_reports is False\n",
        "VideoOpusClipProfiler(config)\n"))


@pytest.mark.torch
def test_function_profiling(tmp_path):
    needs_torch()
    res = run_ok(tmp_path, script(IMPORTS, "import torch\n", CHECK_HELPERS, '''
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))
profiler.start_profiling()
''', SEED_BLOCKS["function_profiling"], '''
assert slow_function() == "result"
m = MyModel()
out = m.forward(torch.randn(4, 1000))
assert tuple(out.shape) == (4, 1000)
profiler.stop_profiling()
report = profiler.get_comprehensive_report()
slow = entry(report, "slow_function", "function")
assert slow["calls"] == 1 and 0.095 <= slow["inclusive_s"] < 0.5, slow
assert entry(report, "MyModel.__init__", "function")["calls"] == 1
assert entry(report, "MyModel.forward", "function")["calls"] == 1
'''))
    assert res.stderr == ""


@pytest.mark.torch
def test_manual_profiling(tmp_path):
    needs_torch()
    run_ok(tmp_path, script(IMPORTS, TORCH_SETUP, CHECK_HELPERS, '''
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))
profiler.start_profiling()
''', SEED_BLOCKS["manual_profiling"], '''
profiler.stop_profiling()
e = entry(profiler.get_comprehensive_report(), "training_epoch", "scope")
assert e["calls"] == 1 and e["inclusive_s"] > 0
'''))


def test_performance_analysis(tmp_path):
    res = run_ok(tmp_path, script(IMPORTS, WORKLOAD, SEED_BLOCKS["performance_analysis"]))
    assert "Slow function: __main__.decode_clip took 0.1" in res.stdout
    assert "Memory intensive: __main__.load_frames used 3" in res.stdout  # ~32 MB


def test_bottleneck_identification(tmp_path):
    blocks = [SEED_BLOCKS[k] for k in (
        "automatic_bottleneck_detection", "bottleneck_slow_functions",
        "bottleneck_memory_intensive", "bottleneck_slow_data_loading",
        "bottleneck_slow_preprocessing", "bottleneck_slow_gpu_operations", "recommendations")]
    res = run_ok(tmp_path, script(IMPORTS, WORKLOAD, *blocks, '''
assert set(bottlenecks) == {"slow_functions", "memory_intensive_functions", "slow_data_loading",
                            "slow_preprocessing", "slow_gpu_operations", "recommendations"}
'''))
    out = res.stdout
    assert "=== Performance Bottlenecks ===" in out
    assert "\nslow_functions:\n" in out and "\nmemory_intensive_functions:\n" in out
    assert "\nslow_data_loading:" not in out  # empty categories are not printed
    assert "Slow function: {" in out and "decode_clip" in out
    assert "Memory intensive: {" in out and "load_frames" in out
    assert "Recommendation: " in out


def test_caching_with_lru_cache(tmp_path):
    run_ok(tmp_path, script(IMPORTS, CHECK_HELPERS, '''
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))
profiler.start_profiling()

def complex_math_operation(x):
    return x ** 3 + 1
''', SEED_BLOCKS["caching"], '''
assert [expensive_computation(2), expensive_computation(2), expensive_computation(3)] == [9, 9, 28]
profiler.stop_profiling()
assert entry(profiler.get_comprehensive_report(), "expensive_computation")["calls"] == 2
assert expensive_computation.cache_info().hits == 1
'''))


def test_development_workflow_and_production_monitoring(tmp_path):
    run_ok(tmp_path, script(IMPORTS, SEED_BLOCKS["development_workflow"], '''
assert bottlenecks["slow_functions"] == [] and "recommendations" in bottlenecks
assert detailed_profiler.config.profile_level == "detailed"
''', SEED_BLOCKS["production_monitoring"], '''
assert profiler.config.profile_level == "basic" and not profiler.config.detailed_reports
'''))


def test_regular_profiling(tmp_path):
    res = run_ok(tmp_path, script(IMPORTS, '''
logging.basicConfig(level=logging.INFO, format="%(message)s")
logger = logging.getLogger("seed")
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))

@profile_function
def run_training_epoch():
    time.sleep(0.01)
''', SEED_BLOCKS["regular_profiling"], '''
scheduled_profiling()
saved = os.listdir("profiles")
assert len(saved) == 1 and saved[0].startswith("profile_") and saved[0].endswith(".json"), saved
with open(os.path.join("profiles", saved[0])) as fh:
    report = json.load(fh)
assert any(f["function"].endswith("run_training_epoch") and f["calls"] == 1
           for f in report["performance"]["functions"])
'''))
    assert "Profiling completed. Found 0 slow functions" in res.stderr


@pytest.mark.torch
def test_example1_basic_profiling(tmp_path):
    needs_torch()
    res = run_ok(tmp_path, script(TORCH_SETUP, "import json\n",
                                  SEED_BLOCKS["example1_basic_profiling"]))
    head, _, body = res.stdout.partition("Profiling Results:\n")
    report = json.loads(body.rsplit("SEED-OK", 1)[0])
    epochs = [f for f in report["performance"]["functions"]
              if f["function"].endswith("training_epoch")]
    assert len(epochs) == 1 and epochs[0]["calls"] == 5 and epochs[0]["kind"] == "function"
    assert set(report["bottlenecks"]) >= {"slow_functions", "recommendations"}


@pytest.mark.torch
def test_example5_comprehensive_analysis(tmp_path):
    needs_torch()
    res = run_ok(tmp_path, script(IMPORTS, TORCH_SETUP, CHECK_HELPERS,
                                  SEED_BLOCKS["example5_comprehensive_analysis"], '''
assert entry(report, "full_training", "scope")["calls"] == 1
assert entry(report, "epoch_2", "scope")["calls"] == 1
assert entry(report, "batch_3", "scope")["calls"] == 3
assert entry(report, "LossModel.forward", "python")["calls"] == 12  # the tracer is on
'''))
    out = res.stdout
    assert "=== Profiling Summary ===" in out and "=== Recommendations ===" in out
    assert "Total functions profiled: " in out
    saved = tmp_path / "profiles" / "training_profile.json"
    assert json.loads(saved.read_text())["schema"] == "codeprof-report"


# -- the blocks as the guide writes them: no start_profiling() ----------------------
# "Manual Profiling" and "Function Profiling" use profiling_context and
# @profile_function on a profiler that was created but never started; an
# enabled profiler records them (its C session starts, without the tracer,
# at their first use).

@pytest.mark.torch
def test_manual_profiling_without_start(tmp_path):
    needs_torch()
    res = run_ok(tmp_path, script(IMPORTS, TORCH_SETUP, CHECK_HELPERS, '''
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))
''', SEED_BLOCKS["manual_profiling"], '''
assert not profiler.is_profiling
e = entry(profiler.get_comprehensive_report(), "training_epoch", "scope")
assert e["calls"] == 1 and e["inclusive_s"] > 0
'''))
    assert "recorded nothing" not in res.stderr


@pytest.mark.torch
def test_function_profiling_without_start(tmp_path):
    needs_torch()
    res = run_ok(tmp_path, script(IMPORTS, "import torch\n", CHECK_HELPERS, '''
profiler = VideoOpusClipProfiler(create_profiler_config("basic"))
''', SEED_BLOCKS["function_profiling"], '''
assert slow_function() == "result"
m = MyModel()
m.forward(torch.randn(4, 1000))
report = profiler.get_comprehensive_report()
slow = entry(report, "slow_function", "function")
assert slow["calls"] == 1 and 0.095 <= slow["inclusive_s"] < 0.5, slow
assert entry(report, "MyModel.__init__", "function")["calls"] == 1
assert entry(report, "MyModel.forward", "function")["calls"] == 1
'''))
    assert res.stderr == ""


def test_production_monitoring_never_saves_an_empty_report_silently(tmp_path):
    # The guide's Production config, started and stopped around code that no
    # instrument sees: the save warns that nothing was recorded.
    res = run_ok(tmp_path, script(IMPORTS, SEED_BLOCKS["production_monitoring"], '''
profiler.start_profiling()
sum(range(1000))
profiler.stop_profiling()
saved = os.listdir("profiles")
assert len(saved) == 1, saved
'''))
    assert "RuntimeWarning" in res.stderr and "recorded nothing" in res.stderr
    # with a context inside, the same config saves a report that has it, silently
    res = run_ok(tmp_path, script(IMPORTS, CHECK_HELPERS, SEED_BLOCKS["production_monitoring"], '''
profiler.start_profiling()
with profiler.profiling_context("serve_request"):
    sum(range(1000))
profiler.stop_profiling()
with open(profiler.last_report_path) as fh:
    assert entry(json.load(fh), "serve_request", "scope")["calls"] == 1
'''))
    assert "recorded nothing" not in res.stderr
