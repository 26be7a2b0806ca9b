"""Line-level timing cost: one function, run bare, with codeprof's line
timing, and with line_profiler (the peer), in one process, interleaved
rounds, medians (bench/RESULTS.md, "Line timing").

    .venv/bin/pip install line_profiler     # the peer, once
    .venv/bin/python bench/bench_lines.py [--rounds 15] [--n 20000]

Each variant runs its own copy of the same source (so registrations do not
interact).  "other_armed" is an unregistered copy run while codeprof's line
timing is on for another function: what the rest of the program pays.  codeprof: `_core.Session(lines=True)` with the copy registered by
`_core.line_profile_add` (what profile_function does at the detailed level,
without the decorator's per-call scope; on 3.11 each call is bracketed by
line_profile_enter/leave as the decorator does); the session is started before and
stopped after each measurement, outside the timed region.  line_profiler:
`LineProfiler(copy)` wrapper, enabled per call as its decorator does.  Wall
time and process CPU time (every thread: codeprof's drain thread counted)
per call; the overhead per line event is (variant - bare) / line events.
Prints a table and, with --json, the figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from code_profiler import _core

SRC = '''
def work(n):
    total = 0
    for i in range(n):
        x = i * 3
        if x % 7 == 0:
            total += x
        else:
            total -= 1
    return total
'''


def fresh(tag: str):
    ns: dict = {}
    exec(compile(SRC, f"<bench_lines {tag}>", "exec"), ns)  # noqa: S102 (fixed source)
    return ns["work"]


def lines_per_call(n: int) -> int:
    # line events: total=0, return: 2; per iteration: for, x=, if, one branch: 4; the final for: 1
    return 2 + 4 * n + 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=5, help="calls per measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    bare = fresh("bare")
    cp_fn = fresh("codeprof")
    _core.line_profile_add(cp_fn)
    session = _core.Session(lines=True)

    enter = getattr(_core, "line_profile_enter", None)
    if enter is not None:  # 3.11: the hook goes on per call, as the decorator does
        leave = _core.line_profile_leave
        timed = cp_fn

        def cp_fn(n: int) -> int:
            enter()
            try:
                return timed(n)
            finally:
                leave()

    other = fresh("other")  # never registered: what the rest of the program pays
    variants = {"bare": bare, "codeprof": cp_fn, "other_armed": other}
    try:
        from line_profiler import LineProfiler
        lp = LineProfiler()
        variants["line_profiler"] = lp(fresh("line_profiler"))
    except ImportError:
        print("line_profiler is not installed (.venv/bin/pip install line_profiler): "
              "its column is left out", file=sys.stderr)

    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for r in range(args.rounds):
        order = list(variants)
        order = order[r % len(order):] + order[:r % len(order)]  # rotate the order
        for name in order:
            fn = variants[name]
            if name in ("codeprof", "other_armed"):
                session.start()
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                fn(args.n)
            w1, c1 = time.perf_counter(), time.process_time()
            if name in ("codeprof", "other_armed"):
                session.stop()
            wall[name].append((w1 - w0) / args.calls)
            cpu[name].append((c1 - c0) / args.calls)

    # check codeprof measured what it should (not a no-op)
    full = json.loads(session.report_json())
    rep = full["lines"]
    meta_dropped = {k: v for k, v in full["meta"].items() if "dropped" in k and v}
    hits = sum(row["hits"] for f in rep["functions"] for row in f["lines"])
    expected = lines_per_call(args.n) * args.calls * args.rounds
    ev = lines_per_call(args.n)
    med = {k: statistics.median(v) for k, v in wall.items()}
    medc = {k: statistics.median(v) for k, v in cpu.items()}
    out = {"python": sys.version.split()[0], "mechanism":
           "sys.monitoring" if sys.version_info >= (3, 12) else "settrace",
           "n": args.n, "rounds": args.rounds, "calls": args.calls,
           "line_events_per_call": ev, "codeprof_hits": hits, "expected_hits": expected,
           "wall_ms": {k: v * 1e3 for k, v in med.items()},
           "cpu_ms": {k: v * 1e3 for k, v in medc.items()},
           "ratio_wall": {k: med[k] / med["bare"] for k in med},
           "ns_per_line_event": {k: (med[k] - med["bare"]) * 1e9 / ev for k in med if k != "bare"}}
    print(f"Python {out['python']} ({out['mechanism']}), work({args.n}): {ev} line events per "
          f"call; medians of {args.rounds} interleaved rounds x {args.calls} calls")
    print(f"{'variant':<15}{'wall ms':>10}{'cpu ms':>10}{'x bare':>9}{'ns/line':>10}")
    for k in variants:
        per = "" if k in ("bare", "other_armed") else f"{out['ns_per_line_event'][k]:10.1f}"
        print(f"{k:<15}{out['wall_ms'][k]:10.3f}{out['cpu_ms'][k]:10.3f}"
              f"{out['ratio_wall'][k]:9.2f}{per}")
    print(f"codeprof recorded {hits} line hits (expected {expected}); "
          f"lines.dropped {rep['dropped']}, events dropped {meta_dropped or 0}")
    if "line_profiler" in med:
        print(f"codeprof / line_profiler (wall): {med['codeprof'] / med['line_profiler']:.2f}")
    if args.json:
        print(json.dumps(out))
    return 0 if hits == expected else 1


if __name__ == "__main__":
    sys.exit(main())
