"""VideoOpusClipProfiler: the seed's profiler object, a facade over one
``_core.Session``.

Everything measured, aggregated, analysed and rendered comes from the C
core; this module only translates the guide's calls:

* ``profiling_context(name)`` returns a C ``Scope`` (cached per name);
* ``profile_function`` / ``profile_class`` wrap callables so that each call
  (each resume, for generators and coroutines) runs inside a C ``Scope`` of
  a SITE_FUNCTION site (with ``SCOPE_HEAP`` when the memory profiler is on,
  so decorated functions are measured like memory contexts);
* ``memory_profiler`` (memory.py) adds memory contexts and
  ``profile_memory_usage``: scopes with ``SCOPE_HEAP``;
* reports, bottlenecks and statistics are views of the core's JSON report.

Module-level ``profile_function`` / ``profile_class`` record into the
*current* profiler: the most recently started VideoOpusClipProfiler, else
the process-wide default one (``get_default_profiler()``, created lazily and
not started).
"""
from __future__ import annotations

import contextlib
import errno
import inspect
import os
import threading
import weakref
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import (Any, Callable, ContextManager, Dict, List, Literal, Optional, Type, TypeVar,
                    Union, overload)

from . import _core
from ._instrument import LINE_LEVELS, Resolver, hide_from_tracer, register_lines, site_for, wrap
from .config import ProfilerConfig, check_level
from .data import DataLoadingProfiler, ProfiledDataLoader, worker_session
from .gpu import GPUProfiler
from .memory import MemoryProfiler

__all__ = [
    "PerformanceProfiler",
    "VideoOpusClipProfiler",
    "GPUProfiler",
    "MemoryProfiler",
    "get_current_profiler",
    "get_default_profiler",
    "profile_class",
    "profile_function",
]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)
PathLike = Union[str, "os.PathLike[str]"]

#: Shared no-op context manager (reusable and reentrant).
_NULL_CTX: ContextManager[None] = contextlib.nullcontext()

#: Marks wrappers made here so profile_class does not wrap twice.
_WRAPPED_MARK = "_codeprof_wrapped"

_CTX_FLAGS_BY_LEVEL = {"basic": 0, "detailed": _core.SCOPE_CPU, "comprehensive": _core.SCOPE_CPU}
_FN_FLAGS_BY_LEVEL = {
    "basic": _core.SCOPE_RSS,
    "detailed": _core.SCOPE_CPU | _core.SCOPE_RSS,
    "comprehensive": _core.SCOPE_CPU | _core.SCOPE_RSS,
}

# The current profiler (most recently started) and the lazily created
# default.  Plain module globals: the decorators' hot path reads them.
_current: Optional["VideoOpusClipProfiler"] = None
#: The most recently started profiler once it stopped, held weakly so that
#: `del profiler` frees it (and its C session) while get_current_profiler()
#: still finds it as long as the user keeps it.
_last_stopped: Optional["weakref.ReferenceType[VideoOpusClipProfiler]"] = None
#: The profiler whose session traces Python calls, if any.
_tracing: Optional["VideoOpusClipProfiler"] = None
#: The most recently created enabled profiler (weakly held): module-level
#: decorators record into it when no profiler is started.
_latest: Optional["weakref.ReferenceType[VideoOpusClipProfiler]"] = None


class _Both:
    """Enters two C scopes: a profiler that could not get the tracer (it
    runs under `codeprof run`, say) records its contexts and decorated
    functions in its own session and in the tracing one, so they appear in
    both reports (the tracer does not see decorated function bodies)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b

    def __enter__(self) -> Any:
        self.a.__enter__()
        self.b.__enter__()
        return self.a

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Literal[False]:
        self.b.__exit__(et, ev, tb)
        self.a.__exit__(et, ev, tb)
        return False
_default: Optional["VideoOpusClipProfiler"] = None
_default_lock = threading.Lock()
#: Context names whose C scope object a profiler caches (past it, a name's
#: scope is made at each profiling_context() call: a site lookup, ~0.3 us).
_CTX_CACHE_MAX = 4096


def _class_methods(cls: type) -> List[str]:
    """Names in cls.__dict__ that profile_class wraps: public functions,
    static and class methods, plus __init__ and __call__."""
    names = []
    for name, attr in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        if isinstance(attr, (staticmethod, classmethod)) or inspect.isfunction(attr):
            names.append(name)
    return names


def _decorate_class(cls: C, instrument: Callable[[Callable[..., Any]], Callable[..., Any]]) -> C:
    for name in _class_methods(cls):
        attr = vars(cls)[name]
        if isinstance(attr, (staticmethod, classmethod)):
            fn = attr.__func__
            if getattr(fn, _WRAPPED_MARK, False):
                continue
            new: Any = type(attr)(instrument(fn))
        else:
            if getattr(attr, _WRAPPED_MARK, False):
                continue
            new = instrument(attr)
        setattr(cls, name, new)
    return cls


class PerformanceProfiler:
    """``profiler.performance_profiler``: function statistics of the report."""

    def __init__(self, owner: "VideoOpusClipProfiler") -> None:
        self._owner = owner

    def get_profile_stats(self) -> Dict[str, Any]:
        """Function statistics, as the C core reported them.

        Keys: ``slow_functions`` (list of {'function', 'execution_time' (s),
        'value', 'threshold', 'recommendation', ...}),
        ``memory_intensive_functions`` ({'function', 'memory_delta' (bytes),
        ...}; with the memory profiler on, decorated functions and memory
        contexts are measured as in get_memory_report()), ``functions`` (the top functions by inclusive and by self
        time, see the report policy: inclusive and self time, CPU time,
        percentiles, memory delta), ``total_functions_profiled`` and
        ``total_calls`` (over every function)."""
        model = self._owner._session.model()  # built once, shared by both sections
        perf = model.report("performance")
        bottlenecks = model.report("bottlenecks")
        stats = {
            "slow_functions": bottlenecks["slow_functions"],
            "memory_intensive_functions": bottlenecks["memory_intensive_functions"],
            "functions": perf["functions"],
            "total_functions_profiled": perf["total_functions_profiled"],
            "total_calls": perf["total_calls"],
        }
        note = self._owner._nothing_recorded(model, "get_profile_stats() was called")
        if note is not None:  # say so rather than return silent zeros
            stats["recorded"] = False
            stats["note"] = note
        return stats

    def profiling_context(self, name: str) -> ContextManager[Any]:
        """Same as the owner's profiling_context()."""
        return self._owner.profiling_context(name)

    def profile_function(self, func_or_level: Any = None, level: Optional[str] = None) -> Any:
        """Same as the owner's profile_function()."""
        return self._owner.profile_function(func_or_level, level)


class VideoOpusClipProfiler:
    """The profiler of the guide.  ``config`` defaults to ProfilerConfig().

    The configuration is read when the profiler is created.  One profiler
    owns one C session; data accumulates over start/stop cycles until
    ``reset()``.
    """

    def __init__(self, config: Optional[ProfilerConfig] = None) -> None:
        if config is None:
            config = ProfilerConfig()
        elif not isinstance(config, ProfilerConfig):
            raise TypeError("VideoOpusClipProfiler(config): config must be a ProfilerConfig "
                            f"(see create_profiler_config()), got {type(config).__name__}")
        config.validate()  # fields may have been changed after construction
        self.config: ProfilerConfig = config
        self._enabled = config.enabled
        self._session = _core.Session(**config.session_kwargs())
        #: The session has a stack sampler (config.sampling_on when made).
        self._samples = config.sampling_on
        self._started = False    # between start_profiling() and stop_profiling()
        self._recording = False  # the C session runs: scopes record
        #: Contexts and decorated functions start the C session (without the
        #: whole-program instruments) at their first use: true for an enabled
        #: profiler until stop_profiling() (see docs/python-api.md).
        self._armed = self._enabled
        self._pid = os.getpid()  # a forked copy never starts a session of its own
        self._live_lock = threading.Lock()
        self._warned_empty = False
        self._ctx: Dict[str, ContextManager[Any]] = {}
        self._ctx_flags = _CTX_FLAGS_BY_LEVEL[config.profile_level]
        #: SCOPE_HEAP when the memory profiler is on: decorated functions are
        #: measured as memory contexts are (memory_intensive_functions).
        self._mem_flags = _core.SCOPE_HEAP if self._enabled and config.memory_profiler_on else 0
        self._fn_flags = _FN_FLAGS_BY_LEVEL[config.profile_level] | self._mem_flags
        self._fn_scopes: Dict[int, Any] = {}
        #: The tracing profiler this one also records into (see _Both).
        self._also: Optional["VideoOpusClipProfiler"] = None
        self.performance_profiler = PerformanceProfiler(self)
        #: Memory contexts, memory-measured functions, the memory report
        #: (the seed's ``memory_profiler``; memory.py, docs/memory.md).
        self.memory_profiler = MemoryProfiler(self)
        #: CUDA operations and contexts timed on the GPU, CUDA memory,
        #: synchronization points, utilization (the seed's ``gpu_profiler``;
        #: gpu.py, docs/gpu.md).
        self.gpu_profiler = GPUProfiler(self)
        self._data = DataLoadingProfiler(self)
        #: Data-loading views (the seed's ``data_loading_profiler``).
        self.data_loading_profiler = self._data
        #: Path of the report saved by the last stop_profiling() when
        #: config.save_profiles is set.
        self.last_report_path: Optional[str] = None
        # The report stop_profiling() saved (save_profiles) while nothing was
        # recorded since: a save_comprehensive_report() without a path
        # returns it instead of writing a second file.
        self._autosaved: Optional[str] = None
        if self._enabled:
            global _latest
            _latest = weakref.ref(self)

    # -- lifecycle -----------------------------------------------------------

    @property
    def is_profiling(self) -> bool:
        """True between start_profiling() and stop_profiling()."""
        return self._started

    @property
    def session(self) -> "_core.Session":
        """The underlying C session (for the C-level API)."""
        return self._session

    def _go_live(self) -> bool:
        """Starts the C session without the whole-program instruments, at
        the first use of a context or decorated function of an enabled
        profiler that was not started (or stopped).  Returns True when
        scopes now record into this profiler's session; False in another
        process (a forked copy) or once disarmed."""
        if self._pid != os.getpid():
            return False
        with self._live_lock:
            if self._recording:
                return True
            if not self._armed:
                return False
            if not self._session.running:
                # Scopes only: the stack sampler, like the tracer, is a
                # whole-program instrument that start_profiling() turns on.
                self._set_sampling(False)
                self._session.start(trace_python=False)
            self._recording = True
            return True

    def _set_sampling(self, on: bool) -> None:
        """Turns the session's stack sampler on or off (it runs only when
        config.sampling_on gave the session a period).  Needs the C core's
        Session.set_sampling (issue 10's sampler); without it the sampler
        follows the session."""
        setter = getattr(self._session, "set_sampling", None)
        if setter is not None and self._samples:
            setter(on)

    def start_profiling(self) -> None:
        """Starts recording with the whole-program instruments (the C
        tracer if config.enable_cprofile, the stack sampler if
        config.sampling_on) and makes this the current
        profiler.  Contexts and decorated functions record without it too
        (from their first use); this adds the tracer.  RuntimeError if
        already started."""
        global _current, _tracing
        if self._started:
            raise RuntimeError("VideoOpusClipProfiler.start_profiling(): profiling is already "
                               "running; call stop_profiling() first")
        self._autosaved = None
        if self._enabled:
            trace = self.config.enable_cprofile
            if trace and _core.tracer_busy():
                # Another profiler already traces every call (e.g. this
                # script runs under `codeprof run`): one tracer per process.
                # Record this profiler's scopes and decorated functions, and
                # leave the call tracing to the other one.
                warnings.warn("VideoOpusClipProfiler: another profiler is already tracing "
                              "Python calls in this process (e.g. `codeprof run`); this one "
                              "records its contexts and decorated functions (in both "
                              "reports) but does not trace calls",
                              RuntimeWarning, stacklevel=2)
                trace = False
            also = _tracing if (self.config.enable_cprofile and not trace) else None
            if also is not self._also:
                self._also = also
                self._ctx.clear()
                self.memory_profiler._forget_contexts()
            with self._live_lock:
                self._set_sampling(True)  # config.sampling_on: sample from here on
                if self._session.running:
                    # Live since a context or decorated function ran: restart
                    # with the tracer (what was recorded stays; a scope open
                    # across this call is closed here, as at a stop).
                    if trace:
                        self._session.stop()
                        self._session.start(trace_python=True)
                else:
                    self._session.start(trace_python=trace)
                self._recording = True
            if trace:
                _tracing = self
        self._started = True
        self._armed = self._enabled
        _current = self

    def stop_profiling(self) -> None:
        """Stops recording, the whole-program instruments and the contexts
        and decorated functions alike, until the next start_profiling();
        the C core folds what was recorded.  With config.save_profiles the
        report is then saved to output_dir (its path is in
        last_report_path; saving a report with nothing recorded warns).
        RuntimeError if neither started nor recording."""
        live = self._recording and self._pid == os.getpid()
        if not self._started and not live:
            raise RuntimeError("VideoOpusClipProfiler.stop_profiling(): profiling is not "
                               "running; call start_profiling() first")
        with self._live_lock:
            self._armed = False
            self._recording = False
        self._started = False
        self._release_tracer()
        self._release_current()
        self.gpu_profiler._stop()
        if self._enabled:
            if self._session.running:
                self._session.stop()
            if self.config.save_profiles:
                self._autosaved = None
                self._nothing_recorded(self._session.model(), "stop_profiling() saves a report")
                self.last_report_path = self._autosaved = self.save_comprehensive_report()

    def _release_current(self) -> None:
        global _current, _last_stopped
        if _current is self:
            _current = None
            _last_stopped = weakref.ref(self)

    def _release_tracer(self) -> None:
        global _tracing
        if _tracing is self:
            _tracing = None

    def _stopped_by_owner(self) -> None:
        """Bookkeeping of stop_profiling() for a caller (the codeprof
        command) that stopped the C session itself so that no facade frame
        is traced; the session must not be running any more."""
        if self._session.running:
            raise RuntimeError("_stopped_by_owner(): the session is still running")
        self._release_tracer()
        self._release_current()
        with self._live_lock:
            self._armed = False
            self._recording = False
        self._started = False

    def reset(self) -> None:
        """Discards everything recorded, worker spools included.
        RuntimeError while profiling (between start_profiling() and
        stop_profiling()); a session that contexts or decorated functions
        started is stopped first and starts again at their next use."""
        if self._started:
            raise RuntimeError("VideoOpusClipProfiler.reset(): profiling is running; "
                               "call stop_profiling() first")
        with self._live_lock:
            if self._session.running:
                self._session.stop()
            self._recording = False
        self._session.reset()
        self._autosaved = None
        self._data.discard_spools()  # workers' records are the session's too
        self._warned_empty = False
        self.memory_profiler._reset()
        self.gpu_profiler._reset()

    def _nothing_recorded(self, model: Any, what: str) -> Optional[str]:
        """None when `model` holds any call; else the sentence saying why
        nothing was recorded, warned (RuntimeWarning) once per profiler."""
        if model.functions_profiled:
            return None
        if not self._enabled:
            why = "the profiler is disabled (config.enabled=False)"
        elif self._armed:
            why = ("no profiling_context, decorated function or profiled data loader ran, and "
                   "start_profiling() was not called")
        else:
            why = ("nothing ran while it was recording: contexts, decorated functions and the "
                   "tracer record between start_profiling() and stop_profiling() (and, before "
                   "the first start_profiling(), from their first use)")
        note = f"codeprof recorded nothing: {why}"
        if not self._warned_empty:
            self._warned_empty = True
            warnings.warn(f"VideoOpusClipProfiler: {what}, but {note}", RuntimeWarning,
                          stacklevel=3)
        return note

    def __enter__(self) -> "VideoOpusClipProfiler":
        self.start_profiling()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Literal[False]:
        if self._started:
            self.stop_profiling()
        return False

    # -- instruments -----------------------------------------------------------

    def profiling_context(self, name: str) -> ContextManager[Any]:
        """A context manager timing its block as the scope `name` (wall
        time, and thread CPU time above the "basic" level).  Nestable, usable
        from any thread, reusable; the returned object is the C Scope, so
        enter+exit costs well under a microsecond.  Records nothing unless
        profiling is running."""
        if not self._recording and self._armed:
            self._go_live()
        ctx = self._ctx.get(name)
        if ctx is None:
            ctx = self._new_context(name)
        return ctx

    def _new_context(self, name: str) -> ContextManager[Any]:
        if not isinstance(name, str):
            raise TypeError("VideoOpusClipProfiler.profiling_context(name): name must be a str, "
                            f"got {type(name).__name__} {name!r}")
        ctx = self._named_context(name, self._ctx_flags)
        # Bounded: names built at run time (f"clip_{i}") would otherwise keep
        # one cached object each for the profiler's life.
        if len(self._ctx) < _CTX_CACHE_MAX:
            self._ctx[name] = ctx
        return ctx

    def _named_context(self, name: str, flags: int) -> ContextManager[Any]:
        """The context object of a named scope (a SITE_SCOPE site) with
        `flags`: a shared no-op for a disabled profiler, the C Scope, or
        both scopes when this profiler also records into the tracing one."""
        if not self._enabled:
            return _NULL_CTX
        ctx: ContextManager[Any] = self._scope(name, _core.SITE_SCOPE, flags)
        also = self._also
        if also is not None and also._recording:
            ctx = _Both(ctx, also._scope(name, _core.SITE_SCOPE, flags))
        return ctx

    def _scope(self, name: str, kind: int, flags: int, file: Optional[str] = None,
               line: int = 0) -> Any:
        """A C Scope of this session for the site (name, file, line, kind).
        Extension point for instruments of other kinds (data loading...)."""
        # Names built at run time (f"clip_{i}") come and go with the
        # session: its own site table holds them and is freed with it.
        return self._session.scope(self._session.site(name, file, line, kind), flags)

    def _function_scope(self, site: int, flags: int) -> Any:
        """The cached Scope of this session for a function site."""
        key = (site << 8) | flags  # SCOPE_* bits fit in 8
        scope = self._fn_scopes.get(key)
        if scope is None:
            scope = self._fn_scopes.setdefault(key, self._session.scope(site, flags))
        return scope

    def _instrument(self, func: F, level: Optional[str] = None,
                    kind: int = _core.SITE_FUNCTION, name: Optional[str] = None,
                    extra_flags: int = 0) -> F:
        """Wraps `func` so each call (resume) is a scope of this profiler.
        Extension point: later instruments pass their own site kind and
        scope flags (memory_profiler.profile_memory_usage: SCOPE_HEAP).
        Explicitly profiled functions (SITE_FUNCTION) get SCOPE_HEAP when
        the memory profiler is on."""
        if not callable(func):
            raise TypeError("profile_function: expected a function, "
                            f"got {type(func).__name__} {func!r}")
        lvl = self.config.profile_level if level is None else level
        flags = _FN_FLAGS_BY_LEVEL[lvl] | extra_flags
        if kind == _core.SITE_FUNCTION:
            flags |= self._mem_flags
        if not self._enabled:
            return func
        lines = bool(self.config.enable_line_profiler and lvl in LINE_LEVELS
                     and register_lines(func))  # line-level timing (docs/line-profiling.md)
        site = site_for(func, kind, name)
        scope = self._session.scope(site, flags)
        worker_scopes: Dict[int, Any] = {}

        also_scopes: Dict[int, Any] = {}

        def resolve() -> Any:
            if self._recording:
                also = self._also
                if also is None or not also._recording:
                    return scope
                both = also_scopes.get(id(also))
                if both is None:
                    both = also_scopes.setdefault(
                        id(also), _Both(scope, also._session.scope(site, flags)))
                return both
            if self._armed and self._go_live():
                return scope  # first use before start_profiling()
            # In a DataLoader worker started by spawn/forkserver this
            # profiler is a fresh, stopped copy: record into the session the
            # worker attached to its spool instead.
            ws = worker_session()
            if ws is None:
                return None
            ws_scope = worker_scopes.get(id(ws))
            if ws_scope is None:
                ws_scope = worker_scopes.setdefault(id(ws), ws.scope(site, flags))
            return ws_scope

        hide_from_tracer(resolve)
        wrapper = wrap(func, resolve, lines)
        setattr(wrapper, _WRAPPED_MARK, True)
        return wrapper

    @overload
    def profile_function(self, func_or_level: F, level: Optional[str] = None) -> F: ...

    @overload
    def profile_function(self, func_or_level: Optional[str] = None,
                         level: Optional[str] = None) -> Callable[[F], F]: ...

    def profile_function(self, func_or_level: Any = None, level: Optional[str] = None) -> Any:
        """Decorator timing every call of a function in this profiler.

        Use bare (``@profiler.profile_function``) or with a level
        (``@profiler.profile_function("detailed")``).  "basic" records wall
        time and the RSS delta per call; "detailed"/"comprehensive" add
        thread CPU time.  Without a level, config.profile_level applies.
        With the memory profiler on (config.enable_memory_profiler or
        enable_memory_tracking) each call is also measured as a memory
        context is (net change and peak; docs/memory.md), which is what
        ``memory_intensive_functions`` reports.  Generators, coroutines and async generators keep their flavour and
        are timed per resume.  Calls made while the profiler is not running
        record nothing.  A class is passed on to profile_class()."""
        if isinstance(func_or_level, type):
            return self.profile_class(func_or_level, level)
        if callable(func_or_level):
            lvl = None if level is None else check_level(level, "profile_function(level)")
            return self._instrument(func_or_level, lvl)
        if func_or_level is not None and level is not None:
            raise TypeError("profile_function(): give the level once, got "
                            f"{func_or_level!r} and level={level!r}")
        lvl_arg = func_or_level if func_or_level is not None else level
        lvl2 = None if lvl_arg is None else check_level(lvl_arg, "profile_function(level)")

        def decorator(func: F) -> F:
            if isinstance(func, type):
                return self.profile_class(func, lvl2)
            return self._instrument(func, lvl2)

        return decorator

    @overload
    def profile_class(self, cls_or_level: C, level: Optional[str] = None) -> C: ...

    @overload
    def profile_class(self, cls_or_level: Optional[str] = None,
                      level: Optional[str] = None) -> Callable[[C], C]: ...

    def profile_class(self, cls_or_level: Any = None, level: Optional[str] = None) -> Any:
        """Class decorator: profile_function on every public method defined
        in the class body (static and class methods included) and on
        __init__ and __call__.  Use bare or with a level."""
        if isinstance(cls_or_level, type):
            lvl = None if level is None else check_level(level, "profile_class(level)")
            return _decorate_class(cls_or_level, lambda f: self._instrument(f, lvl))
        lvl_arg = cls_or_level if cls_or_level is not None else level
        lvl2 = None if lvl_arg is None else check_level(lvl_arg, "profile_class(level)")

        def decorator(cls: C) -> C:
            if not isinstance(cls, type):
                raise TypeError(f"profile_class: expected a class, got {type(cls).__name__}")
            return _decorate_class(cls, lambda f: self._instrument(f, lvl2))

        return decorator

    # -- data loading --------------------------------------------------------------

    def profile_dataset(self, dataset: Any) -> Any:
        """A wrapper that behaves as `dataset` (len, indexing, attributes,
        pickling for spawn workers; a torch map-style or iterable Dataset)
        and records each item's load time by index, in DataLoader worker
        processes too.  ``get_stats()`` gives avg_load_time, slow_loads,
        percentiles, bottleneck_indices and failures.  TypeError if
        `dataset` is not a dataset."""
        return self._data.wrap_dataset(dataset)

    def profile_data_loader(self, loader: Any) -> ProfiledDataLoader:
        """A wrapper that iterates exactly as `loader` does and records, per
        batch, the wait inside next() and the step time between batches;
        the loader's dataset is instrumented too (item times from its
        workers).  ``get_stats()`` gives avg_batch_time, the data-stall
        fraction, samples/s, batches/s and first-batch latency.  TypeError
        if `loader` is not iterable."""
        return ProfiledDataLoader(loader, self)

    def profile_preprocessing(self, func: F) -> F:
        """Decorator: each call is a preprocessing stage (attributed per
        item when called inside a dataset's __getitem__, in workers too)."""
        return self._instrument(func, kind=_core.SITE_PREPROCESS)

    def profile_augmentation(self, func: F) -> F:
        """Decorator: each call is an augmentation stage."""
        return self._instrument(func, kind=_core.SITE_AUGMENT)

    # -- reports -----------------------------------------------------------------

    def get_comprehensive_report(self) -> Dict[str, Any]:
        """The C core's report (docs/report-schema.md) as a dict, equal to
        the saved JSON report, built in C from the session's model (no JSON
        is rendered or parsed; the model is reused until new data arrives).
        While profiling, it covers everything recorded so far."""
        model = self._session.model()
        result: Dict[str, Any] = model.report()
        note = self._nothing_recorded(model, "get_comprehensive_report() was called")
        if note is not None:  # say so rather than return silent zeros
            result["meta"]["recorded"] = False
            result["meta"]["note"] = note
        return result

    def get_text_summary(self) -> str:
        """The C core's human-readable summary (top functions, findings)."""
        return self._session.report_text()

    def identify_bottlenecks(self) -> Dict[str, Any]:
        """The report's bottlenecks: every key always present --
        slow_functions, memory_intensive_functions, slow_data_loading,
        slow_preprocessing, slow_gpu_operations (lists of findings with the
        measured value, the threshold and a recommendation) and
        recommendations (unique sentences, most severe first)."""
        model = self._session.model()
        bottlenecks: Dict[str, Any] = model.report("bottlenecks")
        note = self._nothing_recorded(model, "identify_bottlenecks() was called")
        if note is not None:  # the one sentence a reader of recommendations sees
            bottlenecks["recommendations"] = [note] + list(bottlenecks["recommendations"])
        return bottlenecks

    def _report_path(self, path: Optional[PathLike], fmt: str) -> Path:
        out_dir = Path(os.fspath(self.config.output_dir))
        if path is None:
            now = time.time()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
            ms = int((now % 1) * 1000)
            stem = f"profile_{stamp}.{ms:03d}_{os.getpid()}"
            ending = _FORMAT_ENDINGS[fmt]
            p = out_dir / f"{stem}{ending}"
            n = 2
            while p.exists():  # two saves in one millisecond: never overwrite
                p = out_dir / f"{stem}-{n}{ending}"
                n += 1
            return p
        given = Path(os.fspath(path))
        if given.is_absolute():
            p = given
        else:
            # A relative path goes inside output_dir.  When its directory
            # part names a file in the current directory, the caller most
            # likely meant that place: refuse rather than write elsewhere.
            head = Path(given.parts[0]) if len(given.parts) > 1 else None
            if head is not None and head.exists() and not head.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, f"save_comprehensive_report(): '{head}' in the current "
                    f"directory is a file, not a directory; a relative report path is placed "
                    f"under output_dir ('{out_dir}'): pass an absolute path", str(head))
            p = out_dir / given
        # Saving into a path whose parent (or any ancestor) is a file is an
        # error naming that file.
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise NotADirectoryError(
                        errno.ENOTDIR, f"save_comprehensive_report(): cannot save '{p}': "
                        f"'{parent}' is a file, not a directory", str(parent))
                break
        return p

    def save_comprehensive_report(self, path: Optional[PathLike] = None,
                                  format: Optional[str] = None) -> str:
        """Writes the report atomically (one file) and returns its path;
        prints nothing.

        The format (docs/exports.md): `format` if given, one of "json",
        "text", "pstats", "speedscope", "collapsed", "trace"; else the one
        the path's ending asks for (.json, .txt, .prof/.pstats,
        .speedscope.json, .collapsed, .trace.json/.perfetto.json); else
        "json".  A `format` that contradicts the path's ending (format=
        "pstats" with "x.json") is a ValueError naming both; a path with no
        known ending takes the given format as is.

        No path: ``<output_dir>/profile_<date-time>_<pid>.<ending>``, or the
        report stop_profiling() just saved (config.save_profiles) when
        nothing was recorded since, so one save gives one file.  A bare
        relative path is placed inside output_dir (created if missing); an
        absolute one is used as is.  A path whose parent is a file raises
        NotADirectoryError naming it; an unwritable path raises OSError
        naming it; nothing recorded is lost and a later save can succeed."""
        if format is not None and format not in _FORMAT_ENDINGS:
            raise ValueError("save_comprehensive_report(format): must be one of "
                             f"{', '.join(repr(f) for f in _FORMAT_ENDINGS)}, got {format!r}")
        by_ending = _core.format_for_path(os.fspath(path)) if path is not None else None
        if format is not None and by_ending is not None and by_ending != format:
            raise ValueError(f"save_comprehensive_report(): format={format!r} contradicts the "
                             f"path '{os.fspath(path)}', whose ending asks for {by_ending!r}; "
                             "drop one of them or make them agree")
        fmt = format or by_ending or "json"
        if path is None and self._autosaved is not None and fmt == "json" \
                and os.path.exists(self._autosaved):
            return self._autosaved
        p = self._report_path(path, fmt)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(e.errno, f"save_comprehensive_report(): cannot create the directory "
                          f"of '{p}': {e.strerror}", str(p)) from e
        self._session.save(str(p), fmt)
        return str(p)

    def __repr__(self) -> str:
        state = "profiling" if self._started else "stopped"
        return (f"<VideoOpusClipProfiler {state} level={self.config.profile_level!r} "
                f"enabled={self._enabled} tracer={self._session.tracer!r}>")


# File ending of each report format for a default report name
# (codeprof_format_for_path reads them back as the same format).
_FORMAT_ENDINGS: Dict[str, str] = {
    "json": ".json", "text": ".txt", "pstats": ".prof", "speedscope": ".speedscope.json",
    "collapsed": ".collapsed", "trace": ".trace.json",
}


# The facade's own frames that run while the tracer is on stay out of reports.
hide_from_tracer(VideoOpusClipProfiler.start_profiling, VideoOpusClipProfiler.stop_profiling,
                 VideoOpusClipProfiler._stopped_by_owner, VideoOpusClipProfiler._function_scope,
                 VideoOpusClipProfiler.is_profiling, VideoOpusClipProfiler._release_tracer,
                 VideoOpusClipProfiler._release_current, VideoOpusClipProfiler._go_live,
                 _Both.__enter__, _Both.__exit__)


# ---------------------------------------------------------------------------
# The current / default profiler and the module-level decorators
# ---------------------------------------------------------------------------

def get_default_profiler() -> VideoOpusClipProfiler:
    """The process-wide default profiler (ProfilerConfig() defaults),
    created on first use and not started."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = VideoOpusClipProfiler()
    return _default


def get_current_profiler() -> VideoOpusClipProfiler:
    """The most recently started profiler while it runs; else the one last
    stopped (while referenced); else the most recently created enabled
    profiler that was never stopped (module-level decorators record into
    it from their first call); else the default profiler."""
    if _current is not None:
        return _current
    last = _last_stopped() if _last_stopped is not None else None
    if last is not None:
        return last
    latest = _latest() if _latest is not None else None
    return latest if latest is not None and latest._armed else get_default_profiler()


def _current_resolver(site: int, level: Optional[str]) -> Resolver:
    fixed_flags = None if level is None else _FN_FLAGS_BY_LEVEL[level]

    def resolve() -> Any:
        prof = _current
        if prof is None:
            prof = _latest() if _latest is not None else None
            if prof is None or not prof._armed:
                prof = _default
        if prof is None:
            return None
        if not prof._recording and not (prof._armed and prof._go_live()):
            return None
        flags = prof._fn_flags if fixed_flags is None else fixed_flags | prof._mem_flags
        return prof._function_scope(site, flags)

    hide_from_tracer(resolve)
    return resolve


def _instrument_current(func: F, level: Optional[str]) -> F:
    if not callable(func):
        raise TypeError(f"profile_function: expected a function, got {type(func).__name__} "
                        f"{func!r}")
    # timed only into a session with lines=True (enable_line_profiler)
    lines = bool((level is None or level in LINE_LEVELS) and register_lines(func))
    wrapper = wrap(func, _current_resolver(site_for(func, _core.SITE_FUNCTION), level), lines)
    setattr(wrapper, _WRAPPED_MARK, True)
    return wrapper


@overload
def profile_function(func_or_level: F, level: Optional[str] = None) -> F: ...


@overload
def profile_function(func_or_level: Optional[str] = None,
                     level: Optional[str] = None) -> Callable[[F], F]: ...


def profile_function(func_or_level: Any = None, level: Optional[str] = None) -> Any:
    """Module-level ``@profile_function`` / ``@profile_function("detailed")``:
    like VideoOpusClipProfiler.profile_function, recording into the current
    profiler at call time (see get_current_profiler()).  Without a level the
    current profiler's config.profile_level applies."""
    if isinstance(func_or_level, type):
        return profile_class(func_or_level, level)
    if callable(func_or_level):
        lvl = None if level is None else check_level(level, "profile_function(level)")
        return _instrument_current(func_or_level, lvl)
    if func_or_level is not None and level is not None:
        raise TypeError("profile_function(): give the level once, got "
                        f"{func_or_level!r} and level={level!r}")
    lvl_arg = func_or_level if func_or_level is not None else level
    lvl2 = None if lvl_arg is None else check_level(lvl_arg, "profile_function(level)")

    def decorator(func: F) -> F:
        if isinstance(func, type):
            return profile_class(func, lvl2)
        return _instrument_current(func, lvl2)

    return decorator


@overload
def profile_class(cls_or_level: C, level: Optional[str] = None) -> C: ...


@overload
def profile_class(cls_or_level: Optional[str] = None,
                  level: Optional[str] = None) -> Callable[[C], C]: ...


def profile_class(cls_or_level: Any = None, level: Optional[str] = None) -> Any:
    """Module-level ``@profile_class("detailed")``: profile_function on every
    public method of the class (and __init__/__call__), recording into the
    current profiler at call time."""
    if isinstance(cls_or_level, type):
        lvl = None if level is None else check_level(level, "profile_class(level)")
        return _decorate_class(cls_or_level, lambda f: _instrument_current(f, lvl))
    lvl_arg = cls_or_level if cls_or_level is not None else level
    lvl2 = None if lvl_arg is None else check_level(lvl_arg, "profile_class(level)")

    def decorator(cls: C) -> C:
        if not isinstance(cls, type):
            raise TypeError(f"profile_class: expected a class, got {type(cls).__name__}")
        return _decorate_class(cls, lambda f: _instrument_current(f, lvl2))

    return decorator
