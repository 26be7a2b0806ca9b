#!/usr/bin/env python
"""Whole process: `codeprof run -o report.json script.py` against
`python -m cProfile -o out.prof script.py` (and bare `python script.py`).

One command per Python (prints the modes side by side, ratios and the goal):

    .venv/bin/python    bench/bench_process.py     # 3.11: fib and realistic
    .venv312/bin/python bench/bench_process.py     # 3.12: fib (no torch there)

The script is bench/process_workload.py (--workloads fib: fib(27) --reps
times; --workloads realistic: the video-like numpy/cv2/torch pipeline of
bench/workloads.py).  Each command line runs as its own process, from
spawn to exit, so interpreter start-up, imports, the profiler's start, the
run, the report written to disk and exit all count.  R interleaved rounds
(default 5: bare, cProfile, codeprof, bare, ...); figures are MEDIANS over
the rounds of wall time and of CPU time (user + system of the child, all
its threads, from os.wait4).  Goal (issue 6): codeprof run no slower than
cProfile (ratio <= 1.00) on both workloads.

The codeprof command is exactly `codeprof run -o report.json script.py`
(the CLI's default level, "detailed"; its text summary goes to stderr,
which is discarded here like everything the script prints).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "process_workload.py")
MODES = ["bare", "cProfile", "codeprof"]
DEFAULT_REPS = {"fib": 4, "realistic": 2}


def codeprof_cli() -> list:
    exe = os.path.join(os.path.dirname(sys.executable), "codeprof")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-m", "code_profiler"]


def command(mode: str, workload: str, reps: int, tmp: str) -> list:
    args = [SCRIPT, "--workloads", workload, "--reps", str(reps)]
    if mode == "bare":
        return [sys.executable, *args]
    if mode == "cProfile":
        return [sys.executable, "-m", "cProfile", "-o", os.path.join(tmp, "out.prof"), *args]
    if mode == "codeprof":
        return [*codeprof_cli(), "run", "-o", os.path.join(tmp, "report.json"), *args]
    raise ValueError(mode)


def run(cmd: list, timeout: float) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            p.wait()
            return {"error": f"timed out after {timeout:.0f}s"}
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = (err.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {p.returncode}: {tail}"}
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime}


def bench(workload: str, reps: int, rounds: int, timeout: float) -> dict:
    res = {m: [] for m in MODES}
    errors = {}
    with tempfile.TemporaryDirectory(prefix="bench_process") as tmp:
        for _ in range(rounds):
            for m in MODES:
                r = run(command(m, workload, reps, tmp), timeout)
                if "error" in r:
                    errors[m] = r["error"]
                else:
                    res[m].append(r)
        report = os.path.join(tmp, "report.json")
        report_bytes = os.path.getsize(report) if os.path.exists(report) else 0
    print(f"\n== {workload} (process_workload.py --workloads {workload} --reps {reps}), "
          f"{rounds} interleaved rounds, medians ==")
    med = {}
    for m in MODES:
        if res[m]:
            med[m] = {k: statistics.median(r[k] for r in res[m]) for k in ("wall", "cpu")}
    print(f"{'mode':<10} {'wall s':>8} {'x bare':>7} {'x cProfile':>11} | {'cpu s':>8} "
          f"{'x bare':>7} {'x cProfile':>11}   (wall min..max)")
    for m in MODES:
        if m not in med:
            print(f"{m:<10} failed: {errors.get(m)}")
            continue
        w, c = med[m]["wall"], med[m]["cpu"]
        bw = med.get("bare", {}).get("wall")
        bc = med.get("bare", {}).get("cpu")
        cw = med.get("cProfile", {}).get("wall")
        cc = med.get("cProfile", {}).get("cpu")
        walls = [r["wall"] for r in res[m]]

        def ratio(a, b):
            return f"{a / b:.3f}" if b else "-"

        print(f"{m:<10} {w:>8.3f} {ratio(w, bw):>7} {ratio(w, cw):>11} | {c:>8.3f} "
              f"{ratio(c, bc):>7} {ratio(c, cc):>11}   ({min(walls):.3f}..{max(walls):.3f})")
    if errors:
        for m, e in errors.items():
            print(f"note: {m} failed in some round: {e}")
    if report_bytes:
        print(f"codeprof's report.json: {report_bytes:,} bytes")
    return med


def attribute(workload: str, reps: int, rounds: int, timeout: float) -> None:
    """Where codeprof run's time goes: bench/cli_phases.py, medians."""
    import json

    phases = []
    walls = []
    with tempfile.TemporaryDirectory(prefix="bench_process") as tmp:
        for _ in range(rounds):
            cmd = [sys.executable, os.path.join(HERE, "cli_phases.py"), "run", "-o",
                   os.path.join(tmp, "report.json"), SCRIPT, "--workloads", workload,
                   "--reps", str(reps)]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            walls.append(time.perf_counter() - t0)
            for line in p.stderr.splitlines():
                if line.startswith("PHASES "):
                    phases.append(json.loads(line[len("PHASES "):]))
    if not phases:
        print(f"{workload}: cli_phases.py gave no PHASES line")
        return
    keys = list(phases[0])
    w = statistics.median(walls)
    print(f"\n-- {workload}: where `codeprof run -o report.json` spends its wall time "
          f"(bench/cli_phases.py, {len(phases)} runs, medians; whole process {w:.3f} s) --")
    acc = 0.0
    for k in keys:
        v = statistics.median(ph.get(k, 0.0) for ph in phases)
        acc += v
        print(f"  {k:<32} {v:>8.3f} s  {100 * v / w:>5.1f}%")
    print(f"  {'rest (interpreter start, exit)':<32} {w - acc:>8.3f} s  "
          f"{100 * (w - acc) / w:>5.1f}%")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="fib,realistic")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=0,
                    help="--reps of process_workload.py (default: fib 4, realistic 2)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--attribute", action="store_true",
                    help="also time codeprof run's phases (bench/cli_phases.py)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    sys.path.insert(0, HERE)
    import workloads

    print(f"bench_process: {sys.executable} (Python {sys.version.split()[0]}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"codeprof = {' '.join(codeprof_cli())}")
    results = {}
    for w in [x for x in args.workloads.split(",") if x]:
        if w not in workloads.WORKLOADS:
            ap.error(f"--workloads: unknown {w!r}; expected names from "
                     f"{sorted(workloads.WORKLOADS)}")
        if w == "realistic":
            why = workloads.realistic_missing()
            if why:
                print(f"\n== realistic ==\nskipped: {why}")
                continue
        results[w] = bench(w, args.reps or DEFAULT_REPS.get(w, 2), args.rounds, args.timeout)
    print("\n== goal: codeprof run no slower than python -m cProfile (whole process) ==")
    for w, med in results.items():
        if "codeprof" not in med or "cProfile" not in med:
            print(f"{w}: not measured")
            continue
        rw = med["codeprof"]["wall"] / med["cProfile"]["wall"]
        rc = med["codeprof"]["cpu"] / med["cProfile"]["cpu"]
        print(f"{w}: wall {rw:.3f}x, CPU {rc:.3f}x cProfile's -> "
              f"wall {'met' if rw <= 1.0 else 'MISSED'}, CPU {'met' if rc <= 1.0 else 'MISSED'}")
    if args.attribute:
        for w in results:
            attribute(w, args.reps or DEFAULT_REPS.get(w, 2), 3, args.timeout)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
