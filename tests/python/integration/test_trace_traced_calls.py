"""Traced calls in the Chrome/Perfetto trace (docs/exports.md, "Traced
calls"): `codeprof run -o x.trace.json` at the default level (detailed)
writes every call of the script as an "X" event of category "call" on the
thread's track, nested by time inside each other and inside the explicit
scopes, which are still there; at `--level basic` there are none.  The
runs happen in subprocesses with a timeout."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import run_python

FIB_CALLS_10 = 177  # calls fib(10) makes, itself included

SCRIPT = textwrap.dedent("""
    from code_profiler import get_current_profiler

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def main():
        p = get_current_profiler()
        with p.profiling_context("phase"):
            fib(10)

    main()
""")


def _run(tmp_path: Path, *extra: str):
    script = tmp_path / "fibscript.py"
    script.write_text(SCRIPT)
    trace, report = tmp_path / "x.trace.json", tmp_path / "x.json"
    res = run_python(["-m", "code_profiler", "run", "-q", *extra, "-o", str(trace),
                      "-o", str(report), str(script)], tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    with open(trace) as fh:
        doc = json.load(fh)
    with open(report) as fh:
        rep = json.load(fh)
    return doc, rep


def _ns(e):
    """(start, end) of an X event in integer ns (ts/dur have ns decimals)."""
    start = round(e["ts"] * 1000)
    return start, start + round(e["dur"] * 1000)


def _is_fib(e):
    return e["name"] == "fib" or e["name"].endswith(".fib")


def _check_nesting(events):
    """Every pair of X events on one track either nests or is disjoint, as
    Perfetto requires to stack them by time.  Returns the deepest chain of
    fib calls."""
    evs = sorted(events, key=lambda e: (_ns(e)[0], -_ns(e)[1]))
    stack = []  # (end, event)
    deepest = 0
    for e in evs:
        s, t = _ns(e)
        # pop what ended before this starts (touching ends pop unless this
        # event is empty and sits on the boundary: it nests either way)
        while stack and (stack[-1][0] < s or (stack[-1][0] == s and t > s)):
            stack.pop()
        if stack:
            assert t <= stack[-1][0], (e, stack[-1][1])
        stack.append((t, e))
        depth = 0
        for _, o in reversed(stack):
            if not _is_fib(o):
                break
            depth += 1
        deepest = max(deepest, depth)
    return deepest


def test_default_level_trace_has_nested_traced_calls_and_scopes(tmp_path):
    doc, rep = _run(tmp_path)
    main_pid = doc["otherData"]["pid"]
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    calls = [e for e in xs if e["cat"] == "call"]
    fibs = [e for e in calls if _is_fib(e)]
    assert len(fibs) == FIB_CALLS_10
    assert all(e["pid"] == main_pid for e in fibs)
    tids = {e["tid"] for e in fibs}
    assert len(tids) == 1
    assert not any(e.get("args", {}).get("unfinished") for e in fibs)
    # the explicit scope is still there, on the same track, around the calls
    phase = [e for e in xs if e["name"] == "phase" and e["cat"] == "scope"]
    assert len(phase) == 1 and phase[0]["tid"] in tids
    ps, pe = _ns(phase[0])
    assert all(ps <= _ns(e)[0] and _ns(e)[1] <= pe for e in fibs)
    # main() is a traced call around the scope
    mains = [e for e in calls if e["name"] == "main" or e["name"].endswith(".main")]
    assert len(mains) == 1
    ms, me = _ns(mains[0])
    assert ms <= ps and pe <= me
    # everything on the thread's track nests by time; fib(10) recurses 10 deep
    track = [e for e in xs if e["pid"] == main_pid and e["tid"] in tids]
    assert _check_nesting(track) == 10
    od = doc["otherData"]
    assert od["traced_calls"] == len(calls)
    assert od["timeline_traced_events"] >= 2 * len(calls) - 2 * od["traced_unfinished_calls"]
    assert od["timeline_traced_dropped"] == 0 and od["traced_unmatched_exits"] == 0
    assert od["timeline_traced_cap"] == 1 << 18
    assert od["timeline_dropped"] == 0 and od["unmatched_exits"] == 0
    # the JSON report's meta counts the traced stream (schema v2 keys)
    assert rep["meta"]["timeline_traced_events"] == od["timeline_traced_events"]
    assert rep["meta"]["timeline_traced_dropped"] == 0
    assert rep["config"]["timeline_traced"] is True
    assert rep["config"]["timeline_traced_events"] == 1 << 18


def test_basic_level_trace_has_no_traced_calls(tmp_path):
    doc, rep = _run(tmp_path, "--level", "basic")
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert not [e for e in xs if e["cat"] == "call"]
    assert len([e for e in xs if e["name"] == "phase"]) == 1
    od = doc["otherData"]
    assert od["traced_calls"] == 0 and od["timeline_traced_events"] == 0
    assert od["timeline_traced_cap"] == 0
    assert rep["config"]["timeline_traced"] is False
    # the tracer still ran: the report has fib's calls
    fib = [f for f in rep["performance"]["functions"] if _is_fib({"name": f["function"]})]
    assert fib and fib[0]["calls"] == FIB_CALLS_10


@pytest.mark.parametrize("cap", [0, 8, 64])
def test_traced_cap_bounds_the_stream_and_keeps_scopes(tmp_path, cap):
    """A tiny traced store: the first and last events kept, the rest counted;
    the explicit scope never pushed out; calls cut at the dropped middle
    still nest with the scope on the thread's track."""
    script = tmp_path / "capped.py"
    script.write_text(SCRIPT.replace("get_current_profiler()", "prof").replace(
        "from code_profiler import get_current_profiler",
        "from code_profiler import ProfilerConfig, VideoOpusClipProfiler\n"
        f"prof = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, output_dir='out', "
        f"timeline_traced_events={cap}))\nprof.start_profiling()") +
        "prof.stop_profiling()\nprof.save_comprehensive_report('c.trace.json')\n")
    res = run_python([str(script)], tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "out" / "c.trace.json") as fh:
        doc = json.load(fh)
    od = doc["otherData"]
    assert od["timeline_traced_cap"] == cap
    assert od["timeline_traced_events"] == min(cap, od["timeline_traced_events"])
    if cap == 0:
        assert od["timeline_traced_events"] == 0 and od["timeline_traced_dropped"] == 0
    else:
        assert od["timeline_traced_events"] == cap
        assert od["timeline_traced_dropped"] >= 2 * FIB_CALLS_10 - cap
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    phase = [e for e in xs if e["name"] == "phase" and e["cat"] == "scope"]
    assert len(phase) == 1
    assert od["timeline_dropped"] == 0 and od["unmatched_exits"] == 0
    track = [e for e in xs if (e["pid"], e["tid"]) == (phase[0]["pid"], phase[0]["tid"])]
    _check_nesting(track)
    calls = [e for e in xs if e["cat"] == "call"]
    assert od["traced_calls"] == len(calls) <= cap  # each kept its ENTER
