"""The Python tracer beside other profilers, and on every supported Python.

Regression tests of issue 6 ("Tracer correctness", "Platforms"):
  * 3.12+: a call site that once called a Python function still records the C
    functions it calls later (never DISABLE a CALL location);
  * a user's cProfile inside a codeprof run: on 3.12+ both run (separate
    sys.monitoring tool ids) and keep their data; with the profile hook (3.11)
    codeprof notes which thread lost tracing and when, warns once, and takes
    the thread back when cProfile stops;
  * a user's threading.setprofile() hook is restored at stop;
  * the extension imports and traces on 3.11, 3.12 and 3.13.

    .venv/bin/python -m pytest tests/python/unit/test_tracer_coexist.py
"""
import cProfile
import json
import pstats
import sys
import threading
import warnings

import pytest

from code_profiler import _core

PY312 = sys.version_info >= (3, 12)
needs_monitoring = pytest.mark.skipif(not PY312, reason="sys.monitoring is 3.12+")


def functions(session):
    report = json.loads(session.report_json())
    return {f["function"]: f["calls"] for f in report["performance"]["functions"]}


def calls(fs, suffix):
    hits = [v for k, v in fs.items() if k == suffix or k.endswith("." + suffix)]
    assert len(hits) <= 1, f"{suffix!r} ambiguous in {sorted(fs)}"
    return hits[0] if hits else 0


def cprofile_calls(prof, name):
    """Primitive call count of `name` (a function name, or the builtin's
    '<built-in method builtins.abs>' form) in a cProfile.Profile."""
    st = pstats.Stats(prof)
    return sum(v[1] for k, v in st.stats.items() if k[2] == name)


def tracer_tool_ids():
    return [i for i in range(6) if sys.monitoring.get_tool(i) == "codeprof"]


@pytest.fixture
def session():
    s = _core.Session()
    yield s
    if s.running:
        s.stop()


@pytest.fixture
def setprofile_mode(monkeypatch):
    monkeypatch.setenv("CODEPROF_TRACER", "setprofile")


@pytest.fixture
def auto_mode(monkeypatch):
    monkeypatch.delenv("CODEPROF_TRACER", raising=False)


# ---------------------------------------------------------------------------
# workloads (module level: stable qualified names)
# ---------------------------------------------------------------------------

def co_apply(fn, x):
    return fn(x)


def co_double(x):
    return 2 * x


def co_mixed(n):
    """One call site (in co_apply) that calls a Python function n times and
    then a C function n times."""
    for i in range(n):
        co_apply(co_double, i)
    for i in range(n):
        co_apply(abs, -i)


def co_leaf():
    return 1


def co_loop(n):
    for _ in range(n):
        co_leaf()


# ---------------------------------------------------------------------------
# C calls at a polymorphic call site
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("tracer", ["auto", "setprofile"])
def test_mixed_call_site_counts_what_cprofile_counts(session, monkeypatch, tracer):
    monkeypatch.setenv("CODEPROF_TRACER", tracer)
    session.start(trace_python=True)
    co_mixed(1000)
    session.stop()
    fs = functions(session)

    prof = cProfile.Profile()
    prof.enable()
    co_mixed(1000)
    prof.disable()
    assert cprofile_calls(prof, "<built-in method builtins.abs>") == 1000
    assert cprofile_calls(prof, "co_double") == 1000

    assert calls(fs, "builtins.abs") == 1000
    assert calls(fs, "co_double") == 1000
    assert calls(fs, "co_apply") == 2000


@needs_monitoring
def test_c_calls_after_many_python_calls_at_the_same_site(session, auto_mode):
    # The site is warmed with Python callables before tracing and while
    # tracing; the C calls after that must all be seen.
    co_mixed(50)
    session.start(trace_python=True)
    assert session.tracer == "sys.monitoring"
    for _ in range(3):
        co_mixed(200)
    session.stop()
    assert calls(functions(session), "builtins.abs") == 600


# ---------------------------------------------------------------------------
# cProfile inside a codeprof run
# ---------------------------------------------------------------------------

@needs_monitoring
def test_monitoring_uses_a_tool_id_cprofile_does_not(session, auto_mode):
    session.start(trace_python=True)
    try:
        assert session.tracer == "sys.monitoring"
        assert sys.monitoring.get_tool(sys.monitoring.PROFILER_ID) is None
        assert tracer_tool_ids() == [3]
    finally:
        session.stop()
    assert tracer_tool_ids() == []


@needs_monitoring
def test_cprofile_inside_codeprof_run_both_keep_their_data(session, auto_mode):
    session.start(trace_python=True)
    co_loop(100)
    prof = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: nothing is lost
        prof.enable()  # raised "Another profiling tool is already active"
        co_loop(1000)
        co_mixed(10)
        prof.disable()
        co_loop(100)
        session.stop()
    assert cprofile_calls(prof, "co_leaf") == 1000
    assert cprofile_calls(prof, "<built-in method builtins.abs>") == 10
    fs = functions(session)
    assert calls(fs, "co_leaf") == 1200
    assert calls(fs, "builtins.abs") == 10
    assert session.warnings() == []


@needs_monitoring
def test_tools_taken_by_others_are_left_alone(session, auto_mode):
    sys.monitoring.use_tool_id(3, "someone-else")
    try:
        session.start(trace_python=True)
        assert tracer_tool_ids() == [4]
        co_loop(10)
        session.stop()
        assert sys.monitoring.get_tool(3) == "someone-else"
    finally:
        sys.monitoring.free_tool_id(3)
    assert calls(functions(session), "co_leaf") == 10


@pytest.mark.skipif(PY312, reason="3.12+ cProfile uses sys.monitoring, not the profile hook")
def test_cprofile_inside_profile_hook_run_is_recorded_once(session, setprofile_mode):
    """3.11: the profile hook has one slot per thread and cProfile takes it.
    The thread's loss (and its return) is noted, one RuntimeWarning is
    issued, and tracing resumes when cProfile stops."""
    session.start(trace_python=True)
    assert session.tracer == "setprofile"
    co_loop(100)
    prof = cProfile.Profile()
    prof.enable()
    co_loop(1000)
    # noted at once: a report taken now shows it
    during = session.warnings()
    prof.disable()
    co_loop(100)
    assert _core.tracer_on_this_thread()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session.stop()
    assert cprofile_calls(prof, "co_leaf") == 1000  # the user's tool works
    fs = functions(session)
    assert calls(fs, "co_leaf") == 200  # before and after, not during
    me = f"thread {threading.get_ident()}:"
    assert [c for c, _ in during] == ["tracer_thread_lost"] and me in during[0][1]
    ws = session.warnings()
    assert [c for c, _ in ws] == ["tracer_thread_lost", "tracer_thread_resumed"]
    assert all(me in m for _, m in ws)
    assert "took the Python profile hook at +" in ws[0][1]
    assert "tracing resumed at +" in ws[1][1]
    ours = [w for w in caught if "profile hook" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, RuntimeWarning)


def test_sys_setprofile_by_user_code_is_recorded(session, setprofile_mode):
    def user_hook(frame, event, arg):
        return None

    session.start(trace_python=True)
    co_loop(10)
    sys.setprofile(user_hook)
    try:
        co_loop(10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session.stop()
        assert sys.getprofile() is user_hook  # theirs is left in place
    finally:
        sys.setprofile(None)
    assert [c for c, _ in session.warnings()] == ["tracer_thread_lost"]  # never resumed
    assert len([w for w in caught if "profile hook" in str(w.message)]) == 1
    assert calls(functions(session), "co_leaf") == 10


def test_thread_that_loses_the_hook_is_named(session, setprofile_mode):
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    ident = []

    def user_hook(frame, event, arg):
        return None

    def worker():
        ident.append(threading.get_ident())
        ready.set()
        go.wait(30)
        co_loop(5)
        sys.setprofile(user_hook)  # the user's profiler on this thread
        co_loop(5)
        sys.setprofile(None)
        done.set()

    session.start(trace_python=True)
    t = threading.Thread(target=worker)
    t.start()
    ready.wait(30)
    go.set()
    done.wait(30)
    t.join(30)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        session.stop()
    lost = [m for c, m in session.warnings() if c == "tracer_thread_lost"]
    assert len(lost) == 1 and f"thread {ident[0]}:" in lost[0]


@pytest.mark.skipif(PY312, reason="3.11: each thread's hook is set on its own")
def test_other_threads_profiler_is_left_in_place_at_start(session, setprofile_mode):
    ready, go = threading.Event(), threading.Event()
    seen = []

    def user_hook(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    def worker():
        sys.setprofile(user_hook)
        ready.set()
        go.wait(30)
        co_loop(3)
        sys.setprofile(None)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(30)
    session.start(trace_python=True)
    go.set()
    t.join(30)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        session.stop()
    assert seen.count("co_leaf") == 3  # the user's profiler kept its thread
    lost = [m for c, m in session.warnings() if c == "tracer_thread_lost"]
    assert len(lost) == 1 and f"thread {t.ident}:" in lost[0]
    assert "held the Python profile hook when tracing started" in lost[0]


def test_no_warning_without_another_profiler(session, setprofile_mode):
    session.start(trace_python=True)
    co_loop(10)
    t = threading.Thread(target=co_loop, args=(10,))
    t.start()
    t.join(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.stop()
    assert session.warnings() == []
    assert calls(functions(session), "co_leaf") == 20


# ---------------------------------------------------------------------------
# threading.setprofile
# ---------------------------------------------------------------------------

def test_users_threading_hook_is_restored_at_stop(session, setprofile_mode):
    def user_thread_hook(frame, event, arg):
        return None

    threading.setprofile(user_thread_hook)
    try:
        session.start(trace_python=True)
        assert threading.getprofile() is not user_thread_hook  # ours meanwhile
        t = threading.Thread(target=co_loop, args=(7,))
        t.start()
        t.join(30)
        session.stop()
        assert threading.getprofile() is user_thread_hook
    finally:
        threading.setprofile(None)
    assert calls(functions(session), "co_leaf") == 7


def test_threading_hook_is_none_again_when_it_was_none(session, setprofile_mode):
    assert threading.getprofile() is None
    session.start(trace_python=True)
    session.stop()
    assert threading.getprofile() is None


@needs_monitoring
def test_monitoring_leaves_threading_hook_alone(session, auto_mode):
    def user_thread_hook(frame, event, arg):
        return None

    threading.setprofile(user_thread_hook)
    try:
        session.start(trace_python=True)
        assert threading.getprofile() is user_thread_hook
        session.stop()
        assert threading.getprofile() is user_thread_hook
    finally:
        threading.setprofile(None)


# ---------------------------------------------------------------------------
# Platforms
# ---------------------------------------------------------------------------

def test_traces_on_this_python(session, auto_mode):
    """Runs on 3.11, 3.12 and 3.13 (make test's legs): import + trace."""
    session.start(trace_python=True)
    assert session.tracer == ("sys.monitoring" if PY312 else "setprofile")
    assert _core.tracer_on_this_thread()
    co_loop(3)
    session.stop()
    assert not _core.tracer_on_this_thread()
    assert calls(functions(session), "co_leaf") == 3


@pytest.mark.skipif(not hasattr(sys, "_is_gil_enabled"), reason="3.13+ only")
def test_gil_requirement_is_declared():
    # Py_mod_gil = Py_MOD_GIL_USED: on a free-threaded build importing us
    # enables the GIL; on a default build the GIL is always on.
    assert sys._is_gil_enabled()
