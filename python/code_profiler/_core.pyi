"""Typed interface of ``code_profiler._core``, the C extension (src/python/).

This is the contract between the C extension and the Python facade.  Every
measurement, aggregation, analysis and report is produced by libcodeprof;
the facade only translates the seed's API into these calls.
"""
import os
import types
from typing import Any, Dict, Final, List, Literal, Optional, Tuple, Union

# codeprof_site_kind
SITE_SCOPE: Final[int]       # 0  named scope / profiling_context
SITE_PYTHON: Final[int]      # 1  Python function seen by the tracer
SITE_NATIVE: Final[int]      # 2  C function called from Python (tracer)
SITE_FUNCTION: Final[int]    # 3  function decorated with profile_function
SITE_DATASET: Final[int]     # 4  dataset item load
SITE_LOADER: Final[int]      # 5  data-loader batch wait
SITE_PREPROCESS: Final[int]  # 6  preprocessing stage
SITE_AUGMENT: Final[int]     # 7  augmentation stage
SITE_GPU: Final[int]         # 8  GPU operation

# codeprof_scope_flag
SCOPE_CPU: Final[int]        # measure thread CPU time of the scope
SCOPE_RSS: Final[int]        # measure the RSS delta of the scope
SCOPE_ITEM: Final[int]       # the scope is one dataset item load (set ATTR_INDEX inside)
SCOPE_BATCH: Final[int]      # the scope is one wait in a loader's next() (ATTR_ITEMS, ATTR_EPOCH)
SCOPE_HEAP: Final[int]       # measure memory: tracked-heap and RSS delta/peak (a memory context)

# codeprof_attr_key
ATTR_INDEX: Final[int]
ATTR_BYTES: Final[int]
ATTR_ITEMS: Final[int]
ATTR_EPOCH: Final[int]
ATTR_FAILED: Final[int]
ATTR_CANCEL: Final[int]      # the open item/batch scope is not one (end of stream)

VERSION: Final[str]
REPORT_SCHEMA_VERSION: Final[int]

def site(name: str, file: Optional[str] = None, line: int = 0, kind: int = 0) -> int:
    """Intern a site in the process-wide table; same arguments -> same id (> 0)."""

def now_ns() -> int:
    """Monotonic ns on the event clock."""

def rss_bytes() -> int:
    """Current resident set size of the process in bytes (0 if unknown)."""

def clock_source() -> str:
    """'tsc', 'monotonic' or 'fake'."""

def tracer_busy() -> bool:
    """True while some session of this process traces Python calls."""

def format_for_path(path: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """The report format a file name asks for by its ending, or None."""

def render_report(in_path: Union[str, "os.PathLike[str]"],
                  format: Optional[str] = "text") -> Union[str, bytes]:
    """Read a saved JSON report (schema version 2) and render it in `format`
    ('text', 'json', 'pstats', 'speedscope', 'collapsed', 'trace'); bytes for
    'pstats', str otherwise.  ValueError for a malformed report or another
    schema version (the message names the file, the JSON path and what was
    expected), OSError when it cannot be read."""

def save_report(in_path: Union[str, "os.PathLike[str]"], out_path: Union[str, "os.PathLike[str]"],
                format: Optional[str] = None) -> str:
    """Read a saved JSON report and write it atomically to out_path in
    `format`; None: the format out_path's ending asks for.  A format that
    contradicts the ending, or no format and an unknown ending, is a
    ValueError.  Returns the format name written."""

def diff_reports(a_path: Union[str, "os.PathLike[str]"], b_path: Union[str, "os.PathLike[str]"],
                 format: Literal["text", "json"] = "text") -> str:
    """Compare two saved JSON reports, B against A: functions, stages, loaders,
    datasets and findings, each with both values and the ratio B/A."""

def _sample_threads(rounds: int = 2, gap_s: float = 0.05,
                    native: bool = False) -> Dict[str, Any]:
    """Run the stack sampler's reader `rounds` times on the calling thread
    (GIL released) and return the last round (tests):
    {"threads": [{"tid", "state", "weight_ns", "frames": [(name, file,
    first_line, line)], "native"}], "read_errors", "skipped"}."""

def tracer_ignore(code: types.CodeType) -> None:
    """Never record calls of this code object (the facade's own wrappers)."""

def line_profile_add(func_or_code: Union[types.FunctionType, types.CodeType]) -> int:
    """Register a function (preferred: its module names the site as the tracer
    does) or a code object for line-level timing.  While a Session created
    with ``lines=True`` runs, each line it starts is timed (hits, and the time
    until the frame's next line or its end, callees included): 3.12+ through
    sys.monitoring local events on the registered code objects only, 3.11
    through a C trace hook.  Registration is process-wide and lasts; returns
    the site id, 0 when refused (the profiler's own code, or more than 2048
    registered).  docs/line-profiling.md."""

def line_profile_clear() -> None:
    """Unregister every function from line timing (hooks removed)."""

def line_profile_state() -> Dict[str, Any]:
    """Line timing now: ``registered`` and ``refused`` code objects, ``active``
    (hooks installed), ``mechanism`` ("sys.monitoring", "settrace" or "off"),
    ``tool_id`` (3.12+, -1 when off)."""

def tracer_stop() -> None:
    """Stop the Python tracer of whichever session runs it; that session keeps
    recording without it (a forked DataLoader worker drops the tracer it
    inherited).  No-op when none traces."""

def tracer_on_this_thread() -> bool:
    """True when the Python tracer records the calling thread's calls."""

class Scope:
    """Context manager returned by Session.scope(); enter/exit in C.

    Reusable and reentrant-safe per thread: each __enter__ opens a scope on
    the calling thread and the matching __exit__ closes it.  __exit__ never
    swallows exceptions (returns False)."""
    def __enter__(self) -> "Scope": ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool: ...
    @property
    def site(self) -> int: ...
    @property
    def flags(self) -> int: ...

class Session:
    """A libcodeprof session (codeprof_session).

    Keyword arguments are the fields of codeprof_config; an invalid value
    raises ValueError naming the field and the allowed range."""
    def __init__(
        self,
        *,
        buffer_events: int = 65536,
        max_nodes: int = 1 << 20,
        max_samples: int = 10000,
        slow_function_s: float = 1.0,
        memory_intensive_bytes: float = 100 * 1024 * 1024,
        slow_data_loading_s: float = 1.0,
        slow_preprocessing_s: float = 0.5,
        slow_gpu_op_s: float = 0.1,
        data_stall_fraction: float = 0.2,
        scope_cpu: bool = True,
        percentiles: bool = True,
        report_top_functions: int = 50,
        report_tree_max_nodes: int = 2000,
        report_tree_min_share: float = 0.001,
        timeline_traced: bool = False,
        timeline_traced_events: int = 262144,
        memory_mode: int = 0,
        memory_stack_depth: int = 8,
        memory_sample_bytes: int = 262144,
        memory_max_blocks: int = 1 << 22,
        memory_max_stacks: int = 1 << 16,
        memory_max_snapshots: int = 64,
        memory_timeline_samples: int = 10000,
        memory_sample_interval_s: float = 0.0,
        memory_snapshots: bool = False,
        gc: bool = False,
    ) -> None: ...

    def start(self, trace_python: bool = False) -> None:
        """Start recording; RuntimeError if already running.  With
        trace_python=True, every Python call (and C call made from Python)
        on every thread, existing and future, is recorded until stop():
        sys.monitoring on 3.12+ (falling back to the profile hook when the
        tool id is taken), PyEval_SetProfile on all threads on 3.11."""
    def stop(self) -> None:
        """Stop recording and fold; RuntimeError if not running."""
    def reset(self) -> None:
        """Discard recorded data; RuntimeError while running."""
    @property
    def running(self) -> bool: ...
    @property
    def tracer(self) -> Literal["off", "setprofile", "sys.monitoring", "eval_frame"]:
        """Which tracer mechanism is active for this session."""
    def set_role(self, role: str) -> None: ...
    def set_sampling(self, on: bool) -> None:
        """Turn the stack sampler on or off in this process (a fork child or
        DataLoader worker); raises when sample_interval_s is 0."""

    def site(self, name: str, file: Optional[str] = None, line: int = 0,
             kind: int = 0) -> int:
        """A site of this session's own table, freed with the session."""
        ...
    def scope(self, site: int, flags: int = 0) -> Scope:
        """A C-implemented context manager timing `site` on this session."""
    def enter(self, site: int, flags: int = 0) -> None: ...
    def exit(self, site: int, flags: int = 0) -> None: ...
    def attr(self, key: int, value: int) -> None: ...

    def describe_loader(
        self,
        site: int,
        num_workers: int = 0,
        batch_size: int = 0,
        prefetch_factor: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        uses_gpu: bool = False,
        iterable: bool = False,
    ) -> None:
        """Record the configuration of the loader whose batch scopes use `site`."""
    def watch_process(self, pid: int, worker: int = -1, loader: Optional[int] = None) -> bool:
        """Follow process `pid` (DataLoader worker `worker` of the loader site
        `loader`): RSS, PSS and USS from /proc/<pid>/smaps_rollup every
        memory_sample_interval_s until it exits.  False when the memory
        sampler is off; ValueError for pid <= 0 or a loader out of range."""
    def describe_dataset_memory(self, loader: int, dataset: int, text: str,
                                py_objects: int = 0, array_bytes: int = 0) -> bool:
        """Describe the large containers of the dataset behind loader site
        `loader` (for CP-DATA-009).  False when the memory sampler is off or
        16 loaders are described already."""
    def set_spool_dir(self, dir: Optional[str]) -> None:
        """Parent: merge worker spool files (*.cpspool) found in `dir` into reports."""
    def attach_worker(self, dir: str, worker_id: int) -> None:
        """Worker: from now on write data-loading records to "<dir>/<pid>.cpspool"
        (OSError naming the file on failure; RuntimeError if already attached)."""
    def close_worker(self) -> None:
        """Worker: mark the spool complete (clean shutdown)."""

    def warnings(self) -> List[Tuple[str, str]]:
        """The (code, message) warnings recorded so far, oldest first (at most
        64), e.g. ("tracer_thread_lost", "thread 1234: another profiler ...")
        when another tool took a thread's profile hook while tracing."""

    def report_json(self) -> str:
        """The versioned JSON report (docs/report-schema.md) of all data so far."""
    def model(self) -> "Model":
        """The report model of all data so far, with its findings: the cached
        one while nothing new was recorded, else a new snapshot."""
    def model_counts(self) -> Tuple[int, int]:
        """(models built for reports, reports served from the cached model)."""
    def report_text(self) -> str:
        """Human summary: top functions by inclusive and self time, findings."""
    def save(self, path: str,
             format: Literal["json", "text", "pstats", "speedscope", "collapsed",
                             "trace"] = "json") -> None:
        """Write the report or an export (docs/exports.md) atomically;
        OSError naming the path on failure (nothing recorded is lost)."""


class Model:
    """A finished report model with its findings (Session.model()); immutable."""
    @property
    def functions_profiled(self) -> int: ...
    @property
    def nodes(self) -> int: ...
    def report(self, section: Optional[str] = None) -> Any:
        """The report document (docs/report-schema.md) as Python objects, equal
        to json.loads of the JSON report; with `section`, only that top-level
        key's value ('meta', 'config', 'report_policy', 'performance',
        'data_loading', 'findings', 'bottlenecks')."""
