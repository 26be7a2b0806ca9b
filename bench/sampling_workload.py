#!/usr/bin/env python
"""The script every mode of bench_sampling.py runs (bare, under codeprof
run --sample, under py-spy, austin, pyinstrument).

    python sampling_workload.py --workload fib|realistic|split|alternate [--reps N]

fib and realistic are bench/workloads.py's.  split alternates 7 ms in
seventy() and 3 ms in thirty() (busy loops on the wall clock) for --seconds;
alternate does 5 ms of computing in compute() and 5 ms of time.sleep in
rest().  The script prints ``REGION_SECONDS <s>`` (wall time of the timed
region), ``REGION_CPU_SECONDS <s>`` (CPU time of every thread of the process
over the region) and, for split/alternate, ``TRUTH <json>``: the wall time each
function really took, measured by the workload itself, which the sampled
shares are compared with.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads  # noqa: E402


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def seventy(seconds: float) -> int:
    return burn(seconds)


def thirty(seconds: float) -> int:
    return burn(seconds)


def compute(seconds: float) -> int:
    return burn(seconds)


def rest(seconds: float) -> None:
    time.sleep(seconds)


def split(total_s: float) -> dict:
    spent = {"seventy": 0.0, "thirty": 0.0}
    end = time.perf_counter() + total_s
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        seventy(0.007)
        t1 = time.perf_counter()
        thirty(0.003)
        t2 = time.perf_counter()
        spent["seventy"] += t1 - t0
        spent["thirty"] += t2 - t1
    return spent


def alternate(total_s: float) -> dict:
    spent = {"compute": 0.0, "rest": 0.0, "compute_cpu": 0.0, "rest_cpu": 0.0}
    c0 = time.thread_time()
    end = time.perf_counter() + total_s
    while time.perf_counter() < end:
        t0, u0 = time.perf_counter(), time.thread_time()
        compute(0.005)
        t1, u1 = time.perf_counter(), time.thread_time()
        rest(0.005)
        t2, u2 = time.perf_counter(), time.thread_time()
        spent["compute"] += t1 - t0
        spent["rest"] += t2 - t1
        spent["compute_cpu"] += u1 - u0
        spent["rest_cpu"] += u2 - u1
    spent["cpu"] = time.thread_time() - c0
    return spent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True,
                    choices=["fib", "realistic", "split", "alternate"])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    truth = None
    if args.workload in ("fib", "realistic"):
        fn = workloads.prepare(args.workload)
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(args.reps):
            fn()
    else:
        c0, t0 = time.process_time(), time.perf_counter()
        truth = (split if args.workload == "split" else alternate)(args.seconds)
    t1, c1 = time.perf_counter(), time.process_time()
    print(f"REGION_SECONDS {t1 - t0:.6f}", flush=True)
    # CPU time of every thread of this process over the region (an
    # in-process profiler's threads included; an out-of-process one's not)
    print(f"REGION_CPU_SECONDS {c1 - c0:.6f}", flush=True)
    if truth is not None:
        print("TRUTH " + json.dumps(truth), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
