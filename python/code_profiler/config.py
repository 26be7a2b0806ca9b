"""ProfilerConfig and create_profiler_config: the seed's configuration API.

The configuration is plain data.  ``ProfilerConfig.session_kwargs()``
translates it into the keyword arguments of ``_core.Session`` (the C core
validates them again, so a value that passes here but not there still gets
a ValueError naming the field).  See docs/python-api.md for what each field
does in this version.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, fields
from typing import Any, Dict, Final, Literal, Optional, Tuple, Union

__all__ = ["LEVELS", "ProfileLevel", "ProfilerConfig", "SAMPLE_CLOCKS", "create_profiler_config"]

ProfileLevel = Literal["basic", "detailed", "comprehensive"]

#: The profiling levels, cheapest first.
LEVELS: Final[Tuple[str, ...]] = ("basic", "detailed", "comprehensive")

#: Largest max_samples the C core accepts (codeprof_config.max_samples).
MAX_SAMPLES_LIMIT: Final[int] = 1 << 20

_MIB: Final[float] = 1024.0 * 1024.0

#: Largest report_top_functions / report_tree_max_nodes the C core accepts
#: (src/core/config.c).
REPORT_TOP_FUNCTIONS_MAX: Final[int] = 1 << 24
REPORT_TREE_MAX_NODES_MAX: Final[int] = 1 << 26
#: Largest timeline_traced_events the C core accepts (src/core/config.c).
TIMELINE_TRACED_EVENTS_MAX: Final[int] = 1 << 24

#: Range of every threshold in seconds (and of sample_interval): the C core
#: compares times as whole uint64 nanoseconds, so a value must be at least
#: 1 ns and at most 1e9 s (1e18 ns).  Mirrors src/core/config.c.
SECONDS_RANGE: Final[Tuple[float, float]] = (1e-9, 1e9)

#: Range of memory_sample_bytes (codeprof_config.memory_sample_bytes, bytes)
#: and of memory_stack_depth (frames).  Mirrors src/core/config.c.
MEMORY_SAMPLE_BYTES_RANGE: Final[Tuple[int, int]] = (1, 1 << 40)
MEMORY_STACK_DEPTH_RANGE: Final[Tuple[int, int]] = (1, 16)

#: Allocation tracking of the C core (codeprof_config.memory_mode) by
#: profile_level when the memory profiler is on: "basic" RSS and GC only,
#: "detailed" sampled allocations (estimates), "comprehensive" every block.
MEMORY_MODE_BY_LEVEL: Final[Dict[str, int]] = {"basic": 0, "detailed": 1, "comprehensive": 2}

#: ProfilerConfig.memory_mode names (the report's memory "mode") -> the C
#: core's memory_mode.
MEMORY_MODES: Final[Dict[str, int]] = {"rss": 0, "sampled": 1, "all": 2}

#: Range of the process memory sampler's period (memory_sample_interval_s);
#: sample_interval is clamped into it when the memory profiler is on.
MEMORY_SAMPLER_PERIOD_S: Final[Tuple[float, float]] = (0.001, 3600.0)

#: Range of memory_intensive_threshold_mb: the core's byte threshold
#: (MiB x 2**20) must lie in [1, 2**53] bytes.  Mirrors src/core/config.c.
MEMORY_MB_RANGE: Final[Tuple[float, float]] = (2.0 ** -20, 2.0 ** 33)

#: Period of the stack sampler (sample_interval when sampling is on): the C
#: core's sample_interval_s range (src/core/config.c).  Below the minimum is
#: an error (the sampler cannot keep a shorter period); above the maximum
#: the period is clamped.
STACK_SAMPLER_PERIOD_S: Final[Tuple[float, float]] = (0.001, 60.0)

#: ProfilerConfig.sample_clock names -> the C core's sample_mode: "wall"
#: weighs every sample by the wall time since the thread's previous one
#: (waits show), "cpu" by the thread's CPU time (only computing shows).
SAMPLE_CLOCKS: Final[Dict[str, int]] = {"wall": 0, "cpu": 1}

_SECONDS_FIELDS: Final[Tuple[str, ...]] = (
    "sample_interval", "slow_function_threshold_s", "slow_data_loading_threshold_s",
    "slow_preprocessing_threshold_s", "slow_gpu_operation_threshold_s")


def _short_repr(value: object, limit: int = 60) -> str:
    """repr(value), cut in the middle past `limit` characters (a huge int)."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return f"<{type(value).__name__} too large to print>"
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 2:]} ({len(text)} characters)"


def _levels_text() -> str:
    return ", ".join(repr(lv) for lv in LEVELS)


def check_level(value: object, what: str) -> str:
    """Returns `value` if it is a profiling level, else raises ValueError
    (TypeError for a non-string) naming `what` and the allowed levels."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, one of {_levels_text()}, "
                        f"got {type(value).__name__} {value!r}")
    if value not in LEVELS:
        raise ValueError(f"{what} must be one of {_levels_text()}, got {value!r}")
    return value


@dataclass
class ProfilerConfig:
    """Configuration of a VideoOpusClipProfiler (every field of the guide).

    What each field does in this version (docs/python-api.md has the full
    table):

    * ``enabled`` -- False makes every profiler API a no-op that records
      nothing (contexts and decorators cost almost nothing).
    * ``profile_level`` -- "basic": wall time and RSS delta per decorated
      call, no per-call CPU time, no percentiles; "detailed" and
      "comprehensive": also thread CPU time per scope and p50/p95/p99.
      It is also the default level of ``profile_function`` /
      ``profile_class`` when they are given none.
    * ``enable_cprofile`` -- run the C tracer: every Python function (and C
      function called from Python) on every thread is recorded in the call
      tree, like cProfile but into the same report.
    * ``max_samples`` -- per-node reservoir size for percentiles.
    * ``output_dir`` / ``save_profiles`` -- where reports go; with
      ``save_profiles`` the report is also saved there at every
      ``stop_profiling()``.
    * thresholds (``slow_function_threshold_s`` ...) -- the analysis rules'
      thresholds, applied by the C core.  Times (and ``sample_interval``)
      must lie in [1e-9, 1e9] seconds, ``memory_intensive_threshold_mb`` in
      [2**-20, 2**33] MiB, ``data_stall_threshold`` in (0, 1); NaN and
      infinities are rejected.
    * ``output_dir`` -- a non-empty str or os.PathLike[str] (no NUL
      character); checked on construction.
    * ``report_top_functions`` / ``report_tree_max_nodes`` /
      ``report_tree_min_share`` -- the report policy: how many functions and
      call-tree nodes the JSON report and the views show (docs/report-schema.md).
    * ``timeline_traced_events`` -- at the "detailed" and "comprehensive"
      levels the tracer's calls also go on the trace export's timeline, in
      a store of their own holding the first and the last of this many
      events (0: none); the explicit scopes keep their own bound.
    * ``enable_memory_profiler`` / ``enable_memory_tracking`` -- either one
      switches the memory profiler on (docs/memory.md): ``memory_context``,
      ``profile_memory_usage`` and every ``profile_function``-decorated
      function measure the net change and the peak of memory within each
      call, and ``get_memory_report()`` reports them.  What is measured
      depends on ``profile_level``: "basic" RSS and GC only; "detailed"
      allocation tracking sampled about every ``memory_sample_bytes`` bytes
      (figures are estimates, marked ``estimated``); "comprehensive" every
      live block with its allocation site (exact; leaks by site).  With the
      memory profiler on, GC statistics are always collected and the
      process RSS is sampled every ``sample_interval`` seconds (clamped to
      [0.001, 3600]) into the timeline, at most ``max_samples`` samples.
    * ``enable_gc_profiling`` -- GC statistics (collections per generation,
      time in GC, collected objects) even without the memory profiler.
    * ``memory_snapshots`` -- with the memory profiler on at "detailed" or
      "comprehensive": the live tracked bytes by allocation site at the
      end of every memory context, diffable with ``codeprof diff``.
    * ``memory_sample_bytes`` -- mean bytes between recorded allocations at
      "detailed" (an int in [1, 2**40]; default 256 KiB).
    * ``memory_stack_depth`` -- Python frames kept per allocation stack (an
      int in [1, 16]; default 8).
    * ``memory_mode`` -- None (default): allocation tracking follows
      ``profile_level`` as above; "rss", "sampled" or "all" choose it
      regardless of the level (e.g. sampled allocations with "basic"'s
      cheap timing; ``codeprof run --native-memory`` needs tracking on).
    * ``sampling`` -- the statistical profiler (docs/sampling-usage.md): a
      stack sampler that reads every Python thread's stack every
      ``sample_interval`` seconds and folds the samples into the same call
      tree as estimates.  None (default): on at ``profile_level="basic"``
      with ``enable_cprofile=False`` (the guide's Production Monitoring:
      it samples instead of tracing), off otherwise; True: on at every
      level (with ``enable_cprofile`` a run traces and samples); False: off.
      With the sampler on, ``sample_interval`` must be at least 0.001 s (a
      ValueError names the field otherwise) and is clamped to 60 s.
    * ``sample_clock`` -- "wall" (default): samples weigh wall time, so a
      thread that sleeps or waits shows where it waits; "cpu": they weigh
      the thread's CPU time, so only computing shows.
    * ``sample_native`` -- the sampler also records what native code a
      thread is in where it can tell safely (docs/sampling.md).
    * the remaining switches (line profiler, CUDA profiling, data-loading,
      detailed_reports) are accepted and validated; the subsystems they
      control land in later versions and read them from here.
    """

    # General settings
    enabled: bool = True
    profile_level: str = "detailed"

    # Performance profiling
    enable_cprofile: bool = False
    enable_line_profiler: bool = False
    enable_memory_profiler: bool = False
    enable_gpu_profiler: bool = False

    # Memory profiling
    enable_memory_tracking: bool = False
    enable_gc_profiling: bool = False
    memory_snapshots: bool = False

    # GPU profiling
    enable_cuda_profiling: bool = False
    profile_cuda_memory: bool = False
    profile_cuda_operations: bool = False

    # Data loading profiling
    profile_data_loading: bool = False
    profile_preprocessing: bool = False
    profile_augmentation: bool = False

    # DataLoader workers and the Python tracer: with enable_cprofile the
    # tracer is off in worker processes (a forked worker drops the one it
    # inherited, a spawn/forkserver worker never starts one) so that item
    # times never include its cost; True keeps it on there too.  A bool,
    # checked by validate() with the other switches; without
    # enable_cprofile it has no effect.
    profile_workers_tracer: bool = False

    # Output settings
    save_profiles: bool = False
    output_dir: Union[str, "os.PathLike[str]"] = "profiles"
    detailed_reports: bool = True

    # Sampling settings
    sample_interval: float = 0.1
    max_samples: int = 10000
    # Statistical profiling (docs/sampling-usage.md): None samples at
    # "basic" without enable_cprofile; True at every level; False never.
    sampling: Optional[bool] = None
    sample_clock: str = "wall"
    sample_native: bool = False

    # Analysis thresholds (seconds, MiB, fraction)
    slow_function_threshold_s: float = 1.0
    memory_intensive_threshold_mb: float = 100.0
    slow_data_loading_threshold_s: float = 1.0
    slow_preprocessing_threshold_s: float = 0.5
    slow_gpu_operation_threshold_s: float = 0.1
    data_stall_threshold: float = 0.2

    # Report policy (docs/report-schema.md, "report_policy"): how much of
    # the profile the JSON report and the get_* views show.  The top
    # functions by inclusive and by self time; a call tree pruned to nodes
    # with at least this share of the total time (the rest folded into
    # exact "other" nodes), at most this many nodes.  Exports (pstats,
    # speedscope, collapsed, trace) are not bounded by it.
    report_top_functions: int = 50
    report_tree_max_nodes: int = 2000
    report_tree_min_share: float = 0.001
    timeline_traced_events: int = 1 << 18

    # Memory profiler details (docs/memory.md): mean bytes between sampled
    # allocations at the "detailed" level, and Python frames kept per
    # allocation stack.
    memory_sample_bytes: int = 256 * 1024
    memory_stack_depth: int = 8
    # Allocation tracking regardless of the level: "rss", "sampled", "all"
    # (None: by profile_level).
    memory_mode: Optional[str] = None

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ---------------------------------------------------------

    def validate(self) -> None:
        """Checks every field; raises ValueError/TypeError naming the first
        bad field, what is allowed and what was given."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise TypeError(f"ProfilerConfig.{f.name} must be a bool (True or False), "
                                    f"got {type(value).__name__} {value!r}")
        check_level(self.profile_level, "ProfilerConfig.profile_level")

        self._check_output_dir(self.output_dir)

        ms = self.max_samples
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise TypeError(f"ProfilerConfig.max_samples must be an int in [1, {MAX_SAMPLES_LIMIT}], "
                            f"got {type(ms).__name__} {ms!r}")
        if not 1 <= ms <= MAX_SAMPLES_LIMIT:
            raise ValueError(f"ProfilerConfig.max_samples must be an int in [1, {MAX_SAMPLES_LIMIT}], "
                             f"got {ms!r}")

        for name in _SECONDS_FIELDS:
            self._check_number(name, getattr(self, name), SECONDS_RANGE, "[1e-09, 1e+09] (seconds)")
        self._check_number("memory_intensive_threshold_mb", self.memory_intensive_threshold_mb,
                           MEMORY_MB_RANGE, "[2**-20, 2**33] (MiB: 1 byte to 8 PiB)")
        self._check_fraction("data_stall_threshold", self.data_stall_threshold)
        for name, hi in (("report_top_functions", REPORT_TOP_FUNCTIONS_MAX),
                         ("report_tree_max_nodes", REPORT_TREE_MAX_NODES_MAX),
                         ("timeline_traced_events", TIMELINE_TRACED_EVENTS_MAX)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                err = TypeError if isinstance(v, bool) or not isinstance(v, int) else ValueError
                raise err(f"ProfilerConfig.{name} must be an int in [0, {hi}], "
                          f"got {type(v).__name__} {_short_repr(v)}")
        for name, (lo, hi), unit in (("memory_sample_bytes", MEMORY_SAMPLE_BYTES_RANGE, " bytes"),
                                     ("memory_stack_depth", MEMORY_STACK_DEPTH_RANGE, " frames")):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                err = TypeError if isinstance(v, bool) or not isinstance(v, int) else ValueError
                shown = "2**40" if hi == 1 << 40 else str(hi)
                raise err(f"ProfilerConfig.{name} must be an int in [{lo}, {shown}]{unit}, "
                          f"got {type(v).__name__} {_short_repr(v)}")
        mm = self.memory_mode
        if mm is not None and (not isinstance(mm, str) or mm not in MEMORY_MODES):
            err = TypeError if not isinstance(mm, str) else ValueError
            raise err("ProfilerConfig.memory_mode must be None (by profile_level) or one of "
                      f"{', '.join(repr(m) for m in MEMORY_MODES)}, got "
                      f"{type(mm).__name__} {_short_repr(mm)}")
        self._check_sampling()
        share = self._as_real("report_tree_min_share", self.report_tree_min_share,
                              "a number in [0, 1]")
        if not 0.0 <= share <= 1.0:  # False for NaN
            raise ValueError("ProfilerConfig.report_tree_min_share must be a number in [0, 1], "
                             f"got {_short_repr(self.report_tree_min_share)}")

    def _check_sampling(self) -> None:
        """The sampling fields: ``sampling`` None or a bool, ``sample_clock``
        a clock name, and with the sampler on ``sample_interval`` at least the
        sampler's minimum period (sample_interval itself was checked)."""
        sp = self.sampling
        if sp is not None and not isinstance(sp, bool):
            raise TypeError("ProfilerConfig.sampling must be None (on at profile_level='basic' "
                            "with enable_cprofile=False), True or False, got "
                            f"{type(sp).__name__} {_short_repr(sp)}")
        sc = self.sample_clock
        if not isinstance(sc, str) or sc not in SAMPLE_CLOCKS:
            err = TypeError if not isinstance(sc, str) else ValueError
            raise err("ProfilerConfig.sample_clock must be one of "
                      f"{', '.join(repr(c) for c in SAMPLE_CLOCKS)}, got "
                      f"{type(sc).__name__} {_short_repr(sc)}")
        lo = STACK_SAMPLER_PERIOD_S[0]
        if self.sampling_on and float(self.sample_interval) < lo:
            why = ("sampling=True" if self.sampling else
                   "profile_level='basic' with enable_cprofile=False samples")
            raise ValueError(f"ProfilerConfig.sample_interval must be at least {lo} s (1 ms, the "
                             f"stack sampler's shortest period) when the sampler is on ({why}), "
                             f"got {_short_repr(self.sample_interval)}")

    @staticmethod
    def _check_output_dir(od: object) -> None:
        """A str or os.PathLike whose path is a non-empty str that the OS can
        take: no NUL byte, encodable with the filesystem encoding."""
        what = "ProfilerConfig.output_dir must be a non-empty path (str or os.PathLike[str])"
        if not isinstance(od, (str, os.PathLike)):
            raise TypeError(f"{what}, got {type(od).__name__} {od!r}")
        try:
            path = os.fspath(od)
        except Exception as e:  # a PathLike whose __fspath__ fails
            raise ValueError(f"{what}; os.fspath() of the {type(od).__name__} given failed: "
                             f"{type(e).__name__}: {e}") from e
        if not isinstance(path, str):
            raise TypeError(f"{what}; the {type(od).__name__} given returned "
                            f"{type(path).__name__} {path!r} from __fspath__")
        if path == "":
            raise ValueError(f"{what}, got ''")
        if "\0" in path:
            raise ValueError(f"{what} without NUL characters, got {path!r}")
        try:
            os.fsencode(path)
        except UnicodeError as e:
            raise ValueError(f"{what} encodable as a file name, got {path!r} ({e})") from None

    @staticmethod
    def _as_real(name: str, value: object, allowed: str) -> float:
        """`value` as a float if it is a real number (not a bool), else TypeError."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"ProfilerConfig.{name} must be {allowed}, "
                            f"got {type(value).__name__} {value!r}")
        try:
            return float(value)
        except (OverflowError, ValueError, TypeError):
            # Too large for a float (a huge int or Fraction): out of every
            # range, whatever its sign.
            return math.inf

    @staticmethod
    def _check_number(name: str, value: object, bounds: Tuple[float, float], shown: str) -> None:
        lo, hi = bounds
        allowed = f"a positive finite number in {shown}"
        v = ProfilerConfig._as_real(name, value, allowed)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"ProfilerConfig.{name} must be {allowed}, got {_short_repr(value)}")

    @staticmethod
    def _check_fraction(name: str, value: object) -> None:
        allowed = "a number in (0, 1) (exclusive)"
        v = ProfilerConfig._as_real(name, value, allowed)
        if not 0.0 < v < 1.0:  # False for NaN
            raise ValueError(f"ProfilerConfig.{name} must be {allowed}, got {_short_repr(value)}")

    # -- translation ----------------------------------------------------------

    @property
    def memory_profiler_on(self) -> bool:
        """True when the memory profiler measures: ``enable_memory_profiler``
        or ``enable_memory_tracking`` (the guide uses both names)."""
        return bool(self.enable_memory_profiler or self.enable_memory_tracking)

    def memory_session_kwargs(self) -> Dict[str, Any]:
        """The memory part of session_kwargs(): allocation tracking mode by
        profile_level, GC statistics, snapshots, the process memory sampler
        and its timeline bound (docs/memory.md)."""
        on = self.memory_profiler_on
        if not on:
            mode = 0
        elif self.memory_mode is not None:
            mode = MEMORY_MODES[self.memory_mode]
        else:
            mode = MEMORY_MODE_BY_LEVEL[self.profile_level]
        lo, hi = MEMORY_SAMPLER_PERIOD_S
        interval = min(max(float(self.sample_interval), lo), hi) if on else 0.0
        return {
            "memory_mode": mode,
            "memory_sample_bytes": self.memory_sample_bytes,
            "memory_stack_depth": self.memory_stack_depth,
            # GC figures are part of every memory report (gc_statistics):
            # on with the memory profiler, or alone with enable_gc_profiling.
            "gc": bool(on or self.enable_gc_profiling),
            # Snapshots are of tracked allocations: nothing to snapshot at
            # "basic" (mode 0) or with the memory profiler off.
            "memory_snapshots": bool(self.memory_snapshots and mode > 0),
            "memory_sample_interval_s": interval,
            "memory_timeline_samples": self.max_samples,
        }

    @property
    def sampling_on(self) -> bool:
        """True when the stack sampler runs with the session: ``sampling``
        if it is set, else at ``profile_level="basic"`` without
        ``enable_cprofile`` (the guide's Production Monitoring samples
        instead of tracing).  ``enable_cprofile=True`` at "basic" asks for
        the exact tracer and gets it alone; ``sampling=True`` adds the
        sampler at any level.  False for a disabled profiler."""
        if not self.enabled:
            return False
        if self.sampling is not None:
            return self.sampling
        return self.profile_level == "basic" and not self.enable_cprofile

    @property
    def sample_interval_s(self) -> float:
        """The stack sampler's period: sample_interval clamped to at most
        60 s (validate() refused one below 0.001 s with the sampler on)."""
        lo, hi = STACK_SAMPLER_PERIOD_S
        return min(max(float(self.sample_interval), lo), hi)

    def sampling_session_kwargs(self) -> Dict[str, Any]:
        """The statistical-profiling part of session_kwargs(): the stack
        sampler (``sample_interval_s``: 0 when off, ``sample_mode``,
        ``sample_native``) and line-level timing (``lines``)
        (docs/sampling-usage.md)."""
        on = self.sampling_on
        kwargs: Dict[str, Any] = {
            "sample_interval_s": self.sample_interval_s if on else 0.0,
            "sample_mode": SAMPLE_CLOCKS[self.sample_clock],
            "sample_native": bool(on and self.sample_native),
        }
        # ---- line-level timing ----
        # lines=True lets functions decorated at the detailed/comprehensive
        # level be line-timed (the decorator registers them); nothing is
        # hooked until one is (docs/line-profiling.md).
        kwargs["lines"] = bool(self.enable_line_profiler)
        return kwargs

    @property
    def gpu_profiler_on(self) -> bool:
        """True when GPU operations are timed with CUDA events: the guide's
        ``enable_gpu_profiler`` (or, alone, ``enable_cuda_profiling`` /
        ``profile_cuda_operations``) on an enabled profiler."""
        return bool(self.enabled and (self.enable_gpu_profiler or self.enable_cuda_profiling
                                      or self.profile_cuda_operations))

    def gpu_session_kwargs(self) -> Dict[str, Any]:
        """The GPU part of session_kwargs() (docs/gpu.md):

        * ``gpu``: operations (``profile_cuda_operation``, ``cuda_context``)
          timed with CUDA events on their stream, when gpu_profiler_on;
        * ``gpu_memory``: CUDA memory per operation (torch's caching
          allocator, else the driver's free/total) -- with the GPU profiler
          (the guide's GPU report prints memory_statistics after the basic
          configuration) or ``profile_cuda_memory``;
        * ``gpu_sync``: host synchronization points blamed on the Python
          line, with ``enable_cuda_profiling`` (a whole-program instrument,
          like the tracer);
        * ``gpu_sample_interval_s``: NVML utilization sampling every
          ``sample_interval`` (clamped to [0.001, 3600] s) with the GPU
          profiler; ``gpu_max_ops``: operations kept one by one, bounded
          like the other timelines by ``max_samples`` (at least 1024)."""
        on = self.gpu_profiler_on
        lo, hi = MEMORY_SAMPLER_PERIOD_S
        return {
            "gpu": on,
            "gpu_memory": bool(on and (self.enable_gpu_profiler or self.profile_cuda_memory)),
            "gpu_sync": bool(on and self.enable_cuda_profiling),
            "gpu_sample_interval_s": min(max(float(self.sample_interval), lo), hi) if on else 0.0,
            "gpu_max_ops": max(1024, int(self.max_samples)),
        }

    def session_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``_core.Session`` for this configuration."""
        return {
            **self.memory_session_kwargs(),
            **self.sampling_session_kwargs(),
            **self.gpu_session_kwargs(),
            "max_samples": self.max_samples,
            "slow_function_s": float(self.slow_function_threshold_s),
            "memory_intensive_bytes": float(self.memory_intensive_threshold_mb) * _MIB,
            "slow_data_loading_s": float(self.slow_data_loading_threshold_s),
            "slow_preprocessing_s": float(self.slow_preprocessing_threshold_s),
            "slow_gpu_op_s": float(self.slow_gpu_operation_threshold_s),
            "data_stall_fraction": float(self.data_stall_threshold),
            # Per-scope CPU time is requested per scope through SCOPE_CPU;
            # the session-wide switch stays on so a "detailed" decorator
            # under a "basic" config still gets it.
            "scope_cpu": True,
            "percentiles": self.profile_level != "basic",
            "report_top_functions": self.report_top_functions,
            "report_tree_max_nodes": self.report_tree_max_nodes,
            "report_tree_min_share": float(self.report_tree_min_share),
            # Traced Python calls on the trace export's timeline (their own
            # bounded store, timeline_traced_events): at "detailed" and
            # "comprehensive", not at "basic".
            "timeline_traced": self.profile_level != "basic",
            "timeline_traced_events": self.timeline_traced_events,
        }

    def replace(self, **changes: Any) -> "ProfilerConfig":
        """A copy with `changes` applied (validated)."""
        return dataclasses.replace(self, **changes)


# Presets of create_profiler_config.  Fields not named keep the dataclass
# defaults.
_PRESETS: Final[Dict[str, Dict[str, Any]]] = {
    "basic": dict(
        profile_level="basic",
        enable_cprofile=False,
        enable_memory_profiler=False,
        enable_gpu_profiler=False,
        detailed_reports=False,
    ),
    "detailed": dict(
        profile_level="detailed",
        enable_cprofile=True,
        enable_memory_profiler=True,
        enable_memory_tracking=True,
        enable_gpu_profiler=True,
        enable_cuda_profiling=True,
        profile_cuda_memory=True,
        profile_data_loading=True,
        profile_preprocessing=True,
        detailed_reports=True,
    ),
    "comprehensive": dict(
        profile_level="comprehensive",
        enable_cprofile=True,
        enable_line_profiler=True,
        enable_memory_profiler=True,
        enable_gpu_profiler=True,
        enable_memory_tracking=True,
        enable_gc_profiling=True,
        memory_snapshots=True,
        enable_cuda_profiling=True,
        profile_cuda_memory=True,
        profile_cuda_operations=True,
        profile_data_loading=True,
        profile_preprocessing=True,
        profile_augmentation=True,
        detailed_reports=True,
        # native frames in samples when sampling=True is added
        sample_native=True,
    ),
}


def create_profiler_config(level: str = "detailed", **overrides: Any) -> ProfilerConfig:
    """A ProfilerConfig preset for `level`; `overrides` change single fields.

    * ``"basic"`` -- quick assessment at the lowest cost: what you
      instrument explicitly (``profiling_context``, ``profile_function``,
      ``profile_class``) is recorded, with wall time and the RSS delta per
      decorated call, and between start_profiling() and stop_profiling()
      the stack sampler estimates where every thread spends its time (every
      ``sample_interval``; ``sampling=False`` turns it off); no tracer, no
      per-call CPU time in contexts, no percentiles, memory and GPU
      profilers off.
    * ``"detailed"`` -- adds the C tracer (every Python function and the C
      functions it calls, on every thread, in the call tree), thread CPU
      time per scope, p50/p95/p99 per node, and switches the memory, GPU
      (when available) and data-loading profilers on.  Memory: sampled
      allocation tracking (one allocation recorded about every
      ``memory_sample_bytes``, estimates marked as such), RSS and GC.
    * ``"comprehensive"`` -- everything on: also line profiling, GC
      profiling, memory snapshots, CUDA operation profiling and
      augmentation profiling.  Memory: every live block tracked with its
      allocation site (exact figures, leaks by site), RSS and GC.

    ``create_profiler_config("basic", enable_memory_profiler=True)`` gives
    the cheapest memory profiler: RSS and GC only (docs/memory.md).

    Switches of subsystems that land in later versions are set here
    already and take effect when they do.  An unknown level raises
    ValueError listing the allowed ones.
    """
    check_level(level, "create_profiler_config(level)")
    params: Dict[str, Any] = dict(_PRESETS[level])
    params.update(overrides)
    try:
        return ProfilerConfig(**params)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            names = ", ".join(f.name for f in fields(ProfilerConfig))
            raise TypeError(f"create_profiler_config(): {e}; the fields are: {names}") from None
        raise
