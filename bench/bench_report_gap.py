#!/usr/bin/env python
"""Reports taken from Python while a traced Python thread records.

    .venv/bin/python    bench/bench_report_gap.py
    .venv312/bin/python bench/bench_report_gap.py

The Python-level companion of bench_snapshot.c.  A VideoOpusClipProfiler
(enable_cprofile=True, level "basic") traces a recording thread that calls
a small function in a loop and takes a timestamp (time.perf_counter_ns)
after every batch of 64 calls; the longest gap between two timestamps is
the longest time the thread did not run.  Beside it a second thread does
one of, for S seconds (default 2) in R interleaved rounds (default 3):

  idle     sleeps: the machine's own scheduling noise
  busy     pure Python work that holds the GIL like a report's Python half
           does (json.loads of a string as long as the report): the noise
           the GIL itself adds -- a thread waits up to
           sys.getswitchinterval() (5 ms) for it, profiler or not
  report_json  profiler.session.report_json() in a loop: the C snapshot and
           JSON writer (GIL released), then the text decoded to str (GIL held)
  report   profiler.get_comprehensive_report() in a loop: report_json()
           then json.loads of it (GIL held)

The session holds --functions distinct traced functions (default 5,000,
each called once before the run) so that each report has work to do.
Printed per mode: the longest gap (max over rounds, median of the rounds'
maxima), gaps over 1 ms and over the switch interval, calls recorded,
events lost (meta.dropped_* of a report after stop) and report times.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

BATCH = 64


def leaf(x):
    return x + 1


def make_functions(n: int):
    ns = {}
    src = "\n".join(f"def bulk_{i}(x):\n    return x + {i}\n" for i in range(n))
    exec(compile(src, "<bulk>", "exec"), ns)
    return [ns[f"bulk_{i}"] for i in range(n)]


def recorder(seconds: float, out: dict) -> None:
    gaps_over_1ms = 0
    gaps_over_switch = 0
    switch_ns = int(sys.getswitchinterval() * 1e9)
    max_gap = 0
    calls = 0
    t_end = time.perf_counter_ns() + int(seconds * 1e9)
    prev = time.perf_counter_ns()
    x = 0
    while True:
        for _ in range(BATCH):
            x = leaf(x)
        calls += BATCH
        now = time.perf_counter_ns()
        gap = now - prev
        prev = now
        if gap > max_gap:
            max_gap = gap
        if gap > 1_000_000:
            gaps_over_1ms += 1
        if gap > switch_ns:
            gaps_over_switch += 1
        if now >= t_end:
            break
    out.update(max_gap=max_gap, over_1ms=gaps_over_1ms, over_switch=gaps_over_switch,
               calls=calls)


def other(mode: str, prof, stop: threading.Event, payload: str, out: dict) -> None:
    times = []
    while not stop.is_set():
        if mode == "idle":
            time.sleep(0.001)
        elif mode == "busy":
            t = time.perf_counter()
            json.loads(payload)
            times.append(time.perf_counter() - t)
        elif mode == "report_json":
            t = time.perf_counter()
            prof.session.report_json()
            times.append(time.perf_counter() - t)
        else:
            t = time.perf_counter()
            prof.get_comprehensive_report()
            times.append(time.perf_counter() - t)
    out["times"] = times


def run_once(mode: str, seconds: float, funcs, payload: str) -> dict:
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    prof = VideoOpusClipProfiler(ProfilerConfig(
        enabled=True, profile_level="basic", enable_cprofile=True,
        enable_memory_profiler=False, enable_gpu_profiler=False, save_profiles=False))
    prof.start_profiling()
    for f in funcs:
        f(0)
    rec_out, oth_out = {}, {}
    stop = threading.Event()
    th_o = threading.Thread(target=other, args=(mode, prof, stop, payload, oth_out))
    th_r = threading.Thread(target=recorder, args=(seconds, rec_out))
    th_o.start()
    th_r.start()
    th_r.join()
    stop.set()
    th_o.join()
    prof.stop_profiling()
    meta = json.loads(prof.session.report_json())["meta"]
    lost = (meta["dropped_buffer_full"] + meta["dropped_reentrant"]
            + meta["dropped_no_thread_buffer"])
    rec_out.update(lost=lost, times=oth_out.get("times", []))
    return rec_out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--functions", type=int, default=5000)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        ap.error("--rounds must be >= 1 and --seconds > 0")
    funcs = make_functions(args.functions)

    # The busy mode's payload: a JSON text as long as the report.
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    p = VideoOpusClipProfiler(ProfilerConfig(enabled=True, profile_level="basic",
                                             enable_cprofile=True, save_profiles=False,
                                             enable_memory_profiler=False,
                                             enable_gpu_profiler=False))
    p.start_profiling()
    for f in funcs:
        f(0)
    p.stop_profiling()
    payload = p.session.report_json()
    del p

    modes = ["idle", "busy", "report_json", "report"]
    res = {m: [] for m in modes}
    for _ in range(args.rounds):
        for m in modes:
            res[m].append(run_once(m, args.seconds, funcs, payload))
    sw = sys.getswitchinterval() * 1e3
    print(f"bench_report_gap: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.2f}; {args.rounds} interleaved rounds of "
          f"{args.seconds:.1f} s; timestamp every {BATCH} traced calls; {args.functions} "
          f"extra functions in the tree; report JSON {len(payload):,} bytes; switch "
          f"interval {sw:.1f} ms")
    print(f"{'mode':<11} {'max gap':>9} {'med max':>9} {'>1ms':>6} {'>switch':>8} {'calls':>10} "
          f"{'lost':>6} {'n':>5} {'op mean':>9} {'op max':>9}")
    worst = {}
    lost_all = {}
    for m in modes:
        rs = res[m]
        maxes = [r["max_gap"] for r in rs]
        worst[m] = max(maxes)
        lost_all[m] = sum(r["lost"] for r in rs)
        times = [t for r in rs for t in r["times"]]
        n = str(len(times)) if m != "idle" else "-"
        mean = f"{1e3 * statistics.mean(times):.2f}ms" if times else "-"
        mx = f"{1e3 * max(times):.2f}ms" if times else "-"
        print(f"{m:<11} {worst[m] / 1e6:>7.3f}ms {statistics.median(maxes) / 1e6:>7.3f}ms "
              f"{sum(r['over_1ms'] for r in rs):>6} {sum(r['over_switch'] for r in rs):>8} "
              f"{sum(r['calls'] for r in rs):>10} {lost_all[m]:>6} {n:>5} {mean:>9} {mx:>9}")
    print("(n, op mean/max: the second thread's json.loads (busy) or "
          "get_comprehensive_report() (report) calls and their times; lost: "
          "meta.dropped_buffer_full + dropped_reentrant + dropped_no_thread_buffer)")
    print(f"goal: a report taken while a thread records stops no thread for more than 1 ms "
          f"(in Python, the GIL lets a thread wait up to the switch interval, {sw:.1f} ms, "
          f"whenever another thread runs Python)")
    print(f"  longest gap with get_comprehensive_report {worst['report'] / 1e6:.3f} ms, with "
          f"report_json {worst['report_json'] / 1e6:.3f} ms; idle "
          f"{worst['idle'] / 1e6:.3f} ms; busy (GIL) {worst['busy'] / 1e6:.3f} ms; events "
          f"lost with reports {lost_all['report'] + lost_all['report_json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
