#!/usr/bin/env python
"""The tracer on recursive fib: codeprof's added cost against cProfile's.

One command per Python (each prints every mode side by side, then the goals):

    .venv/bin/python    bench/bench_fib.py      # 3.11
    .venv312/bin/python bench/bench_fib.py      # 3.12

Modes (each in its own subprocess of the same Python):

  bare           fib(N), no profiler
  cProfile       cProfile.Profile().enable() .. disable()
  codeprof       VideoOpusClipProfiler(ProfilerConfig(profile_level="basic",
                 enable_cprofile=True)): start_profiling .. stop_profiling
  codeprof-core  _core.Session() (its defaults: percentiles on)
                 .start(trace_python=True) .. stop()

Figures:

1. Instructions (valgrind --tool=callgrind; stable on a shared machine).
   Each mode runs `python -c` with fib(N1) and again with fib(N2) under
   callgrind; the mode's instructions for the extra calls are
   I(N2) - I(N1): interpreter start-up, imports and the profiler's start and
   stop cancel out, and every thread counts (callgrind sums all threads, so
   codeprof's drain thread is in).  added(mode) = that minus bare's;
   figure = added(codeprof) / added(cProfile).
   Goals: <= 0.8x on 3.11, <= 0.6x on 3.12+.

2. CPU time of ALL threads (the drain thread included):
   time.process_time() (CLOCK_PROCESS_CPUTIME_ID, the whole process) over
   start .. fib(N) .. stop, cross-checked with resource.getrusage
   (RUSAGE_SELF).  R interleaved rounds (bare, cProfile, codeprof, ...,
   bare, ...), a fresh subprocess per mode and round, --repeat timed runs in
   each; the figure is the MEDIAN of all timed runs of a mode.
   added(mode) = median(mode) - median(bare); figure = added(codeprof) /
   added(cProfile).  Goals: <= 0.7x on 3.11, <= 0.5x on 3.12+.  Wall time
   is printed beside it.

3. codeprof's drain thread: its own CPU time in the timed runs (from
   /proc/self/task/<tid>/schedstat, ns, read just before stop; the drain
   thread is the one task that appears when recording starts), and the
   memory held by event buffers (meta.event_buffers x (buffer_events x 32 B
   + 16 B header)) with the events recorded and dropped (meta).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = ["bare", "cProfile", "codeprof", "codeprof-core"]
EVENT_BYTES = 32
EVBUF_HEADER = 16


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_calls(n: int) -> int:
    """Python calls made by fib(n)."""
    a, b = 1, 1  # calls(0), calls(1)
    for _ in range(n - 1):
        a, b = b, a + b + 1
    return b if n >= 1 else a


# --------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------

def profiler_pair(mode: str):
    """(start, stop, session-or-None getter) for `mode`."""
    holder = {}
    if mode == "bare":
        return (lambda: None), (lambda: None), (lambda: None)
    if mode == "cProfile":
        import cProfile

        def start():
            holder["p"] = cProfile.Profile()
            holder["p"].enable()

        def stop():
            holder["p"].disable()

        return start, stop, (lambda: None)
    if mode == "codeprof":
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        def start():
            cfg = ProfilerConfig(enabled=True, profile_level="basic", enable_cprofile=True,
                                 enable_memory_profiler=False, enable_gpu_profiler=False,
                                 save_profiles=False)
            holder["p"] = VideoOpusClipProfiler(cfg)
            holder["p"].start_profiling()

        def stop():
            holder["p"].stop_profiling()

        return start, stop, (lambda: holder["p"].session)
    if mode == "codeprof-core":
        from code_profiler import _core

        def start():
            holder["s"] = _core.Session()
            holder["s"].start(trace_python=True)

        def stop():
            holder["s"].stop()

        return start, stop, (lambda: holder["s"])
    raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def task_cpu_ns() -> dict:
    """{tid: CPU ns} of this process's tasks (schedstat; stat as fallback)."""
    out = {}
    base = "/proc/self/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            try:
                with open(f"{base}/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                tick = os.sysconf("SC_CLK_TCK")
                out[int(tid)] = (int(fields[11]) + int(fields[12])) * 10**9 // tick
            except (OSError, ValueError, IndexError):
                pass
    return out


def rusage_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(mode: str, n: int, repeat: int) -> None:
    start, stop, session = profiler_pair(mode)
    fib(min(n, 20))  # warm-up
    runs = []
    for _ in range(repeat):
        before = task_cpu_ns()
        start()
        ru0 = rusage_s()
        c0 = time.process_time()
        t0 = time.perf_counter()
        fib(n)
        extra = task_cpu_ns()
        stop()
        t1 = time.perf_counter()
        c1 = time.process_time()
        ru1 = rusage_s()
        new = [tid for tid in extra if tid not in before]
        run = {"wall": t1 - t0, "cpu": c1 - c0, "rusage": ru1 - ru0,
               "new_tasks": len(new),
               "new_task_cpu": sum(extra[t] for t in new) * 1e-9}
        s = session()
        if s is not None:
            meta = json.loads(s.report_json())
            m, cfg = meta["meta"], meta["config"]
            run.update(events=m["events"], event_buffers=m["event_buffers"],
                       buffer_events=cfg["buffer_events"],
                       dropped=m["dropped_buffer_full"] + m["dropped_reentrant"]
                       + m["dropped_no_thread_buffer"],
                       paused=m["dropped_events"])
        runs.append(run)
    print(json.dumps({"runs": runs}))


CG_CODE = {
    "bare": "{fib}\nfib({n})",
    "cProfile": ("import cProfile\n{fib}\np = cProfile.Profile(); p.enable(); fib({n}); "
                 "p.disable()"),
    "codeprof": ("from code_profiler import ProfilerConfig, VideoOpusClipProfiler\n{fib}\n"
                 "p = VideoOpusClipProfiler(ProfilerConfig(enabled=True, profile_level='basic', "
                 "enable_cprofile=True, enable_memory_profiler=False, enable_gpu_profiler=False, "
                 "save_profiles=False)); p.start_profiling(); fib({n}); p.stop_profiling()"),
    "codeprof-core": ("from code_profiler import _core\n{fib}\ns = _core.Session(); "
                      "s.start(trace_python=True); fib({n}); s.stop()"),
}
FIB_SRC = "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)"


# --------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------

def callgrind(mode: str, n: int, timeout: float):
    code = CG_CODE[mode].format(fib=FIB_SRC, n=n)
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, "-c", code]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f}s"
    m = re.findall(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"exit {p.returncode}: {tail}"
    return int(m[-1]), None


ANNOT_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(\S.*?)(?:\s+\[(.*)\])?\s*$")


def callgrind_functions(mode: str, n: int, timeout: float, tmpdir: str) -> dict:
    """{(object, function): instructions} of one callgrind run (all threads)."""
    code = CG_CODE[mode].format(fib=FIB_SRC, n=n)
    out = os.path.join(tmpdir, f"{mode}.{n}.cg")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, "-c", code]
    subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                          "--auto=no", out], capture_output=True, text=True, check=True)
    funcs = {}
    started = False
    for line in ann.stdout.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = ANNOT_LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        where = re.sub(r"'\d+$", "", m.group(2))
        func = where.rsplit(":", 1)[-1]
        obj = os.path.basename(m.group(3) or "?")
        funcs[(obj, func)] = funcs.get((obj, func), 0) + ir
    return funcs


def attribute(modes, n1: int, n2: int, timeout: float) -> None:
    """Where each profiler's added instructions go: by object and function."""
    import tempfile

    calls = fib_calls(n2) - fib_calls(n1)
    print(f"\n== attribution (callgrind, all threads): added instructions per extra "
          f"call, I(fib({n2})) - I(fib({n1})) minus bare's, by object and function ==")
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("valgrind / callgrind_annotate not found: skipped")
        return
    with tempfile.TemporaryDirectory(prefix="bench_fib_cg") as tmp:
        delta = {}
        for m in modes:
            f1 = callgrind_functions(m, n1, timeout, tmp)
            f2 = callgrind_functions(m, n2, timeout, tmp)
            delta[m] = {k: f2.get(k, 0) - f1.get(k, 0) for k in set(f1) | set(f2)}
    bare = delta["bare"]
    added = {m: {k: v - bare.get(k, 0) for k, v in delta[m].items()}
             for m in modes if m != "bare"}
    for k, v in bare.items():
        for m in added:
            added[m].setdefault(k, -v)
    objs = sorted({k[0] for m in added for k in added[m]})
    per_obj = {m: {o: 0 for o in objs} for m in added}
    for m in added:
        for (o, _f), v in added[m].items():
            per_obj[m][o] += v
    shown = [o for o in objs if any(abs(per_obj[m][o]) / calls >= 1.0 for m in added)]
    shown.sort(key=lambda o: -max(per_obj[m][o] for m in added))
    print(f"{'object':<44}" + "".join(f"{m:>15}" for m in added))
    for o in shown:
        print(f"{o[:44]:<44}" + "".join(f"{per_obj[m][o] / calls:>15.1f}" for m in added))
    print(f"{'total':<44}" + "".join(f"{sum(per_obj[m].values()) / calls:>15.1f}"
                                     for m in added))
    for m in added:
        top = sorted(added[m].items(), key=lambda kv: -kv[1])[:14]
        print(f"\n{m}: top functions by added instructions per call")
        for (o, f), v in top:
            print(f"  {v / calls:>8.1f}  {f}  [{o}]")


def bench_callgrind(modes, n1: int, n2: int, timeout: float) -> dict:
    calls = fib_calls(n2) - fib_calls(n1)
    print(f"\n== instructions (callgrind): I(fib({n2})) - I(fib({n1})), "
          f"{calls} extra Python calls ==")
    if shutil.which("valgrind") is None:
        print("valgrind not found (Debian: apt-get install valgrind): skipped")
        return {}
    delta = {}
    for m in modes:
        i1, e1 = callgrind(m, n1, timeout)
        i2, e2 = callgrind(m, n2, timeout)
        if i1 is None or i2 is None:
            print(f"{m:<14} failed: {e1 or e2}")
            continue
        delta[m] = i2 - i1
    bare = delta.get("bare")
    cp = delta.get("cProfile")
    print(f"{'mode':<14} {'instr':>14} {'per call':>9} {'added/call':>11} "
          f"{'added/cProfile':>15}")
    for m in modes:
        if m not in delta:
            continue
        d = delta[m]
        added = None if bare is None or m == "bare" else d - bare
        rel = (added / (cp - bare)) if (added is not None and cp is not None
                                       and bare is not None and cp > bare) else None
        print(f"{m:<14} {d:>14,} {d / calls:>9.1f} "
              f"{'-' if added is None else f'{added / calls:.1f}':>11} "
              f"{'-' if rel is None else f'{rel:.3f}x':>15}")
    return delta


def run_child(mode: str, n: int, repeat: int, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode,
           "--n", str(n), "--repeat", str(repeat)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout:.0f}s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"skipped": f"exit {p.returncode}: {tail}"}
    return json.loads(lines[-1])


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def bench_time(modes, n: int, repeat: int, rounds: int, timeout: float) -> dict:
    runs = {m: [] for m in modes}
    skipped = {}
    for _ in range(rounds):
        for m in modes:
            r = run_child(m, n, repeat, timeout)
            if "runs" in r:
                runs[m].extend(r["runs"])
            else:
                skipped[m] = r["skipped"]
    print(f"\n== CPU time of all threads and wall time: fib({n}) = {fib_calls(n):,} calls, "
          f"{rounds} interleaved rounds x {repeat} runs, medians ==")
    bare = med([r["cpu"] for r in runs.get("bare", [])])
    cp = med([r["cpu"] for r in runs.get("cProfile", [])])
    bare_w = med([r["wall"] for r in runs.get("bare", [])])
    cp_w = med([r["wall"] for r in runs.get("cProfile", [])])
    print(f"{'mode':<14} {'cpu s':>8} {'rusage s':>9} {'added cpu':>10} {'/cProfile':>10} | "
          f"{'wall s':>8} {'added':>8} {'/cProfile':>10}")
    out = {}
    for m in modes:
        rs = runs[m]
        if not rs:
            print(f"{m:<14} skipped: {skipped.get(m)}")
            continue
        c = med([r["cpu"] for r in rs])
        ru = med([r["rusage"] for r in rs])
        w = med([r["wall"] for r in rs])
        out[m] = {"cpu": c, "wall": w}
        if m == "bare":
            print(f"{m:<14} {c:>8.4f} {ru:>9.4f} {'-':>10} {'-':>10} | {w:>8.4f} {'-':>8} "
                  f"{'-':>10}")
            continue
        print(f"{m:<14} {c:>8.4f} {ru:>9.4f} {c - bare:>+10.4f} "
              f"{(c - bare) / (cp - bare):>9.3f}x | {w:>8.4f} {w - bare_w:>+8.4f} "
              f"{(w - bare_w) / (cp_w - bare_w):>9.3f}x")
    for m in ("codeprof", "codeprof-core"):
        rs = runs.get(m) or []
        if not rs:
            continue
        drain = med([r["new_task_cpu"] for r in rs])
        ntasks = max(r["new_tasks"] for r in rs)
        c = med([r["cpu"] for r in rs])
        nbuf = max(r.get("event_buffers", 0) for r in rs)
        bev = rs[0].get("buffer_events", 0)
        mib = nbuf * (bev * EVENT_BYTES + EVBUF_HEADER) / 2**20
        ev = med([r.get("events", 0) for r in rs])
        dropped = sum(r.get("dropped", 0) for r in rs)
        paused = sum(r.get("paused", 0) for r in rs)
        out[m].update(drain=drain, buffers=nbuf, buffer_mib=mib, dropped=dropped)
        print(f"{m}: drain thread CPU {drain * 1e3:.2f} ms per run (median; {ntasks} new "
              f"task(s) while recording) = {100 * drain / c:.1f}% of the run's process CPU; "
              f"event buffers {nbuf} x {bev} events = {mib:.1f} MiB; events {ev:,.0f} per run, "
              f"lost (buffer full, re-entrant, no buffer) {dropped} and refused while not "
              f"running {paused} in all {len(rs)} runs")
    return out


def goals(cg: dict, tm: dict) -> None:
    py = sys.version_info
    new = py >= (3, 12)
    ginstr, gcpu = (0.6, 0.5) if new else (0.8, 0.7)
    print(f"\n== goals (Python {py.major}.{py.minor}) ==")
    if {"bare", "cProfile", "codeprof"} <= cg.keys():
        rel = (cg["codeprof"] - cg["bare"]) / (cg["cProfile"] - cg["bare"])
        print(f"instructions: codeprof added / cProfile added = {rel:.3f} (goal <= {ginstr}) "
              f"-> {'met' if rel <= ginstr else 'MISSED'}")
    else:
        print("instructions: not measured")
    if {"bare", "cProfile", "codeprof"} <= tm.keys():
        b, c, u = tm["bare"]["cpu"], tm["cProfile"]["cpu"], tm["codeprof"]["cpu"]
        rel = (u - b) / (c - b)
        print(f"CPU time (all threads): codeprof added / cProfile added = {rel:.3f} "
              f"(goal <= {gcpu}) -> {'met' if rel <= gcpu else 'MISSED'}")
    else:
        print("CPU time: not measured")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=27, help="fib(N) for the CPU-time runs (27)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per subprocess (3)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (7)")
    ap.add_argument("--cg-n", default="16,20",
                    help="N1,N2 of the callgrind runs (16,20)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--attribute", action="store_true",
                    help="also break the added instructions down by object and function")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.setrecursionlimit(10000)
    if args.child:
        child(args.child, args.n, args.repeat)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"--modes: unknown {bad}; expected names from {MODES}")
    for need in ("bare", "cProfile"):
        if need not in modes:
            modes.insert(0 if need == "bare" else 1, need)
    try:
        n1, n2 = (int(x) for x in args.cg_n.split(","))
    except ValueError:
        ap.error(f"--cg-n: expected N1,N2, got {args.cg_n!r}")
    if not 1 <= n1 < n2:
        ap.error("--cg-n: expected 1 <= N1 < N2")
    print(f"bench_fib: {sys.executable} (Python {sys.version.split()[0]}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    cg = {} if args.no_callgrind else bench_callgrind(modes, n1, n2, args.timeout)
    tm = {} if args.no_time else bench_time(modes, args.n, args.repeat, args.rounds,
                                            args.timeout)
    if args.attribute:
        attribute([m for m in modes if m in ("bare", "cProfile", "codeprof")], n1, n2,
                  args.timeout)
    goals(cg, tm)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
