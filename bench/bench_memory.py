#!/usr/bin/env python
"""Cost of memory profiling, codeprof's modes beside tracemalloc and memray.

    python bench/bench_memory.py [--runs 5] [--scale 1.0] [--workloads py,numpy,torch]
    python bench/bench_memory.py --callgrind [--scale 0.05]

Every (workload, tool) pair runs in a fresh interpreter (a subprocess), the
runs interleaved round-robin so that machine noise hits every tool alike;
the table gives the median wall time and the median CPU time of the whole
process (every thread: the profiler's drain and sampler threads count), and
their ratios to the bare run of the same workload.

Workloads (bench/mem_workloads.py):

  py     allocation-heavy pure Python: dicts, lists, strings and tuples
         built and dropped (a parser or a dataset's __getitem__)
  numpy  video-like frames: uint8 frames decoded into fresh arrays,
         converted to float32, normalised, stacked into batches
  torch  the same with torch CPU tensors (skipped without torch)

Tools:

  bare                no profiler
  codeprof-rss        Session(memory_mode=0): RSS and GC only ("basic")
  codeprof-detailed   Session(memory_mode=1): sampled, one record about
                      every memory_sample_bytes (256 KiB) ("detailed")
  codeprof-all        Session(memory_mode=2): every live block
                      ("comprehensive")
  tracemalloc-1       tracemalloc.start(1)
  memray              memray.Tracker(file) (Python allocator hooks,
                      native_traces off; skipped when memray is missing)

Goals (issue 8): detailed <= 1.15x bare where tracemalloc(1) costs ~3.6x;
all no slower than tracemalloc(1).

--callgrind counts instructions (valgrind --tool=callgrind) of one run of
each tool on the py workload at a small scale: stable ratios on a noisy
machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

TOOLS = ["bare", "codeprof-rss", "codeprof-detailed", "codeprof-all", "tracemalloc-1", "memray"]

# The child: runs one workload under one tool and prints a JSON line.
CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, %(here)r)
import mem_workloads as W
tool, workload, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
fn = W.WORKLOADS[workload]
fn(scale * 0.05)  # warm-up: imports, first-touch allocations
stop = None
if tool.startswith("codeprof"):
    from code_profiler import _core
    mode = {"codeprof-rss": 0, "codeprof-detailed": 1, "codeprof-all": 2}[tool]
    s = _core.Session(memory_mode=mode, gc=True, memory_sample_interval_s=0.1)
    s.start()
    stop = s.stop
elif tool == "tracemalloc-1":
    import tracemalloc
    tracemalloc.start(1)
    stop = tracemalloc.stop
elif tool == "memray":
    import memray
    path = os.path.join(sys.argv[4], "memray-%%d.bin" %% os.getpid())
    tr = memray.Tracker(path)
    tr.__enter__()
    stop = lambda: tr.__exit__(None, None, None)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
fn(scale)
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
if stop:
    stop()
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"wall": wall, "cpu": cpu}))
"""


def available(tool: str, workload: str, py: str) -> str | None:
    """None if the pair can run, else why not."""
    probe = {"memray": "import memray", "tracemalloc-1": "import tracemalloc"}.get(tool)
    if tool.startswith("codeprof"):
        probe = "from code_profiler import _core"
    if workload == "torch":
        probe = (probe + "; " if probe else "") + "import torch"
    if workload == "numpy":
        probe = (probe + "; " if probe else "") + "import numpy"
    if not probe:
        return None
    r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
    return None if r.returncode == 0 else r.stderr.strip().splitlines()[-1]


def run_child(py: str, tool: str, workload: str, scale: float, tmp: str) -> dict:
    code = CHILD % {"here": HERE}
    r = subprocess.run([py, "-c", code, tool, workload, str(scale), tmp],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{tool}/{workload} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _callgrind_ir(py: str, tool: str, scale: float, tmp: str) -> int | None:
    out = os.path.join(tmp, f"cg-{tool}-{scale}.out")
    code = CHILD % {"here": HERE}
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        py, "-c", code, tool, "py", str(scale), tmp],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        print(f"{tool:20s} failed: {r.stderr[-400:]}")
        return None
    for line in r.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip().replace(",", ""))
    print(f"{tool:20s} no instruction count in valgrind's output")
    return None


def callgrind(py: str, scale: float, tools: list[str]) -> None:
    """Instructions of the workload alone: each tool runs at `scale` and at
    4 x `scale`; the difference is 3 x scale of workload, without the
    interpreter's start-up, the imports and the session's start and stop."""
    if not shutil.which("valgrind"):
        print("callgrind: valgrind not found (apt-get install valgrind)")
        return
    print(f"\n=== callgrind instructions of the py workload: Ir(scale {4 * scale:g}) - "
          f"Ir(scale {scale:g}) ===")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for tool in tools:
            why = available(tool, "py", py)
            if why:
                print(f"{tool:20s} skipped: {why}")
                continue
            small = _callgrind_ir(py, tool, scale, tmp)
            big = _callgrind_ir(py, tool, 4 * scale, tmp)
            if small is None or big is None:
                continue
            ir = big - small
            if tool == "bare":
                base = ir
            ratio = f"{ir / base:6.2f}x" if base else "   n/a"
            print(f"{tool:20s} {ir:16,d} Ir   {ratio}   (whole runs: {small:,d} / {big:,d})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workloads", default="py,numpy,torch")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--callgrind", action="store_true")
    a = ap.parse_args()
    tools = [t for t in a.tools.split(",") if t]
    if a.callgrind:
        callgrind(a.python, a.scale if a.scale != 1.0 else 0.05, tools)
        return 0
    print(f"python: {a.python}  runs: {a.runs}  scale: {a.scale}")
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for wl in [w for w in a.workloads.split(",") if w]:
            runnable = []
            for tool in tools:
                why = available(tool, wl, a.python)
                if why:
                    print(f"  {wl}/{tool}: skipped ({why})")
                else:
                    runnable.append(tool)
            if "bare" not in runnable:
                continue
            res: dict[str, list[dict]] = {t: [] for t in runnable}
            for _ in range(a.runs):  # interleaved: one run of each tool per round
                for tool in runnable:
                    try:
                        res[tool].append(run_child(a.python, tool, wl, a.scale, tmp))
                    except Exception as e:  # noqa: BLE001 - report and go on
                        print(f"  {wl}/{tool}: {e}")
                        status = 1
            bw = statistics.median(r["wall"] for r in res["bare"])
            bc = statistics.median(r["cpu"] for r in res["bare"])
            print(f"\n=== workload {wl}: median of {a.runs} interleaved runs ===")
            print(f"{'tool':20s} {'wall s':>9s} {'x bare':>7s} {'cpu s':>9s} {'x bare':>7s}")
            for tool in runnable:
                if not res[tool]:
                    continue
                w = statistics.median(r["wall"] for r in res[tool])
                c = statistics.median(r["cpu"] for r in res[tool])
                print(f"{tool:20s} {w:9.3f} {w / bw:7.2f} {c:9.3f} {c / bc:7.2f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
