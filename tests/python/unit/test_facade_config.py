"""ProfilerConfig validation and create_profiler_config presets."""
from __future__ import annotations

import dataclasses
import os
from fractions import Fraction

import pytest

from code_profiler import LEVELS, ProfilerConfig, create_profiler_config

SEED_FIELDS = [
    "enabled", "profile_level", "enable_cprofile", "enable_line_profiler",
    "enable_memory_profiler", "enable_gpu_profiler", "enable_memory_tracking",
    "enable_gc_profiling", "memory_snapshots", "enable_cuda_profiling", "profile_cuda_memory",
    "profile_cuda_operations", "profile_data_loading", "profile_preprocessing",
    "profile_augmentation", "save_profiles", "output_dir", "detailed_reports",
    "sample_interval", "max_samples",
]
THRESHOLDS = {
    "slow_function_threshold_s": 1.0,
    "memory_intensive_threshold_mb": 100.0,
    "slow_data_loading_threshold_s": 1.0,
    "slow_preprocessing_threshold_s": 0.5,
    "slow_gpu_operation_threshold_s": 0.1,
    "data_stall_threshold": 0.2,
}


def test_every_seed_field_and_threshold_exists_with_documented_defaults():
    names = {f.name for f in dataclasses.fields(ProfilerConfig)}
    assert set(SEED_FIELDS) <= names
    cfg = ProfilerConfig()
    for name, default in THRESHOLDS.items():
        assert getattr(cfg, name) == default, name
    assert cfg.output_dir == "profiles"
    assert cfg.sample_interval == 0.1
    assert cfg.max_samples == 10000
    assert cfg.enabled is True


def test_seed_advanced_configuration_is_accepted():
    kwargs = {name: True for name in SEED_FIELDS
              if name not in ("profile_level", "output_dir", "sample_interval", "max_samples")}
    cfg = ProfilerConfig(profile_level="comprehensive", output_dir="profiles",
                         sample_interval=0.1, max_samples=10000, **kwargs)
    assert cfg.enable_line_profiler and cfg.profile_augmentation


@pytest.mark.parametrize("level", ["fast", "", "BASIC"])
def test_bad_profile_level_names_field_and_allowed_values(level):
    with pytest.raises(ValueError) as ei:
        ProfilerConfig(profile_level=level)
    msg = str(ei.value)
    assert msg == ("ProfilerConfig.profile_level must be one of 'basic', 'detailed', "
                   f"'comprehensive', got {level!r}")


@pytest.mark.parametrize("field", ["enabled", "enable_cprofile", "save_profiles",
                                   "profile_augmentation", "detailed_reports"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_bool_fields_reject_non_bool(field, value):
    with pytest.raises(TypeError) as ei:
        ProfilerConfig(**{field: value})
    assert f"ProfilerConfig.{field} must be a bool" in str(ei.value)
    assert repr(value) in str(ei.value)


@pytest.mark.parametrize("field", ["sample_interval", "slow_function_threshold_s",
                                   "memory_intensive_threshold_mb",
                                   "slow_data_loading_threshold_s",
                                   "slow_preprocessing_threshold_s",
                                   "slow_gpu_operation_threshold_s"])
@pytest.mark.parametrize("value", [0, -1.5, float("nan"), float("inf")])
def test_positive_number_fields(field, value):
    with pytest.raises(ValueError) as ei:
        ProfilerConfig(**{field: value})
    assert f"ProfilerConfig.{field} must be a positive finite number" in str(ei.value)


def test_number_fields_reject_wrong_types():
    with pytest.raises(TypeError, match=r"ProfilerConfig\.slow_function_threshold_s must be"):
        ProfilerConfig(slow_function_threshold_s="1")
    with pytest.raises(TypeError, match=r"ProfilerConfig\.sample_interval must be"):
        ProfilerConfig(sample_interval=True)


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1])
def test_data_stall_threshold_is_a_fraction(value):
    with pytest.raises(ValueError, match=r"ProfilerConfig\.data_stall_threshold must be a "
                                         r"number in \(0, 1\)"):
        ProfilerConfig(data_stall_threshold=value)


@pytest.mark.parametrize("value,exc", [(0, ValueError), (-5, ValueError),
                                       ((1 << 20) + 1, ValueError), (10.0, TypeError),
                                       (True, TypeError), ("100", TypeError)])
def test_max_samples(value, exc):
    with pytest.raises(exc) as ei:
        ProfilerConfig(max_samples=value)
    assert "ProfilerConfig.max_samples must be an int in [1, 1048576]" in str(ei.value)


def test_output_dir_validation():
    with pytest.raises(ValueError, match=r"ProfilerConfig\.output_dir"):
        ProfilerConfig(output_dir="")
    with pytest.raises(TypeError, match=r"ProfilerConfig\.output_dir"):
        ProfilerConfig(output_dir=3)


class _BytesPath:
    def __fspath__(self):
        return b"/tmp/profiles"


class _RaisingPath:
    def __fspath__(self):
        raise RuntimeError("no path today")


class _NulPath:
    def __fspath__(self):
        return "prof\0iles"


@pytest.mark.parametrize("value,exc,says", [
    ("prof\0iles", ValueError, "without NUL characters"),
    (_NulPath(), ValueError, "without NUL characters"),
    (_BytesPath(), TypeError, "returned bytes"),
    (_RaisingPath(), ValueError, "RuntimeError: no path today"),
    ("\ud800", ValueError, "encodable as a file name"),
    (b"profiles", TypeError, "got bytes"),
    (None, TypeError, "got NoneType"),
])
def test_output_dir_unusable_paths_rejected_at_construction(value, exc, says):
    """Regression: these used to be accepted and fail (or write elsewhere)
    only when a report was saved."""
    with pytest.raises(exc) as ei:
        ProfilerConfig(output_dir=value)
    assert "ProfilerConfig.output_dir must be a non-empty path" in str(ei.value)
    assert says in str(ei.value)
    with pytest.raises(exc, match=r"ProfilerConfig\.output_dir"):
        create_profiler_config("basic", output_dir=value)


def test_output_dir_pathlike_accepted(tmp_path):
    cfg = ProfilerConfig(output_dir=tmp_path / "reports")
    assert os.fspath(cfg.output_dir) == str(tmp_path / "reports")


SECONDS_FIELDS = ["sample_interval", "slow_function_threshold_s", "slow_data_loading_threshold_s",
                  "slow_preprocessing_threshold_s", "slow_gpu_operation_threshold_s"]


@pytest.mark.parametrize("field", SECONDS_FIELDS)
@pytest.mark.parametrize("value", [2e10, 1e9 * 1.0000001, 1e300,
                                   pytest.param(10 ** 400, id="10**400"),
                                   pytest.param(Fraction(10 ** 400), id="Fraction(10**400)"),
                                   1e-10, 5e-324, -0.0, float("-inf")])
def test_seconds_fields_bounded_to_what_the_core_represents(field, value):
    """Regression: slow_data_loading_threshold_s=2e10 was accepted, and the
    core's (uint64_t)(2e10 * 1e9) overflowed (every load "slow")."""
    with pytest.raises(ValueError) as ei:
        ProfilerConfig(**{field: value})
    msg = str(ei.value)
    assert f"ProfilerConfig.{field} must be a positive finite number in " \
           "[1e-09, 1e+09] (seconds)" in msg
    assert len(msg) < 300  # a huge int is shortened, not printed in full
    with pytest.raises(ValueError, match=f"ProfilerConfig\\.{field}"):
        create_profiler_config("detailed", **{field: value})


@pytest.mark.parametrize("field", SECONDS_FIELDS)
def test_seconds_fields_boundaries_accepted(field):
    for value in (1e-9, 1e9, 1, Fraction(1, 2), np_float(0.25)):
        ProfilerConfig(**{field: value})


def np_float(v):
    np = pytest.importorskip("numpy")
    return np.float32(v)


@pytest.mark.parametrize("value", [2 ** 33 * 1.01, 2.0 ** -21, 1e300,
                                   pytest.param(10 ** 400, id="10**400")])
def test_memory_threshold_bounded(value):
    with pytest.raises(ValueError) as ei:
        ProfilerConfig(memory_intensive_threshold_mb=value)
    assert "ProfilerConfig.memory_intensive_threshold_mb must be a positive finite number in " \
           "[2**-20, 2**33] (MiB" in str(ei.value)


def test_memory_threshold_boundaries_reach_the_core(make_profiler):
    """The extremes accepted here are accepted by the C core too (it
    validates again): 2**-20 MiB is 1 byte, 2**33 MiB is 2**53 bytes."""
    for mb, nbytes in ((2.0 ** -20, 1.0), (2.0 ** 33, 2.0 ** 53)):
        cfg = ProfilerConfig(profile_level="basic", memory_intensive_threshold_mb=mb)
        assert cfg.session_kwargs()["memory_intensive_bytes"] == nbytes
        report = make_profiler(cfg).get_comprehensive_report()
        assert report["config"]["memory_intensive_bytes"] == nbytes


@pytest.mark.parametrize("field", SECONDS_FIELDS[1:])
def test_seconds_boundaries_reach_the_core(make_profiler, field):
    for value in (1e-9, 1e9):
        make_profiler(ProfilerConfig(profile_level="basic", **{field: value}))


def test_core_rejects_what_python_would_have_let_through():
    """The C core bounds the same fields itself (a mutated config that skips
    Python validation still gets a ValueError naming the core's field)."""
    from code_profiler import _core
    with pytest.raises(ValueError, match="slow_data_loading_s"):
        _core.Session(slow_data_loading_s=2e10)
    with pytest.raises(ValueError, match="memory_intensive_bytes"):
        _core.Session(memory_intensive_bytes=float("nan"))
    with pytest.raises(ValueError, match="slow_function_s"):
        _core.Session(slow_function_s=1e-12)


def test_data_stall_threshold_rejects_nan_and_inf():
    for value in (float("nan"), float("inf"), float("-inf"), 10 ** 400):
        with pytest.raises(ValueError, match=r"ProfilerConfig\.data_stall_threshold must be"):
            ProfilerConfig(data_stall_threshold=value)


def test_session_kwargs_translate_units():
    cfg = ProfilerConfig(memory_intensive_threshold_mb=2.5, slow_function_threshold_s=0.25,
                         max_samples=77, data_stall_threshold=0.4, profile_level="basic")
    kw = cfg.session_kwargs()
    assert kw["memory_intensive_bytes"] == 2.5 * 1024 * 1024
    assert kw["slow_function_s"] == 0.25
    assert kw["max_samples"] == 77
    assert kw["data_stall_fraction"] == 0.4
    assert kw["percentiles"] is False
    assert ProfilerConfig(profile_level="detailed").session_kwargs()["percentiles"] is True


def test_thresholds_reach_the_core_report(make_profiler):
    cfg = ProfilerConfig(slow_function_threshold_s=0.3, memory_intensive_threshold_mb=7.0,
                         slow_gpu_operation_threshold_s=0.02, max_samples=123)
    report = make_profiler(cfg).get_comprehensive_report()
    c = report["config"]
    assert c["slow_function_s"] == pytest.approx(0.3)
    assert c["memory_intensive_bytes"] == pytest.approx(7.0 * 1024 * 1024)
    assert c["slow_gpu_op_s"] == pytest.approx(0.02)
    assert c["max_samples"] == 123


def test_profiler_revalidates_a_mutated_config(make_profiler):
    cfg = ProfilerConfig()
    cfg.profile_level = "turbo"
    with pytest.raises(ValueError, match="ProfilerConfig.profile_level"):
        make_profiler(cfg)


def test_profiler_rejects_non_config(make_profiler):
    with pytest.raises(TypeError, match="must be a ProfilerConfig"):
        make_profiler({"enabled": True})


def test_create_profiler_config_levels_differ():
    basic = create_profiler_config("basic")
    detailed = create_profiler_config("detailed")
    comp = create_profiler_config("comprehensive")
    assert [c.profile_level for c in (basic, detailed, comp)] == list(LEVELS)
    # basic: no tracer, no memory / GPU profilers
    assert not basic.enable_cprofile
    assert not basic.enable_memory_profiler and not basic.enable_gpu_profiler
    # detailed: tracer, memory and GPU on
    assert detailed.enable_cprofile and detailed.enable_memory_profiler
    assert detailed.enable_gpu_profiler
    assert not detailed.enable_line_profiler
    # comprehensive: every switch on (profile_workers_tracer stays an explicit
    # choice: the tracer in DataLoader workers adds to every item's time)
    switches = [f.name for f in dataclasses.fields(ProfilerConfig)
                if f.type in ("bool", bool)
                and f.name not in ("save_profiles", "profile_workers_tracer")]
    assert not comp.profile_workers_tracer
    assert all(getattr(comp, name) for name in switches), \
        [n for n in switches if not getattr(comp, n)]


def test_create_profiler_config_unknown_level_lists_allowed():
    with pytest.raises(ValueError) as ei:
        create_profiler_config("extreme")
    assert "'basic', 'detailed', 'comprehensive'" in str(ei.value)
    assert "'extreme'" in str(ei.value)


def test_create_profiler_config_overrides_and_unknown_field():
    cfg = create_profiler_config("basic", output_dir="elsewhere", enable_cprofile=True)
    assert cfg.output_dir == "elsewhere" and cfg.enable_cprofile
    with pytest.raises(TypeError, match="the fields are:"):
        create_profiler_config("basic", no_such_field=1)
    with pytest.raises(ValueError, match="ProfilerConfig.max_samples"):
        create_profiler_config("basic", max_samples=0)
