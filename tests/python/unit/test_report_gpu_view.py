"""The report's gpu section (docs/report-schema.md, "gpu"): the Python view
Model.report("gpu") (what get_gpu_report() returns) equals the JSON
report's section and has every key with GPU profiling off (the guide's
blocks index gpu_statistics / memory_statistics without KeyError), and a
saved version 4 report's gpu section reads back unchanged, renders its text
block, fills bottlenecks["slow_gpu_operations"] and is compared by the diff
(src/report/report_gpu.c, read_gpu in src/model/model_json.c,
src/report/report_diff_gpu.c, src/analysis/rules_gpu.c)."""
from __future__ import annotations

import copy
import json
import os
import sys

from code_profiler import _core

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fuzz"))
import make_report_corpus  # noqa: E402  (the seed's gpu section, as the writer writes it)

TOP_KEYS = {"enabled", "available", "reason", "libraries", "gpu_statistics",
            "slow_gpu_operations", "memory_statistics", "operations", "synchronization",
            "utilization", "dropped"}
STAT_KEYS = {"total_time_ms", "avg_time_ms", "operations", "timed_operations", "host_time_ms",
             "max_time_ms", "timing"}
MEM_KEYS = {"total_memory_delta", "avg_memory_delta", "peak_memory", "reserved_delta",
            "source", "device_total", "measured_operations"}

SECTION = make_report_corpus.GPU


def _report(gpu):
    return {"schema": "codeprof-report", "schema_version": 4,
            "meta": {"pid": 1, "duration_s": 10},
            "performance": {"functions": [], "sites": [], "files": [], "call_tree": []},
            "gpu": gpu, "findings": []}


def test_off_view_has_every_key():
    s = _core.Session()
    s.start()
    s.stop()
    view = s.model().report("gpu")
    assert view == json.loads(s.report_json())["gpu"]
    assert set(view) == TOP_KEYS
    assert view["enabled"] is False
    assert set(view["gpu_statistics"]) == STAT_KEYS
    assert set(view["memory_statistics"]) == MEM_KEYS
    # the guide's blocks, as written
    assert view["gpu_statistics"]["total_time_ms"] == 0
    assert view["gpu_statistics"]["avg_time_ms"] == 0
    assert view["memory_statistics"]["total_memory_delta"] == 0
    assert view["memory_statistics"]["avg_memory_delta"] == 0
    assert view["slow_gpu_operations"] == []
    assert set(view["libraries"]) == {"driver", "nvml", "cupti"}
    assert view["libraries"]["driver"]["status"] == "not_tried"


def test_saved_v4_gpu_reads_back(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(_report(SECTION)))
    again = json.loads(_core.render_report(path, "json"))
    # the writer derives the statistics from the operations: the seed's
    # avg_time_ms / avg_memory_delta are rounded, the rest is exact
    got, want = copy.deepcopy(again["gpu"]), copy.deepcopy(SECTION)
    for k in ("avg_time_ms",):
        assert abs(got["gpu_statistics"].pop(k) - 2500 / 20) < 1e-9
        want["gpu_statistics"].pop(k)
    got["memory_statistics"].pop("avg_memory_delta")
    want["memory_statistics"].pop("avg_memory_delta")
    for op_got, op_want in zip(got["operations"], want["operations"]):
        op_got.pop("avg_time_ms"), op_want.pop("avg_time_ms")
    want["gpu_statistics"]["operations"] = 23
    want["gpu_statistics"]["total_time_ms"] = 2500
    want["gpu_statistics"]["timed_operations"] = 20
    want["gpu_statistics"]["host_time_ms"] = 307
    want["synchronization"]["count"] = 502
    want["synchronization"]["total_blocked_ms"] = 900.001
    want["memory_statistics"]["total_memory_delta"] = 41943040
    want["memory_statistics"]["measured_operations"] = 20
    want["memory_statistics"]["reserved_delta"] = 67108864
    assert got == want
    # read back a second time: unchanged
    path2 = tmp_path / "again.json"
    path2.write_text(json.dumps(again))
    assert json.loads(_core.render_report(path2, "json"))["gpu"] == again["gpu"]
    text = _core.render_report(path, "text")
    assert "\nGPU (timing on the device)" in text
    assert "train_step (train.py:66)" in text


def test_diff_compares_gpu(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report(SECTION)))
    faster = copy.deepcopy(SECTION)
    faster["operations"][0]["total_time_ms"] = 1250
    b.write_text(json.dumps(_report(faster)))
    d = json.loads(_core.diff_reports(a, b, "json"))
    op = d["gpu"]["operations"][0]
    assert op["context"] == "model_forward"
    assert op["avg_time_ms"] == {"a": 125, "b": 62.5, "ratio": 0.5}
    assert d["gpu"]["devices"][0]["util_mean"]["a"] == 35.5
    assert "GPU operations, largest change of total time first" in _core.diff_reports(a, b)
