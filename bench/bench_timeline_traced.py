#!/usr/bin/env python
"""The cost of keeping traced calls on the timeline (CODEPROF_CFG_TIMELINE_TRACED,
set by the facade at the "detailed" and "comprehensive" levels).

    .venv/bin/python bench/bench_timeline_traced.py [--n 27] [--rounds 7]

Modes, each in a fresh subprocess, interleaved round by round:

  bare     fib(N), no profiler
  tracer   _core.Session(timeline_traced=False).start(trace_python=True)
           .. fib(N) .. stop()
  traced   the same with timeline_traced=True (traced calls kept in their own
           store, timeline_traced_events = 2^18 by default)

Figure: CPU time of the whole process (time.process_time(): every thread,
the drain thread that feeds the timeline included) over start .. fib(N) ..
stop; the MEDIAN per mode.  tracer overhead = median(tracer) - median(bare);
added = median(traced) - median(tracer); printed as a share of the tracer's
overhead.  One more traced run saves the trace export (Session.save(path,
"trace")) and prints its time, size and otherData counts.

With --callgrind N1 N2 (valgrind): instructions of every thread for the
calls fib(N2) makes beyond fib(N1), per mode (start-up, imports, start and
stop cancel out); added = I(traced) - I(tracer) as a share of
I(tracer) - I(bare).  Deterministic on a shared machine.  With N1 >= 24 the
traced store is already full at N1, so the extra calls measure the ring
(the steady state of a long run).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys, time
from code_profiler import _core

mode, n = sys.argv[1], int(sys.argv[2])
save = sys.argv[3] if len(sys.argv) > 3 else ""

def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)

fib(15)
if mode == "bare":
    t = time.process_time()
    fib(n)
    dt = time.process_time() - t
    out = {"cpu_s": dt}
else:
    s = _core.Session(timeline_traced=(mode == "traced"))
    t = time.process_time()
    s.start(trace_python=True)
    fib(n)
    s.stop()
    dt = time.process_time() - t
    out = {"cpu_s": dt}
    if save:
        w = time.perf_counter()
        s.save(save, "trace")
        out["save_s"] = time.perf_counter() - w
        out["size"] = os.path.getsize(save)
        with open(save) as fh:
            out["otherData"] = json.load(fh)["otherData"]
print(json.dumps(out))
"""


def run(mode: str, n: int, save: str = "") -> dict:
    args = [sys.executable, "-c", CHILD, mode, str(n)] + ([save] if save else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"{mode}: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def calls_of(n: int) -> int:
    """Calls fib(n) makes: C(n) = C(n-1) + C(n-2) + 1."""
    c = [1, 1]
    for k in range(2, n + 1):
        c.append(c[-1] + c[-2] + 1)
    return c[n]


def instructions(mode: str, n: int) -> int:
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        sys.executable, "-c", CHILD, mode, str(n)],
                       capture_output=True, text=True, timeout=1800)
    found = re.findall(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not found:
        raise SystemExit(f"callgrind {mode} {n}: {r.stderr[-500:]}")
    return int(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=27)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--callgrind", type=int, nargs=2, metavar=("N1", "N2"))
    a = ap.parse_args()
    modes = ["bare", "tracer", "traced"]
    if a.callgrind:
        n1, n2 = a.callgrind
        extra = calls_of(n2) - calls_of(n1)
        ins = {m: instructions(m, n2) - instructions(m, n1) for m in modes}
        print(f"callgrind: fib({n2}) - fib({n1}) = {extra} calls")
        for m in modes:
            print(f"  {m:7s} {ins[m] / extra:8.1f} instructions/call")
        over = ins["tracer"] - ins["bare"]
        added = ins["traced"] - ins["tracer"]
        print(f"tracer overhead {over / extra:.1f} instr/call; timeline_traced added "
              f"{added / extra:.1f} instr/call = {100 * added / over:.1f}% of the tracer's overhead")
        return
    times = {m: [] for m in modes}
    for r in range(a.rounds):
        order = modes if r % 2 == 0 else list(reversed(modes))
        for m in order:
            times[m].append(run(m, a.n)["cpu_s"])
    med = {m: statistics.median(v) for m, v in times.items()}
    # calls fib(n) makes: C(n) = C(n-1) + C(n-2) + 1
    c = [1, 1]
    for k in range(2, a.n + 1):
        c.append(c[-1] + c[-2] + 1)
    calls = c[a.n]
    print(f"fib({a.n}): {calls} calls, {2 * calls} traced events; {a.rounds} interleaved rounds")
    for m in modes:
        print(f"  {m:7s} median CPU {med[m]:.4f} s   runs: "
              + " ".join(f"{x:.4f}" for x in times[m]))
    over = med["tracer"] - med["bare"]
    added = med["traced"] - med["tracer"]
    print(f"tracer overhead: {over:.4f} s ({over / calls * 1e9:.0f} ns/call)")
    print(f"timeline_traced added: {added:.4f} s ({added / calls * 1e9:.1f} ns/call), "
          f"{100 * added / over:.1f}% of the tracer's overhead")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fib.trace.json")
        s = run("traced", a.n, path)
        od = s["otherData"]
        print(f"trace export of the traced run: {s['size'] / 1e6:.1f} MB in {s['save_s']:.3f} s; "
              f"traced events kept {od['timeline_traced_events']}, dropped "
              f"{od['timeline_traced_dropped']}, X calls written {od['traced_calls']}, "
              f"unfinished {od['traced_unfinished_calls']}, unmatched exits "
              f"{od['traced_unmatched_exits']}")


if __name__ == "__main__":
    main()
