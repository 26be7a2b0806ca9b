#!/usr/bin/env python
"""Cost of one ``profiler.profiling_context(name)`` enter+exit, in ns.

One command, one figure:

    python bench/bench_context.py [--iterations 200000] [--repeat 5]

Each row times ``with <cm>: pass`` in a loop -- the context manager is
created inside the loop, as user code does -- best of N runs, ns per
enter+exit pair.  ``net`` subtracts the bare loop (a ``for`` with ``pass``)
so rows compare only what the context manager costs.  Rows:

  bare loop              no context manager (the profiler-free baseline:
                         no cProfile, no pyinstrument, nothing running)
  empty class CM         a Python class with empty __enter__/__exit__
  contextlib.nullcontext the standard library's no-op context manager
  @contextmanager        an empty generator-based context manager
  _core Session.scope    the C context manager (object reused per loop)
  profiling_context      VideoOpusClipProfiler(...).profiling_context(name)
                         on a started profiler (tracer off)

Goal: profiling_context net <= 1 us (1000 ns) per pair.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time


class EmptyCM:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False


@contextlib.contextmanager
def gen_cm():
    yield


def time_loop(body, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        body(n)
        dt = time.perf_counter_ns() - t0
        best = min(best, dt)
    return best / n


def loop_bare(n):
    for _ in range(n):
        pass


def loop_empty(n):
    for _ in range(n):
        with EmptyCM():
            pass


def loop_null(n):
    nc = contextlib.nullcontext
    for _ in range(n):
        with nc():
            pass


def loop_gen(n):
    for _ in range(n):
        with gen_cm():
            pass


def make_core_loop():
    from code_profiler import _core

    sess = _core.Session()
    site = _core.site("bench_context_scope", __file__, 0, _core.SITE_SCOPE)
    scope = sess.scope(site)

    def loop(n):
        for _ in range(n):
            with scope:
                pass

    return sess, loop


def make_facade_loop():
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    cfg = ProfilerConfig(
        enabled=True,
        profile_level="basic",
        enable_cprofile=False,
        enable_memory_profiler=False,
        enable_gpu_profiler=False,
        save_profiles=False,
    )
    prof = VideoOpusClipProfiler(cfg)

    def loop(n):
        pc = prof.profiling_context
        for _ in range(n):
            with pc("bench_context"):
                pass

    return prof, loop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if args.iterations < 1 or args.repeat < 1:
        ap.error("--iterations and --repeat must be >= 1")
    n, rep = args.iterations, args.repeat
    print(f"bench_context: {sys.executable} (Python {sys.version.split()[0]}), "
          f"{n} pairs, best of {rep}")

    rows = []
    bare = time_loop(loop_bare, n, rep)
    rows.append(("bare loop", bare))
    rows.append(("empty class CM", time_loop(loop_empty, n, rep)))
    rows.append(("contextlib.nullcontext", time_loop(loop_null, n, rep)))
    rows.append(("@contextmanager", time_loop(loop_gen, n, rep)))

    notes = []
    try:
        sess, core_loop = make_core_loop()
        sess.start()
        try:
            rows.append(("_core Session.scope", time_loop(core_loop, n, rep)))
        finally:
            sess.stop()
    except ImportError as exc:
        notes.append(f"_core Session.scope skipped: {exc}")

    ours = None
    try:
        prof, facade_loop = make_facade_loop()
        prof.start_profiling()
        try:
            ours = time_loop(facade_loop, n, rep)
            rows.append(("profiling_context", ours))
        finally:
            prof.stop_profiling()
    except ImportError as exc:
        notes.append(f"profiling_context skipped: {exc}")

    empty = rows[1][1]
    print(f"{'context manager':<24} {'ns/pair':>9} {'net ns':>9} {'x empty CM':>11}")
    for name, ns in rows:
        print(f"{name:<24} {ns:>9.1f} {ns - bare:>9.1f} {ns / empty:>10.2f}x")
    for note in notes:
        print("note:", note)
    if ours is None:
        print("goal: profiling_context net <= 1000 ns -> not measured")
    else:
        net = ours - bare
        print(f"goal: profiling_context net <= 1000 ns -> {net:.0f} ns: "
              f"{'met' if net <= 1000 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
