"""Every export read back by its consumer (docs/exports.md): pstats by
pstats.Stats (call counts equal to the report's), speedscope checked field
by field against the published file-format schema, collapsed stacks
parsed back, the Chrome trace's event structure (X events with dur >= 0,
metadata for every process and thread, one track per DataLoader worker
process).  The profiled runs happen in a subprocess with a timeout."""
from __future__ import annotations

import io
import json
import os
import pstats
import re
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout

import pytest

FIB_CALLS_12 = 465  # calls fib(12) makes, itself included

SCRIPT = textwrap.dedent("""
    import sys, time
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def leaf():
        time.sleep(0.002)

    def work():
        for _ in range(3):
            fib(12)
        for _ in range(4):
            leaf()

    out = sys.argv[1]
    p = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", enable_cprofile=True,
                                             output_dir=out))
    p.start_profiling()
    with p.profiling_context("outer"):
        work()
    p.stop_profiling()
    for name in ("r.json", "r.prof", "r.speedscope.json", "r.collapsed", "r.trace.json"):
        p.save_comprehensive_report(name)
""")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    script = out / "prog.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def _report(out):
    with open(out / "r.json") as fh:
        return json.load(fh)


# -- pstats -------------------------------------------------------------------------

def test_pstats_loads_and_counts_match_the_report(exports):
    st = pstats.Stats(str(exports / "r.prof"))
    rep = _report(exports)
    perf = rep["performance"]
    assert st.total_calls == perf["total_calls"]
    fib = [k for k in st.stats if k[2].endswith("fib")]
    assert len(fib) == 1
    cc, nc, tt, ct, callers = st.stats[fib[0]]
    assert nc == 3 * FIB_CALLS_12       # every call
    assert cc == 3                      # primitive: the three from work()
    assert tt > 0 and ct >= tt - 1e-6  # ns rounding per node (ticks)
    # callers: work() made the 3 primitive calls, fib itself the recursive ones
    by_name = {k[2].rsplit(".", 1)[-1]: v for k, v in callers.items()}
    assert by_name["work"][:2] == (3, 3)
    assert by_name["fib"][0] == 3 * FIB_CALLS_12 - 3 and by_name["fib"][1] == 0
    # native functions keep cProfile's built-in key
    assert any(k[0] == "~" and k[1] == 0 and k[2] == "<built-in method time.sleep>"
               for k in st.stats)
    # per site, equal to the report's function table where it lists the site
    for f in perf["functions"]:
        keys = [k for k in st.stats if k[2] == f["function"] or
                k[2] == f"<built-in method {f['function']}>"]
        if len(keys) == 1:
            assert st.stats[keys[0]][1] == f["calls"], f["function"]


def test_pstats_print_callers_and_callees_work(exports):
    buf = io.StringIO()
    st = pstats.Stats(str(exports / "r.prof"), stream=buf)
    st.sort_stats("cumulative").print_stats(5)
    st.print_callers("fib")
    st.print_callees("work")
    text = buf.getvalue()
    assert "function calls (" in text and "primitive calls)" in text
    assert "1395/3" in text  # ncalls column as cProfile prints a recursive function
    assert "was called by" in text and "called..." in text


# -- speedscope -----------------------------------------------------------------------

def _check_speedscope(doc):
    """The file format schema (speedscope.app/file-format-schema.json),
    field by field for what codeprof writes."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert isinstance(doc["shared"], dict) and isinstance(doc["shared"]["frames"], list)
    for fr in doc["shared"]["frames"]:
        assert isinstance(fr["name"], str)
        assert set(fr) <= {"name", "file", "line", "col"}
        if "file" in fr:
            assert isinstance(fr["file"], str)
        if "line" in fr:
            assert isinstance(fr["line"], int)
    nframes = len(doc["shared"]["frames"])
    assert isinstance(doc["profiles"], list) and doc["profiles"]
    for p in doc["profiles"]:
        assert p["type"] == "sampled"
        assert isinstance(p["name"], str)
        assert p["unit"] in {"none", "nanoseconds", "microseconds", "milliseconds", "seconds",
                             "bytes"}
        assert isinstance(p["startValue"], (int, float))
        assert isinstance(p["endValue"], (int, float))
        assert len(p["samples"]) == len(p["weights"])
        for s in p["samples"]:
            assert isinstance(s, list) and all(isinstance(i, int) and 0 <= i < nframes for i in s)
        assert all(isinstance(w, (int, float)) and w >= 0 for w in p["weights"])
        assert p["endValue"] - p["startValue"] == sum(p["weights"])
    for k in ("name", "exporter"):
        assert isinstance(doc.get(k, ""), str)
    assert 0 <= doc.get("activeProfileIndex", 0) < len(doc["profiles"])


def test_speedscope_schema_and_sums_match_pstats(exports):
    with open(exports / "r.speedscope.json") as fh:
        doc = json.load(fh)
    _check_speedscope(doc)
    p = doc["profiles"][0]
    assert p["unit"] == "nanoseconds" and re.match(r"pid \d+ \(main\) thread \d+", p["name"])
    frames = doc["shared"]["frames"]
    # self time per frame == pstats tottime per site (same nodes, both exact)
    self_ns = {}
    for prof in doc["profiles"]:
        for s, w in zip(prof["samples"], prof["weights"]):
            self_ns[frames[s[-1]]["name"]] = self_ns.get(frames[s[-1]]["name"], 0) + w
    st = pstats.Stats(str(exports / "r.prof"))
    for (file, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        short = name[len("<built-in method "):-1] if name.startswith("<built-in") else name
        assert abs(self_ns.get(short, 0) / 1e9 - tt) < 1e-6, name
    # a stack is root first: fib sits under work under outer
    fib = next(i for i, f in enumerate(frames) if f["name"].endswith("fib"))
    stack = next(s for s in p["samples"] if s[-1] == fib)
    assert [frames[i]["name"].rsplit(".", 1)[-1] for i in stack[:2]] == ["outer", "work"]


# -- collapsed stacks -------------------------------------------------------------------

def test_collapsed_parses_back_and_sums(exports):
    lines = (exports / "r.collapsed").read_text().splitlines()
    assert lines
    total = 0
    for ln in lines:
        stack, value = ln.rsplit(" ", 1)
        frames = stack.split(";")
        assert re.fullmatch(r"pid \d+ \(main\)", frames[0]), ln
        assert re.fullmatch(r"thread \d+", frames[1]), ln
        assert int(value) > 0
        total += int(value)
    with open(exports / "r.speedscope.json") as fh:
        doc = json.load(fh)
    ns = sum(sum(p["weights"]) for p in doc["profiles"])
    assert total == (ns + 500) // 1000  # microseconds, rounding carried line to line
    assert any(ln.split(";")[2] == "outer" and "leaf" in ln for ln in lines)


# -- Chrome trace -------------------------------------------------------------------------

def check_trace(doc):
    """Event structure Perfetto and chrome://tracing expect.  Returns the
    events by phase."""
    assert set(doc) >= {"traceEvents", "displayTimeUnit", "otherData"}
    assert doc["displayTimeUnit"] in ("ms", "ns")
    by_ph = {}
    for e in doc["traceEvents"]:
        ph = e["ph"]
        by_ph.setdefault(ph, []).append(e)
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["name"], str)
        if ph == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0 and isinstance(e["cat"], str)
        elif ph in ("B", "E", "i", "C"):
            assert e["ts"] >= 0
        elif ph == "M":
            assert e["name"] in ("process_name", "thread_name")
            assert isinstance(e["args"]["name"], str)
        else:
            raise AssertionError(f"unexpected phase {ph}")
        if ph == "C":
            assert all(isinstance(v, (int, float)) for v in e["args"].values())
    # matched B/E per track (none written today, but never unbalanced)
    depth = {}
    for e in sorted(by_ph.get("B", []) + by_ph.get("E", []), key=lambda e: e["ts"]):
        k = (e["pid"], e["tid"])
        depth[k] = depth.get(k, 0) + (1 if e["ph"] == "B" else -1)
        assert depth[k] >= 0
    assert all(v == 0 for v in depth.values())
    # metadata for every process and every thread used
    procs = {e["pid"] for e in by_ph.get("M", []) if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in by_ph.get("M", []) if e["name"] == "thread_name"}
    for e in doc["traceEvents"]:
        if e["ph"] != "M":
            assert e["pid"] in procs and (e["pid"], e["tid"]) in threads, e
    return by_ph


def test_trace_scopes(exports):
    with open(exports / "r.trace.json") as fh:
        doc = json.load(fh)
    by_ph = check_trace(doc)
    outer = [e for e in by_ph["X"] if e["name"] == "outer"]
    assert len(outer) == 1 and outer[0]["dur"] >= 8000  # four 2 ms sleeps, in microseconds
    od = doc["otherData"]
    assert od["timeline_dropped"] == 0 and od["unmatched_exits"] == 0
    assert od["unfinished_scopes"] == 0


# -- a real DataLoader with 2 workers ------------------------------------------------------

LOADER_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from torch.utils.data import DataLoader
    from _data_fixtures import SleepyDataset
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    out = sys.argv[1]
    p = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", output_dir=out))
    ds = SleepyDataset(n=32, item_s=0.002)
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    pl = p.profile_data_loader(loader)
    p.start_profiling()
    for epoch in range(2):
        with p.profiling_context(f"epoch_{epoch}"):
            for batch in pl:
                pass
    p.stop_profiling()
    assert loader.dataset is ds and isinstance(loader.dataset, SleepyDataset)
    p.save_comprehensive_report("r.trace.json")
    p.save_comprehensive_report("r.json")
""")


def test_trace_dataloader_one_track_per_worker_process(tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "prog.py"
    script.write_text(LOADER_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(tmp_path), os.path.dirname(__file__)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "r.trace.json") as fh:
        doc = json.load(fh)
    by_ph = check_trace(doc)
    main_pid = doc["otherData"]["pid"]
    items = [e for e in by_ph["X"] if e["cat"] == "item"]
    assert len(items) == 64  # 32 items x 2 epochs, each once
    worker_pids = {e["pid"] for e in items}
    assert len(worker_pids) == 4 and main_pid not in worker_pids  # 2 workers per epoch
    for pid in worker_pids:
        assert {e["tid"] for e in items if e["pid"] == pid} == {pid}  # one track each
    names = {e["pid"]: e["args"]["name"] for e in by_ph["M"] if e["name"] == "process_name"}
    assert all(re.fullmatch(r"DataLoader worker [01] \(pid \d+\)", names[p]) for p in worker_pids)
    assert sorted(e["args"]["index"] for e in items) == sorted(list(range(32)) * 2)
    waits = [e for e in by_ph["X"] if e["cat"] == "batch" and e["name"] == "wait"]
    steps = [e for e in by_ph["X"] if e["cat"] == "step"]
    assert len(waits) == 16 and len(steps) == 14  # 8 batches an epoch; gaps inside epochs
    assert all(e["pid"] == main_pid for e in waits + steps)
    assert any(e["ph"] == "C" and e["name"].endswith("wait (ms)") for e in by_ph["C"])
    # one time axis: worker item loads fall inside their epoch's scope
    epochs = sorted((e for e in by_ph["X"] if e["name"].startswith("epoch_")),
                    key=lambda e: e["ts"])
    assert len(epochs) == 2
    lo, hi = epochs[0]["ts"], epochs[1]["ts"] + epochs[1]["dur"]
    assert all(lo - 1 <= e["ts"] and e["ts"] + e["dur"] <= hi + 1 for e in items)
    rep = json.load(open(tmp_path / "r.json"))
    assert sum(d["count"] for d in rep["data_loading"]["datasets"]) == 64
