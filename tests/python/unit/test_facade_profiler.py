"""VideoOpusClipProfiler: lifecycle, profiling_context, reports, saving,
bottlenecks, enabled=False."""
from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from code_profiler import (ProfilerConfig, VideoOpusClipProfiler, _core,
                           create_profiler_config)

from conftest import function_entry, functions_named, tree_nodes

BOTTLENECK_KEYS = {"slow_functions", "memory_intensive_functions", "slow_data_loading",
                   "slow_preprocessing", "slow_gpu_operations", "recommendations"}


# -- lifecycle ------------------------------------------------------------------

def test_double_start_and_stop_without_start_raise(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    with pytest.raises(RuntimeError, match=r"stop_profiling\(\): profiling is not running; "
                                           r"call start_profiling\(\) first"):
        p.stop_profiling()
    p.start_profiling()
    assert p.is_profiling
    with pytest.raises(RuntimeError, match=r"start_profiling\(\): profiling is already "
                                           r"running; call stop_profiling\(\) first"):
        p.start_profiling()
    assert p.is_profiling  # the failed call changed nothing
    p.stop_profiling()
    assert not p.is_profiling
    with pytest.raises(RuntimeError, match="not running"):
        p.stop_profiling()


def test_data_accumulates_over_cycles_until_reset(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    for _ in range(2):
        p.start_profiling()
        with p.profiling_context("cycle"):
            pass
        p.stop_profiling()
    assert function_entry(p.get_comprehensive_report(), "cycle")["calls"] == 2
    p.start_profiling()
    with pytest.raises(RuntimeError, match=r"reset\(\): profiling is running"):
        p.reset()
    p.stop_profiling()
    p.reset()
    assert functions_named(p.get_comprehensive_report(), "cycle") == []


def test_profiler_as_context_manager(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    with p as same:
        assert same is p and p.is_profiling
        with p.profiling_context("inside"):
            pass
    assert not p.is_profiling
    assert function_entry(p.get_comprehensive_report(), "inside")["calls"] == 1


def test_tracer_follows_enable_cprofile(make_profiler):
    traced = make_profiler(create_profiler_config("detailed"))
    traced.start_profiling()
    assert traced.session.tracer != "off"
    traced.stop_profiling()
    assert traced.session.tracer == "off"
    plain = make_profiler(create_profiler_config("basic"))
    plain.start_profiling()
    assert plain.session.tracer == "off"
    plain.stop_profiling()


def undecorated_helper(n):
    return sum(range(n))


def test_tracer_records_undecorated_functions(make_profiler):
    p = make_profiler(create_profiler_config("detailed"))
    p.start_profiling()
    for _ in range(3):
        undecorated_helper(10)
    p.stop_profiling()
    entry = function_entry(p.get_comprehensive_report(), "undecorated_helper", kind="python")
    assert entry["calls"] == 3


# -- profiling_context ------------------------------------------------------------

def test_context_sleep_is_reported_within_5_percent(make_profiler):
    p = make_profiler(create_profiler_config("detailed"))
    p.start_profiling()
    with p.profiling_context("long_sleep"):
        time.sleep(1.2)
    p.stop_profiling()
    entry = function_entry(p.get_comprehensive_report(), "long_sleep")
    assert entry["kind"] == "scope"
    assert entry["calls"] == 1
    assert entry["inclusive_s"] == pytest.approx(1.2, rel=0.05)
    assert entry["cpu_s"] is not None and entry["cpu_s"] < 0.2  # sleeping costs no CPU


def test_context_is_the_cached_c_scope(make_profiler):
    p = make_profiler()
    a = p.profiling_context("same")
    assert isinstance(a, _core.Scope)
    assert p.profiling_context("same") is a
    assert p.profiling_context("other") is not a


def test_context_name_must_be_str(make_profiler):
    with pytest.raises(TypeError, match=r"profiling_context\(name\): name must be a str"):
        make_profiler().profiling_context(42)


def test_contexts_nest_into_a_tree(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    with p.profiling_context("outer"):
        for i in range(3):
            with p.profiling_context("inner"):
                with p.profiling_context("leaf"):
                    pass
    p.stop_profiling()
    paths = {path: node for path, node in tree_nodes(p.get_comprehensive_report())}
    assert paths[("outer",)]["calls"] == 1
    assert paths[("outer", "inner")]["calls"] == 3
    assert paths[("outer", "inner", "leaf")]["calls"] == 3
    assert ("inner",) not in paths


def test_contexts_in_four_threads_all_land(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        for _ in range(25):
            with p.profiling_context("thread_work"):
                time.sleep(0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.stop_profiling()
    report = p.get_comprehensive_report()
    assert function_entry(report, "thread_work")["calls"] == 100
    # The four threads exited before the report: their trees were merged
    # into one "exited threads" tree and freed (bounded memory per thread).
    per_thread = [node["calls"] for path, node in tree_nodes(report) if path == ("thread_work",)]
    assert sorted(per_thread) == [100]
    assert report["meta"]["exited_threads"] >= 4


def test_context_records_before_start_and_not_after_stop(make_profiler):
    # The guide's "Manual Profiling" block uses profiling_context without
    # start_profiling(): an enabled profiler records it from its first use.
    p = make_profiler(create_profiler_config("basic"))
    assert not p.is_profiling
    with p.profiling_context("before"):
        pass
    assert not p.is_profiling  # contexts do not start the whole-program instruments
    assert p.session.running and p.session.tracer == "off"
    p.start_profiling()
    with p.profiling_context("during"):
        pass
    p.stop_profiling()
    with p.profiling_context("after"):  # stopped: nothing until the next start
        pass
    report = p.get_comprehensive_report()
    assert function_entry(report, "before")["calls"] == 1
    assert function_entry(report, "during")["calls"] == 1
    assert functions_named(report, "after") == []
    p.start_profiling()
    with p.profiling_context("after"):
        pass
    p.stop_profiling()
    assert function_entry(p.get_comprehensive_report(), "after")["calls"] == 1


def test_stop_without_start_after_contexts_ran(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    with p.profiling_context("used"):
        pass
    p.stop_profiling()  # the contexts' session runs: stopping it is allowed
    assert not p.session.running
    assert function_entry(p.get_comprehensive_report(), "used")["calls"] == 1
    with pytest.raises(RuntimeError, match="not running"):
        p.stop_profiling()


def test_reset_of_a_session_started_by_contexts(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    with p.profiling_context("x"):
        pass
    p.reset()  # not between start and stop: allowed, discards it
    assert not p.session.running
    with p.profiling_context("y"):  # still armed: starts again at the next use
        pass
    report = p.get_comprehensive_report()
    assert functions_named(report, "x") == [] and function_entry(report, "y")["calls"] == 1


def test_start_after_contexts_adds_the_tracer(make_profiler):
    p = make_profiler(create_profiler_config("detailed"))  # enable_cprofile
    assert p.config.enable_cprofile
    with p.profiling_context("early"):
        pass
    p.start_profiling()
    assert p.session.tracer != "off"
    with p.profiling_context("late"):
        pass
    p.stop_profiling()
    report = p.get_comprehensive_report()
    assert function_entry(report, "early")["calls"] == 1
    assert function_entry(report, "late")["calls"] == 1


def test_views_of_a_profiler_that_recorded_nothing_say_so(make_profiler, recwarn):
    p = make_profiler(create_profiler_config("basic"))
    report = p.get_comprehensive_report()
    assert report["meta"]["recorded"] is False
    assert "start_profiling() was not called" in report["meta"]["note"]
    stats = p.performance_profiler.get_profile_stats()
    assert stats["recorded"] is False and stats["note"] == report["meta"]["note"]
    b = p.identify_bottlenecks()
    assert b["recommendations"][0] == report["meta"]["note"]
    warned = [w for w in recwarn.list if issubclass(w.category, RuntimeWarning)
              and "recorded nothing" in str(w.message)]
    assert len(warned) == 1  # once per profiler
    # once something is recorded, the keys go away
    with p.profiling_context("now"):
        pass
    report = p.get_comprehensive_report()
    assert "recorded" not in report["meta"] and "note" not in report["meta"]
    assert "recorded" not in p.performance_profiler.get_profile_stats()


def test_save_profiles_with_nothing_recorded_warns(make_profiler, tmp_path):
    # The guide's Production config (save_profiles=True, no tracer): a start/stop
    # around nothing must not save an empty report silently.
    # (sampling=False: the sampler that config runs could take a sample of
    # this very frame, and then something was recorded.)
    p = make_profiler(ProfilerConfig(enabled=True, profile_level="basic", save_profiles=True,
                                     detailed_reports=False, output_dir=str(tmp_path),
                                     sampling=False))
    p.start_profiling()
    with pytest.warns(RuntimeWarning, match=r"stop_profiling\(\) saves a report, but codeprof "
                                            r"recorded nothing"):
        p.stop_profiling()
    assert p.last_report_path and os.path.exists(p.last_report_path)


def test_exception_in_context_propagates_and_is_timed(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    err = KeyError("boom")
    with pytest.raises(KeyError) as ei:
        with p.profiling_context("failing"):
            raise err
    p.stop_profiling()
    assert ei.value is err
    assert function_entry(p.get_comprehensive_report(), "failing")["calls"] == 1


# -- reports and bottlenecks ---------------------------------------------------------

def test_bottleneck_keys_always_present(make_profiler):
    p = make_profiler()
    with pytest.warns(RuntimeWarning, match="recorded nothing"):
        b = p.identify_bottlenecks()
    assert set(b) == BOTTLENECK_KEYS
    assert all(b[k] == [] for k in BOTTLENECK_KEYS - {"recommendations"})
    assert len(b["recommendations"]) == 1 and "recorded nothing" in b["recommendations"][0]
    stats = p.performance_profiler.get_profile_stats()
    assert stats["slow_functions"] == [] and stats["memory_intensive_functions"] == []
    assert stats["total_functions_profiled"] == 0 and stats["functions"] == []


def test_slow_function_in_bottlenecks_and_stats(make_profiler):
    # Decorated functions only: without the sampler "basic" runs by default.
    p = make_profiler(create_profiler_config("basic", sampling=False))

    @p.profile_function
    def slow_step():
        time.sleep(1.1)

    @p.profile_function
    def fast_step():
        pass

    p.start_profiling()
    slow_step()
    fast_step()
    p.stop_profiling()
    b = p.identify_bottlenecks()
    assert set(b) == BOTTLENECK_KEYS
    slow = [f for f in b["slow_functions"] if f["function"].endswith("slow_step")]
    assert len(slow) == 1
    assert slow[0]["execution_time"] == pytest.approx(1.1, rel=0.05)
    assert not any(f["function"].endswith("fast_step") for f in b["slow_functions"])
    assert b["recommendations"], "a slow function must come with a recommendation"

    stats = p.performance_profiler.get_profile_stats()
    names = [f["function"] for f in stats["slow_functions"]]
    assert any(n.endswith("slow_step") for n in names)
    for func in stats["slow_functions"]:  # the guide's loop
        assert f"{func['function']} took {func['execution_time']:.2f}s"
    assert stats["total_functions_profiled"] == 2
    assert {f["function"].rsplit(".", 1)[-1] for f in stats["functions"]} == {"slow_step",
                                                                              "fast_step"}


def test_memory_intensive_function(make_profiler):
    p = make_profiler(ProfilerConfig(profile_level="basic", memory_intensive_threshold_mb=20.0))
    keep = []

    @p.profile_function
    def allocate():
        keep.append(b"\x01" * (48 * 1024 * 1024))  # touched pages: resident

    p.start_profiling()
    allocate()
    p.stop_profiling()
    stats = p.performance_profiler.get_profile_stats()
    mem = [f for f in stats["memory_intensive_functions"] if f["function"].endswith("allocate")]
    assert len(mem) == 1
    assert 40 * 1024 * 1024 <= mem[0]["memory_delta"] <= 80 * 1024 * 1024
    entry = function_entry(p.get_comprehensive_report(), "allocate", kind="function")
    assert entry["memory_delta"] >= 40 * 1024 * 1024


def test_report_while_running_and_schema(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    with p.profiling_context("live"):
        pass
    report = p.get_comprehensive_report()  # snapshot while profiling
    assert report["schema"] == "codeprof-report"
    assert report["schema_version"] == _core.REPORT_SCHEMA_VERSION
    assert function_entry(report, "live")["calls"] == 1
    assert "live" in p.get_text_summary()
    p.stop_profiling()


# -- saving -------------------------------------------------------------------------

def test_save_default_path_relative_path_and_atomicity(make_profiler, tmp_path):
    out = tmp_path / "out"
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(out)))
    p.start_profiling()
    with p.profiling_context("saved"):
        pass
    p.stop_profiling()

    default = p.save_comprehensive_report()
    assert os.path.dirname(default) == str(out)
    assert re.fullmatch(rf"profile_\d{{8}}-\d{{6}}\.\d{{3}}_{os.getpid()}\.json",
                        os.path.basename(default))
    rel = p.save_comprehensive_report("sub/training_profile.json")
    assert rel == str(out / "sub" / "training_profile.json")
    absolute = p.save_comprehensive_report(tmp_path / "abs.json")
    assert absolute == str(tmp_path / "abs.json")

    for path in (default, rel, absolute):
        with open(path) as fh:
            data = json.load(fh)
        assert function_entry(data, "saved")["calls"] == 1
    # atomic write: only the final files, no temporaries left behind
    assert sorted(os.listdir(out)) == sorted([os.path.basename(default), "sub"])
    assert os.listdir(out / "sub") == ["training_profile.json"]
    assert sorted(os.listdir(tmp_path)) == ["abs.json", "out"]


def test_save_text_format(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(tmp_path)))
    p.start_profiling()
    with p.profiling_context("texty"):
        pass
    p.stop_profiling()
    path = p.save_comprehensive_report("summary.txt")
    text = open(path).read()
    assert "texty" in text and not text.lstrip().startswith("{")
    with pytest.raises(ValueError, match="must be one of 'json', 'text', 'pstats'"):
        p.save_comprehensive_report("x.json", format="xml")


def test_save_format_by_argument_or_ending(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(tmp_path)))
    p.start_profiling()
    with p.profiling_context("fmt"):
        sum(range(20000))  # a few hundred microseconds: a collapsed line
    p.stop_profiling()
    # by ending
    assert open(p.save_comprehensive_report("a.prof"), "rb").read(1) == b"{"  # marshal dict
    with open(p.save_comprehensive_report("a.speedscope.json")) as fh:
        assert "$schema" in json.load(fh)
    with open(p.save_comprehensive_report("a.trace.json")) as fh:
        assert "traceEvents" in json.load(fh)
    assert open(p.save_comprehensive_report("a.collapsed")).read().split(";")[0].startswith("pid ")
    # by argument, with a path of no known ending, and for a default name
    with open(p.save_comprehensive_report("a.out", format="trace")) as fh:
        assert "traceEvents" in json.load(fh)
    default = p.save_comprehensive_report(format="speedscope")
    assert default.endswith(".speedscope.json") and os.path.dirname(default) == str(tmp_path)
    # unknown ending, no format: json
    with open(p.save_comprehensive_report("a.data")) as fh:
        assert function_entry(json.load(fh), "fmt")["calls"] == 1
    # a request that contradicts the ending names both, writes nothing
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError) as ei:
        p.save_comprehensive_report("x.json", format="pstats")
    assert "'pstats'" in str(ei.value) and "x.json" in str(ei.value) and "'json'" in str(ei.value)
    with pytest.raises(ValueError, match="speedscope"):
        p.save_comprehensive_report("x.speedscope.json", format="json")
    assert sorted(os.listdir(tmp_path)) == before


def test_save_into_a_parent_that_is_a_file_names_it(make_profiler, tmp_path, monkeypatch):
    out = tmp_path / "out"
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(out)))
    p.start_profiling()
    with p.profiling_context("x"):
        pass
    p.stop_profiling()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("I am a file")
    # relative: 'afile' in the current directory is a file -> an error, not profiles/afile/
    with pytest.raises(NotADirectoryError) as ei:
        p.save_comprehensive_report("afile/x.json")
    assert "'afile'" in str(ei.value)
    assert not out.exists() or not (out / "afile").exists()
    # absolute, two levels below the file
    with pytest.raises(NotADirectoryError) as ei:
        p.save_comprehensive_report(tmp_path / "afile" / "sub" / "x.json")
    assert str(tmp_path / "afile") in str(ei.value)


def test_one_save_one_file_with_save_profiles(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(tmp_path),
                                     save_profiles=True))
    p.start_profiling()
    with p.profiling_context("once"):
        pass
    p.stop_profiling()            # saves (save_profiles)
    auto = p.last_report_path
    assert auto and os.listdir(tmp_path) == [os.path.basename(auto)]
    # the guide's "Regular Profiling": stop, then save: still one file
    assert p.save_comprehensive_report() == auto
    assert os.listdir(tmp_path) == [os.path.basename(auto)]
    # a new recording is a new report
    p.start_profiling()
    with p.profiling_context("twice"):
        pass
    p.stop_profiling()
    assert p.last_report_path != auto and len(os.listdir(tmp_path)) == 2


def test_unwritable_path_raises_oserror_and_keeps_data(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(tmp_path)))
    p.start_profiling()
    with p.profiling_context("precious"):
        pass
    p.stop_profiling()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    bad = blocker / "report.json"
    with pytest.raises(OSError) as ei:
        p.save_comprehensive_report(str(bad))
    assert str(bad) in str(ei.value)
    # a directory in place of the file: the core's atomic writer fails
    as_dir = tmp_path / "is_a_dir.json"
    as_dir.mkdir()
    with pytest.raises(OSError) as ei2:
        p.save_comprehensive_report(str(as_dir))
    assert str(as_dir) in str(ei2.value)
    good = p.save_comprehensive_report("good.json")
    with open(good) as fh:
        assert function_entry(json.load(fh), "precious")["calls"] == 1
    assert sorted(os.listdir(tmp_path)) == ["a_file", "good.json", "is_a_dir.json"]
    assert os.listdir(as_dir) == []


def test_save_profiles_saves_at_stop(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", save_profiles=True,
                                     output_dir=str(tmp_path / "auto")))
    p.start_profiling()
    with p.profiling_context("auto_saved"):
        pass
    p.stop_profiling()
    assert p.last_report_path is not None
    assert os.path.dirname(p.last_report_path) == str(tmp_path / "auto")
    with open(p.last_report_path) as fh:
        assert function_entry(json.load(fh), "auto_saved")["calls"] == 1


# -- enabled=False ----------------------------------------------------------------------

def test_disabled_profiler_records_nothing(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(enabled=False, enable_cprofile=True,
                                     output_dir=str(tmp_path)))

    def f(x):
        return x * 2

    wrapped = p.profile_function(f)
    assert wrapped is f  # a no-op decorator
    assert p.profile_function("detailed")(f) is f

    @p.profile_class
    class K:
        def m(self):
            return 1

    p.start_profiling()
    assert p.session.tracer == "off"
    with pytest.raises(RuntimeError):
        p.start_profiling()
    with p.profiling_context("ignored"):
        assert wrapped(2) == 4 and K().m() == 1
    p.stop_profiling()
    report = p.get_comprehensive_report()
    assert report["performance"]["functions"] == []
    assert set(p.identify_bottlenecks()) == BOTTLENECK_KEYS
    assert p.performance_profiler.get_profile_stats()["total_functions_profiled"] == 0
    path = p.save_comprehensive_report("empty.json")
    with open(path) as fh:
        assert json.load(fh)["performance"]["functions"] == []


def test_repr_mentions_state(make_profiler):
    p = make_profiler(create_profiler_config("basic"))
    assert "stopped" in repr(p)
    p.start_profiling()
    assert "profiling" in repr(p)
    p.stop_profiling()


def test_default_profiler_is_lazy_and_not_started(make_profiler):
    from code_profiler import get_current_profiler, get_default_profiler
    from code_profiler import profiler as profiler_mod
    profiler_mod._current = None
    profiler_mod._last_stopped = None
    profiler_mod._default = None
    d = get_default_profiler()
    assert isinstance(d, VideoOpusClipProfiler) and not d.is_profiling
    assert get_default_profiler() is d and get_current_profiler() is d
    p = make_profiler(create_profiler_config("basic"))
    p.start_profiling()
    assert get_current_profiler() is p
    p.stop_profiling()
    assert get_current_profiler() is p  # most recently started, even when stopped


def test_default_names_never_collide(make_profiler, tmp_path):
    p = make_profiler(ProfilerConfig(profile_level="basic", output_dir=str(tmp_path)))
    p.start_profiling()
    with p.profiling_context("quick"):
        pass
    p.stop_profiling()
    # saves within one millisecond get distinct names, none overwritten
    paths = [p.save_comprehensive_report() for _ in range(5)]
    assert len(set(paths)) == 5 and sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(x) for x in paths)
