#!/usr/bin/env python
"""Example 3 of the guide: memory optimization, runnable on a CPU.

The guide leaves `load_large_dataset`, `preprocess_data` and `model` to the
reader; here they are numpy stand-ins of known size: a 200 MB array of
frames, a preprocessed copy of the same size, and a reduction to a number.
Everything from "Profile memory usage" on is the guide's code; the lines
after it print what the memory report says about the operation (a peak of
about 400 MB within the call for almost nothing kept) and the allocation
sites holding memory at the end.

    python examples/example3_memory.py [basic|detailed|comprehensive]

docs/memory.md says what each level measures.
"""
import sys

import numpy as np

from code_profiler import VideoOpusClipProfiler, create_profiler_config

MB = 1024 * 1024


# --- the pieces the guide assumes --------------------------------------------
def load_large_dataset():
    """200 MB of float64 'frames', every page written."""
    return np.ones(200 * MB // 8)


def preprocess_data(data):
    """A normalised copy: another 200 MB array."""
    return (data - 0.5) * 2.0


def model(batch):
    return float(batch.mean())


level = sys.argv[1] if len(sys.argv) > 1 else "comprehensive"
profiler = VideoOpusClipProfiler(create_profiler_config(level, enable_cprofile=False,
                                                        enable_memory_profiler=True))


# --- the guide's Example 3 ---------------------------------------------------
# Profile memory usage
@profiler.memory_profiler.profile_memory_usage
def memory_intensive_operation():
    large_data = load_large_dataset()
    processed_data = preprocess_data(large_data)
    result = model(processed_data)
    return result


# Run operation
result = memory_intensive_operation()

# Analyze memory report
memory_report = profiler.memory_profiler.get_memory_report()
stats = memory_report['memory_statistics']

print(f"Memory delta: {stats['total_memory_delta'] / 1024 / 1024:.1f}MB")

# Optimize if needed
if stats['total_memory_delta'] > 1000 * 1024 * 1024:  # 1GB
    print("Consider memory optimization strategies")

# --- what else the report says -----------------------------------------------
print(f"\nmode: {memory_report['mode']}"
      f"{' (sampled estimates)' if memory_report['estimated'] else ''}")
for ctx in memory_report["memory_intensive_contexts"]:
    print(f"{ctx['context']}: {ctx['calls']} call(s), peak {ctx['peak'] / MB:.1f} MiB, "
          f"net {ctx['memory_delta'] / MB:+.1f} MiB, RSS net {ctx['rss_delta'] / MB:+.1f} MiB")
for group in [g for g in memory_report["top_allocations"] if g["live_bytes"] >= MB][:3]:
    frames = memory_report["stacks"][group["stack"]]["frames"]
    where = ", ".join(f"{f['function']} ({f['file']}:{f['line']})" for f in frames[:2])
    print(f"  {group['live_bytes'] / MB:8.1f} MiB live from {where}")
for finding in profiler.identify_bottlenecks()["memory_intensive_functions"]:
    print(f"finding: {finding['recommendation']}")
profiler.stop_profiling()
