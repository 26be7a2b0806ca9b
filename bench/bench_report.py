#!/usr/bin/env python
"""Report generation time, and whole-process vs in-process overhead.

One command, two figures:

    python bench/bench_report.py [--calls 1000000] [--skip-process]

Figure 1 -- report generation from 1M recorded calls (goal <= 1 s):
  * C report alone: a code_profiler._core.Session records 1M scopes over
    300 distinct calling contexts (10 outer sites x 30 inner sites, entered
    from Python with Session.enter/exit), is stopped, and
    Session.report_json() is timed (plus json.loads of its output).
  * Facade: a VideoOpusClipProfiler with enable_cprofile=True (the tracer)
    records 1M calls of 300 distinct Python functions; after
    stop_profiling(), get_comprehensive_report() is timed (JSON from C +
    json.loads + whatever the facade adds).

Figure 2 -- whole-process ratio vs in-process ratio (goal: whole-process
ratio no more than 10% above the in-process ratio):
  bench/process_workload.py (realistic + fib workloads, 8 reps; fib x40
  where torch is missing) is run as ``python process_workload.py`` and as
  ``codeprof run -o report.json process_workload.py`` (which prints its
  summary and writes the report), interleaved, best of 3 each.  The in-process
  ratio is the timed region's time traced / bare (the script prints it);
  the whole-process ratio is the wall time of the whole command, including
  interpreter start, profiler start, report writing and exit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUTER, INNER = 10, 30


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def c_report(calls: int, repeat: int) -> None:
    from code_profiler import _core

    sess = _core.Session()
    outer = [_core.site(f"outer_{i}", "bench_report.py", i, _core.SITE_SCOPE)
             for i in range(OUTER)]
    inner = [_core.site(f"inner_{j}", "bench_report.py", 100 + j, _core.SITE_SCOPE)
             for j in range(INNER)]
    # Each outer scope holds INNER inner scopes: calls = outer + inner pairs.
    per_outer = 1 + INNER
    rounds = max(1, calls // (per_outer * OUTER))
    enter, exit_ = sess.enter, sess.exit
    sess.start()
    t0 = time.perf_counter()
    for _ in range(rounds):
        for o in outer:
            enter(o)
            for i in inner:
                enter(i)
                exit_(i)
            exit_(o)
    rec_s = time.perf_counter() - t0
    sess.stop()
    recorded = rounds * OUTER * per_outer
    t_json, text = best_of(sess.report_json, repeat)
    t_load, _ = best_of(lambda: json.loads(text), repeat)
    print(f"C report alone: {recorded:,} recorded scopes over {OUTER * INNER} "
          f"contexts (recording took {rec_s:.2f} s)")
    print(f"  Session.report_json()            {t_json:8.3f} s  ({len(text):,} bytes)")
    print(f"  json.loads of it                 {t_load:8.3f} s")
    total = t_json + t_load
    print(f"  report_json + json.loads         {total:8.3f} s   goal <= 1 s: "
          f"{'met' if total <= 1.0 else 'MISSED'}")


def _make_functions(n: int):
    ns: dict = {}
    src = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(n))
    exec(compile(src, "<bench_report_generated>", "exec"), ns)
    return [ns[f"f{i}"] for i in range(n)]


def facade_report(calls: int, repeat: int) -> None:
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    funcs = _make_functions(OUTER * INNER)
    cfg = ProfilerConfig(enabled=True, profile_level="basic",
                         enable_cprofile=True, enable_memory_profiler=False,
                         enable_gpu_profiler=False, save_profiles=False)
    prof = VideoOpusClipProfiler(cfg)
    rounds = max(1, calls // len(funcs))
    prof.start_profiling()
    t0 = time.perf_counter()
    acc = 0
    for _ in range(rounds):
        for f in funcs:
            acc = f(acc)
    rec_s = time.perf_counter() - t0
    prof.stop_profiling()
    print(f"Facade: {rounds * len(funcs):,} traced calls of {len(funcs)} "
          f"functions (recording took {rec_s:.2f} s)")
    t_rep, rep = best_of(prof.get_comprehensive_report, repeat)
    print(f"  get_comprehensive_report()       {t_rep:8.3f} s  "
          f"(top-level keys: {len(rep) if isinstance(rep, dict) else '?'})   "
          f"goal <= 1 s: {'met' if t_rep <= 1.0 else 'MISSED'}")
    from code_profiler import _core

    sess = None
    for attr in ("session", "_session"):
        cand = getattr(prof, attr, None)
        if isinstance(cand, _core.Session):
            sess = cand
            break
    if sess is not None:
        t_json, text = best_of(sess.report_json, repeat)
        print(f"  its Session.report_json()        {t_json:8.3f} s  ({len(text):,} bytes)")


def find_codeprof_cmd():
    """The `codeprof` command for this Python, as a list, or None."""
    bindir = os.path.dirname(sys.executable)
    exe = os.path.join(bindir, "codeprof")
    if os.access(exe, os.X_OK):
        return [exe]
    found = shutil.which("codeprof")
    if found:
        return [found]
    import importlib.util

    try:
        if importlib.util.find_spec("code_profiler.__main__") is not None:
            return [sys.executable, "-m", "code_profiler"]
    except ImportError:
        pass
    return None


def run_timed(cmd, cwd, timeout):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    region = None
    for line in proc.stdout.splitlines():
        if line.startswith("REGION_SECONDS "):
            region = float(line.split()[1])
    if region is None:
        raise RuntimeError(f"{' '.join(cmd)} printed no REGION_SECONDS line")
    return wall, region


def process_ratio(repeat: int, timeout: float) -> None:
    sys.path.insert(0, HERE)
    import workloads

    why = workloads.realistic_missing()
    if why:
        names, reps = "fib", "40"
        print(f"note: {why}; the whole-process figure uses fib only")
    else:
        names, reps = "realistic,fib", "8"
    cp = find_codeprof_cmd()
    if cp is None:
        print("Whole-process ratio: skipped: no `codeprof` command next to "
              f"{sys.executable} or on PATH")
        return
    script = os.path.join(HERE, "process_workload.py")
    work = tempfile.mkdtemp(prefix="codeprof_bench_")
    args = ["--workloads", names, "--reps", reps]
    bare_cmd = [sys.executable, script] + args
    prof_cmd = cp + ["run", "-o", os.path.join(work, "report.json"), script] + args
    try:
        bare_wall = bare_reg = prof_wall = prof_reg = float("inf")
        # Interleave the runs so drift affects both alike.
        for _ in range(repeat):
            w, r = run_timed(bare_cmd, work, timeout)
            bare_wall, bare_reg = min(bare_wall, w), min(bare_reg, r)
            w, r = run_timed(prof_cmd, work, timeout)
            prof_wall, prof_reg = min(prof_wall, w), min(prof_reg, r)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"Whole-process ratio: failed: {exc}")
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    in_ratio = prof_reg / bare_reg
    whole_ratio = prof_wall / bare_wall
    rel = whole_ratio / in_ratio
    shown = " ".join(args)
    print(f"Whole process (best of {repeat}): `python process_workload.py {shown}` "
          f"vs `codeprof run -o report.json process_workload.py {shown}`"
          f" (summary printed, report written)")
    print(f"  timed region: bare {bare_reg:.3f} s, codeprof run {prof_reg:.3f} s"
          f"  -> in-process ratio {in_ratio:.3f}")
    print(f"  whole process: bare {bare_wall:.3f} s, codeprof run {prof_wall:.3f} s"
          f"  -> whole-process ratio {whole_ratio:.3f}")
    print(f"  whole-process ratio / in-process ratio = {rel:.3f}   goal <= 1.10: "
          f"{'met' if rel <= 1.10 else 'MISSED'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="best of N for each timing (default 3)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--skip-process", action="store_true",
                    help="skip the whole-process figure")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.repeat < 1:
        ap.error("--calls and --repeat must be >= 1")
    print(f"bench_report: {sys.executable} (Python {sys.version.split()[0]})")
    try:
        c_report(args.calls, args.repeat)
    except ImportError as exc:
        print(f"C report alone: skipped: {exc}")
    try:
        facade_report(args.calls, args.repeat)
    except ImportError as exc:
        print(f"Facade report: skipped: {exc}")
    if not args.skip_process:
        process_ratio(args.repeat, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
