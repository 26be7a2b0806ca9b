"""The Python allocator hooks, numpy's data allocator, the stack callback and
the gc.callbacks entry of code_profiler._core (src/python/memhook.c,
memstack.c, gchook.c).

Each scenario runs in a subprocess (with a timeout) that preloads a test
double of the heap tracker (heapdouble/heap_double.c): the tracker linked into
_core forwards every call to a preloaded `codeprof_heap_ops_v1` (heap.h), so
the double sees exactly what the hooks report.  Where the tracker does not
forward (a build whose heap.c is still the placeholder), those scenarios skip.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

core = pytest.importorskip("code_profiler._core")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

# Reads the double through ctypes and starts a session with memory hooks.
PRELUDE = textwrap.dedent(
    """
    import ctypes, gc, os, sys, threading
    hd = ctypes.CDLL(os.environ["HEAPDOUBLE"])
    for f in ("hd_live", "hd_peak"):
        getattr(hd, f).restype = ctypes.c_longlong
    for f in ("hd_allocs", "hd_frees", "hd_alloc_bytes", "hd_nested"):
        getattr(hd, f).restype = ctypes.c_ulonglong
    hd.hd_set_probe.argtypes = [ctypes.c_ulonglong]
    import code_profiler._core as core
    RAW, MEM, OBJ, NUMPY = 0, 1, 2, 3
    MB = 1 << 20
    def start(**kw):
        kw.setdefault("memory_mode", 2)
        s = core.Session(**kw)
        s.start()
        hd.hd_set_active(1)   # the placeholder tracker's start does not reach the double
        return s
    def stop(s):
        hd.hd_set_active(0)
        s.stop()
    """
)


@pytest.fixture(scope="module")
def heapdouble(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler for the tracker double")
    out = tmp_path_factory.mktemp("heapdouble") / "heap_double.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra",
         "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "src"),
         "-o", str(out), os.path.join(HERE, "heapdouble", "heap_double.c"), "-lpthread"],
        check=True, timeout=120)
    return str(out)


def run_py(heapdouble, body, timeout=180, env_extra=None, check=True):
    env = dict(os.environ)
    env["HEAPDOUBLE"] = heapdouble
    # after what is preloaded already (a sanitizer runtime must stay first)
    env["LD_PRELOAD"] = (env.get("LD_PRELOAD", "") + " " + heapdouble).strip()
    env.pop("PYTHONMALLOC", None)
    env.update(env_extra or {})
    code = PRELUDE + textwrap.dedent(body)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def forwarding(heapdouble):
    """Skips when the tracker in _core does not forward to a preloaded one."""
    p = run_py(heapdouble, """
        s = start()
        x = [str(i) for i in range(1000)]
        stop(s)
        print(hd.hd_allocs(OBJ))
    """)
    if int(p.stdout.split()[-1]) == 0:
        pytest.skip("the heap tracker in this build does not forward to codeprof_heap_ops_v1")
    return heapdouble


def result(p):
    """The last line of stdout, evaluated (scenarios print a dict)."""
    return eval(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# install / uninstall (no tracker needed)
# ---------------------------------------------------------------------------

def test_hooks_follow_start_and_stop():
    st = core._memhooks_state()
    assert st["raw"] == st["mem"] == st["object"] == "off" and not st["gc"]
    s = core.Session(memory_mode=1, gc=True)
    s.start()
    try:
        st = core._memhooks_state()
        assert st["raw"] == st["mem"] == st["object"] == "installed"
        assert st["raw_top"] and st["mem_top"] and st["object_top"]
        assert st["gc"] and st["owner"]
        import gc
        assert any(getattr(cb, "__name__", "") == "_codeprof_gc_callback" for cb in gc.callbacks)
    finally:
        s.stop()
    st = core._memhooks_state()
    assert st["raw"] == st["mem"] == st["object"] == "off" and not st["gc"] and not st["owner"]
    import gc
    assert not any(getattr(cb, "__name__", "") == "_codeprof_gc_callback" for cb in gc.callbacks)


def test_memory_mode_zero_installs_nothing():
    s = core.Session(memory_mode=0)
    s.start()
    try:
        st = core._memhooks_state()
        assert st["raw"] == "off" and not st["gc"] and not st["owner"]
    finally:
        s.stop()


def test_start_stop_100_times():
    import gc
    n0 = len(gc.callbacks)
    s = core.Session(memory_mode=2, gc=True)
    for _ in range(100):
        s.start()
        x = [bytearray(100) for _ in range(50)]
        del x
        s.stop()
    st = core._memhooks_state()
    assert st["raw"] == st["mem"] == st["object"] == "off"
    assert len(gc.callbacks) == n0


def test_numpy_not_imported_warns_once_and_other_domains_go_on(tmp_path):
    code = textwrap.dedent("""
        import sys
        import code_profiler._core as core
        assert "numpy" not in sys.modules
        s = core.Session(memory_mode=1)
        s.start()
        st = core._memhooks_state()
        s.stop()
        w = [x for x in s.warnings() if x[0] == "memory_numpy_unavailable"]
        print({"st": st, "n": len(w), "msg": w[0][1] if w else ""})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = result(p)
    assert r["st"]["numpy"] == "waiting" and r["st"]["raw"] == "installed"
    assert r["n"] == 1 and "not imported" in r["msg"]


def test_numpy_imported_after_start_is_hooked_at_import(forwarding):
    pytest.importorskip("numpy")
    r = result(run_py(forwarding, """
        assert "numpy" not in sys.modules
        s = start()
        before = core._memhooks_state()["numpy"]
        import numpy as np
        after = core._memhooks_state()["numpy"]
        base = hd.hd_live(NUMPY)
        a = np.ones(50 * MB // 8)
        live = hd.hd_live(NUMPY) - base
        stop(s)
        w = [x for x in s.warnings() if x[0] == "memory_numpy_unavailable"]
        print({"before": before, "after": after, "live": live, "warned": len(w),
               "final": core._memhooks_state()["numpy"]})
    """))
    assert r["before"] == "waiting" and r["after"] == "installed"
    assert 50 * 2**20 <= r["live"] < 51 * 2**20
    assert r["warned"] == 0 and r["final"] == "off"


# ---------------------------------------------------------------------------
# what the hooks report (through the tracker double)
# ---------------------------------------------------------------------------

def test_numpy_kept_array_is_seen_at_its_size(forwarding):
    pytest.importorskip("numpy")
    r = result(run_py(forwarding, """
        import numpy as np
        s = start()
        base = hd.hd_live(NUMPY)
        a = np.ones(200 * MB // 8)
        live = hd.hd_live(NUMPY) - base
        raw_obj = hd.hd_live(RAW) + hd.hd_live(MEM) + hd.hd_live(OBJ)
        st = core._memhooks_state()
        stop(s)
        print({"live": live, "st": st["numpy"], "pyheap": raw_obj})
    """))
    assert r["st"] == "installed"
    assert 200 * 2**20 <= r["live"] < 201 * 2**20
    # numpy's default allocator uses malloc, not PyMem: no double counting
    assert r["pyheap"] < 20 * 2**20


def test_numpy_transient_array_peak_and_release(forwarding):
    pytest.importorskip("numpy")
    r = result(run_py(forwarding, """
        import numpy as np
        s = start()
        base = hd.hd_live(NUMPY)
        hd.hd_reset_peak(NUMPY)
        b = np.random.randn(10000, 10000)
        del b
        r = {"peak": hd.hd_peak(NUMPY) - base, "live": hd.hd_live(NUMPY) - base}
        stop(s)
        print(r)
    """))
    assert 800_000_000 <= r["peak"] < 820_000_000
    assert abs(r["live"]) < 1 * 2**20


def test_numpy_arrays_allocated_in_threads_are_seen(forwarding):
    pytest.importorskip("numpy")
    r = result(run_py(forwarding, """
        import numpy as np
        s = start()
        base = hd.hd_live(NUMPY)
        keep = []
        def work():
            keep.append(np.zeros(10 * MB // 8))     # calloc path
            keep.append(np.empty(5 * MB, dtype=np.uint8))
        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
        live = hd.hd_live(NUMPY) - base
        keep.clear()
        after = hd.hd_live(NUMPY) - base
        stop(s)
        print({"live": live, "after": after})
    """))
    assert 4 * 15 * 2**20 <= r["live"] < 4 * 15 * 2**20 + 2**20
    assert abs(r["after"]) < 2**20


def test_numpy_realloc_is_reported_at_new_size(forwarding):
    pytest.importorskip("numpy")
    r = result(run_py(forwarding, """
        import numpy as np
        s = start()
        base = hd.hd_live(NUMPY)
        a = np.zeros(1 * MB // 8)
        a.resize(8 * MB // 8, refcheck=False)
        live = hd.hd_live(NUMPY) - base
        stop(s)
        print({"live": live})
    """))
    assert 8 * 2**20 <= r["live"] < 8 * 2**20 + 2**16


def test_python_domains_see_objects_and_frees(forwarding):
    r = result(run_py(forwarding, """
        s = start()
        b0 = {d: hd.hd_live(d) for d in (RAW, MEM, OBJ)}
        x = [str(i) * 10 for i in range(200000)]
        d = {i: [i] for i in range(50000)}
        mid = sum(hd.hd_live(k) - b0[k] for k in (RAW, MEM, OBJ))
        del x, d
        end = sum(hd.hd_live(k) - b0[k] for k in (RAW, MEM, OBJ))
        def pyheap():
            return hd.hd_live(RAW) + hd.hd_live(MEM) + hd.hd_live(OBJ)
        p0, r0 = pyheap(), hd.hd_live(RAW)
        # a large buffer: object or mem domain (by version), served by the raw allocator underneath
        big = bytearray(50 * MB)
        obj_big, raw_big = pyheap() - p0, hd.hd_live(RAW) - r0
        stop(s)
        print({"mid": mid, "end": end, "obj_big": obj_big, "raw_big": raw_big,
               "nested": hd.hd_nested()})
    """))
    assert r["mid"] > 10 * 2**20       # 200k strings of ~60 bytes + 50k lists and a dict
    assert r["end"] < r["mid"] / 4
    # counted once, in its own domain, not again as raw (the flag is held across forwarding)
    assert 50 * 2**20 <= r["obj_big"] < 51 * 2**20
    assert r["raw_big"] < 2**20
    assert r["nested"] > 0


def test_stack_callback_gives_user_frames_innermost_first(forwarding):
    r = result(run_py(forwarding, """
        N = 1234567
        def inner():
            return bytearray(N)          # line 4 of this block
        def outer():
            return inner()
        s = start()
        hd.hd_set_probe(N + 1)           # bytearray(N) asks for N + 1 bytes
        keep = outer()
        buf = (ctypes.c_uint * 64)()
        n = hd.hd_probe_frames(buf, 32)
        frames = [(buf[2 * i], buf[2 * i + 1]) for i in range(n)]
        exp = [core.site("__main__." + f.__qualname__, f.__code__.co_filename,
                         f.__code__.co_firstlineno, core.SITE_PYTHON) for f in (inner, outer)]
        stop(s)
        print({"frames": frames, "exp": exp, "hits": hd.hd_probe_hits(),
               "inner_line": inner.__code__.co_firstlineno + 1,
               "outer_line": outer.__code__.co_firstlineno + 1})
    """))
    assert r["hits"] == 1
    fr = r["frames"]
    assert fr[0] == (r["exp"][0], r["inner_line"])
    assert fr[1] == (r["exp"][1], r["outer_line"])
    assert len(fr) == 3  # inner, outer, the module


OWN_MODULE = """
import copy
def alloc(n):
    return bytes(n - 33)            # bytes(k) asks for k + 33 bytes
def via_stdlib(src):
    return copy.copy(src)           # the copy's buffer is allocated in copy.py
def call(fn, *args):
    return fn(*args)
"""

OWN_PRELUDE = """
import code_profiler
pkg = os.path.dirname(code_profiler.__file__)
path = os.path.join(pkg, "_pyhooks_probe_tmp.py")
with open(path, "w") as f:
    f.write(OWN_MODULE)
try:
    from code_profiler import _pyhooks_probe_tmp as own
finally:
    os.unlink(path)
"""


def test_profiler_own_allocations_are_not_recorded(forwarding):
    r = result(run_py(forwarding, "OWN_MODULE = " + repr(OWN_MODULE) + OWN_PRELUDE + textwrap.dedent("""
        import copy
        N = 2345671
        src = bytearray(N - 1)              # bytearray(k): a k + 1 byte buffer
        s = start()
        hd.hd_set_probe(N)
        a = own.alloc(N)                     # the profiler's own code allocates
        b = own.via_stdlib(src)              # ... or the standard library it calls
        own_hits = hd.hd_probe_hits()
        c = copy.copy(src)                   # the user's code calls the same
        user_hits = hd.hd_probe_hits() - own_hits
        d = bytes(N - 33)
        user_hits2 = hd.hd_probe_hits() - own_hits - user_hits
        stop(s)
        print({"own": own_hits, "user": user_hits, "user2": user_hits2})
    """)))
    assert r == {"own": 0, "user": 1, "user2": 1}


def test_stack_skips_profiler_frames_between_user_frames(forwarding):
    r = result(run_py(forwarding, "OWN_MODULE = " + repr(OWN_MODULE) + OWN_PRELUDE + textwrap.dedent("""
        N = 2345671
        def cb():
            return bytes(N - 33)
        s = start()
        hd.hd_set_probe(N)
        keep = own.call(cb)                  # user -> profiler -> user callback
        buf = (ctypes.c_uint * 64)()
        n = hd.hd_probe_frames(buf, 32)
        frames = [(buf[2 * i], buf[2 * i + 1]) for i in range(n)]
        exp = core.site("__main__.cb", cb.__code__.co_filename, cb.__code__.co_firstlineno,
                        core.SITE_PYTHON)
        stop(s)
        print({"frames": frames, "exp": exp, "hits": hd.hd_probe_hits()})
    """)))
    assert r["hits"] == 1
    assert r["frames"][0][0] == r["exp"]
    assert len(r["frames"]) == 2  # cb and the module: the profiler's frame in between is skipped


def test_pythonmalloc_malloc(forwarding):
    r = result(run_py(forwarding, """
        s = start()
        b = hd.hd_live(OBJ)
        x = [str(i) * 10 for i in range(100000)]
        mid = hd.hd_live(OBJ) - b
        del x
        stop(s)
        print({"mid": mid, "st": core._memhooks_state()["object"]})
    """, env_extra={"PYTHONMALLOC": "malloc"}))
    assert r["mid"] > 5 * 2**20 and r["st"] == "off"


def test_threads_allocate_while_start_and_stop_run(forwarding):
    r = result(run_py(forwarding, """
        stop_ev = threading.Event()
        def churn():
            while not stop_ev.is_set():
                x = [bytearray(64) for _ in range(200)]
                y = {i: str(i) for i in range(200)}
                del x, y
        ts = [threading.Thread(target=churn) for _ in range(3)]
        for t in ts: t.start()
        for _ in range(30):
            s = start()
            z = [object() for _ in range(1000)]
            stop(s)
        stop_ev.set()
        for t in ts: t.join()
        neg = [hd.hd_live(d) for d in (RAW, MEM, OBJ) if hd.hd_live(d) < 0]
        print({"neg": neg, "st": core._memhooks_state()["raw"]})
    """, timeout=240))
    assert r["st"] == "off"
    assert r["neg"] == []


def test_fork_while_another_thread_allocates(forwarding):
    r = result(run_py(forwarding, """
        stop_ev = threading.Event()
        def churn():
            while not stop_ev.is_set():
                x = [bytearray(64) for _ in range(100)]
                del x
        s = start()
        t = threading.Thread(target=churn); t.start()
        codes = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                y = [str(i) for i in range(10000)]
                z = bytearray(10 * MB)
                os._exit(0 if len(y) == 10000 else 3)
            _, status = os.waitpid(pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
        stop_ev.set(); t.join()
        stop(s)
        print({"codes": codes})
    """, timeout=240))
    assert r["codes"] == [0] * 5


def test_session_left_running_at_exit(forwarding):
    p = run_py(forwarding, """
        import numpy as np
        s = start(gc=True)
        keep = [np.ones(1000) for _ in range(100)]
        junk = [[i] for i in range(10000)]
        class C:
            def __del__(self):
                self.x = [bytearray(100) for _ in range(100)]
        c = C()
        c.self = c
        print("ok")
    """, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("ok")


def test_session_left_running_at_exit_without_tracker_double():
    code = textwrap.dedent("""
        import code_profiler._core as core
        s = core.Session(memory_mode=2, gc=True)
        s.start()
        x = [[i] for i in range(10000)]
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_tracemalloc_started_before_and_after(forwarding):
    r = result(run_py(forwarding, """
        import tracemalloc
        out = {}
        def pyheap():
            return hd.hd_live(RAW) + hd.hd_live(MEM) + hd.hd_live(OBJ)
        def count():
            b = hd.hd_allocs(OBJ) + hd.hd_allocs(MEM)
            z = [bytearray(1000) for _ in range(1000)]
            return hd.hd_allocs(OBJ) + hd.hd_allocs(MEM) - b
        s = start()
        n_alone = min(count() for _ in range(3))
        stop(s)
        # tracemalloc first: ours wraps it; stop restores tracemalloc's
        tracemalloc.start()
        s = start()
        b, tb = pyheap(), tracemalloc.get_traced_memory()[0]
        x = bytearray(5 * MB)
        out["ours_seen"] = pyheap() - b > 4.5 * MB
        out["tm_seen"] = tracemalloc.get_traced_memory()[0] - tb > 4.5 * MB
        stop(s)
        out["after_stop"] = core._memhooks_state()["object"]
        del x
        out["tm_still"] = tracemalloc.is_tracing()
        tb = tracemalloc.get_traced_memory()[0]
        y = bytearray(5 * MB)
        out["tm_still_counts"] = tracemalloc.get_traced_memory()[0] - tb > 4.5 * MB
        tracemalloc.stop()
        del y
        # ours first, tracemalloc wraps ours: stop leaves ours in the chain, inert
        s = start()
        tracemalloc.start()
        b, tb = pyheap(), tracemalloc.get_traced_memory()[0]
        x = bytearray(5 * MB)
        out["ours_seen2"] = pyheap() - b > 4.5 * MB
        out["tm_seen2"] = tracemalloc.get_traced_memory()[0] - tb > 4.5 * MB
        stop(s)
        st = core._memhooks_state()
        out["inert"] = st["object"]
        b = hd.hd_allocs(OBJ) + hd.hd_allocs(MEM)
        y = [bytearray(1000) for _ in range(1000)]
        out["inert_quiet"] = hd.hd_allocs(OBJ) + hd.hd_allocs(MEM) == b
        tracemalloc.stop()   # restores ours (inert) as its "previous"
        # start again: ours is reused, not wrapped twice
        s = start()
        n = min(count() for _ in range(3))
        out["once"] = (n_alone, n)
        stop(s)
        out["final"] = core._memhooks_state()["object"]
        print(out)
    """))
    assert r["ours_seen"] and r["tm_seen"]
    assert r["after_stop"] == "off" and r["tm_still"] and r["tm_still_counts"]
    assert r["ours_seen2"] and r["tm_seen2"]
    assert r["inert"] == "inert" and r["inert_quiet"]
    n_alone, n = r["once"]
    assert n_alone >= 1000 and n < 1.3 * n_alone, r  # reused, not wrapped over itself
    assert r["final"] == "off"


# ---------------------------------------------------------------------------
# gc.callbacks
# ---------------------------------------------------------------------------

def test_gc_counters_equal_gc_get_stats_deltas():
    code = textwrap.dedent("""
        import gc
        import code_profiler._core as core
        def snap():
            ours = core._memhooks_state()["gc_counters"]
            theirs = gc.get_stats()
            return ours, theirs
        s = core.Session(memory_mode=0, gc=True)
        s.start()
        gc.disable()          # no collection while the two are read
        o0, t0 = snap()
        gc.enable()
        class Node:
            def __init__(self):
                self.me = self
        class Fin:
            def __del__(self):
                pass
        for i in range(20000):            # natural collections (cycles of containers)
            a = Node(); b = [a]; a.b = b
            if i % 1000 == 0:
                f = Fin(); f.f = f
        del a, b, f
        gc.collect(0); gc.collect(1); gc.collect(2); gc.collect()
        gc.disable()
        o1, t1 = snap()
        gc.enable()
        s.stop()
        d = {k: [o1[k][g] - o0[k][g] for g in range(3)] for k in ("collections", "collected", "uncollectable")}
        e = {k: [t1[g][k] - t0[g][k] for g in range(3)] for k in ("collections", "collected", "uncollectable")}
        t = [o1["time_ns"][g] - o0["time_ns"][g] for g in range(3)]
        print({"ours": d, "theirs": e, "time": t})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = result(p)
    assert r["ours"] == r["theirs"]
    assert r["theirs"]["collections"][0] >= 2          # natural gen-0 ones plus the forced one
    assert r["theirs"]["collections"][2] >= 2
    assert sum(r["theirs"]["collected"]) >= 20000      # the cycles were collected
    assert all(t > 0 for t in r["time"])


def test_gc_collections_are_scopes_in_the_report():
    code = textwrap.dedent("""
        import gc, json
        import code_profiler._core as core
        s = core.Session(memory_mode=0, gc=True)
        gc.disable()
        t0 = gc.get_stats()
        s.start()
        gc.enable()
        def work():
            for _ in range(3):
                gc.collect(2)
            gc.collect(1)
            return [[i] for i in range(50000)]
        work()
        gc.disable()
        s.stop()
        t1 = gc.get_stats()
        doc = json.loads(s.report_json())
        calls = {}
        def walk(o):
            if isinstance(o, dict):
                f = o.get("function")
                if isinstance(f, str) and f.startswith("gc (generation ") and "calls" in o:
                    calls[f] = max(calls.get(f, 0), o["calls"])
                for v in o.values(): walk(v)
            elif isinstance(o, list):
                for v in o: walk(v)
        walk(doc)
        print({"calls": calls, "delta": [t1[g]["collections"] - t0[g]["collections"] for g in range(3)]})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = result(p)
    d = r["delta"]
    assert d[2] >= 3 and d[1] >= 1
    for g in range(3):
        if d[g]:
            assert r["calls"].get(f"gc (generation {g})") == d[g], r


def test_raw_allocation_without_the_gil_is_seen_with_its_frozen_frames(forwarding):
    r = result(run_py(forwarding, """
        N = 3456781
        lib = ctypes.CDLL(None)            # CDLL: the call releases the GIL
        lib.PyMem_RawMalloc.restype = ctypes.c_void_p
        lib.PyMem_RawMalloc.argtypes = [ctypes.c_size_t]
        lib.PyMem_RawFree.argtypes = [ctypes.c_void_p]
        s = start()
        hd.hd_set_probe(N)
        b = hd.hd_live(RAW)
        p = lib.PyMem_RawMalloc(N)
        live = hd.hd_live(RAW) - b
        buf = (ctypes.c_uint * 64)()
        n = hd.hd_probe_frames(buf, 32)
        lib.PyMem_RawFree(p)
        after = hd.hd_live(RAW) - b
        stop(s)
        print({"hits": hd.hd_probe_hits(), "dom": hd.hd_probe_dom(), "frames": n,
               "live": live, "after": after})
    """))
    assert r["hits"] == 1 and r["dom"] == 0
    # The thread released the GIL around the C call (as torch's operators do
    # around their allocations): its Python frames are frozen, and read.
    assert r["frames"] == 1
    assert r["live"] == 3456781 and r["after"] == 0


VALGRIND_SCRIPT = textwrap.dedent("""
    import threading, gc
    import code_profiler._core as core
    try:
        import numpy as np
    except ImportError:
        np = None
    s = core.Session(memory_mode=2, gc=True, memory_stack_depth=16)
    s.start()
    def gen():
        for i in range(100):
            yield [str(j) for j in range(20)]
    class K:
        def __del__(self):
            self.z = [bytearray(10) for _ in range(5)]
    def f(n):
        if n:
            return f(n - 1)
        out = [x for x in gen()]
        arrs = [np.ones(1000), np.zeros((50, 50))] if np else []
        for _ in range(20):
            k = K(); k.k = k
        gc.collect()
        return out, arrs
    ts = [threading.Thread(target=f, args=(5,)) for _ in range(2)]
    for t in ts: t.start()
    f(10)
    for t in ts: t.join()
    s.stop()
    s.start()
    keep = f(3)      # left running at exit: the hooks see finalization
    print("ok")
""")


@pytest.mark.skipif(not os.environ.get("CODEPROF_TEST_VALGRIND"),
                    reason="slow (minutes): set CODEPROF_TEST_VALGRIND=1")
def test_hooks_under_valgrind(tmp_path):
    """No memcheck error has a frame in the extension's memory hooks (the
    interpreter's own start-up and shutdown reports are not ours)."""
    vg = shutil.which("valgrind")
    if not vg:
        pytest.skip("valgrind not installed")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    log = tmp_path / "vg.log"
    p = subprocess.run([vg, "--num-callers=40", f"--log-file={log}", sys.executable, "-c",
                        VALGRIND_SCRIPT], env=env, capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr
    text = log.read_text()
    assert "Memcheck" in text
    records = text.split("\n==")
    ours = [r for r in records
            if any(f in r for f in ("memhook.c", "memstack.c", "gchook.c", "tracer.c"))]
    assert ours == [], "\n".join(ours[:3])


def test_tracemalloc_stopped_while_we_run_then_restart(forwarding):
    """tracemalloc started before us and stopped during our session puts back
    the allocator it saved, dropping ours; the next start installs ours again."""
    r = result(run_py(forwarding, """
        import tracemalloc
        def pyheap():
            return hd.hd_live(RAW) + hd.hd_live(MEM) + hd.hd_live(OBJ)
        tracemalloc.start()
        s = start()
        tracemalloc.stop()                 # drops our wrappers with its own
        st_mid = core._memhooks_state()
        stop(s)
        st_stopped = core._memhooks_state()
        s = start()
        b = pyheap()
        x = bytearray(5 * MB)
        seen = pyheap() - b
        st_run = core._memhooks_state()
        stop(s)
        print({"mid": st_mid["object_top"], "stopped": st_stopped["object"],
               "run": st_run["object"], "top": st_run["object_top"], "seen": seen,
               "final": core._memhooks_state()["object"]})
    """))
    assert r["mid"] is False and r["stopped"] == "off"
    assert r["run"] == "installed" and r["top"] and r["seen"] > 4.5 * 2**20
    assert r["final"] == "off"


def test_a_gc_only_session_does_not_keep_another_from_tracking_allocations():
    a = core.Session(memory_mode=0, gc=True)
    b = core.Session(memory_mode=1)
    a.start()
    try:
        assert core._memhooks_state()["gc"] and core._memhooks_state()["raw"] == "off"
        b.start()
        try:
            assert core._memhooks_state()["raw"] == "installed"
        finally:
            b.stop()
        st = core._memhooks_state()
        assert st["raw"] == "off" and st["gc"]
    finally:
        a.stop()
    assert not core._memhooks_state()["gc"]
