"""Sampled (estimated) figures in every view of a saved report, read back
by the real consumers: a schema-v4 report whose call tree has sampled-only
nodes (calls 0, estimated times) is rendered by the C core
(_core.render_report) as JSON, text, pstats (pstats.Stats), speedscope
(the file-format schema checks of the exports test), collapsed stacks and
a trace (json.loads).  The report is written by hand so these views are
tested without the sampler (docs/report-schema.md, docs/exports.md)."""
from __future__ import annotations

import importlib.util
import io
import json
import math
import pstats
from pathlib import Path

import pytest

from code_profiler import _core

HERE = Path(__file__).resolve().parent


def _speedscope_check():
    spec = importlib.util.spec_from_file_location(
        "_exports_checks", HERE.parent / "integration" / "test_exports.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._check_speedscope


def _node(site, calls, incl, self_s, samples=0, samples_self=0, children=None):
    n = {"site": site, "calls": calls, "inclusive_s": incl, "self_s": self_s, "cpu_s": None,
         "samples": samples, "estimated": calls == 0 and samples > 0}
    if samples:
        n.update(sampled_s=samples * 0.01, samples_self=samples_self,
                 sampled_self_s=samples_self * 0.01)
    if children:
        n["children"] = children
    return n


def _report():
    # main (traced) -> hot (600 samples, 6 s) and cold (300 samples, 3 s),
    # hot -> inner (200 samples, 2 s); main's own 100 samples
    fns = [
        {"function": "main", "file": "app.py", "line": 1, "kind": "python", "calls": 1,
         "inclusive_s": 10.0, "self_s": 1.0, "samples": 1000, "sampled_s": 10.0},
        {"function": "hot", "file": "hot.py", "line": 10, "kind": "python", "calls": 0,
         "inclusive_s": 6.0, "self_s": 4.0, "samples": 600, "sampled_s": 6.0},
        {"function": "cold", "file": "cold.py", "line": 20, "kind": "python", "calls": 0,
         "inclusive_s": 3.0, "self_s": 3.0, "samples": 300, "sampled_s": 3.0},
        {"function": "inner", "file": "hot.py", "line": 30, "kind": "python", "calls": 0,
         "inclusive_s": 2.0, "self_s": 2.0, "samples": 200, "sampled_s": 2.0},
    ]
    sites = [{"function": f["function"], "file": i, "line": f["line"], "kind": "python"}
             for i, f in enumerate(fns)]
    tree = [_node(0, 1, 10.0, 1.0, 1000, 100, [
        _node(1, 0, 6.0, 4.0, 600, 400, [_node(3, 0, 2.0, 2.0, 200, 200)]),
        _node(2, 0, 3.0, 3.0, 300, 300),
    ])]
    return {
        "schema": "codeprof-report", "schema_version": 4, "generator": "test",
        "meta": {"pid": 77, "role": "main", "clock": "fake", "start_unix_s": 1700000000.0,
                 "duration_s": 10.0, "threads": 1},
        "config": {"slow_function_s": 1.0},
        "performance": {
            "functions": fns,
            "files": [f["file"] for f in fns],
            "sites": sites,
            "call_tree": [{"thread": 0, "os_tid": 123, "events": 10, "dropped": 0, "pid": 77,
                           "worker": -1, "inclusive_s": 10.0, "children": tree}],
        },
        "sampling": {"enabled": True, "mode": "wall", "interval_s": 0.01, "native": False,
                     "samples": 1000, "running": 900, "idle": 100, "gil_wait": 0, "threads": 1,
                     "ticks": 1000, "missed_ticks": 0, "read_errors": 0, "sampler_cpu_s": 0.01,
                     "dropped": {"stacks": 0, "samples": 0, "timeline": 0}},
        "findings": [],
    }


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "sampled.json"
    path.write_text(json.dumps(_report()))
    return path


def _fn(doc, name):
    (f,) = [f for f in doc["performance"]["functions"] if f["function"] == name]
    return f


def test_json_round_trip_keeps_estimates(saved):
    doc = json.loads(_core.render_report(str(saved), "json"))
    assert doc["schema_version"] == 4
    hot = _fn(doc, "hot")
    assert hot["calls"] == 0 and hot["estimated"] is True
    assert hot["samples"] == 600 and hot["sampled_s"] == pytest.approx(6.0)
    assert hot["mean_s"] is None
    # binomial standard error of the share times the total: 10 s x sqrt(.6 x .4 / 1000)
    assert hot["error_s"] == pytest.approx(10.0 * math.sqrt(0.6 * 0.4 / 1000), rel=1e-6)
    main = _fn(doc, "main")
    assert main["estimated"] is False and main["calls"] == 1
    s = doc["sampling"]
    assert s["enabled"] is True and s["mode"] == "wall" and s["interval_s"] == 0.01
    assert (s["samples"], s["running"], s["idle"]) == (1000, 900, 100)
    # a second pass gives the same document (the read-back is complete)
    saved.write_text(json.dumps(doc))
    again = json.loads(_core.render_report(str(saved), "json"))
    assert again["performance"] == doc["performance"]
    assert again["sampling"] == doc["sampling"]


def test_text_marks_estimated_functions(saved):
    text = _core.render_report(str(saved), "text")
    assert "~ times estimated from 1000 samples every 10.000 ms" in text
    assert "hot  hot.py:10  (+- 0.154919 s, 600 samples)" in text
    assert "Sampling (wall clock, every 10.000 ms)" in text


def test_pstats_loads_sorts_and_prints_sampled_functions(saved, tmp_path):
    out = tmp_path / "s.prof"
    out.write_bytes(_core.render_report(str(saved), "pstats"))
    buf = io.StringIO()
    st = pstats.Stats(str(out), stream=buf)
    by_name = {k[2]: v for k, v in st.stats.items()}
    assert set(by_name) == {"main", "hot", "cold", "inner"}
    cc, nc, tt, ct, callers = by_name["hot"]
    assert (cc, nc) == (0, 0)  # no traced call: estimated times only
    assert tt == pytest.approx(4.0) and ct == pytest.approx(6.0)
    assert [k[2] for k in callers] == ["main"]
    assert by_name["inner"][3] == pytest.approx(2.0)
    st.sort_stats("cumulative").print_stats()
    st.print_callers()
    st.print_callees()
    assert "hot" in buf.getvalue()


def test_speedscope_and_collapsed_carry_sampled_nodes(saved):
    doc = json.loads(_core.render_report(str(saved), "speedscope"))
    _speedscope_check()(doc)
    frames = [f["name"] for f in doc["shared"]["frames"]]
    weights = {}
    for p in doc["profiles"]:
        for stack, w in zip(p["samples"], p["weights"]):
            weights[tuple(frames[i] for i in stack)] = w
    total = sum(weights.values())
    hot_self = sum(w for s, w in weights.items() if s and s[-1] == "hot")
    inner_self = sum(w for s, w in weights.items() if s and s[-1] == "inner")
    assert hot_self / total == pytest.approx(0.4, rel=1e-6)
    assert inner_self / total == pytest.approx(0.2, rel=1e-6)
    collapsed = _core.render_report(str(saved), "collapsed")
    lines = dict(line.rsplit(" ", 1) for line in collapsed.strip().splitlines())
    # self time per stack, in us: sampled-only nodes come through with their estimates
    stem = "pid 77 (main);thread 123;main (app.py:1)"
    assert lines[stem + ";hot (hot.py:10)"] == "4000000"
    assert lines[stem + ";hot (hot.py:10);inner (hot.py:30)"] == "2000000"
    assert lines[stem + ";cold (cold.py:20)"] == "3000000"


def test_trace_is_json_with_sample_counters(saved):
    doc = json.loads(_core.render_report(str(saved), "trace"))
    other = doc["otherData"]
    # samples are not kept in a saved report: none on the timeline, taken counted
    assert other["samples"] == 0 and other["samples_taken"] == 1000
    assert isinstance(doc["traceEvents"], list)


def test_model_report_sampling_section_shape():
    s = _core.Session()
    s.start()
    s.stop()
    sec = s.model().report("sampling")
    assert set(sec) == {"enabled", "mode", "interval_s", "native", "samples", "running", "idle",
                        "gil_wait", "threads", "ticks", "missed_ticks", "read_errors",
                        "sampler_cpu_s", "dropped"}
    assert set(sec["dropped"]) == {"stacks", "samples", "timeline"}
    assert sec["enabled"] is False and sec["samples"] == 0
