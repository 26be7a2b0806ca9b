"""GPUProfiler: the guide's ``profiler.gpu_profiler``.

A facade like the rest of the package: the C core measures (src/gpu/).  A
CUDA operation -- a ``profile_cuda_operation``-decorated call or a
``cuda_context(name)`` block -- is one ``_core.GpuOp``: at its start the
core records a CUDA event on the current stream of the CUDA context the
program made (torch's), at its end a second one, and opens/closes a host
scope so the operation is also in the call tree with its host time.  Nothing
waits for the GPU: the events are resolved when a report is taken.  The
figures land in the report's ``gpu`` section (docs/report-schema.md), which
``get_gpu_report()`` returns as a dict built in C from the session's report
model, like every other view.

What this file adds is what only Python knows: torch's current stream and
its caching allocator's figures (read only when torch has already
initialised CUDA in this process: the profiler never initialises CUDA, so a
DataLoader forked later keeps healthy workers), and the documented fallback
for synchronization points when CUPTI is not available: torch's calls that
block the host on the GPU are timed and blamed on the calling line
(docs/gpu.md, "Synchronization points").
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar, overload

from . import _core
from ._instrument import hide_from_tracer, site_for, wrap

if TYPE_CHECKING:  # pragma: no cover
    from .profiler import VideoOpusClipProfiler

__all__ = ["GPUProfiler", "SYNC_KINDS"]

F = TypeVar("F", bound=Callable[..., Any])

#: Kinds of synchronization point (src/model/model_gpu.h, CP_GPU_SYNC_*).
SYNC_DEVICE, SYNC_STREAM, SYNC_EVENT, SYNC_MEMCPY, SYNC_OTHER = range(5)
SYNC_KINDS: Tuple[str, ...] = ("device", "stream", "event", "memcpy", "other")

#: Context names whose site id is cached (as profiling_context's objects).
_CTX_CACHE_MAX = 4096

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _cuda() -> Any:
    """``torch.cuda`` when torch is imported and has already initialised
    CUDA in this process, else None.  Never imports torch, never
    initialises CUDA (``torch.cuda.is_initialized`` only reads a flag)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_initialized():
            return None
    except Exception:  # a broken or partial torch: time on the host
        return None
    return cuda


class _NullOp:
    """What a GPU operation is when nothing records (profiler disabled, a
    forked copy of a profiler): a context manager that does nothing."""

    __slots__ = ()

    def __enter__(self) -> "_NullOp":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


_NULL_OP = _NullOp()


class _CudaOp:
    """One CUDA operation: events on torch's current stream (the default
    stream when torch has not initialised CUDA, which the core then times on
    the host only) and, with ``gpu_memory``, the caching allocator's
    allocated / reserved / high-water bytes before and after."""

    __slots__ = ("_op", "_mem")

    def __init__(self, op: Any, mem: bool) -> None:
        self._op = op
        self._mem = mem

    def __enter__(self) -> "_CudaOp":
        cuda = _cuda()
        if cuda is None:
            self._op.begin(0, -1, -1, -1)
        elif self._mem:
            self._op.begin(cuda.current_stream().cuda_stream, cuda.memory_allocated(),
                           cuda.memory_reserved(), cuda.max_memory_allocated())
        else:
            self._op.begin(cuda.current_stream().cuda_stream, -1, -1, -1)
        return self

    def __exit__(self, *exc: Any) -> bool:
        cuda = _cuda() if self._mem else None
        if cuda is None:
            self._op.end(-1, -1, -1)
        else:
            self._op.end(cuda.memory_allocated(), cuda.memory_reserved(),
                         cuda.max_memory_allocated())
        return False


# -- synchronization points without CUPTI ------------------------------------

class _SyncFallback:
    """Times torch's host-blocking calls when CUPTI is not there to see
    them (docs/gpu.md): ``torch.cuda.synchronize``, ``Tensor.item``,
    ``Tensor.cpu``, ``Tensor.tolist`` and ``Tensor.to`` of a CUDA tensor to
    the CPU, ``torch.cuda.Stream.synchronize`` and
    ``torch.cuda.Event.synchronize``.  Each call's wall time is the time the
    host was blocked (the copy included), blamed on the innermost calling
    frame outside the profiler and torch.  Process-wide (one set of
    wrappers), installed while a profiler with ``enable_cuda_profiling``
    records and torch has initialised CUDA; restored at its stop.  Code
    that bound the function before the install (``from torch.cuda import
    synchronize``) is not seen."""

    _lock = threading.Lock()
    _saved: List[Tuple[Any, str, Any]] = []
    _session: Any = None

    @classmethod
    def install(cls, session: Any, torch: Any) -> bool:
        with cls._lock:
            cls._session = session
            if cls._saved:
                return True
            targets = [
                (torch.cuda, "synchronize", SYNC_DEVICE, None),
                (torch.Tensor, "item", SYNC_MEMCPY, "cuda_self"),
                (torch.Tensor, "cpu", SYNC_MEMCPY, "cuda_self"),
                (torch.Tensor, "tolist", SYNC_MEMCPY, "cuda_self"),
                (torch.Tensor, "to", SYNC_MEMCPY, "cuda_to_host"),
                (getattr(torch.cuda, "Stream", None), "synchronize", SYNC_STREAM, None),
                (getattr(torch.cuda, "Event", None), "synchronize", SYNC_EVENT, None),
            ]
            for owner, attr, kind, cond in targets:
                if owner is None:
                    continue
                orig = getattr(owner, attr, None)
                if orig is None:
                    continue
                setattr(owner, attr, cls._wrapper(orig, kind, cond))
                cls._saved.append((owner, attr, orig))
            return True

    @classmethod
    def uninstall(cls, session: Any) -> None:
        with cls._lock:
            if cls._session is not session:
                return
            cls._session = None
            for owner, attr, orig in reversed(cls._saved):
                try:
                    setattr(owner, attr, orig)
                except (AttributeError, TypeError):  # pragma: no cover
                    pass
            cls._saved.clear()

    @classmethod
    def _wrapper(cls, orig: Callable[..., Any], kind: int, cond: Optional[str]) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            session = cls._session
            if session is None or (cond is not None and
                                   not getattr(args[0] if args else None, "is_cuda", False)):
                return orig(*args, **kwargs)
            t0 = time.perf_counter_ns()
            result = orig(*args, **kwargs)
            dt = time.perf_counter_ns() - t0
            if cond == "cuda_to_host" and getattr(result, "is_cuda", True):
                return result  # a copy that stays on the GPU does not block
            _blame(session, kind, dt)
            return result

        timed.__wrapped__ = orig  # type: ignore[attr-defined]
        timed.__name__ = getattr(orig, "__name__", "timed")
        timed.__qualname__ = getattr(orig, "__qualname__", timed.__name__)
        timed.__doc__ = getattr(orig, "__doc__", None)
        hide_from_tracer(timed)
        return timed


def _blame(session: Any, kind: int, blocked_ns: int) -> None:
    """Records a synchronization on the innermost frame that is neither the
    profiler's nor torch's (the user's line that caused it)."""
    f = sys._getframe(2)
    torch_dir = getattr(_blame, "_torch_dir", None)
    if torch_dir is None:
        torch = sys.modules.get("torch")
        torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) if torch else ""
        _blame._torch_dir = torch_dir  # type: ignore[attr-defined]
    while f is not None:
        fn = f.f_code.co_filename
        if not (fn.startswith(_PKG_DIR) or (torch_dir and fn.startswith(torch_dir))):
            break
        f = f.f_back
    if f is None:
        site, line = 0, 0
    else:
        site, line = _core.code_site(f.f_code, f.f_globals), f.f_lineno or 0
    try:
        _core.gpu_sync_record(session, kind, site, line, blocked_ns)
    except (TypeError, ValueError, RuntimeError):  # pragma: no cover - freed session
        pass


hide_from_tracer(_blame)


class GPUProfiler:
    """``profiler.gpu_profiler``: CUDA operations, their memory, the
    synchronization points and the GPU report of one VideoOpusClipProfiler
    (docs/gpu.md).

    With the GPU profiler off (``enable_gpu_profiler`` False), on a machine
    without the CUDA driver, or before the program has made a CUDA context,
    operations are still timed -- on the host -- and the report's ``gpu``
    section says which and why (``available``, ``reason``, ``libraries``).
    """

    def __init__(self, owner: "VideoOpusClipProfiler") -> None:
        self._owner = owner
        cfg = owner.config
        kw = cfg.gpu_session_kwargs()
        self._on = bool(owner._enabled and kw["gpu"])
        self._mem = bool(kw["gpu_memory"])
        self._sync = bool(kw["gpu_sync"])
        self._sync_installed = False
        self._sites: Dict[str, int] = {}
        self._warned_empty = False

    @property
    def enabled(self) -> bool:
        """True when operations are timed with CUDA events (where a CUDA
        context exists)."""
        return self._on

    # -- instruments -----------------------------------------------------------

    def _live_session(self) -> Any:
        """The session an operation records into, or None."""
        owner = self._owner
        if owner._recording or (owner._armed and owner._go_live()):
            session = owner._session
        else:
            from .data import worker_session  # a spawn/forkserver DataLoader worker
            session = worker_session()
            if session is None:
                return None
        if self._sync and not self._sync_installed:
            self._install_sync(session)
        return session

    def _install_sync(self, session: Any) -> None:
        """Installs the fallback sync wrappers once torch has initialised
        CUDA, when CUPTI did not load (the core subscribes to CUPTI itself)."""
        cuda = _cuda()
        if cuda is None:
            return
        if _core.gpu_libraries()["cupti"]["status"] == "ok":
            self._sync_installed = True  # the core sees syncs through CUPTI
            return
        self._sync_installed = _SyncFallback.install(session, sys.modules["torch"])

    def cuda_context(self, name: str) -> Any:
        """A context manager timing its block as the GPU operation `name`:
        device time between events recorded on the current stream at entry
        and exit, host time beside it, CUDA memory delta and peak.  Nestable,
        usable from any thread (each entry is its own operation: use
        ``with profiler.gpu_profiler.cuda_context(name):`` afresh each time).
        Records from the first use, like profiling_context."""
        if not isinstance(name, str):
            raise TypeError("GPUProfiler.cuda_context(name): name must be a str, "
                            f"got {type(name).__name__} {name!r}")
        if not self._owner._enabled:
            return _NULL_OP
        session = self._live_session()
        if session is None:
            return _NULL_OP
        site = self._sites.get(name) if session is self._owner._session else None
        if site is None:
            site = session.site(name, None, 0, _core.SITE_GPU)
            if session is self._owner._session and len(self._sites) < _CTX_CACHE_MAX:
                self._sites[name] = site
        return _CudaOp(_core.GpuOp(session, site), self._mem)

    @overload
    def profile_cuda_operation(self, func: F) -> F: ...

    @overload
    def profile_cuda_operation(self, func: None = None, *,
                               name: Optional[str] = None) -> Callable[[F], F]: ...

    def profile_cuda_operation(self, func: Any = None, *, name: Optional[str] = None) -> Any:
        """Decorator timing every call of a function as a GPU operation named
        after it ("module.qualname", or `name`), as ``cuda_context`` does.
        Use bare (``@profiler.gpu_profiler.profile_cuda_operation``) or with
        parentheses; generator and coroutine functions keep their flavour and
        are timed per resume; functools.wraps keeps the name and
        __wrapped__."""
        if func is None:
            def deco(f: F) -> F:
                return self.profile_cuda_operation(f, name=name)
            return deco
        if isinstance(func, type) or not callable(func):
            raise TypeError("profile_cuda_operation: expected a function, got "
                            f"{type(func).__name__} {func!r}")
        if not self._owner._enabled:
            return func
        site = site_for(func, _core.SITE_GPU, name)
        mem = self._mem

        def resolve() -> Any:
            session = self._live_session()
            if session is None:
                return None
            return _CudaOp(_core.GpuOp(session, site), mem)

        hide_from_tracer(resolve)
        return wrap(func, resolve)

    # -- report --------------------------------------------------------------

    def get_gpu_report(self) -> Dict[str, Any]:
        """The report's ``gpu`` section as a dict (docs/report-schema.md,
        "gpu"), built in C from the session's report model (equal to the
        saved JSON report's ``gpu``), resolving pending CUDA events first:

        * ``gpu_statistics``: ``total_time_ms`` and ``avg_time_ms`` (device
          time of the timed operations; host time when none could be timed,
          ``timing`` says which), ``operations``, ``max_time_ms``...
        * ``slow_gpu_operations``: operations above
          ``slow_gpu_operation_threshold_s``, slowest first: ``context``,
          ``elapsed_time_ms``, ``host_time_ms``, ``stream``;
        * ``memory_statistics``: ``total_memory_delta`` and
          ``avg_memory_delta`` (bytes of CUDA memory, torch's caching
          allocator or the driver's), ``peak_memory``;
        * ``operations`` per context, ``synchronization`` (points blamed on
          file:line), ``utilization`` (NVML, per device), ``libraries``,
          ``available`` and ``reason``.

        When no operation ran, the dict also has ``recorded: False`` and a
        ``note`` saying why, and a RuntimeWarning is issued once."""
        report: Dict[str, Any] = self._owner._session.model().report("gpu")
        note = self._nothing_measured(report)
        if note is not None:
            report["recorded"] = False
            report["note"] = note
        return report

    def _nothing_measured(self, report: Dict[str, Any]) -> Optional[str]:
        stats = report.get("gpu_statistics") or {}
        if stats.get("operations", 0):
            return None
        if not self._owner._enabled:
            why = "the profiler is disabled (config.enabled=False)"
        else:
            why = ("no profile_cuda_operation-decorated call or cuda_context block ran while "
                   "the profiler was recording")
        note = f"codeprof timed no GPU operation: {why}"
        if not self._warned_empty:
            self._warned_empty = True
            warnings.warn(f"GPUProfiler: get_gpu_report() was called, but {note}",
                          RuntimeWarning, stacklevel=3)
        return note

    # -- lifecycle (called by the owner) --------------------------------------

    def _stop(self) -> None:
        """stop_profiling(): the fallback sync wrappers come off."""
        if self._sync_installed:
            _SyncFallback.uninstall(self._owner._session)
            self._sync_installed = False

    def _reset(self) -> None:
        self._warned_empty = False

    def __repr__(self) -> str:
        return f"<GPUProfiler enabled={self.enabled} owner={self._owner!r}>"


hide_from_tracer(GPUProfiler.cuda_context, GPUProfiler.profile_cuda_operation,
                 GPUProfiler._live_session, GPUProfiler._install_sync,
                 _CudaOp.__enter__, _CudaOp.__exit__, _cuda)
