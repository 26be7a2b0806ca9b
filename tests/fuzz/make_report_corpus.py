#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_report_reader (tests/fuzz/corpus/report/).

The seeds are committed; this script documents how they were made and
rewrites them when the report schema changes (docs/report-schema.md,
version 4; the seeds without a memory section stay version 2, which the
reader still reads).  Hand-made seeds cover each section and the reader's error
paths; with code_profiler importable (an installed build) it also saves a
small real report ("real_small.json")."""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "report")


def report(version=2, **parts):
    doc = {"schema": "codeprof-report", "schema_version": version}
    doc.update(parts)
    return doc


SITES = [{"function": "main", "file": 0, "line": 1, "kind": "python"},
         {"function": "work", "file": 0, "line": 5, "kind": "python"},
         {"function": "len", "file": None, "line": 0, "kind": "native"}]

TREE = [{"thread": 0, "os_tid": 1, "events": 10, "dropped": 0, "pid": 7, "worker": -1,
         "inclusive_s": 2.5,
         "children": [{"site": 0, "calls": 1, "inclusive_s": 2.5, "self_s": 0.5, "cpu_s": None,
                       "children": [{"site": 1, "calls": 3, "inclusive_s": 1.5, "self_s": 1.5,
                                     "cpu_s": 0.25},
                                    {"other": 4, "calls": 9, "inclusive_s": 0.5,
                                     "self_s": 0.5}]}]}]

FUNCS = [{"function": "main", "file": "app.py", "line": 1, "kind": "python", "calls": 1,
          "inclusive_s": 2.5, "self_s": 0.5, "cpu_s": None, "min_s": 2.5, "max_s": 2.5,
          "mean_s": 2.5, "p50_s": None, "p95_s": None, "p99_s": None, "memory_delta": None,
          "memory_delta_total": None},
         {"function": "work", "file": "app.py", "line": 5, "kind": "python", "calls": 3,
          "inclusive_s": 1.5, "self_s": 1.5, "cpu_s": 0.25, "min_s": 0.1, "max_s": 1,
          "mean_s": 0.5, "p50_s": 0.4, "p95_s": 1, "p99_s": 1, "memory_delta": -4096,
          "memory_delta_total": 8192}]

DATA = {"datasets": [{"name": "Clips", "count": 20, "total_time": 0.4, "p95": 0.3,
                      "max": 0.31, "bottlenecks": [{"index": 7, "load_time": 0.31,
                                                    "epochs_slow": 2}],
                      "repeat_slow_indices": 1}],
        "loaders": [{"name": "DL", "batches": 5, "items": 20, "epochs": 1,
                     "total_wait_time": 0.5, "total_step_time": 2, "first_batch_latency": 0.1,
                     "data_stall_fraction": 0.16, "samples_per_s": 8, "num_workers": 2,
                     "pin_memory": False}],
        "workers": [{"worker": 0, "pid": 8, "items": 20, "busy_time": 0.4, "span": 1,
                     "incomplete": True, "incomplete_reason": "killed"}],
        "stages": [{"function": "decode", "kind": "preprocess", "file": "d.py", "line": 3,
                    "calls": 20, "total_time": 0.2, "max_time": 0.05,
                    "share_of_item_time": 0.5}],
        "cpu_count": 8}

FINDINGS = [{"rule": "CP-DATA-002", "category": "slow_data_loading", "subject": "Clips",
             "value": 0.31, "threshold": 0.05, "unit": "s", "severity": 6.2,
             "recommendation": "Index 7 loads 30x slower than the median.", "saving_s": 0.25}]

MIB = 1 << 20

# A version 3 memory section (docs/report-schema.md, "memory").
MEMORY = {
    "enabled": True, "mode": "sampled", "estimated": True, "native": False,
    "sample_bytes": 262144, "stack_depth": 8,
    "memory_statistics": {"live_bytes": 24 * MIB, "peak_bytes": 900 * MIB,
                          "rss_bytes": 1200 * MIB, "rss_peak_bytes": 1536 * MIB,
                          "machine_bytes": 16384 * MIB},
    "memory_intensive_contexts": [
        {"context": "transient", "file": "app.py", "line": 12, "kind": "function", "calls": 2,
         "memory_delta": 2 * MIB, "max_memory_delta": MIB, "peak": 800 * MIB,
         "rss_delta": -4096, "rss_peak": 790 * MIB, "estimated": True},
        {"context": "epoch", "file": None, "line": 0, "kind": "scope", "calls": 5,
         "memory_delta": 30 * MIB, "max_memory_delta": 6 * MIB, "peak": 8 * MIB,
         "leaked_bytes": 24 * MIB, "leaked_blocks": 4, "floor_growth_per_call": 6291456.5,
         "gc_collections": 40}],
    "gc_statistics": {"enabled": True, "collections": [100, 10, 1], "collected": [5000, 300, 20],
                      "uncollectable": [0, 0, 2], "time_s_by_generation": [0.2, 0.1, 0.3],
                      "max_pause_s": 0.25},
    "domains": {"numpy": {"alloc_count": 4, "alloc_bytes": 1024 * MIB, "free_count": 2,
                          "free_bytes": 800 * MIB, "live_bytes": 224 * MIB, "live_blocks": 2,
                          "peak_bytes": 1010 * MIB},
                "object": {"live_bytes": -64}},
    "stacks": [{"frames": [{"function": "load", "file": "app.py", "line": 30},
                           {"function": "main", "file": "app.py", "line": 50}]},
               {"frames": [{"function": "list.append", "file": None, "line": 0}]}],
    "top_allocations": [{"stack": 0, "context": "data_processing", "live_bytes": 200 * MIB,
                         "live_blocks": 1},
                        {"stack": None, "context": None, "live_bytes": 1, "live_blocks": 1}],
    "leaks": [{"context": "epoch", "stack": 1, "live_bytes": 24 * MIB, "live_blocks": 4}],
    "processes": [{"pid": 8, "worker": 0, "loader": "DL", "samples": 10, "duration_s": 5,
                   "uss_first": 100 * MIB, "uss_last": 160 * MIB, "pss_max": 210 * MIB},
                  {"pid": 7, "worker": -1, "loader": None}],
    "snapshots": [{"context": "epoch", "t_s": 1.5, "live_bytes": 16 * MIB,
                   "groups": [{"stack": 1, "live_bytes": 6 * MIB, "live_blocks": 1}]},
                  {"context": "epoch", "t_s": 3, "live_bytes": 22 * MIB, "groups": []}],
    "own_bytes": 12345,
    "dropped": {"blocks": 7, "samples": 1},
}

META = {"pid": 7, "role": "main", "clock": "tsc", "start_unix_s": 1700000000.123456789,
        "duration_s": 3, "events": 10, "python_traced": True, "hidden_calls": 2,
        "warnings": [{"code": "w", "message": "m", "unix_s": 1700000001}]}

PERF = {"functions": FUNCS, "functions_omitted": 1, "files": ["app.py"], "sites": SITES,
        "call_tree": TREE}


def deep(levels):
    node = {"site": 1, "calls": 1, "inclusive_s": 1, "self_s": 1}
    for _ in range(levels):
        node = {"site": 0, "calls": 1, "inclusive_s": 1, "self_s": 0, "children": [node]}
    return report(performance={"files": ["a.py"], "sites": SITES[:2],
                               "call_tree": [{"thread": 0, "children": [node]}]})


# A version 4 gpu section (docs/report-schema.md, "gpu").
GPU_LIB = {"status": "ok", "path": "libcuda.so.1", "version": 12040, "reason": None}
GPU = {
    "enabled": True, "available": True, "reason": None,
    "libraries": {"driver": GPU_LIB,
                  "nvml": dict(GPU_LIB, path="libnvidia-ml.so.1", version=12550),
                  "cupti": {"status": "not_found", "path": "libcupti.so", "version": 0,
                            "reason": "libcupti.so: cannot open shared object file"}},
    "gpu_statistics": {"total_time_ms": 2650, "avg_time_ms": 22.08, "operations": 120,
                       "timed_operations": 120, "host_time_ms": 340, "max_time_ms": 400,
                       "timing": "device"},
    "slow_gpu_operations": [{"context": "model_forward", "elapsed_time_ms": 400,
                             "host_time_ms": 200.001, "stream": 32512, "device": 0,
                             "t_s": 1.0, "timed": True, "memory_delta": 0}],
    "memory_statistics": {"total_memory_delta": 39845888, "avg_memory_delta": 332049.07,
                          "peak_memory": 3145728000, "reserved_delta": 67108864,
                          "source": "torch", "device_total": 16777216000,
                          "measured_operations": 120},
    "operations": [{"context": "model_forward", "file": "train.py", "line": 40, "kind": "gpu",
                    "calls": 20, "timed": 20, "total_time_ms": 2500, "avg_time_ms": 125,
                    "min_time_ms": 50, "max_time_ms": 400, "host_time_ms": 300,
                    "host_max_ms": 15.001, "memory_delta": 41943040,
                    "avg_memory_delta": 2097152, "max_memory_delta": 8388608,
                    "peak_memory": 3145728000, "reserved_delta": 67108864,
                    "reserved_peak": 3670016000, "memory_measured": 20,
                    "memory_source": "torch", "streams": 2, "threads": 1, "slow": 5},
                   {"context": "host_only", "file": None, "line": 0, "kind": "gpu",
                    "calls": 3, "timed": 0, "total_time_ms": 7, "avg_time_ms": 2.33,
                    "min_time_ms": None, "max_time_ms": 3.3, "host_time_ms": 7,
                    "host_max_ms": 3.3, "memory_delta": 0, "avg_memory_delta": 0,
                    "max_memory_delta": 0, "peak_memory": 0, "reserved_delta": 0,
                    "reserved_peak": 0, "memory_measured": 0, "memory_source": "none",
                    "streams": 1, "threads": 1, "slow": 0}],
    "synchronization": {"source": "fallback", "count": 520, "total_blocked_ms": 940,
                        "points": [{"function": "train_step", "file": "train.py", "line": 66,
                                    "kind": "memcpy", "count": 500, "blocked_ms": 900,
                                    "max_ms": 1.8},
                                   {"function": None, "file": None, "line": 0,
                                    "kind": "other", "count": 2, "blocked_ms": 0.001,
                                    "max_ms": 0.0005}]},
    "utilization": {"devices": [{"index": 0, "name": "Fake H100", "memory_total": 16777216000,
                                 "samples": 100, "util_mean": 35.5, "util_max": 53.25,
                                 "mem_util_mean": 17.75, "memory_used_mean": 2097152000,
                                 "memory_used_max": 4194304000, "power_mean_w": 150.5,
                                 "power_max_w": 280, "temperature_max_c": 71,
                                 "sm_clock_mean_mhz": 1410, "idle_samples": 10,
                                 "longest_idle_s": 0.3}],
                    "idle_gap_ms": 120, "idle_gap_max_ms": 80, "idle_gaps": 4,
                    "busy_ms": 2650, "span_ms": 5000, "sampler_cpu_s": 0.012345678},
    "dropped": {"operations": 3, "unresolved": 1, "host_only": 0, "sync_sites": 0,
                "samples": 0}}

SEEDS = {
    "minimal.json": report(),
    "full.json": report(meta=META, config={"flags": 3, "percentiles": False},
                        report_policy={"top_functions": 50}, performance=PERF,
                        data_loading=DATA, findings=FINDINGS, bottlenecks={}),
    "tree_only.json": report(performance={"files": ["app.py"], "sites": SITES,
                                          "call_tree": TREE}),
    "deep.json": deep(120),
    "bad_version.json": {"schema": "codeprof-report", "schema_version": 1},
    "bad_site.json": report(performance={"sites": SITES, "files": ["a"],
                                         "call_tree": [{"children": [{"site": 9}]}]}),
    "bad_types.json": report(meta={"pid": "x"}, findings=[{"value": []}]),
    "memory.json": report(3, meta=META, config={"memory_mode": 1, "gc": True},
                          performance=PERF, data_loading=DATA, memory=MEMORY,
                          findings=FINDINGS),
    "memory_off.json": report(3, memory={"enabled": False, "mode": "off"}),
    "memory_bad_stack.json": report(3, memory={"stacks": [], "leaks": [{"stack": 3}]}),
    "gpu.json": report(4, meta=META, performance=PERF, memory=MEMORY, gpu=GPU,
                       findings=FINDINGS),
    "gpu_off.json": report(4, gpu={"enabled": False}),
    "gpu_bad.json": report(4, gpu={"operations": [GPU["operations"][0], GPU["operations"][0]],
                                   "synchronization": {"points": [{"kind": "bogus"}]},
                                   "slow_gpu_operations": [{"elapsed_time_ms": -1}]}),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, doc in SEEDS.items():
        with open(os.path.join(OUT, name), "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
    with open(os.path.join(OUT, "escapes.json"), "w") as fh:
        fh.write('{"schema":"codeprof-report","schema_version":2,"meta":{"role":'
                 '"a\\u00e9\\ud83d\\ude00\\n\\"x\\""},"performance":{"files":["f\\\\g"],'
                 '"sites":[{"function":"\\u0000n","file":0,"line":1,"kind":"scope"}]}}')
    try:
        import tempfile
        from code_profiler import VideoOpusClipProfiler, create_profiler_config
    except ImportError:
        print("code_profiler not importable: real_small.json not rewritten", file=sys.stderr)
        return
    p = VideoOpusClipProfiler(create_profiler_config("basic"))
    p.start_profiling()

    @p.profile_function
    def leaf(n):
        return sum(range(n))

    with p.profiling_context("outer"):
        for i in range(5):
            leaf(i * 100)
    p.stop_profiling()
    with tempfile.TemporaryDirectory() as d:
        path = p.save_comprehensive_report(os.path.join(d, "r.json"))
        with open(path) as fh:
            doc = json.load(fh)
    with open(os.path.join(OUT, "real_small.json"), "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))


if __name__ == "__main__":
    main()
