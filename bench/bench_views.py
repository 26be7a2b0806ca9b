#!/usr/bin/env python
"""Report size and view cost on the demo's profile, and the demo's
whole-process time under ``codeprof run -o report.json`` vs the tracer alone.

One command, interleaved runs, medians:

    python bench/bench_views.py [--runs 3] [-- DEMO_ARGS...]

Figure 1 -- the report and the views (issue 7, deliverables 1 and 2):
  examples/video_pipeline.py runs under ``codeprof run -o report.json``
  through bench/_demo_views.py, which runs the demo (recording into the
  running profiler, as under ``make demo``) and then, in the same process
  and profile, times each view 5 times (median): get_comprehensive_report,
  identify_bottlenecks, performance_profiler.get_profile_stats,
  data_loading_profiler.get_data_loading_report, and the JSON report
  (Session.report_json) -- first while profiling still runs (as the demo
  calls them: the tracer records the code between two views, so every view
  builds a new model), then on the finished profile (stopped: one model,
  reused) -- and counts the models built and reused.  Printed: each view's
  median in ms (goal <= 10 ms), the five together as a share of the demo's
  run time (goal <= 1%), the size of the report.json codeprof run wrote
  (goal <= 1 MB) and of json.dumps(report, indent=2).

Figure 2 -- whole process (goal <= 1.15x):
  A: ``codeprof run -q -o report.json examples/video_pipeline.py``
     (tracer, facade instruments, the demo's own views and report, the
     report and summary at exit);
  B: ``python bench/_tracer_only.py examples/video_pipeline.py --level off``
     (the same script under the tracer alone: a _core.Session tracing every
     call, no profiler, no views, no report);
  run alternately, --runs times each; the ratio of the medians of the
  whole commands' wall times.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEMO = os.path.join(ROOT, "examples", "video_pipeline.py")


def codeprof_cmd() -> list:
    exe = os.path.join(os.path.dirname(sys.executable), "codeprof")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "code_profiler"]


def timed(cmd: list, env: dict, cwd: str) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return wall


def figure_views(demo_args: list, env: dict, work: str) -> None:
    out = os.path.join(work, "views.json")
    report = os.path.join(work, "views-report.json")
    env = dict(env, CODEPROF_BENCH_OUT=out)
    cmd = codeprof_cmd() + ["run", "-q", "-o", report, os.path.join(HERE, "_demo_views.py"),
                            *demo_args]
    timed(cmd, env, work)
    with open(out) as fh:
        r = json.load(fh)
    size = os.path.getsize(report)
    print("Figure 1: report size and view cost on the demo's profile "
          f"({r['nodes']:,} call-tree nodes, {r['functions']:,} functions; "
          f"demo run {r['demo_s']:.1f} s)")
    for state, label in (("stopped", "on the finished profile (stopped; the model is reused)"),
                         ("running", "while profiling runs (new data before every call: "
                                     "a new model each time)")):
        print(f"  {label}:")
        total = 0.0
        for name, ms in r[f"{state}_ms"].items():
            total += ms
            print(f"    {name:48s} {ms:8.2f} ms  (goal <= 10 ms: "
                  f"{'met' if ms <= 10 else 'MISSED'})")
        share = total / 1000.0 / r["demo_s"]
        print(f"    {'all five':48s} {total:8.2f} ms  = {100 * share:.3f}% of the demo's run "
              f"(goal <= 1%: {'met' if share <= 0.01 else 'MISSED'})")
        print(f"    models built / reused over those 25 calls: {r[state + '_built']} / "
              f"{r[state + '_reused']}")
    print(f"  report.json written by codeprof run:     {size:,} bytes "
          f"(goal <= 1 MB: {'met' if size <= 1_000_000 else 'MISSED'})")
    print(f"  json.dumps(report, indent=2):            {r['indent2_bytes']:,} characters, "
          f"{r['indent2_ms']:.1f} ms")


def figure_process(demo_args: list, runs: int, env: dict, work: str) -> None:
    a_cmd = codeprof_cmd() + ["run", "-q", "-o", os.path.join(work, "report.json"), DEMO,
                              *demo_args]
    b_cmd = [sys.executable, os.path.join(HERE, "_tracer_only.py"), DEMO, *demo_args,
             "--level", "off"]
    timed(b_cmd, env, work)  # warm-up: the demo's video cache, page cache
    a, b = [], []
    for _ in range(runs):
        b.append(timed(b_cmd, env, work))
        a.append(timed(a_cmd, env, work))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"Figure 2: the demo, whole process, median of {runs} interleaved runs each")
    print(f"  B tracer alone (_tracer_only.py --level off)  {mb:7.2f} s  "
          f"runs {', '.join(f'{x:.2f}' for x in b)}")
    print(f"  A codeprof run -o report.json                 {ma:7.2f} s  "
          f"runs {', '.join(f'{x:.2f}' for x in a)}")
    print(f"  A / B = {ma / mb:.3f}x  (goal <= 1.15x: {'met' if ma / mb <= 1.15 else 'MISSED'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-process", action="store_true")
    ap.add_argument("demo_args", nargs=argparse.REMAINDER)
    ns = ap.parse_args()
    demo_args = [a for a in ns.demo_args if a != "--"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix="codeprof-bench-views-") as work:
        # the demo's own reports go under `work` (its video cache is shared)
        demo_args = ["--output-dir", os.path.join(work, "profiles"), *demo_args]
        figure_views(demo_args, env, work)
        if not ns.skip_process:
            figure_process(demo_args, ns.runs, env, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
