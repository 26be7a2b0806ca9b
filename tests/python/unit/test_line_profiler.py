"""Line-level timing (enable_line_profiler; docs/line-profiling.md):
functions decorated at the detailed/comprehensive level get per-line hits
and time in the report's "lines" section, with their source text; nothing
else is hooked.  Real runs in a subprocess with a timeout (3.11: the C trace
hook; 3.12+: sys.monitoring local events)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from code_profiler import _core


def run_json(python_runner: Any, tmp_path: Path, code: str) -> Dict[str, Any]:
    """Runs `code`, which prints one JSON document on its last line."""
    res = python_runner.code(code, tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def func_entry(lines: Dict[str, Any], name: str) -> Dict[str, Any]:
    found = [f for f in lines["functions"] if f["function"].split(".")[-1] == name]
    assert len(found) == 1, [f["function"] for f in lines["functions"]]
    return found[0]


def row(func: Dict[str, Any], text: str) -> Dict[str, Any]:
    found = [r for r in func["lines"] if r["text"] is not None and r["text"].strip() == text]
    assert len(found) == 1, [(r["line"], r["text"]) for r in func["lines"]]
    return found[0]


HOT = """
    import json, sys
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler, _core

    profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed",
                                                    enable_line_profiler=True))

    def helper(k):
        return sum(range(k))

    @profiler.profile_function
    def hot(n):
        total = 0
        for i in range(n):
            total += sum(range(200))
        total += helper(10)
        return total

    @profiler.profile_function("basic")
    def basic_level(n):
        return sum(range(n))

    def undecorated(n):
        s = 0
        for i in range(n):
            s += i
        return s

    profiler.start_profiling()
    hot(3000)
    undecorated(1000)
    basic_level(10)
    profiler.stop_profiling()
    report = profiler.get_comprehensive_report()
    print(json.dumps({"lines": report["lines"], "state": _core.line_profile_state(),
                      "text": profiler.get_text_summary()}))
"""


def test_hot_line_has_most_time_and_right_hits(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, HOT)
    lines = out["lines"]
    assert lines["exact"] is True
    assert lines["dropped"] == 0
    hot = func_entry(lines, "hot")
    assert hot["file"].endswith("snippet.py")
    body = row(hot, "total += sum(range(200))")
    assert body["hits"] == 3000
    assert row(hot, "for i in range(n):")["hits"] == 3001
    assert row(hot, "total = 0")["hits"] == 1
    assert row(hot, "return total")["hits"] == 1
    # the loop body is the hot line: most of the function's time
    assert body["time_s"] == max(r["time_s"] for r in hot["lines"])
    assert body["share"] > 0.4
    assert 0.99 < sum(r["share"] for r in hot["lines"]) < 1.01
    assert hot["total_s"] == pytest.approx(sum(r["time_s"] for r in hot["lines"]), rel=1e-6)
    # a line's time includes its callees: helper's line is timed, helper itself is not listed
    assert row(hot, "total += helper(10)")["hits"] == 1
    # the text summary names the hot line with its number and text
    assert "Line timing" in out["text"]
    assert f"line {body['line']:5d}" in out["text"]
    assert "total += sum(range(200))" in out["text"]


def test_only_decorated_detailed_functions_are_timed(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, HOT)
    names = [f["function"].split(".")[-1] for f in out["lines"]["functions"]]
    assert names == ["hot"]  # not undecorated, not helper, not the basic-level one
    assert out["state"]["registered"] >= 1
    assert out["state"]["active"] is False  # hooks removed at stop


def test_generator_lines(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="comprehensive",
                                                        enable_line_profiler=True))

        @profiler.profile_function
        def frames(n):
            for i in range(n):
                x = i * 2
                yield x

        profiler.start_profiling()
        total = sum(frames(500))
        profiler.stop_profiling()
        print(json.dumps(profiler.get_comprehensive_report()["lines"]))
    """)
    f = func_entry(out, "frames")
    assert row(f, "x = i * 2")["hits"] == 500
    assert row(f, "yield x")["hits"] == 500
    assert row(f, "for i in range(n):")["hits"] in (500, 501)


def test_line_timing_off_without_enable_line_profiler(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, HOT.replace("enable_line_profiler=True",
                                                        "enable_line_profiler=False"))
    assert out["lines"]["functions"] == []
    assert out["state"]["registered"] == 0


def test_user_settrace_coexists(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json, sys
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        seen = []
        def user_trace(frame, event, arg):
            if event == "line" and frame.f_code.co_name == "work":
                seen.append(frame.f_lineno)
            return user_trace

        profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed",
                                                        enable_line_profiler=True))

        @profiler.profile_function
        def work(n):
            s = 0
            for i in range(n):
                s += i
            return s

        sys.settrace(user_trace)
        profiler.start_profiling()
        work(50)
        profiler.stop_profiling()
        still = sys.gettrace() is user_trace
        sys.settrace(None)
        report = profiler.get_comprehensive_report()
        print(json.dumps({"seen": len(seen), "still": still, "lines": report["lines"],
                          "warnings": report["meta"].get("warnings", [])}))
    """)
    assert out["seen"] >= 100  # the user's tracer kept every line event
    assert out["still"] is True
    codes = json.dumps(out["warnings"])
    if sys.version_info < (3, 12):
        # one trace slot per thread: the user's wins, and the report says so
        assert "lines_trace_taken" in codes
        assert out["lines"]["functions"] == []
    else:
        # sys.settrace and the line timer have tool ids of their own
        assert "lines_trace_taken" not in codes
        assert row(func_entry(out["lines"], "work"), "s += i")["hits"] == 50


def test_seed_advanced_configuration_runs(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        config = ProfilerConfig(
            enabled=True,
            profile_level="comprehensive",
            enable_cprofile=True,
            enable_line_profiler=True,
            enable_memory_profiler=True,
            enable_gpu_profiler=True,
            enable_memory_tracking=True,
            enable_gc_profiling=True,
            memory_snapshots=True,
            enable_cuda_profiling=True,
            profile_cuda_memory=True,
            profile_cuda_operations=True,
            profile_data_loading=True,
            profile_preprocessing=True,
            profile_augmentation=True,
            save_profiles=True,
            output_dir="profiles",
            detailed_reports=True,
            sample_interval=0.1,
            max_samples=10000
        )
        profiler = VideoOpusClipProfiler(config)

        @profiler.profile_function
        def preprocess(frames):
            out = []
            for f in frames:
                out.append([v * 0.5 for v in f])
            return out

        profiler.start_profiling()
        preprocess([[1.0] * 64 for _ in range(200)])
        profiler.stop_profiling()
        print(json.dumps(profiler.get_comprehensive_report()["lines"]))
    """)
    f = func_entry(out, "preprocess")
    assert row(f, "out.append([v * 0.5 for v in f])")["hits"] == 200


def test_saved_report_round_trips(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler, _core

        profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed",
                                                        enable_line_profiler=True))

        @profiler.profile_function
        def loop(n):
            t = 0
            for i in range(n):
                t += i * i
            return t

        profiler.start_profiling()
        loop(1000)
        profiler.stop_profiling()
        path = "saved.json"
        with open(path, "w") as fh:
            json.dump(profiler.get_comprehensive_report(), fh)
        again = json.loads(_core.render_report(path, "json"))
        print(json.dumps({"before": profiler.get_comprehensive_report()["lines"],
                          "after": again["lines"],
                          "text": _core.render_report(path, "text")}))
    """)
    assert out["after"]["functions"] == out["before"]["functions"]
    assert out["after"]["exact"] is True
    assert "t += i * i" in out["text"]


def test_line_profile_add_rejects_non_code() -> None:
    with pytest.raises(TypeError, match="function or a code object"):
        _core.line_profile_add(42)
    state = _core.line_profile_state()
    assert set(state) == {"registered", "refused", "active", "mechanism", "tool_id"}


def test_session_lines_with_code_object(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json
        from code_profiler import _core

        def f(n):
            a = 0
            for i in range(n):
                a += 1
            return a

        s = _core.Session(lines=True)
        s.start()
        assert _core.line_profile_state()["active"] is False  # nothing registered: no hook
        site = _core.line_profile_add(f)
        assert _core.line_profile_add(f) == site  # once
        assert _core.line_profile_state()["active"] is True
        def other(n):
            return n + 1

        local = {}
        if sys.version_info >= (3, 12):
            mon = sys.monitoring
            tool = _core.line_profile_state()["tool_id"]
            # only the registered code object carries events
            local = {"f": mon.get_local_events(tool, f.__code__),
                     "other": mon.get_local_events(tool, other.__code__),
                     "global": mon.get_events(tool)}
        enter = getattr(_core, "line_profile_enter", None)  # 3.11: the hook per call
        if enter is not None:
            enter()
        f(10)
        if enter is not None:
            _core.line_profile_leave()
        other(1)
        s.stop()
        lines = json.loads(s.report_json())["lines"]
        assert s.model().report("lines") == lines  # the same section as Python objects
        _core.line_profile_clear()
        state = _core.line_profile_state()
        print(json.dumps({"lines": lines, "local": local, "state": state}))
    """.replace("import json", "import json, sys"))
    f = func_entry(out["lines"], "f")
    assert row(f, "a += 1")["hits"] == 10
    assert [x["function"].split(".")[-1] for x in out["lines"]["functions"]] == ["f"]
    assert out["state"]["registered"] == 0 and out["state"]["active"] is False
    if sys.version_info >= (3, 12):
        import sys as _sys
        ev = _sys.monitoring.events
        assert out["local"]["f"] == ev.LINE | ev.PY_RESUME | ev.PY_RETURN | ev.PY_YIELD
        assert out["local"]["other"] == 0
        assert out["local"]["global"] == ev.PY_UNWIND


def test_recursion_and_exceptions(python_runner: Any, tmp_path: Path) -> None:
    out = run_json(python_runner, tmp_path, """
        import json
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed",
                                                        enable_line_profiler=True))

        @profiler.profile_function
        def fib(n):
            if n < 2:
                return n
            return fib(n - 1) + fib(n - 2)

        @profiler.profile_function
        def fails(k):
            x = k * 2
            raise ValueError(x)

        profiler.start_profiling()
        fib(15)
        for k in range(20):
            try:
                fails(k)
            except ValueError:
                pass
        profiler.stop_profiling()
        print(json.dumps(profiler.get_comprehensive_report()["lines"]))
    """)
    fib = func_entry(out, "fib")
    calls = 1973  # calls of fib(15)
    assert row(fib, "if n < 2:")["hits"] == calls
    assert row(fib, "return fib(n - 1) + fib(n - 2)")["hits"] == (calls - 1) // 2
    # the recursive line holds its callees: the outer call's line covers everything
    assert row(fib, "return fib(n - 1) + fib(n - 2)")["share"] > 0.5
    fails = func_entry(out, "fails")
    assert row(fails, "x = k * 2")["hits"] == 20
    assert row(fails, "raise ValueError(x)")["hits"] == 20
    assert out["dropped"] == 0


def test_every_thread_is_timed(python_runner: Any, tmp_path: Path) -> None:
    """Threads started before and after start_profiling(), and the main one."""
    out = run_json(python_runner, tmp_path, """
        import json, threading
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        profiler = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed",
                                                        enable_line_profiler=True))

        @profiler.profile_function
        def work(n):
            s = 0
            for i in range(n):
                s += i
            return s

        go = threading.Event()
        def early():
            go.wait()
            work(20)
        t0 = threading.Thread(target=early)
        t0.start()
        profiler.start_profiling()
        t1 = threading.Thread(target=work, args=(30,))
        t1.start()
        t1.join()
        go.set()
        t0.join()
        work(10)
        profiler.stop_profiling()
        print(json.dumps(profiler.get_comprehensive_report()["lines"]))
    """)
    f = func_entry(out, "work")
    assert row(f, "s += i")["hits"] == 60
    assert row(f, "return s")["hits"] == 3
