"""Runs examples/video_pipeline.py inside `codeprof run` and then times the
report views on its profile, in the same process (bench/bench_views.py,
figure 1): first while profiling still runs (as the demo calls them), then
on the finished profile (stopped).  Writes the figures as JSON to
$CODEPROF_BENCH_OUT."""
import json
import os
import runpy
import statistics
import sys
import time

from code_profiler import get_current_profiler

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(os.path.dirname(HERE), "examples", "video_pipeline.py")

t0 = time.perf_counter()
demo = runpy.run_path(DEMO, run_name="codeprof_bench_demo")
demo["main"](sys.argv[1:])
demo_s = time.perf_counter() - t0

prof = get_current_profiler()
session = prof._session
views = {
    "get_comprehensive_report()": prof.get_comprehensive_report,
    "identify_bottlenecks()": prof.identify_bottlenecks,
    "performance_profiler.get_profile_stats()": prof.performance_profiler.get_profile_stats,
    "data_loading_profiler.get_data_loading_report()":
        prof.data_loading_profiler.get_data_loading_report,
    "Session.report_json() (JSON text)": session.report_json,
}


def measure() -> dict:
    out = {}
    for name, fn in views.items():
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        out[name] = statistics.median(times)
    return out


# 1. while profiling runs (the demo's own situation under codeprof run: the
#    tracer records the calls between views, so each view sees new data and
#    a new model is built)
b0, r0 = session.model_counts()
running_ms = measure()
b1, r1 = session.model_counts()
# 2. on the finished profile: stopped, nothing new, the model is reused
prof.stop_profiling()
stopped_ms = measure()
b2, r2 = session.model_counts()
model = session.model()
report = prof.get_comprehensive_report()
t = time.perf_counter()
text = json.dumps(report, indent=2)
indent2_ms = (time.perf_counter() - t) * 1000
prof.start_profiling()  # codeprof run stops it and writes its report
with open(os.environ["CODEPROF_BENCH_OUT"], "w") as fh:
    json.dump({"demo_s": demo_s, "running_ms": running_ms, "stopped_ms": stopped_ms,
               "running_built": b1 - b0, "running_reused": r1 - r0,
               "stopped_built": b2 - b1, "stopped_reused": r2 - r1,
               "nodes": model.nodes, "functions": model.functions_profiled,
               "indent2_bytes": len(text), "indent2_ms": indent2_ms}, fh)
