"""Data-loading instruments: profiled datasets and data loaders.

The wrappers here only mark where items and batches begin and end; the C
core records them (an item scope, a batch scope), folds them into
data-loading records, merges the records of DataLoader worker processes and
computes every statistic and finding.  ``get_stats()`` and
``get_data_loading_report()`` are views of the core's report, built from
its model as Python objects (no JSON).

Worker processes.  A wrapped dataset notices on its first item in a process
other than the one that wrapped it that it runs in a worker.  Under fork the
worker inherits the (running) C session; under spawn or forkserver it starts
a session of its own from the configuration pickled with the wrapper.
Either way the worker attaches the session to a spool file in the
profiler's spool directory: each finished item (and its stages) is written
there through a shared mapping at once, so an item is reported exactly
once, and a worker that is terminated (SIGTERM) or killed loses nothing it
finished.  A worker that exits cleanly marks its spool complete; one that
does not is reported as ``incomplete``.
"""
from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from . import _core

if TYPE_CHECKING:  # pragma: no cover
    from .profiler import VideoOpusClipProfiler

# torch is optional and slow to import (seconds): the wrapper classes, which
# subclass torch's Dataset types when torch is installed, are created on first
# use (and found by pickle through the module __getattr__ below).
_classes_made: Dict[str, type] = {}


def _torch_data() -> Any:
    try:
        import torch.utils.data as tud
        return tud
    except Exception:  # pragma: no cover - exercised on the torch-less leg
        return None

__all__ = [
    "DataLoadingProfiler",
    "ProfiledDataLoader",
    "ProfiledDataset",
    "ProfiledIterableDataset",
]

_names = itertools.count(1)
_names_lock = threading.Lock()


def _next_name(prefix: str) -> str:
    with _names_lock:
        return f"{prefix}#{next(_names)}"


# ---------------------------------------------------------------------------
# The worker side: one attached session per worker process
# ---------------------------------------------------------------------------

class _WorkerState:
    pid: int = -1
    session: Optional["_core.Session"] = None


_worker = _WorkerState()

# This process's id, kept current across fork: os.getpid() is a system call
# and the item path asks for it several times per item.
_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def worker_session() -> Optional["_core.Session"]:
    """The session this worker process records into, or None (main process,
    or not attached yet)."""
    if _worker.pid == _pid:
        return _worker.session
    return None


def _worker_id() -> int:
    try:
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        if info is not None:
            return int(info.id)
    except Exception:  # pragma: no cover - no torch
        pass
    return 0


def _close_worker() -> None:
    sess = worker_session()
    if sess is not None:
        sess.close_worker()


def _rearm_sampler(sess: "_core.Session", session_kwargs: Dict[str, Any]) -> None:
    """In a forked worker: the sampler thread of the inherited session did
    not survive fork; start it again when the configuration samples, so the
    worker's samples reach the parent's report tagged by worker (through
    the worker's model file).  Needs the C core's Session.set_sampling
    (issue 10's sampler); without it nothing is re-armed here."""
    setter = getattr(sess, "set_sampling", None)
    if setter is not None and float(session_kwargs.get("sample_interval_s", 0.0)) > 0.0:
        setter(True)


def _attach_worker(inherited: Optional["_core.Session"], spool_dir: str,
                   session_kwargs: Dict[str, Any],
                   worker_tracer: bool = False) -> Optional["_core.Session"]:
    """Attach this worker process to the spool directory (once).  The Python
    tracer runs in the worker only with `worker_tracer`
    (ProfilerConfig.profile_workers_tracer): a forked worker drops the tracer
    it inherited, a spawn/forkserver worker starts none, so item times never
    include its cost."""
    if _worker.pid == os.getpid():
        return _worker.session
    _worker.pid = os.getpid()
    _worker.session = None
    sess = inherited
    if sess is None or not sess.running:
        # spawn / forkserver: nothing inherited; start a session of our own
        # A worker's timeline is not merged into the parent's report: keep
        # no traced calls there (they would cost memory and drain time).
        sess = _core.Session(**{**session_kwargs, "timeline_traced": False})
        sess.start(trace_python=worker_tracer and not _core.tracer_busy())
    else:
        if not worker_tracer:
            # fork: the tracer of whichever session traced in the parent
            # (this one, or the `codeprof run` session) came along; drop it.
            _core.tracer_stop()
        # fork: the stack sampler's thread did not come along; re-arm it
        # when the configuration samples (docs/sampling-usage.md).
        _rearm_sampler(sess, session_kwargs)
    wid = _worker_id()
    try:
        sess.attach_worker(spool_dir, wid)
    except OSError:
        # The spool directory is gone (the parent exited): record nothing.
        return None
    sess.set_role(f"worker-{wid}")
    _worker.session = sess
    # Clean shutdown marks the spool complete.  DataLoader workers leave
    # through multiprocessing's _exit_function (os._exit, no atexit), which
    # runs Finalize callbacks that have an exit priority.
    try:
        from multiprocessing import util
        util.Finalize(None, _close_worker, exitpriority=100)
    except Exception:  # pragma: no cover
        pass
    atexit.register(_close_worker)
    return sess


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------

class _DatasetCommon:
    """State shared by the map-style and iterable wrappers."""

    _dataset: Any
    _site_name: str
    _site: int
    _owner_pid: int
    _profiler: Optional["VideoOpusClipProfiler"]
    _spool_dir: str
    _session_kwargs: Dict[str, Any]
    _worker_tracer: bool
    _recording_at_pickle: bool

    def _init_common(self, dataset: Any, profiler: "VideoOpusClipProfiler") -> None:
        object.__setattr__(self, "_dataset", dataset)
        name = _next_name(type(dataset).__qualname__)
        object.__setattr__(self, "_site_name", name)
        object.__setattr__(self, "_site", _core.site(name, None, 0, _core.SITE_DATASET))
        object.__setattr__(self, "_owner_pid", os.getpid())
        object.__setattr__(self, "_profiler", profiler)
        object.__setattr__(self, "_spool_dir", profiler._data.spool_dir())
        object.__setattr__(self, "_session_kwargs", profiler.config.session_kwargs())
        cfg = profiler.config
        object.__setattr__(self, "_worker_tracer",
                           bool(cfg.enable_cprofile and cfg.profile_workers_tracer))
        object.__setattr__(self, "_recording_at_pickle", False)

    # -- pickling for spawn / forkserver workers --------------------------------

    def __getstate__(self) -> Dict[str, Any]:
        prof = self._profiler
        return {
            "dataset": self._dataset,
            "site_name": self._site_name,
            "spool_dir": self._spool_dir,
            "session_kwargs": self._session_kwargs,
            "worker_tracer": self._worker_tracer,
            "recording": bool(prof is not None and prof._recording) or self._recording_at_pickle,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_dataset", state["dataset"])
        object.__setattr__(self, "_site_name", state["site_name"])
        object.__setattr__(self, "_site",
                           _core.site(state["site_name"], None, 0, _core.SITE_DATASET))
        object.__setattr__(self, "_owner_pid", -1)  # never the loading process
        object.__setattr__(self, "_profiler", None)
        object.__setattr__(self, "_spool_dir", state["spool_dir"])
        object.__setattr__(self, "_session_kwargs", state["session_kwargs"])
        object.__setattr__(self, "_worker_tracer", bool(state.get("worker_tracer", False)))
        object.__setattr__(self, "_recording_at_pickle", state["recording"])

    # -- which session records this process's items ----------------------------------

    def _session(self) -> Optional["_core.Session"]:
        if _pid == self._owner_pid:
            prof = self._profiler
            if prof is None:
                return None
            # like a context: the first item of an enabled profiler that was
            # not started (or stopped) starts its session
            if prof._recording or (prof._armed and prof._go_live()):
                return prof._session
            return None
        sess = worker_session()
        if sess is not None:
            return sess
        if _worker.pid == _pid:
            return None  # attaching failed once: do not retry per item
        prof = self._profiler
        inherited = prof._session if prof is not None else None
        if inherited is None and not self._recording_at_pickle:
            _worker.pid = os.getpid()  # the parent was not recording
            return None
        return _attach_worker(inherited, self._spool_dir, self._session_kwargs,
                              self._worker_tracer)

    # -- behave as the dataset does ---------------------------------------------------

    @property
    def dataset(self) -> Any:
        """The wrapped dataset."""
        return self._dataset

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not found on the wrapper
        if name.startswith("__") or name in _DatasetCommon.__annotations__:
            raise AttributeError(name)
        return getattr(self._dataset, name)

    def __len__(self) -> int:
        return len(self._dataset)

    def __repr__(self) -> str:
        return f"<profiled {self._site_name}: {self._dataset!r}>"

    def get_stats(self) -> Dict[str, Any]:
        """This dataset's statistics from the C core (all processes):
        ``count``, ``avg_load_time``, ``slow_loads``, ``p50``/``p95``/``p99``/
        ``max`` (s), ``bottleneck_indices`` (slowest first), ``failures``."""
        prof = self._profiler
        if prof is None:
            raise RuntimeError("get_stats() is available in the process that wrapped the "
                               "dataset, not in a worker")
        return prof._data.dataset_stats(self._site_name)


class _MapMixin(_DatasetCommon):
    """A map-style dataset that records each item's load time by index.

    Returned by ``profiler.profile_dataset(dataset)``; behaves as `dataset`
    (len, indexing, attribute access, pickling for spawn workers)."""

    def __init__(self, dataset: Any, profiler: "VideoOpusClipProfiler") -> None:
        self._init_common(dataset, profiler)

    def __getitem__(self, index: Any) -> Any:
        sess = self._session()
        if sess is None:
            return self._dataset[index]
        site = self._site
        sess.enter(site, _core.SCOPE_ITEM)
        if type(index) is int:
            sess.attr(_core.ATTR_INDEX, index)
        try:
            return self._dataset[index]
        except BaseException:
            sess.attr(_core.ATTR_FAILED, 1)
            raise
        finally:
            sess.exit(site, _core.SCOPE_ITEM)


class _IterMixin(_DatasetCommon):
    """An iterable-style dataset whose items are timed as they are produced
    (index = position in this process's iteration)."""

    def __init__(self, dataset: Any, profiler: "VideoOpusClipProfiler") -> None:
        self._init_common(dataset, profiler)

    def __iter__(self) -> Iterator[Any]:
        it = iter(self._dataset)
        site = self._site
        for index in itertools.count():
            sess = self._session()
            if sess is None:
                try:
                    item = next(it)
                except StopIteration:
                    return
                yield item
                continue
            sess.enter(site, _core.SCOPE_ITEM)
            sess.attr(_core.ATTR_INDEX, index)
            try:
                item = next(it)
            except StopIteration:
                sess.attr(_core.ATTR_CANCEL, 1)  # the end of the stream is not an item
                sess.exit(site, _core.SCOPE_ITEM)
                return
            except BaseException:
                sess.attr(_core.ATTR_FAILED, 1)
                sess.exit(site, _core.SCOPE_ITEM)
                raise
            sess.exit(site, _core.SCOPE_ITEM)
            yield item

    def __len__(self) -> int:
        return len(self._dataset)


def _classes() -> Dict[str, type]:
    """ProfiledDataset / ProfiledIterableDataset, made once per process."""
    if not _classes_made:
        tud = _torch_data()
        map_base: Any = tud.Dataset if tud is not None else object
        iter_base: Any = tud.IterableDataset if tud is not None else object
        for name, mixin, base in (("ProfiledDataset", _MapMixin, map_base),
                                  ("ProfiledIterableDataset", _IterMixin, iter_base)):
            bases = (mixin,) if base is object else (mixin, base)
            cls = type(name, bases, {"__module__": __name__, "__qualname__": name,
                                     "__doc__": mixin.__doc__})
            _classes_made[name] = cls
            globals()[name] = cls
    return _classes_made


def __getattr__(name: str) -> Any:
    if name in ("ProfiledDataset", "ProfiledIterableDataset"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_iterable_style(dataset: Any) -> bool:
    tud = sys.modules.get("torch.utils.data")
    if tud is not None and isinstance(dataset, tud.IterableDataset):
        return True
    return not hasattr(dataset, "__getitem__") and hasattr(dataset, "__iter__")


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------

def _batch_len(batch: Any) -> int:
    """Items in a collated batch: the leading dimension of its first tensor."""
    for _ in range(4):
        shape = getattr(batch, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(batch, dict):
            if not batch:
                return -1
            batch = next(iter(batch.values()))
        elif isinstance(batch, (list, tuple)):
            if not batch:
                return 0
            first = batch[0]
            if getattr(first, "shape", None) is None and not isinstance(first, (list, tuple, dict)):
                return len(batch)
            batch = first
        else:
            return -1
    return -1


# ---------------------------------------------------------------------------
# What a dataset holds (the copy-on-write rule, CP-DATA-009)
# ---------------------------------------------------------------------------

_CONTAINERS = (list, tuple, dict, set, frozenset)
_MIN_CONTAINER_LEN = 1000   # smaller containers cannot matter for copy-on-write
_MAX_ATTRS = 64             # attributes looked at per object
_SAMPLE = 8                 # elements looked at per container


def _sample(v: Any) -> List[Any]:
    """A few elements of a container, spread over it; no deep walk."""
    n = len(v)
    if isinstance(v, (list, tuple)):
        step = max(1, n // _SAMPLE)
        return [v[i] for i in range(0, n, step)][:_SAMPLE]
    if isinstance(v, dict):
        return list(itertools.islice(v.values(), _SAMPLE))
    return list(itertools.islice(iter(v), _SAMPLE))


def _objects_per_element(x: Any) -> int:
    """Python objects an element stands for: itself, and for a small
    tuple/list the objects in it (each has a reference count)."""
    if isinstance(x, (tuple, list)) and len(x) <= 64:
        return 1 + len(x)
    if isinstance(x, dict) and len(x) <= 64:
        return 1 + 2 * len(x)
    return 1


def _array_bytes(v: Any) -> Optional[int]:
    """Bytes of a numpy array or a torch tensor (None: neither)."""
    mod = type(v).__module__ or ""
    if mod.startswith("numpy") and hasattr(v, "nbytes") and hasattr(v, "dtype"):
        return int(v.nbytes)
    if mod.startswith("torch") and hasattr(v, "element_size") and hasattr(v, "nelement"):
        return int(v.element_size() * v.nelement())
    return None


def describe_containers(ds: Any, _depth: int = 0, _prefix: str = "self") -> "tuple[str, int, int]":
    """Describes the large containers among a dataset's attributes, for the
    copy-on-write rule: ``(text, python_objects, array_bytes)`` where text is
    e.g. ``"self.samples: list of 2000000 str"``.  Bounded work: at most
    64 attributes, 8 sampled elements per container, one level into an
    attribute that is itself a dataset (``torch.utils.data.Subset.dataset``).
    Numpy arrays of dtype object count as Python objects."""
    try:
        attrs = vars(ds)
    except TypeError:
        return "", 0, 0
    parts: List[str] = []
    py_objects = 0
    array_bytes = 0
    for name, v in itertools.islice(list(attrs.items()), _MAX_ATTRS):
        if not isinstance(name, str) or name.startswith("__"):
            continue
        label = f"{_prefix}.{name}"
        try:
            if isinstance(v, _CONTAINERS):
                n = len(v)
                if n < _MIN_CONTAINER_LEN:
                    continue
                sample = _sample(v)
                types = sorted({type(x).__name__ for x in sample})
                per = (sum(_objects_per_element(x) for x in sample) / len(sample)) if sample else 1
                if isinstance(v, dict):
                    per += 1  # the keys
                py_objects += int(n * per)
                parts.append(f"{label}: {type(v).__name__} of {n} {'/'.join(types) or 'object'}")
                continue
            nbytes = _array_bytes(v)
            if nbytes is not None:
                dtype = getattr(v, "dtype", None)
                if str(dtype) == "object":
                    size = int(getattr(v, "size", 0))
                    py_objects += size
                    parts.append(f"{label}: numpy object array of {size}")
                elif nbytes >= 1 << 20:
                    array_bytes += nbytes
                    shape = tuple(getattr(v, "shape", ()))
                    parts.append(f"{label}: {type(v).__name__} {dtype} {shape}")
                continue
            if (_depth == 0 and hasattr(v, "__getitem__") and hasattr(v, "__len__")
                    and hasattr(v, "__dict__") and not isinstance(v, type)):
                t, po, ab = describe_containers(v, 1, label)
                if t:
                    parts.append(t)
                    py_objects += po
                    array_bytes += ab
        except Exception:  # a property that raises, a broken __len__: skip it
            continue
    return "; ".join(parts), py_objects, array_bytes


class ProfiledDataLoader:
    """Iterates exactly as the wrapped loader does, recording for each batch
    the time the loop waits inside ``next()`` and the step time between
    batches.  Returned by ``profiler.profile_data_loader(loader)``."""

    def __init__(self, loader: Any, profiler: "VideoOpusClipProfiler") -> None:
        if not hasattr(loader, "__iter__") or isinstance(loader, (str, bytes, dict)):
            raise TypeError("profile_data_loader(loader): expected a torch.utils.data.DataLoader "
                            f"or another iterable of batches, got {type(loader).__name__}")
        self._loader = loader
        self._profiler = profiler
        ds = getattr(loader, "dataset", None)
        label = type(ds).__qualname__ if ds is not None else type(loader).__qualname__
        self._site_name = _next_name(f"DataLoader({label})")
        self._site = _core.site(self._site_name, None, 0, _core.SITE_LOADER)
        self._epochs = 0
        self._watched: Dict[int, int] = {}  # worker pid -> worker id (memory sampler)
        self._dataset_described = False
        self._dataset_wrapper: Optional[_DatasetCommon] = None
        if ds is not None and not isinstance(ds, _DatasetCommon):
            self._dataset_wrapper = profiler._data.wrap_loader_dataset(loader, ds)
        self._describe()

    def _new_iterator(self) -> Iterator[Any]:
        """iter(loader) with item loads recorded, the loader left as it was.

        A DataLoader's iterator takes ``loader.dataset`` when it is created
        and hands it to the worker processes it starts (persistent workers
        keep it for every later epoch).  So the profiled wrapper stands in
        for the dataset only while the iterator is created, and the user's
        dataset is put back before anything else runs: ``loader.dataset``
        is the user's object, outside this call, always."""
        loader, wrapper = self._loader, self._dataset_wrapper
        if wrapper is None:
            return iter(loader)
        original = loader.__dict__.get("dataset", wrapper)
        if original is not wrapper._dataset:
            return iter(loader)  # the user changed it: leave it alone
        object.__setattr__(loader, "dataset", wrapper)
        try:
            return iter(loader)
        finally:
            object.__setattr__(loader, "dataset", original)

    def _describe(self) -> None:
        loader = self._loader
        try:
            import torch
            uses_gpu = bool(torch.cuda.is_available())
        except Exception:
            uses_gpu = False
        self._profiler._session.describe_loader(
            self._site,
            num_workers=int(getattr(loader, "num_workers", 0) or 0),
            batch_size=int(getattr(loader, "batch_size", 0) or 0),
            prefetch_factor=int(getattr(loader, "prefetch_factor", 0) or 0),
            pin_memory=bool(getattr(loader, "pin_memory", False)),
            persistent_workers=bool(getattr(loader, "persistent_workers", False)),
            uses_gpu=uses_gpu,
            iterable=_is_iterable_style(getattr(loader, "dataset", None)),
        )

    def _watch_workers(self, sess: "_core.Session", it: Any) -> None:
        """Tells the session's memory sampler about this iterator's worker
        processes (RSS, PSS, USS per worker over the run), once per pid:
        persistent workers are registered at their first epoch.  The
        workers exist once the iterator does (torch starts them in its
        constructor).  Also describes the dataset's large containers, once,
        for the copy-on-write rule (CP-DATA-009), when the workers are
        forked (the only ones that share the parent's pages).  Nothing
        happens when the
        sampler is off (memory_sample_interval_s == 0)."""
        workers = getattr(it, "_workers", None)
        if not workers:
            return
        try:
            for wid, proc in enumerate(list(workers)):
                pid = getattr(proc, "pid", None)
                if not isinstance(pid, int) or pid <= 0 or self._watched.get(pid) == wid:
                    continue
                if not sess.watch_process(pid, wid, self._site):
                    return  # the sampler is off
                self._watched[pid] = wid
            # Copy-on-write concerns forked workers only: a spawn or
            # forkserver worker unpickles a private copy of the dataset, its
            # USS grows by that copy whatever the dataset holds.
            forked = all(getattr(p, "_start_method", "fork") == "fork" for p in workers)
            if not self._dataset_described and forked:
                self._dataset_described = True
                wrapper = self._dataset_wrapper
                ds = wrapper._dataset if wrapper is not None else getattr(self._loader, "dataset",
                                                                          None)
                text, py_objects, array_bytes = describe_containers(ds)
                if text:
                    sess.describe_dataset_memory(self._site,
                                                 wrapper._site if wrapper is not None else 0,
                                                 text, py_objects, array_bytes)
        except (ValueError, OverflowError, RuntimeError, MemoryError) as exc:  # keep looping
            warnings.warn(f"codeprof: cannot follow the memory of {self._site_name}'s workers: "
                          f"{exc}", RuntimeWarning, stacklevel=3)

    @property
    def loader(self) -> Any:
        """The wrapped loader."""
        return self._loader

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __iter__(self) -> Iterator[Any]:
        prof = self._profiler
        epoch = self._epochs
        self._epochs += 1
        site = self._site
        sess = prof._session
        if not prof._recording and not (prof._armed and prof._go_live()):
            yield from self._loader
            return
        # The first wait includes creating the iterator (worker start-up).
        sess.enter(site, _core.SCOPE_BATCH)
        sess.attr(_core.ATTR_EPOCH, epoch)
        try:
            it = self._new_iterator()
        except BaseException:
            sess.attr(_core.ATTR_CANCEL, 1)
            sess.exit(site, _core.SCOPE_BATCH)
            raise
        self._watch_workers(sess, it)
        first = True
        while True:
            if not first:
                sess.enter(site, _core.SCOPE_BATCH)
                sess.attr(_core.ATTR_EPOCH, epoch)
            first = False
            try:
                batch = next(it)
            except StopIteration:
                # the end of the epoch is not a batch
                sess.attr(_core.ATTR_CANCEL, 1)
                sess.exit(site, _core.SCOPE_BATCH)
                return
            except BaseException:
                # an error (a worker's exception, a killed worker) reaches the
                # loop unchanged; the wait is not a batch either
                sess.attr(_core.ATTR_CANCEL, 1)
                sess.exit(site, _core.SCOPE_BATCH)
                raise
            sess.attr(_core.ATTR_ITEMS, _batch_len(batch))
            sess.exit(site, _core.SCOPE_BATCH)
            yield batch

    def get_stats(self) -> Dict[str, Any]:
        """This loader's statistics from the C core: ``avg_batch_time`` (mean
        wait inside next(), s), ``avg_step_time``, ``data_stall_fraction``,
        ``samples_per_s``, ``batches_per_s``, ``first_batch_latency``, counts,
        and the loader's configuration."""
        return self._profiler._data.loader_stats(self._site_name)


# ---------------------------------------------------------------------------
# The profiler's data-loading part
# ---------------------------------------------------------------------------

class DataLoadingProfiler:
    """``profiler.data_loading_profiler``: data-loading views of the report
    and the wrappers' shared state (the spool directory of worker files)."""

    def __init__(self, owner: "VideoOpusClipProfiler") -> None:
        self._owner = owner
        self._spool_dir: Optional[str] = None
        self._by_dataset: Dict[int, _DatasetCommon] = {}

    def spool_dir(self) -> str:
        """The directory worker processes write their spool files to.

        It belongs to this profiler's session: created on first use as
        ``codeprof-spool-<pid>-XXXXXX`` under ``$CODEPROF_SPOOL_BASE`` (or the
        temporary directory), emptied by ``reset()``, and removed when the
        profiler is freed or the main process exits.  Directories left by
        main processes that died (killed: no exit handlers ran) are removed
        the next time a profiler creates its own."""
        if self._spool_dir is None:
            base = os.environ.get("CODEPROF_SPOOL_BASE") or None
            pid = os.getpid()
            remove_stale_spool_dirs(base)
            path = tempfile.mkdtemp(prefix=f"{_SPOOL_PREFIX}{pid}-", dir=base)
            self._spool_dir = path
            self._owner._session.set_spool_dir(path)
            # At interpreter exit, or when the profiler is freed, whichever
            # comes first; never in a forked child (the pid check).
            weakref.finalize(self._owner, _remove_spool_dir, path, pid)
        return self._spool_dir

    def discard_spools(self) -> int:
        """Removes the worker spool files of this session (``reset()``), and
        the call-tree files (``<pid>.cpmodel``) workers wrote when they exited:
        the next report reads none of what workers recorded before.  A
        worker still running keeps writing to its (now unlinked) file, which
        no report reads.  Returns the number of files removed."""
        path = self._spool_dir
        if path is None:
            return 0
        removed = 0
        try:
            names = os.listdir(path)
        except OSError:
            return 0
        for name in names:
            if name.endswith((_SPOOL_SUFFIX, _MODEL_SUFFIX)):
                try:
                    os.unlink(os.path.join(path, name))
                    removed += 1
                except OSError:
                    pass
        return removed

    def wrap_dataset(self, dataset: Any) -> _DatasetCommon:
        if isinstance(dataset, _DatasetCommon):
            return dataset
        if dataset is None or isinstance(dataset, (str, bytes, int, float)) or not (
                hasattr(dataset, "__getitem__") or hasattr(dataset, "__iter__")):
            raise TypeError("profile_dataset(dataset): expected a dataset (an object with "
                            "__getitem__, e.g. a torch.utils.data.Dataset, or an iterable "
                            f"dataset), got {type(dataset).__name__}")
        known = self._by_dataset.get(id(dataset))
        if known is not None and known._dataset is dataset:
            return known
        classes = _classes()
        cls = classes["ProfiledIterableDataset" if _is_iterable_style(dataset)
                      else "ProfiledDataset"]
        wrapper = cls(dataset, self._owner)
        self._by_dataset[id(dataset)] = wrapper
        return wrapper

    def wrap_loader_dataset(self, loader: Any, dataset: Any) -> Optional[_DatasetCommon]:
        """The profiled wrapper for the dataset a DataLoader holds (None if
        it is not a dataset).  The loader itself is not changed:
        ProfiledDataLoader puts the wrapper in only while it creates an
        iterator (ProfiledDataLoader._new_iterator)."""
        if not isinstance(getattr(loader, "__dict__", None), dict):
            return None  # cannot stand in for its dataset without changing it
        try:
            return self.wrap_dataset(dataset)
        except TypeError:
            return None

    # -- views of the C report ---------------------------------------------------------

    def _section(self) -> Dict[str, Any]:
        # the report's data_loading section, built in C from the session's
        # (cached) model: no JSON rendered or parsed
        section: Dict[str, Any] = self._owner._session.model().report("data_loading")
        return section

    def dataset_stats(self, name: str) -> Dict[str, Any]:
        for d in self._section().get("datasets", []):
            if d.get("name") == name:
                return d
        return {"name": name, "count": 0, "avg_load_time": 0.0, "slow_loads": 0,
                "bottleneck_indices": [], "failures": 0}

    def loader_stats(self, name: str) -> Dict[str, Any]:
        for d in self._section().get("loaders", []):
            if d.get("name") == name:
                return d
        return {"name": name, "batches": 0, "avg_batch_time": 0.0}

    def get_data_loading_report(self) -> Dict[str, Any]:
        """The report's ``data_loading`` section: ``data_loading``
        (``avg_load_time``, ``slow_loads``, ``bottleneck_indices``),
        ``preprocessing`` (``avg_preprocess_time``, ``function_breakdown``),
        ``augmentation`` (``avg_augment_time``), plus ``loaders`` (stall
        analysis), ``datasets``, ``workers`` and ``stages``."""
        return self._section()


_SPOOL_PREFIX = "codeprof-spool-"
_SPOOL_SUFFIX = ".cpspool"
_MODEL_SUFFIX = ".cpmodel"  # a worker's call tree (src/model/model_io.h)
_STALE_RE = re.compile(r"codeprof-spool-(\d+)-[^/]+\Z")


def _remove_spool_dir(path: str, pid: int) -> None:
    if os.getpid() == pid:  # never from a forked child
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_spool_dirs(base: Optional[str] = None) -> List[str]:
    """Removes ``codeprof-spool-<pid>-*`` directories under `base` (default:
    the temporary directory) whose main process `<pid>` is gone (a profiled
    run that was killed, so its exit handlers never ran).  Only directories
    owned by this user are touched, symlinks never followed.  Returns the
    paths removed."""
    base = base or tempfile.gettempdir()
    removed: List[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    me, uid = os.getpid(), os.getuid()
    for entry in entries:
        m = _STALE_RE.match(entry.name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == me or pid <= 0 or _pid_alive(pid):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed
