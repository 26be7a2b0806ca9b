"""Reports taken while profiling: nothing recorded is lost, and stop/start
from one thread never fails because another thread takes a report.

Before (engine v1): a snapshot paused the session for the whole model
build: 30 get_comprehensive_report() calls beside a recording thread
dropped 0.37M-6.8M events, and stop_profiling() racing a report failed with
ESTATE after <= 137 cycles, leaving the tracer installed."""
import threading

from code_profiler import create_profiler_config
from conftest import function_entry


def test_reports_beside_a_recording_thread_lose_nothing(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    n = 20000
    done = threading.Event()

    def record():
        for _ in range(n):
            with p.profiling_context("recorded"):
                pass
        done.set()

    t = threading.Thread(target=record)
    t.start()
    reports = 0
    while not done.is_set() or reports < 5:
        r = p.get_comprehensive_report()
        assert r["meta"]["dropped_events"] == 0
        reports += 1
    t.join()
    p.stop_profiling()
    report = p.get_comprehensive_report()
    meta = report["meta"]
    assert function_entry(report, "recorded")["calls"] == n
    assert meta["dropped_events"] == meta["dropped_buffer_full"] == 0
    assert meta["dropped_reentrant"] == 0


def test_start_stop_never_fail_beside_reports(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    stop = threading.Event()
    errors = []

    def report_loop():
        try:
            while not stop.is_set():
                p.get_comprehensive_report()
                p.identify_bottlenecks()
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    t = threading.Thread(target=report_loop)
    t.start()
    try:
        for i in range(200):
            p.start_profiling()
            with p.profiling_context("cycle"):
                pass
            p.stop_profiling()
    finally:
        stop.set()
        t.join()
    assert not errors
    assert not p.is_profiling
    p.start_profiling()  # still usable
    p.stop_profiling()
    assert function_entry(p.get_comprehensive_report(), "cycle")["calls"] == 200
