"""ProfilerConfig -> the Session's memory keyword arguments (docs/memory.md):
mode by level, GC, snapshots, the process sampler, validation."""
from __future__ import annotations

import pytest

from code_profiler import ProfilerConfig, _core, create_profiler_config
from code_profiler.config import LEVELS


@pytest.mark.parametrize("level,mode", [("basic", 0), ("detailed", 1), ("comprehensive", 2)])
@pytest.mark.parametrize("switch", ["enable_memory_profiler", "enable_memory_tracking"])
def test_memory_mode_follows_the_level_when_either_switch_is_on(level, mode, switch):
    cfg = ProfilerConfig(profile_level=level, **{switch: True})
    assert cfg.memory_profiler_on
    kw = cfg.session_kwargs()
    assert kw["memory_mode"] == mode
    assert kw["gc"] is True  # GC figures are part of every memory report
    _core.Session(**kw)  # the core accepts what the facade sends


@pytest.mark.parametrize("level", LEVELS)
def test_memory_profiler_off_tracks_nothing(level):
    cfg = ProfilerConfig(profile_level=level, memory_snapshots=True)
    kw = cfg.session_kwargs()
    assert not cfg.memory_profiler_on
    assert kw["memory_mode"] == 0
    assert kw["gc"] is False
    assert kw["memory_snapshots"] is False
    assert kw["memory_sample_interval_s"] == 0.0  # the sampler thread is not started


def test_gc_profiling_alone_turns_gc_statistics_on():
    kw = ProfilerConfig(enable_gc_profiling=True).session_kwargs()
    assert kw["gc"] is True and kw["memory_mode"] == 0


def test_snapshots_need_allocation_tracking():
    on = dict(enable_memory_profiler=True, memory_snapshots=True)
    assert ProfilerConfig(profile_level="comprehensive", **on).session_kwargs()["memory_snapshots"]
    assert ProfilerConfig(profile_level="detailed", **on).session_kwargs()["memory_snapshots"]
    # "basic" tracks no allocation: there is nothing to snapshot
    assert not ProfilerConfig(profile_level="basic", **on).session_kwargs()["memory_snapshots"]


@pytest.mark.parametrize("interval,expected", [(0.1, 0.1), (1e-6, 0.001), (5.0, 5.0),
                                               (1e6, 3600.0)])
def test_sample_interval_drives_the_memory_sampler_clamped_to_its_range(interval, expected):
    cfg = ProfilerConfig(enable_memory_profiler=True, sample_interval=interval, max_samples=123)
    kw = cfg.session_kwargs()
    assert kw["memory_sample_interval_s"] == pytest.approx(expected)
    assert kw["memory_timeline_samples"] == 123
    _core.Session(**kw)


def test_sample_bytes_and_stack_depth_reach_the_core(make_profiler):
    cfg = ProfilerConfig(enable_memory_profiler=True, memory_sample_bytes=4096,
                         memory_stack_depth=3)
    kw = cfg.session_kwargs()
    assert kw["memory_sample_bytes"] == 4096 and kw["memory_stack_depth"] == 3
    assert ProfilerConfig().memory_sample_bytes == 256 * 1024
    assert ProfilerConfig().memory_stack_depth == 8
    make_profiler(cfg)  # a Session is built from it


@pytest.mark.parametrize("field,value,err", [
    ("memory_sample_bytes", 0, ValueError),
    ("memory_sample_bytes", (1 << 40) + 1, ValueError),
    ("memory_sample_bytes", 1.5, TypeError),
    ("memory_sample_bytes", True, TypeError),
    ("memory_stack_depth", 0, ValueError),
    ("memory_stack_depth", 17, ValueError),
    ("memory_stack_depth", "8", TypeError),
])
def test_memory_fields_are_validated_naming_the_field(field, value, err):
    with pytest.raises(err, match=rf"ProfilerConfig\.{field} must be an int in \[1, "):
        ProfilerConfig(**{field: value})


def test_bounds_are_accepted_by_the_core():
    for sb, depth in ((1, 1), (1 << 40, 16)):
        cfg = ProfilerConfig(enable_memory_profiler=True, profile_level="detailed",
                             memory_sample_bytes=sb, memory_stack_depth=depth)
        _core.Session(**cfg.session_kwargs())


def test_presets():
    basic, detailed, comp = (create_profiler_config(lv).session_kwargs() for lv in LEVELS)
    assert basic["memory_mode"] == 0 and not basic["gc"]
    assert detailed["memory_mode"] == 1 and detailed["gc"] and not detailed["memory_snapshots"]
    assert comp["memory_mode"] == 2 and comp["gc"] and comp["memory_snapshots"]
    prod = create_profiler_config("basic", enable_memory_profiler=True).session_kwargs()
    assert prod["memory_mode"] == 0 and prod["gc"] and prod["memory_sample_interval_s"] > 0


def test_guide_advanced_configuration_maps_to_every_block_with_snapshots():
    cfg = ProfilerConfig(enabled=True, profile_level="comprehensive", enable_memory_profiler=True,
                         enable_memory_tracking=True, enable_gc_profiling=True,
                         memory_snapshots=True, sample_interval=0.1, max_samples=10000)
    kw = cfg.session_kwargs()
    assert (kw["memory_mode"], kw["gc"], kw["memory_snapshots"]) == (2, True, True)
    assert kw["memory_sample_interval_s"] == pytest.approx(0.1)
    assert kw["memory_timeline_samples"] == 10000


@pytest.mark.parametrize("name,mode", [("rss", 0), ("sampled", 1), ("all", 2)])
@pytest.mark.parametrize("level", LEVELS)
def test_memory_mode_overrides_the_level(level, name, mode):
    cfg = ProfilerConfig(profile_level=level, enable_memory_tracking=True, memory_mode=name)
    assert cfg.session_kwargs()["memory_mode"] == mode
    # without the memory profiler it tracks nothing whatever it says
    assert ProfilerConfig(profile_level=level, memory_mode=name).session_kwargs()[
        "memory_mode"] == 0


@pytest.mark.parametrize("value,err", [("fast", ValueError), (1, TypeError), ("ALL", ValueError)])
def test_memory_mode_is_validated_naming_the_field(value, err):
    with pytest.raises(err, match=r"ProfilerConfig\.memory_mode must be None \(by profile_level\) "
                                  r"or one of 'rss', 'sampled', 'all', got "):
        ProfilerConfig(memory_mode=value)


def test_memory_kwargs_reach_the_reports_config(make_profiler):
    cfg = ProfilerConfig(profile_level="basic", enable_memory_profiler=True, memory_mode="all",
                         enable_cprofile=False, memory_snapshots=True, memory_sample_bytes=4096,
                         memory_stack_depth=5, sample_interval=0.25, max_samples=77)
    shown = make_profiler(cfg).session.model().report("config")
    if "memory_mode" not in shown:
        pytest.skip("this build's report has no memory configuration (schema < 3)")
    for key, value in cfg.memory_session_kwargs().items():
        assert shown[key] == value, key
    assert shown["memory_mode"] == 2 and shown["gc"] is True
