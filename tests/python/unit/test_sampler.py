"""The stack sampler's CPython reader (src/python/pysample.c) and the sampler
thread's life in a session (src/sampling/sampler.c, sample_session.c).

`_core._sample_threads` runs the same reader the sampler thread runs (on the
calling thread, GIL released) and returns the last round: every Python thread
with its frames (name, file, first line, line), innermost first, and its state.
Runs on 3.11, 3.12 and 3.13 (the frame layouts differ per version).
"""
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from code_profiler import _core

HERE = os.path.abspath(__file__)


def _line_of(fn, text):
    """Line number of the first line of `fn`'s source that contains `text`."""
    import inspect

    lines, first = inspect.getsourcelines(fn)
    for i, ln in enumerate(lines):
        if text in ln:
            return first + i
    raise AssertionError(text)


class Flag:
    """A stop flag whose check runs no Python function (a sample taken
    inside Event.is_set would show threading's frame innermost)."""

    def __init__(self):
        self.on = [False]

    def set(self):
        self.on[0] = True


def spin_here(stop):
    x = 0
    on = stop.on
    while not on[0]:  # SPIN-LINE
        x += 1
    return x


def nap_here(stop):
    on = stop.on
    while not on[0]:
        time.sleep(0.01)  # NAP-LINE


def _by_tid(res):
    return {t["tid"]: t for t in res["threads"]}


def _start(target, stop):
    th = threading.Thread(target=target, args=(stop,))
    th.start()
    while th.native_id is None:
        time.sleep(0.001)
    return th


def test_two_threads_two_functions_with_lines():
    stop = Flag()
    a = _start(spin_here, stop)
    b = _start(nap_here, stop)
    try:
        time.sleep(0.05)
        res = _core._sample_threads(2, 0.02)
    finally:
        stop.set()
        a.join()
        b.join()
    threads = _by_tid(res)
    assert a.native_id in threads and b.native_id in threads
    fa = threads[a.native_id]["frames"]
    fb = threads[b.native_id]["frames"]
    mod = __name__
    # innermost first, named as the tracer names them ("module.qualname")
    assert fa[0][0] == f"{mod}.spin_here" and fa[0][1] == HERE
    assert fb[0][0] == f"{mod}.nap_here" and fb[0][1] == HERE
    assert fa[0][2] == spin_here.__code__.co_firstlineno
    spin_lines = {_line_of(spin_here, "SPIN-LINE"), _line_of(spin_here, "x += 1")}
    assert fa[0][3] in spin_lines
    assert fb[0][3] == _line_of(nap_here, "NAP-LINE")
    # the thread's outer frames: threading's run and bootstrap
    assert any(f[0].endswith("Thread.run") for f in fa[1:])
    # the calling thread is sampled too, in this test function
    me = threads[threading.get_native_id()]["frames"]
    assert any(f[0].endswith("test_two_threads_two_functions_with_lines") for f in me)
    assert res["read_errors"] == 0


def test_sleeping_thread_idle_spinning_thread_running():
    stop = Flag()
    a = _start(spin_here, stop)
    b = _start(nap_here, stop)
    states_a, states_b = [], []
    try:
        time.sleep(0.05)
        for _ in range(8):
            th = _by_tid(_core._sample_threads(2, 0.05))
            states_a.append(th[a.native_id]["state"])
            states_b.append(th[b.native_id]["state"])
            if states_a.count("running") >= 2:
                break
    finally:
        stop.set()
        a.join()
        b.join()
    # the sleeper uses ~no CPU: never running (idle, or waiting for the GIL
    # the spinner holds when its sleep ends)
    assert "running" not in states_b, states_b
    assert set(states_b) <= {"idle", "gil"}
    # the spinner runs (on a loaded 2-core machine it may be descheduled in
    # a round: at least one of the rounds says running)
    assert "running" in states_a, states_a


def test_profiler_frames_absent():
    """Code whose file is in the code_profiler package is left out; the user
    frames around it stay."""
    import code_profiler

    pkg = os.path.dirname(os.path.abspath(code_profiler.__file__))
    own_src = textwrap.dedent(
        """
        def own_wrapper(fn, stop):
            return fn(stop)
        """
    )
    ns = {"__name__": "code_profiler._fake_own"}
    exec(compile(own_src, os.path.join(pkg, "_fake_own.py"), "exec"), ns)
    stop = Flag()
    th = threading.Thread(target=ns["own_wrapper"], args=(nap_here, stop))
    th.start()
    while th.native_id is None:
        time.sleep(0.001)
    try:
        time.sleep(0.03)
        res = _core._sample_threads(1, 0)
    finally:
        stop.set()
        th.join()
    frames = _by_tid(res)[th.native_id]["frames"]
    assert frames[0][0].endswith("nap_here")
    assert not any(f[1] and f[1].startswith(pkg + os.sep) for f in frames), frames
    assert any(f[0].endswith("Thread.run") for f in frames)
    # the whole process: no frame of the package at all
    for t in res["threads"]:
        assert not any(f[1] and f[1].startswith(pkg + os.sep) for f in t["frames"])


def test_deep_stack_capped_and_innermost_kept():
    stop = Flag()

    def rec(n):
        if n == 0:
            return nap_here(stop)
        return rec(n - 1)

    th = threading.Thread(target=rec, args=(300,))
    th.start()
    while th.native_id is None:
        time.sleep(0.001)
    try:
        time.sleep(0.05)
        res = _core._sample_threads(1, 0)
    finally:
        stop.set()
        th.join()
    # _sample_threads returns at most 64 frames of a stack; the innermost
    frames = _by_tid(res)[th.native_id]["frames"]
    assert frames[0][0].endswith("nap_here")
    assert all(f[0].endswith("rec") for f in frames[1:])
    assert res["read_errors"] == 0


def test_native_mode_names_the_syscall():
    stop = Flag()
    b = _start(nap_here, stop)
    try:
        seen = []
        for _ in range(20):
            t = _by_tid(_core._sample_threads(2, 0.01, True))[b.native_id]
            if t["native"]:
                seen.append(t["frames"][0][0])
                break
    finally:
        stop.set()
        b.join()
    assert seen and seen[0].startswith("syscall:"), seen
    # time.sleep: clock_nanosleep (or select on old builds)
    assert any(x in seen[0] for x in ("nanosleep", "select", "poll")), seen


def test_session_sampler_start_stop_and_set_sampling():
    s = _core.Session(sample_interval_s=0.001)
    s.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 2.0  # joins promptly (generous bound)
    s.set_sampling(False)
    s.start()
    s.stop()
    s.set_sampling(True)
    plain = _core.Session()
    with pytest.raises(Exception) as ei:
        plain.set_sampling(True)
    assert "sample_interval_s" in str(ei.value)


def _run(code, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


def test_shutdown_with_sampler_running_exits_cleanly():
    """Interpreter shutdown while the sampler runs at 1 ms and daemon threads
    still run Python: exit status 0, nothing on stderr."""
    r = _run(
        """
        import threading, time
        from code_profiler import _core
        s = _core.Session(sample_interval_s=0.001)
        s.start()
        def spin():
            x = 0
            while True:
                x += 1
        def nap():
            while True:
                time.sleep(0.001)
        for f in (spin, nap, spin, nap):
            threading.Thread(target=f, daemon=True).start()
        time.sleep(0.3)
        # exit without stop: the atexit hook closes the reader first
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_fork_child_resamples_and_can_turn_off():
    """The sampler thread ("codeprof-sample") does not survive fork; the
    extension's after-fork hook starts it again in the child (so forked
    DataLoader workers sample), and set_sampling(False) stops it there."""
    r = _run(
        """
        import os, time
        from code_profiler import _core
        def samplers():
            n = 0
            for t in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{t}/comm") as f:
                        n += f.read().strip() == "codeprof-sample"
                except OSError:
                    pass
            return n
        s = _core.Session(sample_interval_s=0.001)
        s.start()
        time.sleep(0.02)
        assert samplers() == 1
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                time.sleep(0.05)
                if samplers() != 1:
                    code |= 1        # re-armed in the child
                s.set_sampling(False)   # a child turns it off
                if samplers() != 0:
                    code |= 2
                s.stop()
            except BaseException as e:
                print(e, flush=True)
                code |= 4
            os._exit(code)
        _, st = os.waitpid(pid, 0)
        print("parent", samplers())
        s.stop()
        print("stopped", samplers())
        print("child", os.waitstatus_to_exitcode(st))
        """
    )
    assert r.returncode == 0, r.stderr
    assert "child 0" in r.stdout, r.stdout
    assert "parent 1" in r.stdout and "stopped 0" in r.stdout


def test_pipe_fallback_reads_the_same_frames():
    """Where process_vm_readv is refused (a seccomp profile), reads go
    through a pipe (write() of a bad address fails with EFAULT): the same
    frames come out."""
    env = dict(os.environ, CODEPROF_SAMPLER_PIPE_READS="1")
    code = textwrap.dedent(
        """
        import threading, time
        from code_profiler import _core
        stop = [False]
        def napper():
            while not stop[0]:
                time.sleep(0.01)
        t = threading.Thread(target=napper)
        t.start()
        time.sleep(0.05)
        r = _core._sample_threads(2, 0.01)
        stop[0] = True; t.join()
        th = {x["tid"]: x for x in r["threads"]}[t.native_id]
        print(th["frames"][0][0], th["frames"][0][3], r["read_errors"])
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    name, line, errors = r.stdout.split()
    assert name == "__main__.napper"
    assert int(line) == 7
    assert errors == "0"
