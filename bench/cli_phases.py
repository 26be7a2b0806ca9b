#!/usr/bin/env python
"""`codeprof run` with its phases timed (for bench_process.py --attribute).

    python bench/cli_phases.py run -o report.json script.py [args...]

Runs the CLI's own entry point (code_profiler.cli.main) unchanged, with
timers around the profiler calls it makes, and prints one line
``PHASES {json}`` to stderr at exit: seconds spent importing code_profiler,
in start_profiling, running the script (to the session's stop), in stop,
in get_text_summary (the summary printed to stderr), in
save_comprehensive_report (building and writing report.json) and from
there to exit (interpreter shutdown is measured by the caller).
"""
from __future__ import annotations

import atexit
import json
import sys
import time

T0 = time.perf_counter()
import code_profiler.cli as cli  # noqa: E402
from code_profiler import VideoOpusClipProfiler  # noqa: E402

PH = {"import_code_profiler": time.perf_counter() - T0}
MARK = {}


class _TimedSession:
    """Delegates to the real session; times stop()."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def stop(self):
        t = time.perf_counter()
        PH["script_run"] = t - MARK["started"]
        self._real.stop()
        PH["stop"] = time.perf_counter() - t


class TimedProfiler(VideoOpusClipProfiler):
    @property
    def session(self):
        return _TimedSession(super().session)

    def start_profiling(self):
        t = time.perf_counter()
        super().start_profiling()
        MARK["started"] = time.perf_counter()
        PH["start_profiling"] = MARK["started"] - t

    def get_text_summary(self):
        t = time.perf_counter()
        try:
            return super().get_text_summary()
        finally:
            PH["text_summary"] = time.perf_counter() - t

    def save_comprehensive_report(self, *a, **k):
        t = time.perf_counter()
        try:
            return super().save_comprehensive_report(*a, **k)
        finally:
            MARK["saved"] = time.perf_counter()
            PH["save_report"] = MARK["saved"] - t


def _emit():
    if "saved" in MARK:
        PH["after_save_to_atexit"] = time.perf_counter() - MARK["saved"]
    print("PHASES " + json.dumps(PH), file=sys.stderr, flush=True)


cli.VideoOpusClipProfiler = TimedProfiler
atexit.register(_emit)

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
