"""profile_function / profile_class: call counts, recursion, generators,
coroutines, exceptions, lru_cache, module-level decorators."""
from __future__ import annotations

import asyncio
import functools
import inspect
import time

import pytest

import code_profiler
from code_profiler import create_profiler_config, profile_class, profile_function

from conftest import function_entry, functions_named, tree_nodes


@pytest.fixture
def prof(make_profiler):
    # Exact counts and times of decorated calls: without the stack sampler
    # that "basic" runs by default (its estimates would add sampled children).
    return make_profiler(create_profiler_config("basic", sampling=False))


def calls_of(p, name, kind="function"):
    found = [f for f in functions_named(p.get_comprehensive_report(), name) if f["kind"] == kind]
    return found[0]["calls"] if found else 0


def test_bare_and_leveled_forms_preserve_metadata(prof):
    def original(x, y=1):
        """Adds."""
        return x + y

    for wrapped in (prof.profile_function(original),
                    prof.profile_function("detailed")(original),
                    prof.profile_function()(original),
                    prof.profile_function(level="comprehensive")(original)):
        assert wrapped is not original
        assert wrapped.__name__ == "original" and wrapped.__doc__ == "Adds."
        assert wrapped.__wrapped__ is original
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert wrapped(2, y=3) == 5


def test_bad_level_is_rejected(prof):
    with pytest.raises(ValueError, match=r"profile_function\(level\) must be one of 'basic', "
                                         r"'detailed', 'comprehensive', got 'fast'"):
        prof.profile_function("fast")
    with pytest.raises(ValueError, match=r"profile_class\(level\)"):
        prof.profile_class("nope")
    with pytest.raises(TypeError, match="expected a class"):
        prof.profile_class("basic")(lambda: None)


def test_site_names_file_and_line(prof):
    @prof.profile_function
    def located():
        pass

    prof.start_profiling()
    located()
    prof.stop_profiling()
    entry = function_entry(prof.get_comprehensive_report(), "located")
    assert entry["function"] == f"{__name__}.test_site_names_file_and_line.<locals>.located"
    assert entry["kind"] == "function"
    assert entry["file"] == __file__
    assert entry["line"] == located.__wrapped__.__code__.co_firstlineno


def test_exact_call_counts_on_a_known_call_graph(prof):
    @prof.profile_function
    def leaf():
        pass

    @prof.profile_function
    def middle():
        leaf()

    @prof.profile_function
    def top():
        middle()
        middle()
        leaf()

    top()  # an enabled profiler records before start_profiling() too
    prof.start_profiling()
    for _ in range(3):
        top()
    prof.stop_profiling()
    top()  # stopped: records nothing until the next start_profiling()
    report = prof.get_comprehensive_report()
    assert function_entry(report, "top")["calls"] == 4
    assert function_entry(report, "middle")["calls"] == 8
    assert function_entry(report, "leaf")["calls"] == 12
    paths = {tuple(n.rsplit(".", 1)[-1] for n in path): node["calls"]
             for path, node in tree_nodes(report)}
    assert paths == {("top",): 4, ("top", "middle"): 8, ("top", "middle", "leaf"): 8,
                     ("top", "leaf"): 4}


def test_recursion_is_not_double_counted(prof):
    @prof.profile_function
    def countdown(n):
        time.sleep(0.02)
        if n > 1:
            countdown(n - 1)

    prof.start_profiling()
    with prof.profiling_context("around"):
        countdown(5)
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    entry = function_entry(report, "countdown")
    around = function_entry(report, "around")["inclusive_s"]
    assert entry["calls"] == 5
    # inclusive = the outermost call's total (~0.1 s), not the nested sum (~0.3 s)
    assert 0.1 * 0.95 <= entry["inclusive_s"] <= around
    assert entry["self_s"] == pytest.approx(entry["inclusive_s"], rel=0.05)


def test_exception_propagates_unchanged_and_call_is_counted(prof):
    err = ValueError("bad frame")

    @prof.profile_function
    def failing():
        time.sleep(0.01)
        raise err

    prof.start_profiling()
    for _ in range(2):
        with pytest.raises(ValueError) as ei:
            failing()
        assert ei.value is err
    prof.stop_profiling()
    entry = function_entry(prof.get_comprehensive_report(), "failing")
    assert entry["calls"] == 2
    assert entry["min_s"] >= 0.009


def test_generator_stays_a_generator_timed_per_resume(prof):
    @prof.profile_function
    def frames(n):
        """Yields frames."""
        for i in range(n):
            time.sleep(0.005)
            yield i
        return "done"

    assert inspect.isgeneratorfunction(frames)
    gen = frames(3)
    assert inspect.isgenerator(gen)
    prof.start_profiling()
    out = []
    for item in frames(3):
        out.append(item)
        time.sleep(0.05)  # the consumer's time is not the generator's
    prof.stop_profiling()
    assert out == [0, 1, 2]
    entry = function_entry(prof.get_comprehensive_report(), "frames")
    assert entry["calls"] == 4  # three items and the final resume
    assert 0.015 <= entry["inclusive_s"] < 0.05

    def outer():
        return (yield from frames(2))
    collected = list(outer())
    assert collected == [0, 1]
    g = frames(2)
    with pytest.raises(StopIteration) as si:
        next(g), next(g), next(g)
    assert si.value.value == "done"


def test_generator_send_throw_close_are_delegated(prof):
    log = []

    @prof.profile_function
    def echo():
        try:
            while True:
                try:
                    received = yield
                    log.append(received)
                except KeyError as e:
                    log.append(("caught", e.args[0]))
        finally:
            log.append("closed")

    prof.start_profiling()
    g = echo()
    next(g)
    g.send("a")
    g.throw(KeyError("k"))
    g.send("b")
    g.close()
    prof.stop_profiling()
    assert log == ["a", ("caught", "k"), "b", "closed"]
    # next, send, throw, send, close: five resumes
    assert function_entry(prof.get_comprehensive_report(), "echo")["calls"] == 5

    g2 = echo()
    next(g2)
    with pytest.raises(ZeroDivisionError):
        g2.throw(ZeroDivisionError())  # not caught inside: propagates


def test_coroutine_stays_a_coroutine(prof):
    @prof.profile_function
    async def fetch(x):
        await asyncio.sleep(0.05)
        return x * 2

    assert inspect.iscoroutinefunction(fetch)

    async def main():
        return await asyncio.gather(fetch(1), fetch(2), fetch(3))

    prof.start_profiling()
    assert asyncio.run(main()) == [2, 4, 6]
    prof.stop_profiling()
    entry = function_entry(prof.get_comprehensive_report(), "fetch")
    # per resume: start and wake-up of each coroutine; time awaiting is not charged
    assert entry["calls"] == 6
    assert entry["inclusive_s"] < 0.05


def test_coroutine_exception_propagates(prof):
    err = RuntimeError("async boom")

    @prof.profile_function
    async def broken():
        await asyncio.sleep(0)
        raise err

    prof.start_profiling()
    with pytest.raises(RuntimeError) as ei:
        asyncio.run(broken())
    prof.stop_profiling()
    assert ei.value is err
    assert calls_of(prof, "broken") == 2


def test_async_generator_stays_an_async_generator(prof):
    @prof.profile_function
    async def ticks(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert inspect.isasyncgenfunction(ticks)

    async def main():
        got = [i async for i in ticks(3)]
        agen = ticks(10)
        first = await agen.__anext__()
        await agen.aclose()
        return got, first

    prof.start_profiling()
    assert asyncio.run(main()) == ([0, 1, 2], 0)
    prof.stop_profiling()
    assert calls_of(prof, "ticks") >= 4


def test_lru_cache_stacking_both_orders(prof):
    @functools.lru_cache(maxsize=128)
    @prof.profile_function
    def square(x):
        return x * x

    @prof.profile_function
    @functools.lru_cache(maxsize=128)
    def cube(x):
        return x ** 3

    prof.start_profiling()
    assert [square(2), square(2), square(3), square(2)] == [4, 4, 9, 4]
    assert [cube(2), cube(2), cube(3)] == [8, 8, 27]
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    assert function_entry(report, "square")["calls"] == 2  # cache misses only
    assert function_entry(report, "cube")["calls"] == 3    # every call reaches the wrapper
    assert square.cache_info().hits == 2
    assert cube.cache_info().hits == 1
    cube.cache_clear()
    assert cube.cache_info().currsize == 0
    assert function_entry(report, "cube")["line"] == cube.__wrapped__.__wrapped__.__code__.co_firstlineno


def test_profile_class_wraps_public_methods_init_and_call(prof):
    @prof.profile_class("detailed")
    class Model:
        def __init__(self):
            self.w = 2

        def forward(self, x):
            return self._helper(x) * self.w

        def _helper(self, x):
            return x + 1

        def __call__(self, x):
            return self.forward(x)

        @staticmethod
        def make():
            return Model()

        @classmethod
        def name(cls):
            return cls.__name__

        @property
        def weight(self):
            return self.w

    prof.start_profiling()
    m = Model.make()
    assert m(1) == 4 and m.forward(2) == 6 and Model.name() == "Model" and m.weight == 2
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    counts = {f["function"].rsplit(".", 2)[-2] + "." + f["function"].rsplit(".", 1)[-1]:
              f["calls"] for f in report["performance"]["functions"]}
    assert counts == {"Model.__init__": 1, "Model.forward": 2, "Model.__call__": 1,
                      "Model.make": 1, "Model.name": 1}
    assert isinstance(Model.__dict__["make"], staticmethod)
    assert isinstance(Model.__dict__["name"], classmethod)


def test_profile_class_does_not_wrap_twice(prof):
    @prof.profile_class
    class Twice:
        @prof.profile_function
        def run(self):
            return 1

    prof.start_profiling()
    Twice().run()
    prof.stop_profiling()
    assert calls_of(prof, "run") == 1
    assert len(functions_named(prof.get_comprehensive_report(), "run")) == 1


def test_class_given_to_profile_function_goes_to_profile_class(prof):
    @prof.profile_function
    class Thing:
        def act(self):
            return 3

    assert isinstance(Thing, type)
    prof.start_profiling()
    assert Thing().act() == 3
    prof.stop_profiling()
    assert calls_of(prof, "act") == 1


def test_performance_profiler_delegates(prof):
    @prof.performance_profiler.profile_function
    def via_perf():
        pass

    prof.start_profiling()
    with prof.performance_profiler.profiling_context("perf_ctx"):
        via_perf()
    prof.stop_profiling()
    assert calls_of(prof, "via_perf") == 1
    assert calls_of(prof, "perf_ctx", kind="scope") == 1


# -- module-level decorators: record into the current profiler --------------------

@profile_function
def module_level_bare(x):
    return x + 1


@profile_function("detailed")
def module_level_detailed():
    time.sleep(0.01)


@profile_class("basic")
class ModuleLevelClass:
    def work(self):
        return module_level_bare(1)


def test_module_level_decorators_follow_the_current_profiler(make_profiler):
    p1 = make_profiler(create_profiler_config("basic"))
    p2 = make_profiler(create_profiler_config("detailed"))
    # nothing started: the most recently created enabled profiler (p2) records
    assert module_level_bare(1) == 2
    p1.start_profiling()
    module_level_bare(1)
    ModuleLevelClass().work()
    p1.stop_profiling()
    module_level_bare(5)  # p1 stopped: back to p2, created last and never stopped
    p2.start_profiling()
    module_level_detailed()
    module_level_detailed()
    p2.stop_profiling()
    module_level_bare(7)  # both stopped: the default profiler's, if any

    r1 = p1.get_comprehensive_report()
    r2 = p2.get_comprehensive_report()
    assert function_entry(r1, "module_level_bare")["calls"] == 2  # once through work()
    assert function_entry(r1, "ModuleLevelClass.work")["calls"] == 1
    assert functions_named(r1, "module_level_detailed") == []
    det = function_entry(r2, "module_level_detailed", kind="function")
    assert det["calls"] == 2
    assert det["cpu_s"] is not None  # "detailed" level: CPU time measured
    bare2 = [f for f in functions_named(r2, "module_level_bare") if f["kind"] == "function"]
    assert len(bare2) == 1 and bare2[0]["calls"] == 2  # the calls with 1 and with 5


def test_module_level_basic_level_has_no_cpu_time(make_profiler):
    p = make_profiler(create_profiler_config("comprehensive", enable_cprofile=False))
    p.start_profiling()
    ModuleLevelClass().work()
    p.stop_profiling()
    report = p.get_comprehensive_report()
    assert function_entry(report, "ModuleLevelClass.work")["cpu_s"] is None  # level "basic"
    assert function_entry(report, "module_level_bare")["cpu_s"] is not None  # profile level


def test_package_exports():
    for name in ("ProfilerConfig", "VideoOpusClipProfiler", "create_profiler_config",
                 "profile_function", "profile_class", "get_default_profiler"):
        assert hasattr(code_profiler, name)
    assert code_profiler.__version__ == code_profiler._core.VERSION


def traced_callee(n):
    return sum(range(n))


def test_under_the_tracer_a_decorated_function_is_recorded_once(make_profiler):
    p = make_profiler(create_profiler_config("detailed"))

    @p.profile_function
    def decorated_caller():
        return traced_callee(100) + traced_callee(10)

    p.start_profiling()
    for _ in range(3):
        decorated_caller()
    p.stop_profiling()
    report = p.get_comprehensive_report()
    entries = functions_named(report, "decorated_caller")
    assert [(e["kind"], e["calls"]) for e in entries] == [("function", 3)]
    # no facade frame (wrapper, resolver, Scope) in the report
    assert not [f["function"] for f in report["performance"]["functions"]
                if f["function"].startswith("code_profiler.")
                and not f["function"].startswith("code_profiler._core.")]
    paths = {tuple(n.rsplit(".", 1)[-1] for n in path): node["calls"]
             for path, node in tree_nodes(report)}
    callee_under = [calls for path, calls in paths.items()
                    if path[-2:] == ("decorated_caller", "traced_callee")]
    assert callee_under == [6]
