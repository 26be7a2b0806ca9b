"""Runs a script under the C tracer alone (bench/bench_views.py, "B"): a
_core.Session traces every Python call of the script, as codeprof run's
tracer does, and is stopped at the end; no profiler object, no views, no
report.  Usage: python bench/_tracer_only.py SCRIPT [ARGS...]"""
import runpy
import sys

from code_profiler import _core

script = sys.argv[1]
sys.argv = sys.argv[1:]
session = _core.Session()
session.start(trace_python=True)
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
finally:
    session.stop()
