"""Saved JSON reports read back by the C core: _core.render_report,
_core.save_report and _core.diff_reports (src/python/reports.c over
src/model/model_json.c and src/report/report_diff.c)."""
from __future__ import annotations

import json
import os
import time

import pytest

from code_profiler import _core, create_profiler_config

from conftest import function_entry


def _report(make_profiler, tmp_path, name, sleep_s, calls):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()

    @p.profile_function
    def decode_clip():
        time.sleep(sleep_s)

    for _ in range(calls):
        decode_clip()
    with p.profiling_context("epoch"):
        pass
    p.stop_profiling()
    path = tmp_path / name
    p.save_comprehensive_report(str(path))
    return path


@pytest.fixture
def saved(make_profiler, tmp_path):
    return _report(make_profiler, tmp_path, "a.json", 0.02, 3)


def test_render_text_and_json(saved):
    text = _core.render_report(saved)  # default: the text summary
    assert isinstance(text, str)
    assert "decode_clip" in text and "epoch" in text
    again = json.loads(_core.render_report(str(saved), "json"))
    original = json.loads(saved.read_text())
    assert again["schema_version"] == original["schema_version"] == 4
    a = function_entry(again, "decode_clip")
    o = function_entry(original, "decode_clip")
    for key in ("calls", "inclusive_s", "self_s", "min_s", "max_s"):
        assert a[key] == o[key], key


def test_save_report_by_ending_and_mismatch(saved, tmp_path):
    out = tmp_path / "summary.txt"
    assert _core.save_report(saved, out) == "text"
    assert "decode_clip" in out.read_text()
    out_json = tmp_path / "copy.json"
    assert _core.save_report(str(saved), str(out_json), "json") == "json"
    assert json.loads(out_json.read_text())["schema"] == "codeprof-report"
    with pytest.raises(ValueError, match=r"asks for the format 'text' but 'json' was requested"):
        _core.save_report(saved, tmp_path / "x.txt", "json")
    with pytest.raises(ValueError, match=r"cannot tell the format from the file name"):
        _core.save_report(saved, tmp_path / "x.unknown")
    assert _core.save_report(saved, tmp_path / "x.unknown", "text") == "text"
    with pytest.raises(ValueError, match=r"format must be one of"):
        _core.render_report(saved, "html")
    assert not (tmp_path / "x.txt").exists()


def test_errors_name_file_and_field(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(FileNotFoundError) as ei:
        _core.render_report(missing)
    assert str(missing) in str(ei.value)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "codeprof-report", "schema_version": 1}')
    with pytest.raises(ValueError, match=r"bad.json: schema_version: the report has schema "
                                         r"version 1, older than the 2\.\.4"):
        _core.render_report(bad)
    bad.write_text('{"schema": "codeprof-report", "schema_version": 2, "performance": '
                   '{"sites": [], "call_tree": [{"children": [{"site": 3}]}]}}')
    with pytest.raises(ValueError, match=r"performance\.call_tree\[0\]\.children\[0\]\.site: "
                                         r"expected an index into performance\.sites"):
        _core.render_report(bad)
    bad.write_text('{"schema": ')
    with pytest.raises(ValueError, match=r"bad.json: byte 11: unexpected end of input"):
        _core.diff_reports(bad, bad)


def test_diff_reports(make_profiler, tmp_path):
    a = _report(make_profiler, tmp_path, "a.json", 0.03, 2)
    b = _report(make_profiler, tmp_path, "b.json", 0.01, 4)
    text = _core.diff_reports(a, b)
    assert f"A: {a}" in text and f"B: {b}" in text
    assert "decode_clip" in text
    d = json.loads(_core.diff_reports(str(a), str(b), format="json"))
    assert d["schema"] == "codeprof-diff"
    fn = [f for f in d["functions"] if f["function"].endswith("decode_clip")]
    assert len(fn) == 1
    calls = fn[0]["calls"]
    assert calls["a"] == 2 and calls["b"] == 4 and calls["ratio"] == 2.0
    incl = fn[0]["inclusive_s"]
    assert incl["ratio"] == pytest.approx(incl["b"] / incl["a"])
    with pytest.raises(ValueError, match="'text' or 'json'"):
        _core.diff_reports(a, b, format="html")


def test_render_releases_nothing_on_disk(saved, tmp_path):
    before = sorted(os.listdir(tmp_path))
    _core.render_report(saved)
    _core.diff_reports(saved, saved)
    assert sorted(os.listdir(tmp_path)) == before
