"""ProfilerConfig's sampling fields and what they ask of the C session
(sampling_session_kwargs): when the stack sampler runs, its period, its
clock, native frames; errors name the field."""
from __future__ import annotations

import pytest

from code_profiler import ProfilerConfig, _core, create_profiler_config


def kw(**fields):
    return ProfilerConfig(**fields).session_kwargs()


def test_production_monitoring_basic_without_cprofile_samples():
    # The guide's Production Monitoring block (enable_cprofile left False).
    cfg = ProfilerConfig(enabled=True, profile_level="basic", save_profiles=True,
                         detailed_reports=False)
    assert cfg.sampling_on
    k = cfg.session_kwargs()
    assert k["sample_interval_s"] == pytest.approx(0.1)  # sample_interval's default
    assert k["sample_mode"] == 0 and k["sample_native"] is False
    _core.Session(**k)  # the core accepts it
    assert create_profiler_config("basic").sampling_on


def test_basic_with_cprofile_traces_and_does_not_sample():
    # The guide's other Production Monitoring block asks for the tracer:
    # it gets the exact tracer alone.
    cfg = ProfilerConfig(profile_level="basic", enable_cprofile=True,
                         enable_memory_profiler=True, save_profiles=True)
    assert not cfg.sampling_on
    assert cfg.session_kwargs()["sample_interval_s"] == 0.0


@pytest.mark.parametrize("level", ["detailed", "comprehensive"])
@pytest.mark.parametrize("cprofile", [False, True])
def test_other_levels_do_not_sample_unless_asked(level, cprofile):
    assert kw(profile_level=level, enable_cprofile=cprofile)["sample_interval_s"] == 0.0
    on = kw(profile_level=level, enable_cprofile=cprofile, sampling=True, sample_interval=0.005)
    assert on["sample_interval_s"] == pytest.approx(0.005)
    assert ProfilerConfig(profile_level=level, sampling=True).sampling_on


def test_sampling_false_turns_basic_sampling_off_and_disabled_never_samples():
    assert kw(profile_level="basic", sampling=False)["sample_interval_s"] == 0.0
    assert not ProfilerConfig(enabled=False, sampling=True).sampling_on
    assert kw(enabled=False, sampling=True)["sample_interval_s"] == 0.0


@pytest.mark.parametrize("interval,expected", [(0.001, 0.001), (0.01, 0.01), (60.0, 60.0),
                                               (61.0, 60.0), (1e6, 60.0)])
def test_interval_is_clamped_to_at_most_60_s(interval, expected):
    k = kw(sampling=True, sample_interval=interval)
    assert k["sample_interval_s"] == pytest.approx(expected)
    _core.Session(**k)


@pytest.mark.parametrize("interval", [0.0009, 1e-6, 1e-9])
def test_interval_below_1_ms_is_an_error_naming_the_field_when_sampling(interval):
    with pytest.raises(ValueError) as ei:
        ProfilerConfig(sampling=True, sample_interval=interval)
    msg = str(ei.value)
    assert msg.startswith("ProfilerConfig.sample_interval must be at least 0.001 s")
    assert "sampling=True" in msg and repr(interval) in msg
    with pytest.raises(ValueError, match=r"ProfilerConfig\.sample_interval must be at least "
                                         r"0\.001 s.*profile_level='basic'"):
        create_profiler_config("basic", sample_interval=interval)
    # Without the stack sampler the field keeps its old range (the memory
    # sampler clamps it): not an error.
    ProfilerConfig(profile_level="detailed", sample_interval=interval)
    ProfilerConfig(profile_level="basic", sampling=False, sample_interval=interval)


def test_the_check_runs_again_at_validate():
    cfg = ProfilerConfig(profile_level="detailed", sample_interval=1e-4)
    cfg.sampling = True
    with pytest.raises(ValueError, match=r"ProfilerConfig\.sample_interval"):
        cfg.validate()


@pytest.mark.parametrize("clock,mode", [("wall", 0), ("cpu", 1)])
def test_sample_clock_names_the_core_mode(clock, mode):
    assert kw(sampling=True, sample_clock=clock)["sample_mode"] == mode


@pytest.mark.parametrize("value,err", [("CPU", ValueError), ("process", ValueError),
                                       (1, TypeError), (None, TypeError)])
def test_bad_sample_clock_names_the_field_and_the_choices(value, err):
    with pytest.raises(err) as ei:
        ProfilerConfig(sample_clock=value)
    assert str(ei.value).startswith("ProfilerConfig.sample_clock must be one of 'wall', 'cpu'")


@pytest.mark.parametrize("value", [1, "yes", 0.0])
def test_sampling_is_none_or_a_bool(value):
    with pytest.raises(TypeError, match=r"ProfilerConfig\.sampling must be None .*True or "
                                        r"False"):
        ProfilerConfig(sampling=value)


def test_sample_native_only_with_the_sampler():
    assert kw(sampling=True, sample_native=True)["sample_native"] is True
    assert kw(profile_level="detailed", sample_native=True)["sample_native"] is False
    with pytest.raises(TypeError, match=r"ProfilerConfig\.sample_native must be a bool"):
        ProfilerConfig(sample_native="yes")


def test_a_sampling_profiler_builds_its_session():
    from code_profiler import VideoOpusClipProfiler
    p = VideoOpusClipProfiler(create_profiler_config("basic", sample_interval=0.01,
                                                     sample_clock="cpu"))
    p.start_profiling()
    p.stop_profiling()
    report = p.session.model().report("sampling")
    assert isinstance(report, dict) and "enabled" in report
