"""CPU cost of one stack-sampler tick (the reader of src/python/pysample.c
plus the per-thread state of src/sampling/sampler.c) for 1, 10 and 100
Python threads of depth 30.

    .venv/bin/python bench/bench_sampler.py [--ticks N]

Each tick is run on the calling thread by _core._sample_threads(N, 0) (the
same code the sampler thread runs each period); the figure is that thread's
CPU time (time.thread_time) over N ticks, median of 5 runs.  With 1000
threads a tick reads at most 128 of them (CP_SAMPLER_MAX_PER_TICK) but still
walks every thread state.  Threads are
either blocked (Event.wait: the sampler also reads their run-queue wait and
syscall) or computing (a loop at depth 30).
"""
import argparse
import statistics
import threading
import time

from code_profiler import _core


def _deep(n, fn):
    if n == 0:
        return fn()
    return _deep(n - 1, fn)


def _threads(count, busy, stop):
    ths = []
    for _ in range(count):
        if busy:
            def work():
                x = 0
                while not stop.is_set():
                    x += 1
        else:
            def work():
                stop.wait()
        t = threading.Thread(target=_deep, args=(29, work), daemon=True)
        t.start()
        ths.append(t)
    time.sleep(0.2)
    return ths


def measure(count, busy, ticks):
    stop = threading.Event()
    ths = _threads(count, busy, stop)
    runs = []
    for _ in range(5):
        c0 = time.thread_time()
        res = _core._sample_threads(ticks, 0)
        runs.append((time.thread_time() - c0) / ticks)
    stop.set()
    for t in ths:
        t.join()
    depth = max(len(t["frames"]) for t in res["threads"])
    return statistics.median(runs), len(res["threads"]), depth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=200)
    a = ap.parse_args()
    print(f"{'threads':>8} {'state':>8} {'sampled':>8} {'depth':>6} {'us/tick':>9} {'us/thread':>10}"
          f" {'CPU at 1 kHz':>13}")
    for busy, n in [(False, 1), (False, 10), (False, 100), (True, 1), (True, 10), (True, 100),
                    (False, 1000)]:
        if True:
            # 1000 threads: at most 128 are read per tick (round-robin)
            per_tick, sampled, depth = measure(n, busy, a.ticks if n < 100 else a.ticks // 4)
            us = per_tick * 1e6
            print(f"{n:>8} {'busy' if busy else 'blocked':>8} {sampled:>8} {depth:>6} {us:>9.1f}"
                  f" {us / sampled:>10.2f} {per_tick * 1000 * 100:>12.1f}%")


if __name__ == "__main__":
    main()
