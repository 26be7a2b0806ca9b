"""Wrappers that time calls of a function through a C Scope.

No timing happens here: a wrapper asks its `resolve` callable for the
``_core.Scope`` to use (None when nothing is recording) and runs the call
inside it; the C core reads the clocks and RSS.

* plain functions: one scope per call;
* generator functions stay generator functions: one scope per resume
  (next/send/throw/close), so time spent by the consumer between items is
  not charged to the generator;
* coroutine functions stay coroutine functions (``async def``): one scope
  per resume of the coroutine, so time other tasks spend while it awaits is
  not charged to it;
* async generator functions stay async generator functions, timed per
  resume in the same way.

A scope is opened and closed on the same thread around each resume, which
is what the per-thread calling-context trees need.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, AsyncGenerator, Callable, Generator, Optional, TypeVar

from . import _core

__all__ = ["LINE_LEVELS", "Resolver", "hide_from_tracer", "register_lines", "site_for", "wrap"]

F = TypeVar("F", bound=Callable[..., Any])

#: Returns the Scope a call should run in, or None to run it untimed.
Resolver = Callable[[], Optional["_core.Scope"]]

_ignore_code = getattr(_core, "tracer_ignore", None)
_line_add = getattr(_core, "line_profile_add", None)

#: Decorator levels whose functions get line-level timing when the
#: profiler's config has enable_line_profiler (docs/line-profiling.md).
LINE_LEVELS = ("detailed", "comprehensive")


#: 3.11: the trace hook is put on a thread only around each call / resume
#: of a line-timed function (3.12+ needs nothing: sys.monitoring local events).
_line_enter = getattr(_core, "line_profile_enter", None)
_line_leave = getattr(_core, "line_profile_leave", None)


def register_lines(func: Any) -> int:
    """Registers the innermost function wrapped by `func` (decorators
    unwrapped, methods' functions) for line-level timing.  Lines are timed
    only while a session created with ``lines=True`` runs.  Returns the
    function's site id, 0 when it has no Python code or was refused."""
    if _line_add is None:
        return 0
    inner = inspect.unwrap(func)
    inner = getattr(inner, "__func__", inner)
    if not inspect.isfunction(inner):
        return 0
    return int(_line_add(inner))


def hide_from_tracer(*funcs: Any) -> None:
    """Asks the C tracer (when it offers _core.tracer_ignore) not to record
    the facade's wrapper frames, so traced reports show user code only."""
    if _ignore_code is None:
        return
    for f in funcs:
        if isinstance(f, property):
            f = f.fget
        code = getattr(f, "__code__", None)
        if code is not None:
            _ignore_code(code)


def site_for(func: Callable[..., Any], kind: int, name: Optional[str] = None) -> int:
    """Interns the site of `func`: "module.qualname" (the tracer's naming),
    with the file and first line of the innermost wrapped function."""
    inner = inspect.unwrap(func)
    if name is None:
        qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) \
            or type(func).__name__
        module = getattr(func, "__module__", None)
        name = f"{module}.{qual}" if module else str(qual)
    code = getattr(inner, "__code__", None)
    file = code.co_filename if code is not None else None
    line = code.co_firstlineno if code is not None else 0
    return _core.site(name, file, line, kind)


def _copy_cache_api(wrapper: Any, func: Any) -> None:
    # functools.lru_cache objects keep cache_info/cache_clear as methods,
    # which functools.wraps does not copy; keep them reachable.
    for attr in ("cache_info", "cache_clear", "cache_parameters"):
        if hasattr(func, attr) and not hasattr(wrapper, attr):
            setattr(wrapper, attr, getattr(func, attr))


def _drive(it: Any, resolve: Resolver, lines: bool = False) -> Generator[Any, Any, Any]:
    """Delegates to a generator or coroutine `it` (anything with send,
    throw and close) like ``yield from``, timing each resume in a scope
    (and, with `lines` on 3.11, with the line-timing hook on the thread)."""
    method = it.send
    arg: Any = None
    done = False
    enter = _line_enter if lines else None
    try:
        while True:
            scope = resolve()
            try:
                if enter is not None:
                    enter()
                    try:
                        if scope is None:
                            value = method(arg)
                        else:
                            with scope:
                                value = method(arg)
                    finally:
                        _line_leave()  # type: ignore[misc]
                elif scope is None:
                    value = method(arg)
                else:
                    with scope:
                        value = method(arg)
            except BaseException:
                done = True  # finished (StopIteration) or raised: nothing to close
                raise
            try:
                arg = yield value
            except GeneratorExit:
                raise
            except BaseException as exc:  # thrown in by the caller: pass it on
                method, arg = it.throw, exc
            else:
                method = it.send
    except StopIteration as stop:
        return stop.value
    finally:
        if not done:
            # Closed early: closing runs the inner frame's finally blocks
            # (a resume of its own), so time that too.
            scope = resolve()
            if scope is None:
                it.close()
            else:
                with scope:
                    it.close()


class _TimedAwait:
    """Awaitable that drives a coroutine (or an async-generator step)
    through _drive."""

    __slots__ = ("_it", "_resolve", "_lines")

    def __init__(self, it: Any, resolve: Resolver, lines: bool = False) -> None:
        self._it = it
        self._resolve = resolve
        self._lines = lines

    def __await__(self) -> Generator[Any, Any, Any]:
        return _drive(self._it, self._resolve, self._lines)


def _wrap_function(func: Callable[..., Any], resolve: Resolver,
                   lines: bool = False) -> Callable[..., Any]:
    if lines:
        enter, leave = _line_enter, _line_leave

        @functools.wraps(func)
        def timed_lines(*args: Any, **kwargs: Any) -> Any:
            scope = resolve()
            enter()  # type: ignore[misc]
            try:
                if scope is None:
                    return func(*args, **kwargs)
                with scope:
                    return func(*args, **kwargs)
            finally:
                leave()  # type: ignore[misc]

        return timed_lines

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = resolve()
        if scope is None:
            return func(*args, **kwargs)
        with scope:
            return func(*args, **kwargs)

    return wrapper


def _wrap_generator(func: Callable[..., Any], resolve: Resolver,
                    lines: bool = False) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # Creating the generator runs none of its code.
        return (yield from _drive(func(*args, **kwargs), resolve, lines))

    return wrapper


def _wrap_coroutine(func: Callable[..., Any], resolve: Resolver,
                    lines: bool = False) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await _TimedAwait(func(*args, **kwargs), resolve, lines)

    return wrapper


def _wrap_async_generator(func: Callable[..., Any], resolve: Resolver,
                          lines: bool = False) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = func(*args, **kwargs)
        try:
            to_send: Any = None
            to_throw: Optional[BaseException] = None
            while True:
                step = agen.asend(to_send) if to_throw is None else agen.athrow(to_throw)
                to_throw = None
                try:
                    value = await _TimedAwait(step, resolve, lines)
                except StopAsyncIteration:
                    return
                try:
                    to_send = yield value
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    to_send, to_throw = None, exc
        finally:
            await _TimedAwait(agen.aclose(), resolve, lines)

    return wrapper


def wrap(func: F, resolve: Resolver, lines: bool = False) -> F:
    """Returns a wrapper of `func` of the same flavour (function, generator
    function, coroutine function, async generator function) that runs each
    call / resume inside ``resolve()``'s scope.  The wrapper carries
    __name__, __doc__, __wrapped__ etc. (functools.wraps); exceptions pass
    through unchanged and the call is still timed.  `lines`: `func` is
    registered for line timing (register_lines); on 3.11 each call / resume
    then runs with the line-timing hook on the thread."""
    inner = inspect.unwrap(func)
    lines = bool(lines) and _line_enter is not None
    if inspect.isasyncgenfunction(inner):
        wrapper = _wrap_async_generator(func, resolve, lines)
    elif inspect.iscoroutinefunction(inner):
        wrapper = _wrap_coroutine(func, resolve, lines)
    elif inspect.isgeneratorfunction(inner):
        wrapper = _wrap_generator(func, resolve, lines)
    else:
        wrapper = _wrap_function(func, resolve, lines)
    _copy_cache_api(wrapper, func)
    # The wrapper's scope is the function's single record: neither the
    # wrapper frame nor the wrapped function's own frame is traced again
    # (what the function calls still is).  The C tracer marks code objects,
    # so undecorated calls of the same code (func.__wrapped__) are not
    # traced either.
    hide_from_tracer(wrapper, inner)
    return wrapper  # type: ignore[return-value]


hide_from_tracer(_drive, _TimedAwait.__init__, _TimedAwait.__await__)
