"""MemoryProfiler: the guide's ``profiler.memory_profiler``.

A facade like the rest of the package: the C core measures.  A memory
context or a memory-measured function is a C scope with
``_core.SCOPE_HEAP`` (and ``SCOPE_RSS``): at its entry and exit the core
marks the allocation tracker and reads RSS, so each call yields the net
change and the peak within, for the tracked heap and for RSS, the GC
collections that ran inside it and what it left alive.  The core
aggregates them per site into the report's memory section
(docs/report-schema.md, "memory"; docs/memory.md says what each level
sees), and ``get_memory_report()`` returns that section as a dict built
in C from the session's report model, like every other view.

The scope is a scope like ``profiling_context``'s: memory contexts and
memory-measured functions also appear in the call tree and the timeline.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, List, Optional, TypeVar, \
    overload

from . import _core
from ._instrument import hide_from_tracer

if TYPE_CHECKING:  # pragma: no cover
    from .profiler import VideoOpusClipProfiler

__all__ = ["LEAK_RULE", "MemoryProfiler"]

F = TypeVar("F", bound=Callable[..., Any])

#: The C rule whose findings are the report's leak suspects (a floor that
#: rises across repeated calls of a memory context, with its top sites).
LEAK_RULE = "CP-MEM-002"

#: Context names whose C scope object is cached (as profiling_context's).
_CTX_CACHE_MAX = 4096


class MemoryProfiler:
    """``profiler.memory_profiler``: memory contexts, memory-measured
    functions and the memory report of one VideoOpusClipProfiler.

    What is measured depends on the owner's configuration (docs/memory.md):
    with the memory profiler off (``enable_memory_profiler`` and
    ``enable_memory_tracking`` both False) contexts and decorated functions
    are timed like ``profiling_context`` / ``profile_function`` (with the
    RSS delta) but measure no memory, and ``get_memory_report()`` says so.
    """

    def __init__(self, owner: "VideoOpusClipProfiler") -> None:
        self._owner = owner
        self._ctx: Dict[str, ContextManager[Any]] = {}
        self._warned_empty = False
        cfg = owner.config
        #: Scope flags a memory context or memory-measured function adds.
        self._flags = (_core.SCOPE_HEAP | _core.SCOPE_RSS) \
            if owner._enabled and cfg.memory_profiler_on else _core.SCOPE_RSS

    @property
    def enabled(self) -> bool:
        """True when contexts and decorated functions measure memory."""
        return bool(self._flags & _core.SCOPE_HEAP)

    # -- instruments -----------------------------------------------------------

    def memory_context(self, name: str) -> ContextManager[Any]:
        """A context manager measuring the memory of its block as the memory
        context `name`: net change and peak of the tracked heap and of RSS,
        GC collections inside, blocks left alive (leaks by allocation site
        at "comprehensive").  Nestable (an outer context's peak includes its
        inner ones), usable from any thread, reusable; the object returned
        is a C Scope.  Like profiling_context, an enabled profiler records
        from the first use even before start_profiling(), and the block is
        also timed in the call tree and the timeline."""
        owner = self._owner
        if not owner._recording and owner._armed:
            owner._go_live()
        ctx = self._ctx.get(name)
        if ctx is None:
            if not isinstance(name, str):
                raise TypeError("MemoryProfiler.memory_context(name): name must be a str, "
                                f"got {type(name).__name__} {name!r}")
            ctx = owner._named_context(name, owner._ctx_flags | self._flags)
            if len(self._ctx) < _CTX_CACHE_MAX:
                self._ctx[name] = ctx
        return ctx

    def _forget_contexts(self) -> None:
        """Drops cached context objects (the owner's tracing partner changed)."""
        self._ctx.clear()

    @overload
    def profile_memory_usage(self, func: F) -> F: ...

    @overload
    def profile_memory_usage(self, func: None = None) -> Callable[[F], F]: ...

    def profile_memory_usage(self, func: Any = None) -> Any:
        """Decorator measuring the memory of every call of a function like a
        memory context named after it ("module.qualname", with its file and
        line).  Use bare (``@profiler.memory_profiler.profile_memory_usage``)
        or with parentheses.  Generator functions, coroutine functions and
        async generator functions keep their flavour and are measured per
        resume; functools.wraps keeps the name, docstring and __wrapped__.
        The call is timed too (as profile_function at the config's level)."""
        if func is None:
            return self.profile_memory_usage
        if isinstance(func, type) or not callable(func):
            raise TypeError("profile_memory_usage: expected a function, got "
                            f"{type(func).__name__} {func!r}")
        return self._owner._instrument(func, extra_flags=self._flags)

    # -- report --------------------------------------------------------------

    def get_memory_report(self) -> Dict[str, Any]:
        """The report's memory section as a dict (docs/report-schema.md,
        "memory"), built in C from the session's report model (equal to the
        saved JSON report's ``memory``):

        * ``memory_statistics``: ``total_memory_delta`` (bytes, summed over
          every call of every memory context and measured function),
          ``avg_memory_delta``, ``peak_memory`` (largest peak within one
          call), ``calls``, ``live_bytes``, ``peak_bytes``, ``rss_bytes``...
        * ``memory_intensive_contexts``: per context or function, largest
          peak first: ``context``, ``memory_delta``, ``peak``, ``calls``,
          leaked bytes and the growth of its floor per call;
        * ``gc_statistics``: ``total_collections``, ``avg_collections`` (per
          memory-context call), per-generation counts, time in GC;
        * ``leak_suspects``: the leak findings (rule CP-MEM-002: a floor
          rising across repeated calls, with the top allocation sites and
          the growth per call);
        * ``domains``, ``stacks``, ``top_allocations``, ``leaks``,
          ``processes`` (DataLoader workers' RSS/PSS/USS), ``snapshots``,
          ``own_bytes`` and ``dropped``.

        Bytes are integers.  ``estimated`` is True when the figures are
        scaled from sampled allocations ("detailed").  When no memory was
        measured the dict also has ``recorded: False`` and ``note`` saying
        why, and a RuntimeWarning is issued once per profiler."""
        model = self._owner._session.model()
        report: Dict[str, Any] = model.report("memory")
        if "leak_suspects" not in report:
            findings: List[Dict[str, Any]] = model.report("findings")
            report["leak_suspects"] = [f for f in findings if f.get("rule") == LEAK_RULE]
        note = self._nothing_measured(report)
        if note is not None:
            report["recorded"] = False
            report["note"] = note
        return report

    def _nothing_measured(self, report: Dict[str, Any]) -> Optional[str]:
        """None when a memory context or measured function ran; else the
        sentence saying why not, warned (RuntimeWarning) once per profiler."""
        stats = report.get("memory_statistics") or {}
        if stats.get("calls", 0):
            return None
        owner = self._owner
        if not owner._enabled:
            why = "the profiler is disabled (config.enabled=False)"
        elif not self.enabled:
            why = ("the memory profiler is off: set enable_memory_profiler=True (or "
                   "enable_memory_tracking=True) in the ProfilerConfig")
        else:
            why = ("no memory_context, profile_memory_usage or profile_function-decorated "
                   "call ran while the profiler was recording")
        note = f"codeprof measured no memory: {why}"
        if not self._warned_empty:
            self._warned_empty = True
            warnings.warn(f"MemoryProfiler: get_memory_report() was called, but {note}",
                          RuntimeWarning, stacklevel=3)
        return note

    def _reset(self) -> None:
        """What the owner's reset() clears here."""
        self._warned_empty = False

    def __repr__(self) -> str:
        return f"<MemoryProfiler enabled={self.enabled} owner={self._owner!r}>"


hide_from_tracer(MemoryProfiler.memory_context, MemoryProfiler.profile_memory_usage)
