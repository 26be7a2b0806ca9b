"""Tests of the C extension code_profiler._core (src/python/).

Run on both interpreters (3.11: profile hook tracer; 3.12: sys.monitoring):
    .venv/bin/python -m pytest tests/python/unit/test_core_ext.py
    .venv312/bin/python -m pytest tests/python/unit/test_core_ext.py
"""
import gc
import json
import os
import sys
import threading
import time

import pytest

from code_profiler import _core

PY312 = sys.version_info >= (3, 12)
# Tracer mechanisms this interpreter offers (CODEPROF_TRACER selects one);
# the first is what "auto" picks.
MODES = ["sys.monitoring", "setprofile", "eval_frame"] if PY312 else ["eval_frame", "setprofile"]
if sys.version_info >= (3, 13):
    MODES.remove("eval_frame")  # PEP 523 hook: 3.11 and 3.12 only
NATIVE_MODES = [m for m in MODES if m != "eval_frame"]  # eval_frame sees Python calls only
pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="code_profiler._core supports CPython 3.11+"
)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def functions(session):
    """performance.functions of the session's JSON report, keyed by name."""
    report = json.loads(session.report_json())
    return {f["function"]: f for f in report["performance"]["functions"]}


def entry(fs, qualname):
    """The report entry whose function is `<module>.<qualname>` (or bare)."""
    hits = [v for k, v in fs.items() if k == qualname or k.endswith("." + qualname)]
    assert len(hits) == 1, f"{qualname!r} not uniquely in {sorted(fs)}"
    return hits[0]


def hooks_off():
    """True when no tracer hook of ours is left installed."""
    if threading.getprofile() is not None:
        return False
    if PY312:
        return all(sys.monitoring.get_tool(i) != "codeprof" for i in range(6))
    return sys.getprofile() is None


@pytest.fixture
def session():
    s = _core.Session()
    yield s
    if s.running:
        s.stop()


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    """Runs a tracer test once per mechanism (CODEPROF_TRACER)."""
    monkeypatch.setenv("CODEPROF_TRACER", request.param)
    return request.param


# Module-level call graph: cx_f calls cx_g 3 times, cx_g calls cx_h twice.
def cx_h():
    return 1


def cx_g():
    return cx_h() + cx_h()


def cx_f():
    return cx_g() + cx_g() + cx_g()


def cx_fib(n):
    return n if n < 2 else cx_fib(n - 1) + cx_fib(n - 2)


def cx_gen(n):
    for i in range(n):
        yield i


def cx_boom():
    raise KeyError("boom")


def cx_catch(k):
    caught = 0
    for _ in range(k):
        try:
            cx_boom()
        except KeyError:
            caught += 1
    return caught


def cx_after_stop():
    return 2


def cx_thread_work():
    return cx_h()


def cx_hidden_wrapper():
    return cx_h() + cx_h()


def cx_visible_caller():
    return cx_hidden_wrapper()


# ---------------------------------------------------------------------------
# module-level API
# ---------------------------------------------------------------------------


def test_constants_and_utilities():
    assert _core.SITE_SCOPE == 0 and _core.SITE_PYTHON == 1 and _core.SITE_NATIVE == 2
    assert _core.SITE_GPU == 8
    assert _core.SCOPE_CPU != _core.SCOPE_RSS
    assert isinstance(_core.VERSION, str) and _core.VERSION.count(".") == 2
    assert _core.REPORT_SCHEMA_VERSION >= 1
    assert _core.clock_source() in ("tsc", "monotonic", "fake")
    a = _core.now_ns()
    time.sleep(0.01)
    b = _core.now_ns()
    assert 5_000_000 <= b - a < 1_000_000_000
    assert _core.rss_bytes() > 1 << 20


def test_site_interning_is_stable():
    a = _core.site("cx.site", "file.py", 3, _core.SITE_FUNCTION)
    b = _core.site("cx.site", "file.py", 3, _core.SITE_FUNCTION)
    c = _core.site("cx.site", "file.py", 4, _core.SITE_FUNCTION)
    assert a == b and a > 0 and c != a
    with pytest.raises(ValueError, match="kind"):
        _core.site("x", kind=99)
    with pytest.raises(ValueError, match="line"):
        _core.site("x", line=-1)


# ---------------------------------------------------------------------------
# configuration and state errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"buffer_events": 5}, "buffer_events"),
        ({"buffer_events": -1}, "buffer_events"),
        ({"max_nodes": 1 << 40}, "max_nodes"),
        ({"max_samples": 0}, "max_samples"),
        ({"slow_function_s": 0.0}, "slow_function_s"),
        ({"data_stall_fraction": 1.5}, "data_stall_fraction"),
    ],
)
def test_bad_config_raises_value_error_naming_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _core.Session(**kwargs)


def test_config_rejects_positional_and_unknown_keywords():
    with pytest.raises(TypeError):
        _core.Session(65536)
    with pytest.raises(TypeError):
        _core.Session(no_such_field=1)


def test_state_errors(session):
    with pytest.raises(RuntimeError, match="not running"):
        session.stop()
    session.start()
    assert session.running
    with pytest.raises(RuntimeError, match="already running"):
        session.start()
    with pytest.raises(RuntimeError, match="running"):
        session.reset()
    session.stop()
    assert not session.running
    session.reset()


def test_uninitialised_session_raises():
    s = _core.Session.__new__(_core.Session)
    with pytest.raises(RuntimeError, match="not initialised"):
        s.start()


def test_save_errors_then_success(session, tmp_path):
    site = _core.site("cx.save_scope")
    session.start()
    session.enter(site)
    session.exit(site)
    session.stop()
    missing = tmp_path / "no_such_dir" / "report.json"
    with pytest.raises(OSError) as ei:
        session.save(str(missing))
    assert ei.value.filename == str(missing)
    assert ei.value.errno is not None and ei.value.errno != 0
    with pytest.raises(ValueError, match="format"):
        session.save(str(tmp_path / "r.json"), format="xml")
    good = tmp_path / "report.json"
    session.save(good)  # os.PathLike accepted
    data = json.loads(good.read_text())
    names = [f["function"] for f in data["performance"]["functions"]]
    assert "cx.save_scope" in names  # nothing was lost by the failed save
    session.save(str(tmp_path / "report.txt"), format="text")
    assert (tmp_path / "report.txt").read_text().strip()


# ---------------------------------------------------------------------------
# scopes
# ---------------------------------------------------------------------------


def test_scope_times_sleep(session):
    site = _core.site("cx.sleep_scope", __file__, 1, _core.SITE_SCOPE)
    scope = session.scope(site)
    session.start()
    t0 = time.perf_counter()
    with scope as entered:
        assert entered is scope
        time.sleep(0.2)
    measured = time.perf_counter() - t0
    session.stop()
    f = functions(session)["cx.sleep_scope"]
    assert f["calls"] == 1
    assert measured >= 0.2
    assert abs(f["inclusive_s"] - 0.2) <= 0.2 * 0.05
    assert f["inclusive_s"] <= measured


def test_scope_exit_does_not_swallow_exceptions(session):
    scope = session.scope(_core.site("cx.raising_scope"), flags=_core.SCOPE_CPU)
    session.start()
    with pytest.raises(ZeroDivisionError):
        with scope:
            1 / 0
    assert scope.__exit__(None, None, None) is False
    session.stop()
    assert functions(session)["cx.raising_scope"]["calls"] >= 1


def test_scope_is_reusable_and_nests(session):
    outer = session.scope(_core.site("cx.outer"))
    inner = session.scope(_core.site("cx.inner"))
    session.start()
    for _ in range(4):
        with outer:
            with inner:
                pass
            with inner:
                pass
    session.stop()
    fs = functions(session)
    assert fs["cx.outer"]["calls"] == 4
    assert fs["cx.inner"]["calls"] == 8


def test_enter_exit_attr_argument_checks(session):
    site = _core.site("cx.manual")
    with pytest.raises(TypeError):
        session.enter("x")
    with pytest.raises(ValueError, match="site"):
        session.enter(-1)
    with pytest.raises(ValueError, match="key"):
        session.attr(99, 1)
    with pytest.raises(TypeError):
        session.scope()
    session.start()
    session.enter(site)
    session.attr(_core.ATTR_INDEX, 7)
    session.exit(site)
    session.stop()
    assert functions(session)["cx.manual"]["calls"] == 1


# ---------------------------------------------------------------------------
# the tracer
# ---------------------------------------------------------------------------


def test_auto_tracer_mode(session, monkeypatch):
    monkeypatch.delenv("CODEPROF_TRACER", raising=False)
    session.start(trace_python=True)
    # 3.12+: sys.monitoring; 3.11: the profile hook (the PEP 523 hook is opt-in)
    assert session.tracer == ("sys.monitoring" if PY312 else "setprofile")
    session.stop()
    monkeypatch.setenv("CODEPROF_TRACER", "no-such-tracer")
    with pytest.raises(ValueError, match="CODEPROF_TRACER"):
        session.start(trace_python=True)
    assert not session.running and session.tracer == "off"


def test_tracer_mode_and_exact_call_counts(session, mode):
    assert session.tracer == "off"
    session.start(trace_python=True)
    assert session.tracer == mode
    assert cx_f() == 6
    session.stop()
    assert session.tracer == "off"
    fs = functions(session)
    assert entry(fs, "cx_f")["calls"] == 1
    assert entry(fs, "cx_g")["calls"] == 3
    assert entry(fs, "cx_h")["calls"] == 6
    assert entry(fs, "cx_h")["kind"] == "python"
    assert entry(fs, "cx_f")["inclusive_s"] >= entry(fs, "cx_g")["inclusive_s"]
    # Session's own methods are not recorded.
    assert not [k for k in fs if "Session" in k]


@pytest.mark.parametrize("native_mode", NATIVE_MODES)
def test_native_calls_are_recorded(session, native_mode, monkeypatch):
    monkeypatch.setenv("CODEPROF_TRACER", native_mode)
    session.start(trace_python=True)
    time.sleep(0.02)
    [].append(1)
    session.stop()
    fs = functions(session)
    sleep = fs["time.sleep"]
    assert sleep["kind"] == "native" and sleep["calls"] == 1
    assert 0.018 <= sleep["inclusive_s"] < 0.5
    assert fs["list.append"]["calls"] == 1


def test_recursion_is_not_double_counted(session, mode):
    session.start(trace_python=True)
    t0 = time.perf_counter()
    assert cx_fib(10) == 55
    wall = time.perf_counter() - t0
    session.stop()
    report = json.loads(session.report_json())
    fs = {f["function"]: f for f in report["performance"]["functions"]}
    fib = entry(fs, "cx_fib")
    assert fib["calls"] == 177
    assert fib["inclusive_s"] <= wall
    assert fib["inclusive_s"] <= report["meta"]["duration_s"]


def test_generator_and_exceptions_under_tracer(session, mode):
    session.start(trace_python=True)
    assert list(cx_gen(3)) == [0, 1, 2]
    assert cx_catch(5) == 5
    session.stop()
    fs = functions(session)
    # one start plus three resumes: each counts as an activation; with
    # eval_frame the call that creates the generator (RETURN_GENERATOR) is
    # an evaluation of its own.
    assert entry(fs, "cx_gen")["calls"] == (5 if mode == "eval_frame" else 4)
    assert entry(fs, "cx_boom")["calls"] == 5
    assert entry(fs, "cx_catch")["calls"] == 1


def test_threads_started_before_and_after_start(session, mode):
    go = threading.Event()
    results = []

    def worker():
        go.wait(10)
        for _ in range(5):
            results.append(cx_thread_work())

    before = threading.Thread(target=worker)
    before.start()
    session.start(trace_python=True)
    after = threading.Thread(target=worker)
    after.start()
    go.set()
    before.join(10)
    after.join(10)
    session.stop()
    assert results == [1] * 10
    report = json.loads(session.report_json())
    fs = {f["function"]: f for f in report["performance"]["functions"]}
    assert entry(fs, "cx_thread_work")["calls"] == 10
    assert report["meta"]["threads"] >= 2


def test_tracer_off_after_stop(session, mode):
    session.start(trace_python=True)
    cx_h()
    session.stop()
    assert hooks_off()
    before = json.loads(session.report_json())["meta"]["events"]
    cx_after_stop()
    cx_h()
    fs = functions(session)
    assert not [k for k in fs if k.endswith("cx_after_stop")]
    assert json.loads(session.report_json())["meta"]["events"] == before
    # a later untraced run records no Python calls either
    session.start()
    cx_after_stop()
    session.stop()
    assert not [k for k in functions(session) if k.endswith("cx_after_stop")]


def test_tracer_ignore_hides_a_code_object(session, mode):
    _core.tracer_ignore(cx_hidden_wrapper.__code__)
    with pytest.raises(TypeError):
        _core.tracer_ignore(cx_hidden_wrapper)
    session.start(trace_python=True)
    assert cx_visible_caller() == 2
    session.stop()
    report = json.loads(session.report_json())
    fs = {f["function"]: f for f in report["performance"]["functions"]}
    assert not [k for k in fs if k.endswith("cx_hidden_wrapper")]
    assert entry(fs, "cx_h")["calls"] == 2
    # the hidden frame's callees attach to its caller
    from conftest import tree_nodes
    paths = [tuple(f.rsplit(".", 1)[-1] for f in path) for path, _ in tree_nodes(report)]
    assert ("cx_visible_caller", "cx_h") in paths


def test_one_tracing_session_at_a_time(session, mode):
    other = _core.Session()
    session.start(trace_python=True)
    try:
        with pytest.raises(RuntimeError, match="another session"):
            other.start(trace_python=True)
        assert not other.running
        other.start()  # recording without the tracer is fine
        other.stop()
    finally:
        session.stop()
    other.start(trace_python=True)  # free again
    assert other.tracer != "off"
    other.stop()


def test_dealloc_while_tracing_uninstalls_hooks(mode):
    s = _core.Session()
    s.start(trace_python=True)
    del s
    gc.collect()
    assert hooks_off()
    assert cx_fib(5) == 5  # nothing points at freed memory


@pytest.mark.skipif(not PY312, reason="sys.monitoring fallback is 3.12+")
def test_monitoring_tool_taken_falls_back_to_setprofile(session, monkeypatch):
    monkeypatch.delenv("CODEPROF_TRACER", raising=False)
    tools = [2, 3, 4, 5]  # every id the tracer would take
    for tool in tools:
        sys.monitoring.use_tool_id(tool, "someone-else")
    try:
        session.start(trace_python=True)
        assert session.tracer == "setprofile"
        cx_f()
        session.stop()
        assert [sys.monitoring.get_tool(t) for t in tools] == ["someone-else"] * 4
    finally:
        for tool in tools:
            sys.monitoring.free_tool_id(tool)
    fs = functions(session)
    assert entry(fs, "cx_g")["calls"] == 3
    assert entry(fs, "cx_h")["calls"] == 6
    assert hooks_off()


def test_foreign_profile_hook_is_not_replaced(session, monkeypatch):
    monkeypatch.setenv("CODEPROF_TRACER", "setprofile")
    def foreign(frame, event, arg):
        return None

    sys.setprofile(foreign)
    try:
        with pytest.raises(RuntimeError, match="setprofile"):
            session.start(trace_python=True)
        assert not session.running
    finally:
        sys.setprofile(None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_can_report(session, mode):
    session.start(trace_python=True)
    cx_f()
    pid = os.fork()
    if pid == 0:  # child: must not crash or hang
        code = 1
        try:
            cx_f()
            json.loads(session.report_json())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    session.stop()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert entry(functions(session), "cx_g")["calls"] == 3
