"""The facade's side of worker memory (python/code_profiler/data.py) and the
Session methods it calls (src/python/session_obj.c): describing a dataset's
large containers with bounded work, registering worker pids once, and the
argument checks of Session.watch_process / describe_dataset_memory."""
from __future__ import annotations

import os
import warnings

import pytest

from code_profiler import _core
from code_profiler.data import ProfiledDataLoader, describe_containers


class ListDataset:
    def __init__(self, n=5000):
        self.paths = [f"/clips/{i}.mp4" for i in range(n)]
        self.labels = {i: (i, "cat") for i in range(n)}
        self.small = list(range(10))          # too small to matter
        self.name = "clips"

    def __getitem__(self, i):
        return self.paths[i]

    def __len__(self):
        return len(self.paths)


def test_describe_containers_lists_and_dicts():
    text, py_objects, array_bytes = describe_containers(ListDataset())
    assert "self.paths: list of 5000 str" in text
    assert "self.labels: dict of 5000 tuple" in text
    assert "small" not in text and "name" not in text
    # 5000 str + 5000 dict entries of (key, tuple of 2 -> 3 objects)
    assert 5000 + 5000 * 4 <= py_objects <= 5000 + 5000 * 5
    assert array_bytes == 0


def test_describe_containers_numpy_and_object_arrays():
    np = pytest.importorskip("numpy")

    class ArrayDataset:
        def __init__(self):
            self.frames = np.zeros((1024, 1024), dtype=np.uint8)     # 1 MiB of data
            self.meta = np.array(["a"] * 3000, dtype=object)          # Python objects

    text, py_objects, array_bytes = describe_containers(ArrayDataset())
    assert "self.frames: ndarray uint8 (1024, 1024)" in text
    assert "self.meta: numpy object array of 3000" in text
    assert py_objects == 3000
    assert array_bytes == 1024 * 1024


def test_describe_containers_one_level_into_a_wrapped_dataset():
    class Subset:
        def __init__(self, ds):
            self.dataset = ds
            self.indices = list(range(2000))

        def __getitem__(self, i):
            return self.dataset[self.indices[i]]

        def __len__(self):
            return len(self.indices)

    text, py_objects, _ = describe_containers(Subset(ListDataset()))
    assert "self.indices: list of 2000 int" in text
    assert "self.dataset.paths: list of 5000 str" in text
    assert py_objects >= 2000 + 5000


def test_describe_containers_is_bounded_and_total():
    class Weird:
        __slots__ = ()

    assert describe_containers(Weird()) == ("", 0, 0)
    assert describe_containers(None) == ("", 0, 0)

    class BadLen(list):
        def __len__(self):
            raise RuntimeError("broken")

    class Holder:
        def __init__(self):
            self.bad = BadLen([1, 2, 3])
            self.many = [0] * 10**6

    text, py_objects, _ = describe_containers(Holder())
    assert "bad" not in text
    assert "self.many: list of 1000000 int" in text
    assert py_objects == 10**6


class FakeSession:
    def __init__(self, on=True):
        self.on = on
        self.watched = []
        self.described = []

    def watch_process(self, pid, worker, loader):
        if not self.on:
            return False
        self.watched.append((pid, worker, loader))
        return True

    def describe_dataset_memory(self, loader, dataset, text, py_objects, array_bytes):
        self.described.append((loader, dataset, text, py_objects, array_bytes))
        return True


class FakeProc:
    def __init__(self, pid, method="fork"):
        self.pid = pid
        self._start_method = method


class FakeIter:
    def __init__(self, pids, method="fork"):
        self._workers = [FakeProc(p, method) for p in pids]


def _loader_wrapper():
    pl = ProfiledDataLoader.__new__(ProfiledDataLoader)
    pl._site = 77
    pl._site_name = "DataLoader(ListDataset)#1"
    pl._watched = {}
    pl._dataset_described = False
    pl._dataset_wrapper = None
    pl._loader = type("L", (), {"dataset": ListDataset()})()
    return pl


def test_workers_registered_once_each_and_dataset_described_once():
    pl, sess = _loader_wrapper(), FakeSession()
    pl._watch_workers(sess, FakeIter([101, 102]))
    pl._watch_workers(sess, FakeIter([101, 102]))  # persistent workers: same pids
    pl._watch_workers(sess, FakeIter([201, 202]))  # next epoch's new workers
    assert sess.watched == [(101, 0, 77), (102, 1, 77), (201, 0, 77), (202, 1, 77)]
    assert len(sess.described) == 1
    loader, dataset, text, py_objects, _ = sess.described[0]
    assert loader == 77 and dataset == 0 and "self.paths: list of 5000 str" in text


def test_spawn_workers_are_watched_but_the_dataset_not_described():
    # a spawn worker unpickles its own copy: its growth is not copy-on-write
    pl, sess = _loader_wrapper(), FakeSession()
    pl._watch_workers(sess, FakeIter([301, 302], method="spawn"))
    assert sess.watched == [(301, 0, 77), (302, 1, 77)]
    assert sess.described == []


def test_nothing_registered_when_the_sampler_is_off_or_no_workers():
    pl, sess = _loader_wrapper(), FakeSession(on=False)
    pl._watch_workers(sess, FakeIter([101]))
    assert sess.watched == [] and sess.described == []
    pl, sess = _loader_wrapper(), FakeSession()
    pl._watch_workers(sess, iter([1, 2]))  # a single-process iterator
    assert sess.watched == []


def test_session_watch_process_arguments():
    off = _core.Session()
    assert off.watch_process(os.getpid()) is False  # sampler off
    assert off.describe_dataset_memory(5, 0, "x") is False
    with pytest.raises(ValueError, match="pid must be > 0"):
        off.watch_process(0)
    with pytest.raises(ValueError, match="loader must be a site id"):
        off.watch_process(os.getpid(), 0, -1)
    with pytest.raises(ValueError, match="loader must be a loader site id"):
        off.describe_dataset_memory(0, 0, "x")
    on = _core.Session(memory_sample_interval_s=0.5)
    assert on.watch_process(os.getpid(), 0, None) is True
    assert on.watch_process(os.getpid(), worker=1, loader=_core.site("L", None, 0,
                                                                     _core.SITE_LOADER)) is True
    assert on.describe_dataset_memory(5, 0, "self.x: list of 9 int", 9, 0) is True
    with pytest.raises(TypeError):
        on.watch_process("12")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del on, off
