#!/usr/bin/env python
"""A script for the whole-process measurement in bench_report.py.

Runs the workloads named by --workloads (default: realistic,fib) --reps
times and prints one line ``REGION_SECONDS <s>``: the wall time of the timed
region only.  bench_report.py runs it as ``python process_workload.py`` and
as ``codeprof run process_workload.py`` and compares the region time
(in-process ratio) with the whole process's wall time (whole-process ratio,
which adds interpreter and profiler startup, report writing and exit).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--workloads", default="realistic,fib",
                    help="comma-separated names from bench/workloads.py")
    args = ap.parse_args()
    names = [n for n in args.workloads.split(",") if n]
    bad = [n for n in names if n not in workloads.WORKLOADS]
    if bad or not names:
        ap.error(f"--workloads: unknown {bad}; expected names from "
                 f"{sorted(workloads.WORKLOADS)}")
    fns = [workloads.prepare(n) for n in names]
    t0 = time.perf_counter()
    for _ in range(args.reps):
        for fn in fns:
            fn()
    print(f"REGION_SECONDS {time.perf_counter() - t0:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
