"""The report's memory section (docs/report-schema.md, "memory"): the Python
view Model.report("memory") (what get_memory_report() returns) equals the
JSON report's section, has the contract's keys, and a saved version 3
report's memory section reads back and renders the same (text, JSON, diff)
through the C reader (src/model/model_json.c, src/report/report_mem.c)."""
from __future__ import annotations

import json

import pytest

from code_profiler import _core

MIB = 1024 * 1024

TOP_KEYS = {"enabled", "mode", "estimated", "native", "sample_bytes", "stack_depth",
            "memory_statistics", "memory_intensive_contexts", "gc_statistics", "domains",
            "stacks", "top_allocations", "leaks", "processes", "snapshots", "own_bytes",
            "dropped"}
STAT_KEYS = {"total_memory_delta", "avg_memory_delta", "peak_memory", "calls", "contexts",
             "live_bytes", "peak_bytes", "rss_bytes", "rss_peak_bytes", "machine_bytes"}
GC_KEYS = {"enabled", "total_collections", "avg_collections", "collections", "collected",
           "uncollectable", "time_s", "time_s_by_generation", "max_pause_s", "share_of_wall"}
DOMAIN_KEYS = {"alloc_count", "alloc_bytes", "free_count", "free_bytes", "live_bytes",
               "live_blocks", "peak_bytes"}
CTX_KEYS = {"context", "file", "line", "kind", "calls", "memory_delta", "avg_memory_delta",
            "max_memory_delta", "peak", "rss_delta", "rss_peak", "leaked_bytes",
            "leaked_blocks", "floor_growth_per_call", "gc_collections", "estimated"}
DROPPED_KEYS = {"blocks", "stacks", "snapshots", "marks", "contexts", "samples", "procs"}


def _session_with_memory_scopes():
    s = _core.Session(memory_mode=1, gc=True)
    s.start()
    site = s.site("data_processing")
    for _ in range(3):
        with s.scope(site, _core.SCOPE_HEAP):
            buf = bytearray(2 * MIB)
            del buf
    s.stop()
    return s


def test_view_equals_the_json_section():
    s = _session_with_memory_scopes()
    view = s.model().report("memory")
    doc = json.loads(s.report_json())
    assert view == doc["memory"]
    assert set(view) == TOP_KEYS
    assert set(view["memory_statistics"]) == STAT_KEYS
    assert set(view["gc_statistics"]) == GC_KEYS
    assert set(view["domains"]) == {"raw", "mem", "object", "numpy", "native"}
    for d in view["domains"].values():
        assert set(d) == DOMAIN_KEYS
    assert set(view["dropped"]) == DROPPED_KEYS
    assert view["mode"] in ("off", "rss", "sampled", "all")
    for c in view["memory_intensive_contexts"]:
        assert set(c) == CTX_KEYS
    # the whole document's view holds the same section, after data_loading
    whole = s.model().report()
    assert whole["memory"] == view
    keys = list(doc)
    assert keys.index("data_loading") < keys.index("memory") < keys.index("findings")
    assert doc["schema_version"] == 4 == _core.REPORT_SCHEMA_VERSION
    assert doc["config"]["memory_mode"] == 1 and doc["config"]["gc"] is True


def test_unknown_section_names_memory():
    s = _core.Session()
    with pytest.raises(ValueError, match=r"'data_loading', 'memory', 'sampling', 'lines', 'gpu'"):
        s.model().report("memroy")


def _site_free_report(memory):
    return {"schema": "codeprof-report", "schema_version": 3,
            "meta": {"pid": 1, "duration_s": 10},
            "performance": {"functions": [], "sites": [], "files": [], "call_tree": []},
            "memory": memory, "findings": []}


# A memory section as the writer writes it (contexts largest peak first,
# only referenced stacks, every key), so that it must read back unchanged.
SECTION = {
    "enabled": True, "mode": "all", "estimated": False, "native": False,
    "sample_bytes": 262144, "stack_depth": 8,
    "memory_statistics": {"total_memory_delta": 232 * MIB, "avg_memory_delta": 29 * MIB,
                          "peak_memory": 800 * MIB, "calls": 8, "contexts": 3,
                          "live_bytes": 224 * MIB, "peak_bytes": 1010 * MIB,
                          "rss_bytes": 1200 * MIB, "rss_peak_bytes": 1536 * MIB,
                          "machine_bytes": 16384 * MIB},
    "memory_intensive_contexts": [
        {"context": "transient", "file": "pipe.py", "line": 12, "kind": "function", "calls": 2,
         "memory_delta": 2 * MIB, "avg_memory_delta": 1 * MIB, "max_memory_delta": 1 * MIB,
         "peak": 800 * MIB, "rss_delta": 4 * MIB, "rss_peak": 790 * MIB, "leaked_bytes": 0,
         "leaked_blocks": 0, "floor_growth_per_call": 0, "gc_collections": 0,
         "estimated": False},
        {"context": "data_processing", "file": None, "line": 0, "kind": "scope", "calls": 1,
         "memory_delta": 200 * MIB, "avg_memory_delta": 200 * MIB,
         "max_memory_delta": 200 * MIB, "peak": 210 * MIB, "rss_delta": 201 * MIB,
         "rss_peak": 205 * MIB, "leaked_bytes": 200 * MIB, "leaked_blocks": 1,
         "floor_growth_per_call": 0, "gc_collections": 3, "estimated": False},
        {"context": "epoch", "file": None, "line": 0, "kind": "scope", "calls": 5,
         "memory_delta": 30 * MIB, "avg_memory_delta": 6 * MIB, "max_memory_delta": 6 * MIB,
         "peak": 8 * MIB, "rss_delta": 0, "rss_peak": 0, "leaked_bytes": 24 * MIB,
         "leaked_blocks": 4, "floor_growth_per_call": 6 * MIB, "gc_collections": 40,
         "estimated": False},
    ],
    "gc_statistics": {"enabled": True, "total_collections": 111, "avg_collections": 13.875,
                      "collections": [100, 10, 1], "collected": [5000, 300, 20],
                      "uncollectable": [0, 0, 2], "time_s": 0.6,
                      "time_s_by_generation": [0.2, 0.1, 0.3], "max_pause_s": 0.25,
                      "share_of_wall": 0.06},
    "domains": {name: {"alloc_count": 0, "alloc_bytes": 0, "free_count": 0, "free_bytes": 0,
                       "live_bytes": 0, "live_blocks": 0, "peak_bytes": 0}
                for name in ("raw", "mem", "object", "numpy", "native")},
    "stacks": [
        {"frames": [{"function": "load_large_dataset", "file": "pipe.py", "line": 30},
                    {"function": "main", "file": "pipe.py", "line": 50}]},
        {"frames": [{"function": "list.append", "file": None, "line": 0},
                    {"function": "train_step", "file": "train.py", "line": 55}]},
    ],
    "top_allocations": [
        {"stack": 0, "context": "data_processing", "live_bytes": 200 * MIB, "live_blocks": 1},
        {"stack": 1, "context": "epoch", "live_bytes": 24 * MIB, "live_blocks": 4}],
    "leaks": [{"context": "epoch", "stack": 1, "live_bytes": 24 * MIB, "live_blocks": 4}],
    "processes": [
        {"pid": 5000, "worker": 0, "loader": "train_loader", "samples": 10, "duration_s": 5,
         "rss_first": 400 * MIB, "rss_last": 460 * MIB, "rss_max": 470 * MIB,
         "pss_first": 150 * MIB, "pss_last": 200 * MIB, "pss_max": 210 * MIB,
         "uss_first": 100 * MIB, "uss_last": 160 * MIB, "uss_max": 170 * MIB, "items": 64,
         "source": "rollup", "exited": True}],
    "snapshots": [
        {"context": "epoch", "t_s": 1.5, "live_bytes": 16 * MIB,
         "groups": [{"stack": 1, "live_bytes": 6 * MIB, "live_blocks": 1}]},
        {"context": "epoch", "t_s": 3, "live_bytes": 22 * MIB,
         "groups": [{"stack": 1, "live_bytes": 12 * MIB, "live_blocks": 2}]}],
    "own_bytes": 12345,
    "dropped": {"blocks": 7, "stacks": 0, "snapshots": 0, "marks": 0, "contexts": 0,
                "samples": 1, "procs": 0},
}
SECTION["domains"]["numpy"].update(alloc_count=4, alloc_bytes=1024 * MIB, free_count=2,
                                   free_bytes=800 * MIB, live_bytes=224 * MIB, live_blocks=2,
                                   peak_bytes=1010 * MIB)


def test_saved_v3_memory_reads_back(tmp_path):
    path = tmp_path / "mem.json"
    path.write_text(json.dumps(_site_free_report(SECTION)))
    again = json.loads(_core.render_report(path, "json"))
    assert again["memory"] == SECTION
    # the text summary of the read model: its leak suspect (blocks of
    # several calls live) with its site; the floor's rises per call are not
    # in the report, so the saved findings carry the rising-floor verdict
    text = _core.render_report(path)
    assert "\nMemory (mode all)\n" in text
    assert "    epoch: 24.0 MiB in 4 blocks still live after it\n" in text
    assert "MiB  train.py:55 train_step via list.append\n" in text
    assert " MB" not in text


def test_diff_compares_memory(tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps(_site_free_report(SECTION)))
    smaller = json.loads(json.dumps(SECTION))
    smaller["memory_intensive_contexts"][0]["peak"] = 100 * MIB
    b.write_text(json.dumps(_site_free_report(smaller)))
    d = json.loads(_core.diff_reports(a, b, "json"))
    ctx = {c["context"]: c for c in d["memory"]["contexts"]}
    assert ctx["transient"]["peak"] == {"a": 800 * MIB, "b": 100 * MIB, "ratio": 0.125}
    assert d["memory"]["snapshots"][0]["context"] == "epoch"
    assert "Memory contexts, largest change of peak first" in _core.diff_reports(a, b)


def test_v2_report_has_an_empty_memory_section(tmp_path):
    v2 = _site_free_report(SECTION)
    v2["schema_version"] = 2
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(v2))
    again = json.loads(_core.render_report(path, "json"))
    assert again["schema_version"] == 4
    assert again["memory"]["enabled"] is False and again["memory"]["mode"] == "off"
    assert again["memory"]["memory_intensive_contexts"] == []
