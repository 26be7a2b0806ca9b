"""The GPU synchronization recorder's where-callback (src/python/gpuwhere.c).

`_core._gpu_where_probe()` calls the registered callback the way the CUPTI
callback does at the exit of a sync: it must name the calling thread's
innermost *user* frame and its current line, skipping the standard library,
with or without the GIL.
"""
import functools
import threading

import pytest

from code_profiler import _core

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "_gpu_where_probe"), reason="extension without the GPU where probe"
)


def _caller():
    return _core._gpu_where_probe()  # the line the sync is blamed on


def _caller_nogil():
    _core._gpu_where_probe()  # first with the GIL: names the code object
    return _core._gpu_where_probe(release_gil=True)


def _line_of(fn, offset):
    return fn.__code__.co_firstlineno + offset


def test_names_the_callers_line():
    got = _caller()
    assert got is not None
    name, file, line = got
    assert name.endswith("_caller")
    assert file.endswith("test_gpu_where.py")
    assert line == _line_of(_caller, 1)


def test_without_the_gil():
    got = _caller_nogil()
    assert got is not None
    name, _, line = got
    assert name.endswith("_caller_nogil")
    assert line == _line_of(_caller_nogil, 2)


def _via_stdlib():
    # functools' singledispatch wrapper (Python code of the standard library)
    # is the innermost frame; the blame goes to this line
    probe = functools.singledispatch(_core._gpu_where_probe)
    return probe(False)


def test_skips_the_standard_library():
    got = _via_stdlib()
    assert got is not None
    name, _, line = got
    assert name.endswith("_via_stdlib")
    assert line == _line_of(_via_stdlib, 4)


def _thread_target(out, go, done):
    go.wait(30)
    out.append(_core._gpu_where_probe())  # with the GIL (names the code object)
    out.append(_core._gpu_where_probe(release_gil=True))  # without it
    done.set()


def test_each_thread_gets_its_own_frame():
    out, go, done = [], threading.Event(), threading.Event()
    t = threading.Thread(target=_thread_target, args=(out, go, done))
    t.start()
    go.set()
    assert done.wait(30)  # the main thread waits here meanwhile
    t.join(30)
    assert len(out) == 2
    for got, offset in zip(out, (2, 3)):
        assert got is not None
        name, _, line = got
        assert name.endswith("_thread_target")
        assert line == _line_of(_thread_target, offset)
