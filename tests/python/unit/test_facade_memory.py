"""profiler.memory_profiler: memory_context, profile_memory_usage (flavours
preserved, scope flags), get_memory_report's warning and leak suspects,
SCOPE_HEAP on profile_function when the memory profiler is on."""
from __future__ import annotations

import asyncio
import inspect
import threading
import warnings
from typing import Any, List, Tuple

import pytest

import code_profiler
from code_profiler import ProfilerConfig, _core, create_profiler_config, profile_function
from code_profiler.memory import MemoryProfiler

from conftest import functions_named

HEAP, RSS, CPU = _core.SCOPE_HEAP, _core.SCOPE_RSS, _core.SCOPE_CPU
MEM_ON = dict(enable_memory_profiler=True, enable_cprofile=False)


def memory_section_available() -> bool:
    try:
        _core.Session().model().report("memory")
    except ValueError:
        return False
    return True


needs_memory_section = pytest.mark.skipif(
    not memory_section_available(),
    reason="this build of code_profiler._core has no report section 'memory' yet")


class SessionSpy:
    """Stands in for a profiler's _core.Session and records the flags of
    every Scope asked for (delegating everything to the real one)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.scopes: List[Tuple[int, int]] = []

    def scope(self, site: int, flags: int) -> Any:
        self.scopes.append((site, flags))
        return self._real.scope(site, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def spied(p: Any) -> SessionSpy:
    spy = SessionSpy(p._session)
    p._session = spy
    return spy


@pytest.mark.parametrize("level,cpu", [("basic", 0), ("detailed", CPU), ("comprehensive", CPU)])
def test_memory_context_is_a_heap_scope_on_a_named_site(make_profiler, level, cpu):
    p = make_profiler(ProfilerConfig(profile_level=level, **MEM_ON))
    assert isinstance(p.memory_profiler, MemoryProfiler) and p.memory_profiler.enabled
    ctx = p.memory_profiler.memory_context("data_processing")
    assert isinstance(ctx, _core.Scope)
    assert ctx.flags == HEAP | RSS | cpu
    assert p.memory_profiler.memory_context("data_processing") is ctx  # cached
    assert ctx.site == p.session.site("data_processing", None, 0, _core.SITE_SCOPE)


def test_memory_context_without_the_memory_profiler_is_timed_but_measures_no_memory(
        make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="detailed", enable_cprofile=False))
    assert not p.memory_profiler.enabled
    ctx = p.memory_profiler.memory_context("x")
    assert ctx.flags & HEAP == 0 and ctx.flags & RSS


def test_disabled_profiler_memory_context_is_a_no_op(make_profiler):
    p = make_profiler(ProfilerConfig(enabled=False, **MEM_ON))
    with p.memory_profiler.memory_context("a"):
        with p.memory_profiler.memory_context("a"):
            pass
    assert not p.session.running

    @p.memory_profiler.profile_memory_usage
    def f(x):
        return x * 2

    assert f(4) == 8


def test_memory_context_goes_live_at_first_use_and_nests_on_threads(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="basic", **MEM_ON))
    mp = p.memory_profiler
    errors: List[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                with mp.memory_context("outer"):
                    with mp.memory_context("inner"):
                        bytearray(1024)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    assert not errors
    assert p.session.running  # an enabled profiler goes live at first use
    p.stop_profiling()
    funcs = p.get_comprehensive_report()["performance"]["functions"]
    calls = {f["function"]: f["calls"] for f in funcs if f["kind"] == "scope"}
    assert calls == {"outer": 80, "inner": 80}


def test_memory_context_name_must_be_a_str(make_profiler):
    p = make_profiler(ProfilerConfig(**MEM_ON))
    with pytest.raises(TypeError, match=r"memory_context\(name\): name must be a str, got int"):
        p.memory_profiler.memory_context(3)


def test_profile_memory_usage_bare_and_with_parentheses(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="detailed", **MEM_ON))
    spy = spied(p)

    def original(x, y=1):
        """Adds."""
        return x + y

    for wrapped in (p.memory_profiler.profile_memory_usage(original),
                    p.memory_profiler.profile_memory_usage()(original)):
        assert wrapped.__name__ == "original" and wrapped.__doc__ == "Adds."
        assert wrapped.__wrapped__ is original
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert wrapped(2, y=3) == 5
    assert [flags for _, flags in spy.scopes] == [HEAP | RSS | CPU] * 2
    site = spy.scopes[0][0]
    assert site == _core.site(f"{__name__}.{original.__qualname__}",
                              original.__code__.co_filename, original.__code__.co_firstlineno,
                              _core.SITE_FUNCTION)


def test_profile_memory_usage_rejects_non_functions(make_profiler):
    p = make_profiler(ProfilerConfig(**MEM_ON))
    with pytest.raises(TypeError, match="profile_memory_usage: expected a function, got int"):
        p.memory_profiler.profile_memory_usage(3)


def test_profile_memory_usage_keeps_generators_coroutines_async_generators(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="basic", **MEM_ON))
    deco = p.memory_profiler.profile_memory_usage

    @deco
    def gen(n):
        got = []
        for i in range(n):
            got.append((yield bytearray(i + 1)))
        return got

    @deco
    async def coro(n):
        await asyncio.sleep(0)
        return bytearray(n)

    @deco
    async def agen(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert inspect.isgeneratorfunction(gen)
    assert inspect.iscoroutinefunction(coro)
    assert inspect.isasyncgenfunction(agen)

    g = gen(3)
    assert len(next(g)) == 1
    assert len(g.send("a")) == 2
    assert len(g.send("b")) == 3
    with pytest.raises(StopIteration) as stop:
        g.send("c")
    assert stop.value.value == ["a", "b", "c"]

    async def main():
        items = [i async for i in agen(4)]
        return items, await coro(5)

    items, buf = asyncio.run(main())
    assert items == [0, 1, 2, 3] and len(buf) == 5

    p.stop_profiling()
    report = p.get_comprehensive_report()
    # one scope per resume: gen resumed 4 times (3 yields + the return)
    assert functions_named(report, "gen")[0]["calls"] == 4
    assert functions_named(report, "coro")[0]["calls"] >= 2  # start + after the sleep
    assert functions_named(report, "agen")[0]["calls"] >= 5


def test_profile_memory_usage_without_memory_profiler_is_a_timed_function(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="basic", enable_cprofile=False))
    spy = spied(p)
    p.memory_profiler.profile_memory_usage(lambda: None)()
    assert [flags for _, flags in spy.scopes] == [RSS]


@pytest.mark.parametrize("on", [False, True])
def test_profile_function_gets_scope_heap_when_the_memory_profiler_is_on(make_profiler, on):
    p = make_profiler(ProfilerConfig(profile_level="detailed", enable_memory_profiler=on))
    spy = spied(p)

    @p.profile_function
    def f():
        return 1

    @p.profile_function("basic")
    def g():
        return 2

    @p.profile_preprocessing
    def stage(x):  # stages are not memory-measured functions
        return x

    assert f() + g() == 3 and stage(1) == 1
    heap = HEAP if on else 0
    assert [flags for _, flags in spy.scopes] == [CPU | RSS | heap, RSS | heap, CPU | RSS]


@pytest.mark.parametrize("on", [False, True])
def test_module_level_decorators_get_scope_heap_from_the_current_profiler(make_profiler, on):
    p = make_profiler(ProfilerConfig(profile_level="basic", enable_memory_profiler=on))
    p.start_profiling()

    @profile_function
    def f():
        return 1

    @profile_function("detailed")
    def g():
        return 2

    assert f() + g() == 3
    heap = HEAP if on else 0
    flags = sorted(key & 0xFF for key in p._fn_scopes)
    assert flags == sorted([RSS | heap, CPU | RSS | heap])


def test_scope_cache_keys_do_not_collide_with_the_heap_flag(make_profiler):
    # site << 4 | flags collided once SCOPE_HEAP (16) existed
    p = make_profiler(ProfilerConfig(profile_level="basic", **MEM_ON))
    a = p._function_scope(1, RSS | HEAP)
    b = p._function_scope(2, RSS)
    assert a is not b and a.flags == RSS | HEAP and b.flags == RSS


def test_package_exports_memory_profiler():
    assert code_profiler.profiler.MemoryProfiler is MemoryProfiler


@needs_memory_section
def test_get_memory_report_warns_once_and_says_why(make_profiler):
    off = make_profiler(ProfilerConfig(enable_cprofile=False))
    with pytest.warns(RuntimeWarning, match="the memory profiler is off: set "
                                            "enable_memory_profiler=True"):
        rep = off.memory_profiler.get_memory_report()
    assert rep["recorded"] is False and "memory profiler is off" in rep["note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        off.memory_profiler.get_memory_report()  # once per profiler

    on = make_profiler(ProfilerConfig(**MEM_ON))
    with pytest.warns(RuntimeWarning, match="no memory_context, profile_memory_usage"):
        rep = on.memory_profiler.get_memory_report()
    assert rep["memory_statistics"]["calls"] == 0

    disabled = make_profiler(ProfilerConfig(enabled=False, **MEM_ON))
    with pytest.warns(RuntimeWarning, match=r"config\.enabled=False"):
        disabled.memory_profiler.get_memory_report()


@needs_memory_section
def test_get_memory_report_has_the_guides_keys_and_leak_suspects(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="comprehensive", **MEM_ON))
    with p.memory_profiler.memory_context("ctx"):
        kept = bytearray(1 << 20)
    p.stop_profiling()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = p.memory_profiler.get_memory_report()
    assert "recorded" not in rep
    section = p.session.model().report("memory")
    assert {k: rep[k] for k in section} == section  # the C section, as is
    stats = rep["memory_statistics"]
    for key in ("total_memory_delta", "avg_memory_delta", "peak_memory", "calls"):
        assert key in stats
    assert stats["calls"] == 1
    ctxs = {c["context"]: c for c in rep["memory_intensive_contexts"]}
    assert "ctx" in ctxs and {"memory_delta", "peak"} <= set(ctxs["ctx"])
    gc_stats = rep["gc_statistics"]
    assert {"total_collections", "avg_collections"} <= set(gc_stats)
    assert isinstance(rep["leak_suspects"], list)
    del kept
