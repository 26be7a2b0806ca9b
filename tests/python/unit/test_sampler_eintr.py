"""No user call fails with EINTR because of the stack sampler: a C helper
(tests/c/eintr_helper.c, compiled here) blocks in select, poll, read and
nanosleep for 1.5 s each while the sampler runs at 1 ms, on the main thread
and in threads at once, and checks every return code and that each call
blocked its full time (a call interrupted and not restarted returns early)."""
import ctypes
import os
import shutil
import subprocess
import threading

import pytest

from code_profiler import _core

HELPER = os.path.join(os.path.dirname(__file__), "..", "..", "c", "eintr_helper.c")
CALLS = ("block_select", "block_poll", "block_read", "block_nanosleep")
MS = 1500


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    so = tmp_path_factory.mktemp("eintr") / "libeintr_helper.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", os.path.abspath(HELPER), "-o", str(so),
                    "-lpthread"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    for name in CALLS:
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
        fn.restype = ctypes.c_int
    return lib


def _call(lib, name):
    el = ctypes.c_double(0)
    rc = getattr(lib, name)(MS, ctypes.byref(el))
    return rc, el.value


def test_no_eintr_with_sampler_at_1ms(helper):
    s = _core.Session(sample_interval_s=0.001)
    s.start()
    results = {}
    try:
        def run(name):
            results[("thread", name)] = _call(helper, name)

        threads = [threading.Thread(target=run, args=(n,)) for n in CALLS]
        for t in threads:
            t.start()
        # the main thread blocks too, while the threads do
        results[("main", "block_select")] = _call(helper, "block_select")
        results[("main", "block_read")] = _call(helper, "block_read")
        for t in threads:
            t.join()
    finally:
        s.stop()
    assert len(results) == len(CALLS) + 2
    for key, (rc, elapsed) in results.items():
        assert rc != 4, f"{key}: EINTR"
        assert rc == 0, f"{key}: rc {rc}"
        # the full time (no early return); a loaded machine only adds to it
        assert elapsed >= MS * 0.98, f"{key}: returned after {elapsed:.1f} ms"


def test_helper_detects_eintr_from_a_signal_sampler(helper):
    """The control: a signal every millisecond (what a signal-driven sampler
    does) makes the same select fail with EINTR, so the test above can fail."""
    import signal

    hits = []
    old = signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        el = ctypes.c_double(0)
        rc = helper.block_select(MS, ctypes.byref(el))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert rc == 4  # EINTR
    assert el.value < MS
