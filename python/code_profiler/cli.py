"""The ``codeprof`` command (also ``python -m code_profiler``).

    codeprof run [-o OUT]... [--format NAME] [--level LEVEL] [-q] script.py [args...]
    codeprof run [-o OUT]... [--format NAME] [--level LEVEL] [-q] -m module [args...]
    codeprof run --sample [--interval MS] [--native] [--cpu] [--trace] [options] script.py [args...]
    codeprof run --native-memory [options] script.py [args...]
    codeprof exec [-o OUT] [--format NAME] [--mode sampled|all] [-q] -- program [args...]
    codeprof report FILE [--format NAME] [-o OUT]
    codeprof diff A B [--format text|json] [-o OUT]

``run`` runs a script the way ``python script.py`` does -- ``sys.argv`` is
the script and its arguments, ``sys.path[0]`` its directory, its code runs
in a fresh ``__main__`` module (installed in sys.modules while it runs)
whose ``__spec__`` is None, so that multiprocessing's spawn and forkserver
children re-run the script by path and find its functions -- or, with
``-m``, a module the way ``python -m module`` does (``sys.argv[0]`` the
module's file, ``sys.path[0]`` the working directory, ``__spec__`` the
module's spec, a package runs its ``__main__`` submodule), under a
VideoOpusClipProfiler with the C tracer on (with ``--sample``: the stack
sampler instead, every ``--interval`` ms, default 10, between 1 and 60000;
``--trace`` keeps the tracer on beside it; ``--cpu`` weighs samples by
thread CPU time; ``--native`` adds native frames where the sampler can tell
them; the level defaults to "basic" then, "detailed" otherwise;
docs/sampling-usage.md).  Then it prints the C core's
text summary to stderr and writes each ``-o`` file atomically, in the
format its name asks for (``_core.format_for_path``: ``.json``, ``.txt``,
``.prof``/``.pstats``, ``.speedscope.json``, ``.trace.json``/
``.perfetto.json``, ``.collapsed``; JSON for any other name) or
``--format``; a ``--format`` that contradicts a file's ending is a usage
error.  One line per file written goes to stderr ("codeprof: <format>
report written to <path>") unless ``-q``.  The model is built once for the
summary and every file.

Exit status of ``run``: the script's (``sys.exit(n)`` is honoured; an
uncaught exception prints its traceback and gives 1).  SIGTERM or SIGINT
(KeyboardInterrupt) during the script stop it, the summary and the reports
are still written, and then the command dies by that same signal (a shell
shows 128+n: 143, 130); ``main(argv)`` called in-process returns 128+n
instead.  2 for a usage error, a missing script or a module that cannot be
found; 1 if a report could not be written.

``run --native-memory`` re-executes the interpreter (``sys.executable -m
code_profiler run ...``) with the native heap hooks (libcodeprof_malloc.so)
in LD_PRELOAD and CODEPROF_NATIVE_REEXEC=1 in the environment (so the new
process does not re-execute again), with allocation tracking on: native
allocations (torch CPU tensors, OpenCV, numpy data, anything through malloc
or anonymous mmap) land in the session's tracker, attributed to the Python
line that made them.  The exit status is the re-executed run's.

``exec`` runs a native program with the hooks preloaded and
CODEPROF_EXEC_OUTPUT telling the library to profile the process's
allocations and write the report there (default ``codeprof-exec.json``) when
the program exits (normally, by exit() from any thread, or by SIGTERM/SIGINT
left at their default).  Its exit status is the program's (128+n when a
signal ended it; as a program, ``codeprof`` then dies by the same signal).
A program that execs others with the environment intact profiles them too:
each descendant writes ``<stem>.<pid><ending>`` next to the report; a
forked child that does not exec writes nothing.  2 for a usage error, a
missing program or an output that cannot be written (the message names
the path).  docs/native-memory.md describes what the hooks see.

``report`` renders a saved JSON report as the text summary (default, to
stdout) or re-exports it (``--format`` or the ending of ``-o``); ``diff``
compares two saved reports (functions, stages, data-loading figures,
findings that appeared or disappeared), as text or JSON.  A missing file,
a file that is not a codeprof report or a report of a newer schema exits 2
with one line naming the file and what was expected.
"""
from __future__ import annotations

import argparse
import atexit
import builtins
import errno
import importlib.machinery
import importlib.util
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import types
from types import TracebackType
from typing import Any, List, Optional, Sequence, Tuple

from . import _core, native
from .config import LEVELS, create_profiler_config
from .profiler import _FORMAT_ENDINGS, VideoOpusClipProfiler

__all__ = ["build_parser", "main"]

PROG = "codeprof"


#: Report formats, as Session.save and _core.format_for_path name them.
FORMATS = tuple(_FORMAT_ENDINGS)
#: Formats a diff is written in.
DIFF_FORMATS = ("text", "json")
#: Allocation tracking modes of ``codeprof exec`` (CODEPROF_NATIVE_MODE).
EXEC_MODES = ("sampled", "all")
#: Set in the re-executed interpreter of ``run --native-memory``.
NATIVE_REEXEC_ENV = "CODEPROF_NATIVE_REEXEC"
#: ``run --sample --interval MS``: the range the stack sampler keeps
#: (ProfilerConfig.sample_interval, 1 ms to 60 s) and the default.
SAMPLE_INTERVAL_MS: Tuple[float, float] = (1.0, 60000.0)
DEFAULT_SAMPLE_INTERVAL_MS = 10.0


class _UsageError(Exception):
    """A command line that cannot be carried out (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Profile Python/PyTorch pipelines with libcodeprof.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {_core.VERSION} (report schema "
                                f"{_core.REPORT_SCHEMA_VERSION})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run a Python script under the profiler",
        description="Run a Python script (or, with -m, a module) under the profiler with "
                    "the tracer on, print the summary to stderr and write the -o reports. "
                    "SIGTERM and SIGINT stop the script; the summary and reports are still "
                    "written.")
    run.add_argument("-o", "--output", metavar="OUT", action="append", default=[],
                     help="write a report to this file; repeatable. The format follows the "
                          "file's ending (.json, .txt, .prof/.pstats, .speedscope.json, "
                          ".trace.json/.perfetto.json, .collapsed; JSON otherwise) unless "
                          "--format is given")
    run.add_argument("--format", choices=FORMATS, default=None,
                     help="format of every -o file (must agree with a known file ending)")
    run.add_argument("--level", choices=LEVELS, default=None,
                     help="profiling level (default: detailed; with --sample: basic, so that "
                          "no memory, GPU or data-loading instrument adds to the sampler's "
                          "cost); the tracer is on at every level unless --sample (without "
                          "--trace) replaces it")
    run.add_argument("--text", action="store_true",
                     help="same as --format text")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print neither the summary nor the paths written")
    run.add_argument("-m", dest="as_module", action="store_true",
                     help="run the library module SCRIPT as a script, like python -m "
                          "(the first argument is then a module name)")
    run.add_argument("--native-memory", action="store_true",
                     help="also track native allocations (malloc, mmap: torch CPU tensors, "
                          "OpenCV, numpy data): re-runs the interpreter with the native heap "
                          "hooks preloaded and allocation tracking on")
    run.add_argument("--sample", action="store_true",
                     help="statistical profiling: sample every thread's Python stack every "
                          "--interval ms instead of tracing every call (add --trace for both); "
                          "sampled times are estimates (docs/sampling-usage.md)")
    run.add_argument("--interval", metavar="MS", default=None,
                     help=f"with --sample: milliseconds between samples, in "
                          f"[{SAMPLE_INTERVAL_MS[0]:g}, {SAMPLE_INTERVAL_MS[1]:g}] "
                          f"(default {DEFAULT_SAMPLE_INTERVAL_MS:g})")
    run.add_argument("--native", action="store_true",
                     help="with --sample: also record the native code a thread is in where the "
                          "sampler can tell safely (docs/sampling.md)")
    run.add_argument("--cpu", action="store_true",
                     help="with --sample: weigh samples by each thread's CPU time (only "
                          "computing shows) instead of wall time (waits show too)")
    run.add_argument("--trace", action="store_true",
                     help="with --sample: also trace every call (exact counts and times beside "
                          "the estimates); without --sample the tracer is always on")
    run.add_argument("script", help="the Python script to run (with -m: the module)")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")

    ex = sub.add_parser(
        "exec", help="profile a native program's allocations",
        description="Run a native program with the native heap hooks preloaded "
                    "(libcodeprof_malloc.so) and write a report of its allocations: "
                    "live memory by allocation stack, peak, leaks. Put -- before the "
                    "program. The exit status is the program's.")
    ex.add_argument("-o", "--output", metavar="OUT", default="codeprof-exec.json",
                    help="the report file (default: codeprof-exec.json); the format follows "
                         "its ending unless --format is given")
    ex.add_argument("--format", choices=FORMATS, default=None,
                    help="report format (must agree with a known file ending)")
    ex.add_argument("--mode", choices=EXEC_MODES, default="sampled",
                    help="sampled (default): about one allocation recorded every "
                         "--sample-bytes bytes, figures scaled; all: every block")
    ex.add_argument("--sample-bytes", metavar="N", type=int, default=None,
                    help="mean bytes between recorded allocations in sampled mode "
                         "(default: 262144)")
    ex.add_argument("-q", "--quiet", action="store_true",
                    help="do not print the paths written")
    ex.add_argument("program", help="the program to run (a path, or a name looked up in PATH)")
    ex.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the program")

    rep = sub.add_parser(
        "report", help="render a saved JSON report as the summary, or re-export it",
        description="Render a saved JSON report as the text summary (to stdout, or -o) or "
                    "write it in another format (--format, or the ending of -o).")
    rep.add_argument("file", metavar="FILE", help="a JSON report written by codeprof")
    rep.add_argument("--format", choices=FORMATS, default=None,
                     help="output format (default: text, or what the -o ending asks for)")
    rep.add_argument("-o", "--output", metavar="OUT", default=None,
                     help="write to this file instead of stdout")

    diff = sub.add_parser(
        "diff", help="compare two saved JSON reports",
        description="Compare two saved JSON reports (A, then B): functions, stages, "
                    "data-loading figures and findings, each with both values and B/A.")
    diff.add_argument("a", metavar="A", help="the first (baseline) JSON report")
    diff.add_argument("b", metavar="B", help="the second JSON report")
    diff.add_argument("--format", choices=DIFF_FORMATS, default=None,
                      help="text (default) or json (default for an -o ending in .json)")
    diff.add_argument("-o", "--output", metavar="OUT", default=None,
                      help="write to this file instead of stdout")
    return parser


def _format_for(path: str, requested: Optional[str], default: str,
                allowed: Sequence[str] = FORMATS) -> str:
    """The format to write `path` in: `requested` (which must agree with a
    known file ending), else the ending's, else `default`."""
    by_name = _core.format_for_path(path)
    if requested is not None:
        if by_name is not None and by_name != requested:
            raise _UsageError(f"--format {requested} does not match the file name '{path}' "
                              f"(its ending asks for {by_name}); rename the file or drop "
                              "--format")
        return requested
    if by_name is None:
        return default
    if by_name not in allowed:
        raise _UsageError(f"'{path}': a {by_name} file name, but only "
                          f"{', '.join(allowed)} can be written here")
    return by_name


def _load_script(script: str) -> Tuple[types.ModuleType, types.CodeType]:
    """Compiles `script` and makes the ``__main__`` module it runs in (as
    ``python script.py`` would), before profiling starts so that neither
    the compilation nor any import machinery shows up in the report."""
    with io.open_code(script) as fh:
        source = fh.read()
    code_obj = compile(source, script, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__file__ = script
    # As for `python script.py`: no spec.  multiprocessing's spawn and
    # forkserver children re-run the main module by name when it has a
    # spec and by path (as __mp_main__) when it has none; a spec named
    # "__main__" makes them skip it, so pickled functions of the script
    # cannot be found there.
    module.__spec__ = None
    module.__loader__ = None
    module.__package__ = None
    module.__dict__["__cached__"] = None
    module.__dict__["__builtins__"] = builtins
    return module, code_obj


class _ModuleNotRunnable(Exception):
    """`codeprof run -m NAME`: NAME cannot be run (the message says why)."""


def _find_main_spec(name: str) -> importlib.machinery.ModuleSpec:
    """The spec ``python -m name`` would run: the module's, or for a package
    its ``__main__`` submodule's.  Importing the parent packages is part of
    finding it, as for ``python -m``."""
    if not name or name.startswith("."):
        raise _ModuleNotRunnable(f"relative module names are not supported: {name!r}")
    try:
        spec = importlib.util.find_spec(name)
    except Exception as e:  # a parent package failing to import, a bad name
        raise _ModuleNotRunnable(f"error while finding module specification for {name!r} "
                                 f"({type(e).__name__}: {e})") from None
    if spec is None:
        raise _ModuleNotRunnable(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        if name == "__main__" or name.endswith(".__main__"):
            raise _ModuleNotRunnable(f"cannot use package as __main__ module: {name!r}")
        try:
            return _find_main_spec(name + ".__main__")
        except _ModuleNotRunnable as e:
            raise _ModuleNotRunnable(f"{e}; {name!r} is a package and cannot be directly "
                                     "executed") from None
    if spec.loader is None:
        raise _ModuleNotRunnable(f"No code object available for {name}")
    return spec


def _load_module(name: str) -> Tuple[types.ModuleType, types.CodeType, str]:
    """The ``__main__`` module and code object for ``codeprof run -m name``
    (as ``python -m name`` sets them up), and the file for ``sys.argv[0]``."""
    spec = _find_main_spec(name)
    get_code = getattr(spec.loader, "get_code", None)
    try:
        code_obj = get_code(spec.name) if get_code is not None else None
    except ImportError as e:
        raise _ModuleNotRunnable(f"cannot load {spec.name}: {e}") from None
    if code_obj is None:
        raise _ModuleNotRunnable(f"No code object available for {spec.name}")
    module = types.ModuleType("__main__")
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = spec.parent
    if spec.has_location and spec.origin:
        module.__file__ = spec.origin
    module.__dict__["__cached__"] = spec.cached
    module.__dict__["__builtins__"] = builtins
    return module, code_obj, spec.origin if spec.has_location and spec.origin else name


def _exit_code(exc: SystemExit) -> int:
    """The process exit status Python would give for `exc`."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    print(code, file=sys.stderr)
    return 1


def _user_traceback(tb: Optional[TracebackType], script: str) -> Optional[TracebackType]:
    """Drops the frames above the script's own (this module's)."""
    cur = tb
    while cur is not None:
        if os.path.abspath(cur.tb_frame.f_code.co_filename) == script:
            return cur
        cur = cur.tb_next
    return tb


def _print_exception(exc: BaseException, script: str) -> None:
    tb = _user_traceback(exc.__traceback__, script)
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


class _Terminated(BaseException):
    """Raised in the script's main thread by the SIGTERM handler of
    ``codeprof run`` (a BaseException, so ``except Exception`` in the script
    does not swallow it; ``finally`` blocks run)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGTERM handling around the script: while it runs, SIGTERM raises
    _Terminated in the main thread (SIGINT keeps Python's KeyboardInterrupt);
    while the reports are written, SIGTERM and SIGINT are only noted (a
    second one kills at once); then the handlers are put back."""

    def __init__(self) -> None:
        #: The first SIGTERM/SIGINT received (even if another exception of
        #: the script won the race, e.g. a DataLoader worker killed by the
        #: same process-group SIGTERM): the run then ends by it.
        self.received: Optional[int] = None
        self._noted_while_writing = False
        self._saved: dict = {}

    def _install(self, signum: int, handler: Any) -> None:
        try:
            prev = signal.signal(signum, handler)
        except (ValueError, OSError):  # not the main thread / not supported
            return
        self._saved.setdefault(signum, prev)

    def during_script(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # Only where the default would kill the process without a report:
        # a handler the embedding program set up is left alone.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            def on_term(signum: int, frame: Any) -> None:
                if self.received is None:
                    self.received = signum
                raise _Terminated(signum)
            self._install(signal.SIGTERM, on_term)

    def during_writing(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def note(signum: int, frame: Any) -> None:
            if self._noted_while_writing:  # the second one: stop now
                self._die(signum)
            self._noted_while_writing = True
            if self.received is None:
                self.received = signum
        for signum in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler) \
                    or signum in self._saved:
                self._install(signum, note)

    def restore(self) -> None:
        for signum, prev in self._saved.items():
            try:
                signal.signal(signum, prev)
            except (ValueError, OSError, TypeError):
                pass
        self._saved.clear()

    @staticmethod
    def _die(signum: int, run_atexit: bool = False) -> None:
        """Ends the process by `signum` with its default disposition, as an
        unhandled signal would (falls back to exit status 128+n); with
        `run_atexit`, the atexit handlers run first (as they do before
        Python ends itself by SIGINT after a KeyboardInterrupt)."""
        if run_atexit:
            try:
                atexit._run_exitfuncs()
            except BaseException:  # an exit handler's failure must not keep us alive
                pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        except (ValueError, OSError):
            pass
        os._exit(128 + signum)


def _run_outputs(ns: argparse.Namespace) -> List[Tuple[str, str]]:
    """(absolute path, format) of each -o file, checked before the script
    runs (the paths are made absolute before it can chdir)."""
    requested = "text" if ns.text else ns.format
    if ns.text and ns.format not in (None, "text"):
        raise _UsageError(f"--text contradicts --format {ns.format}")
    if requested is not None and not ns.output:
        raise _UsageError(f"--{'text' if ns.text else 'format'} says how to write the -o "
                          "files, and there is none: add -o OUT")
    outs = []
    for out in ns.output:
        outs.append((os.path.abspath(out), _format_for(out, requested, "json")))
    return outs


def _sampling_overrides(ns: argparse.Namespace) -> dict:
    """ProfilerConfig fields for ``--sample [--interval MS] [--native]
    [--cpu] [--trace]``; _UsageError for an option that needs --sample or an
    --interval out of range (checked before the script runs)."""
    if not ns.sample:
        for flag, given in (("--interval", ns.interval is not None), ("--native", ns.native),
                            ("--cpu", ns.cpu), ("--trace", ns.trace)):
            if given:
                what = ("the tracer is on without --sample" if flag == "--trace"
                        else "it sets how the sampler samples")
                raise _UsageError(f"{flag} needs --sample ({what})")
        return {"enable_cprofile": True, "sampling": False}
    lo, hi = SAMPLE_INTERVAL_MS
    if ns.interval is None:
        ms = DEFAULT_SAMPLE_INTERVAL_MS
    else:
        try:
            ms = float(ns.interval)
        except ValueError:
            ms = float("nan")
        if not lo <= ms <= hi:  # False for NaN
            raise _UsageError(f"--interval must be a number of milliseconds in [{lo:g}, {hi:g}], "
                              f"got {ns.interval!r}")
    return {
        "enable_cprofile": bool(ns.trace),
        "sampling": True,
        "sample_interval": ms / 1000.0,
        "sample_native": bool(ns.native),
        "sample_clock": "cpu" if ns.cpu else "wall",
    }


def _write_reports(profiler: VideoOpusClipProfiler, outputs: Sequence[Tuple[str, str]],
                   quiet: bool) -> bool:
    """Writes each report; False if one could not be written (said why)."""
    ok = True
    session = profiler.session
    for path, fmt in outputs:
        try:
            _make_parent(path)
            session.save(path, fmt)
        except (OSError, ValueError, RuntimeError, NotImplementedError) as e:
            print(f"{PROG} run: error: could not write the report '{path}' ({fmt}): {e}",
                  file=sys.stderr)
            ok = False
            continue
        if not quiet:
            print(f"{PROG}: {fmt} report written to {path}", file=sys.stderr)
    return ok


def _make_parent(path: str) -> None:
    """Creates the directory of `path` (absolute) if missing; OSError naming
    the ancestor that is a file when one is."""
    parent = os.path.dirname(path)
    cur = parent
    while cur and not os.path.exists(cur):
        up = os.path.dirname(cur)
        if up == cur:
            break
        cur = up
    if cur and os.path.exists(cur) and not os.path.isdir(cur):
        raise OSError(errno.ENOTDIR, f"'{cur}' is a file, not a directory", path)
    os.makedirs(parent, exist_ok=True)


def _cmd_run(ns: argparse.Namespace) -> Tuple[int, Optional[int]]:
    """Runs the script; returns (exit status, signal that stopped it)."""
    if not ns.as_module:
        if not os.path.exists(ns.script):
            print(f"{PROG} run: error: script not found: '{ns.script}'", file=sys.stderr)
            return 2, None
        if not os.path.isfile(ns.script):
            print(f"{PROG} run: error: not a file: '{ns.script}' (expected a Python script)",
                  file=sys.stderr)
            return 2, None
    outputs = _run_outputs(ns)
    overrides = _sampling_overrides(ns)

    saved_argv = sys.argv[:]
    saved_path0 = sys.path[0] if sys.path else None

    def restore_argv_path() -> None:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0

    # sys.path[0] as Python sets it: the script's directory, or for -m the
    # working directory (set before the module is looked up).
    if ns.as_module:
        path0 = os.getcwd()
    else:
        script = os.path.abspath(ns.script)
        path0 = os.path.dirname(script)
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.append(path0)

    code = 0
    signum: Optional[int] = None
    try:
        if ns.as_module:
            main_module, code_obj, script = _load_module(ns.script)
            sys.argv = [script, *ns.args]
        else:
            sys.argv = [ns.script, *ns.args]
            main_module, code_obj = _load_script(script)
    except _ModuleNotRunnable as e:
        restore_argv_path()
        print(f"{PROG} run: error: {e}", file=sys.stderr)
        return 2, None
    except SyntaxError as e:
        restore_argv_path()
        traceback.print_exception(type(e), e, None, file=sys.stderr)
        return 1, None

    if ns.native_memory:
        # Native allocations are only seen with allocation tracking on.
        overrides["enable_memory_tracking"] = True
        if not native.preload_active():
            print(f"{PROG} run: warning: --native-memory: the native heap hooks are not "
                  "loaded in this process (LD_PRELOAD was not honoured: a setuid or "
                  "statically linked interpreter?); native allocations are not seen",
                  file=sys.stderr)
    # --native-memory needs allocation tracking, which "basic" does not do.
    level = ns.level or ("basic" if ns.sample and not ns.native_memory else "detailed")
    config = create_profiler_config(level, save_profiles=False, **overrides)
    profiler = VideoOpusClipProfiler(config)

    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = main_module
    # The bound C method, fetched before tracing starts.
    session = profiler.session
    stop_session = session.stop
    signals = _Signals()
    signals.during_script()
    failure: Optional[BaseException] = None
    try:
        profiler.start_profiling()
        exec(code_obj, main_module.__dict__)
    except SystemExit as e:
        code = _exit_code(e)
    except _Terminated as e:
        signum = e.signum
    except KeyboardInterrupt as e:
        failure = e
        signum = signal.SIGINT
    except BaseException as e:  # the script's failure: report it like Python does
        failure = e
        code = 1
    finally:
        # From here on a signal is noted, not raised: the reports get written.
        signals.during_writing()
        if session.running:
            stop_session()
        profiler._stopped_by_owner()
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        restore_argv_path()

    try:
        # Printed after the tracer stopped: no frame of the printing is recorded.
        if failure is not None:
            _print_exception(failure, script)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        if signum is not None and not ns.quiet:
            print(f"{PROG} run: the script was stopped by {signal.Signals(signum).name}; "
                  "writing the summary and reports", file=sys.stderr)
        if not ns.quiet:
            # The summary and every file are rendered from the one model the
            # session built at its first report after the stop.
            print(profiler.get_text_summary(), file=sys.stderr)
        if not _write_reports(profiler, outputs, ns.quiet) and code == 0 and signum is None:
            code = 1
    finally:
        signals.restore()
    if signum is None and signals.received is not None:
        signum = signals.received
    return code, signum


def _with_preload(env: dict, lib: str) -> dict:
    """`env` with `lib` first in LD_PRELOAD (once)."""
    out = dict(env)
    rest = [p for p in re.split(r"[: ]", out.get("LD_PRELOAD", "")) if p and p != lib]
    out["LD_PRELOAD"] = ":".join([lib, *rest])
    return out


def _native_reexec(argv: Sequence[str], in_process: bool) -> int:
    """``run --native-memory``: runs ``sys.executable -m code_profiler``
    with `argv` again, the hooks preloaded and the marker set: in place of
    this process (os.execve) when it is the ``codeprof`` program, else as a
    child whose exit status is returned."""
    try:
        lib = native.preload_library_path()
    except FileNotFoundError as e:
        print(f"{PROG} run: error: --native-memory: {e}", file=sys.stderr)
        return 2
    env = _with_preload(dict(os.environ), lib)
    env[NATIVE_REEXEC_ENV] = "1"
    env.pop("CODEPROF_EXEC_OUTPUT", None)  # never a second, library-owned session
    cmd = [sys.executable, "-m", "code_profiler", *argv]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if not in_process:
        try:
            os.execve(sys.executable, cmd, env)
        except OSError as e:
            print(f"{PROG} run: error: --native-memory: cannot run '{sys.executable}': "
                  f"{e.strerror}", file=sys.stderr)
            return 1
    rc = _wait_child(subprocess.Popen(cmd, env=env))
    return 128 - rc if rc < 0 else rc


def _wait_child(proc: "subprocess.Popen[bytes]") -> int:
    """Waits for `proc`; SIGINT (which the terminal sends to the whole
    process group) is left to the child, SIGTERM is passed on to it.
    Returns its exit status, -n when signal n ended it."""
    saved = {}

    def forward(signum: int, frame: Any) -> None:
        try:
            proc.send_signal(signum)
        except OSError:
            pass
    if threading.current_thread() is threading.main_thread():
        for signum, handler in ((signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, forward)):
            try:
                saved[signum] = signal.signal(signum, handler)
            except (ValueError, OSError):
                pass
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is ignored above
                continue
    finally:
        for signum, prev in saved.items():
            try:
                signal.signal(signum, prev)
            except (ValueError, OSError, TypeError):
                pass


def _find_program(name: str) -> str:
    """The program to run: a path (with a slash) or a name in PATH."""
    if os.sep in name:
        path = name
        if not os.path.exists(path):
            raise _UsageError(f"program not found: '{name}'")
    else:
        found = shutil.which(name)
        if found is None:
            raise _UsageError(f"program not found: '{name}' (not a path, and not in PATH)")
        path = found
    if os.path.isdir(path):
        raise _UsageError(f"'{name}' is a directory (expected a program)")
    if not os.access(path, os.X_OK):
        raise _UsageError(f"'{name}' is not executable")
    return path


def _check_writable(path: str) -> None:
    """Raises _UsageError naming `path` when a report cannot be written there."""
    if os.path.isdir(path):
        raise _UsageError(f"cannot write the report '{path}': it is a directory")
    try:
        _make_parent(path)
        fd, probe = tempfile.mkstemp(prefix=".codeprof-probe-", dir=os.path.dirname(path))
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise _UsageError(f"cannot write the report '{path}': {e.strerror or e}") from None


def _child_report_re(path: str) -> "re.Pattern[str]":
    """Names the library gives descendants' reports (native_env.c,
    cp_native_child_path): the pid before the first dot of the file name
    that is not its first character, else at the end."""
    name = os.path.basename(path)
    dot = name.find(".", 1) if name else -1
    if dot > 0:
        return re.compile(re.escape(name[:dot]) + r"\.[0-9]+" + re.escape(name[dot:]) + "$")
    return re.compile(re.escape(name) + r"\.[0-9]+$")


def _stamp(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _cmd_exec(ns: argparse.Namespace) -> Tuple[int, Optional[int]]:
    """Runs the program with the hooks preloaded; returns (exit status,
    signal that ended it)."""
    program = _find_program(ns.program)
    out = os.path.abspath(ns.output)
    fmt = _format_for(out, ns.format, "json")
    if ns.sample_bytes is not None and not 1 <= ns.sample_bytes <= 1 << 40:
        raise _UsageError(f"--sample-bytes {ns.sample_bytes}: expected an integer in [1, 2^40]")
    _check_writable(out)
    try:
        lib = native.preload_library_path()
    except FileNotFoundError as e:
        print(f"{PROG} exec: error: {e}", file=sys.stderr)
        return 1, None
    env = _with_preload(dict(os.environ), lib)
    env["CODEPROF_EXEC_OUTPUT"] = out
    env["CODEPROF_EXEC_FORMAT"] = fmt
    env["CODEPROF_NATIVE_MODE"] = ns.mode
    if ns.sample_bytes is not None:
        env["CODEPROF_NATIVE_SAMPLE_BYTES"] = str(ns.sample_bytes)
    else:
        env.pop("CODEPROF_NATIVE_SAMPLE_BYTES", None)
    env.pop("CODEPROF_EXEC_ROOT", None)
    env.pop(NATIVE_REEXEC_ENV, None)
    before = _stamp(out)
    directory = os.path.dirname(out)
    child_re = _child_report_re(out)
    try:
        seen = {n: _stamp(os.path.join(directory, n)) for n in os.listdir(directory)
                if child_re.match(n)}
    except OSError:
        seen = {}
    try:
        proc = subprocess.Popen([program, *ns.args], env=env)
    except OSError as e:
        raise _UsageError(f"cannot run '{ns.program}': {e.strerror or e}") from None
    rc = _wait_child(proc)
    after = _stamp(out)
    quiet = ns.quiet
    if after is not None and after != before:
        if not quiet:
            print(f"{PROG}: {fmt} report written to {out}", file=sys.stderr)
    else:
        how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}"
        print(f"{PROG} exec: warning: the program {how} without the report being written to "
              f"'{out}' (it ended by _exit() or SIGKILL, replaced the hooks' signal handling, "
              "or is statically linked or setuid, which LD_PRELOAD does not reach)",
              file=sys.stderr)
    if not quiet:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        for n in names:
            full = os.path.join(directory, n)
            if child_re.match(n) and seen.get(n) != _stamp(full):
                print(f"{PROG}: {fmt} report of a child process written to {full}",
                      file=sys.stderr)
    if rc < 0:
        return 128 - rc, -rc
    return rc, None


def _check_report_file(cmd: str, path: str) -> None:
    if not os.path.exists(path):
        raise _UsageError(f"no such file: '{path}' (expected a JSON report written by codeprof)")
    if os.path.isdir(path):
        raise _UsageError(f"'{path}' is a directory (expected a JSON report written by codeprof)")


def _reader(name: str) -> Any:
    fn = getattr(_core, name, None)
    if fn is None:
        raise _UsageError(f"this build of code_profiler._core has no report reader "
                          f"(_core.{name}); reinstall code-profiler")
    return fn


def _message(e: BaseException) -> str:
    """An exception's message without the C function's name in front
    ("render_report(): x.json: ..." -> "x.json: ...")."""
    msg = str(e.args[1] if isinstance(e, OSError) and len(e.args) > 1 else e) \
        or type(e).__name__
    return re.sub(r"^[a-z_]+\(\): ", "", msg)


def _naming(path: str, e: BaseException) -> str:
    """The reader's message, naming the file when it does not already."""
    msg = _message(e)
    return msg if path in msg else f"'{path}': {msg}"


def _write_atomic(path: str, data: Any) -> None:
    """Writes text or bytes to `path` through a temporary file and a rename."""
    parent = os.path.dirname(os.path.abspath(path))
    _make_parent(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".codeprof-", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _emit(data: Any, output: Optional[str]) -> None:
    if output is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data if data.endswith("\n") else data + "\n")
        sys.stdout.flush()
    else:
        _write_atomic(output, data)


def _cmd_report(ns: argparse.Namespace) -> int:
    fmt = (_format_for(ns.output, ns.format, "text") if ns.output is not None
           else ns.format or "text")
    if ns.output is None and fmt == "pstats":
        raise _UsageError("pstats is a binary format: give -o OUT.prof")
    _check_report_file("report", ns.file)
    try:
        if ns.output is not None and hasattr(_core, "save_report"):
            _core.save_report(ns.file, os.path.abspath(ns.output), fmt)
        else:
            _emit(_reader("render_report")(ns.file, fmt), ns.output)
    except _UsageError:
        raise
    except OSError as e:
        if ns.output is not None and getattr(e, "filename", None) not in (None, ns.file):
            print(f"{PROG} report: error: could not write '{ns.output}': {_message(e)}",
                  file=sys.stderr)
            return 1
        print(f"{PROG} report: error: {_naming(ns.file, e)}", file=sys.stderr)
        return 2
    except ValueError as e:  # not a report, or not one this reader reads
        print(f"{PROG} report: error: {_naming(ns.file, e)}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as e:  # e.g. no writer for the format in this build
        print(f"{PROG} report: error: {_message(e)}", file=sys.stderr)
        return 1
    if ns.output is not None:
        print(f"{PROG}: {fmt} report written to {os.path.abspath(ns.output)}", file=sys.stderr)
    return 0


def _cmd_diff(ns: argparse.Namespace) -> int:
    fmt = (_format_for(ns.output, ns.format, "text", DIFF_FORMATS) if ns.output is not None
           else ns.format or "text")
    _check_report_file("diff", ns.a)
    _check_report_file("diff", ns.b)
    diff_reports = _reader("diff_reports")
    try:
        data = diff_reports(ns.a, ns.b, fmt)
    except (OSError, ValueError) as e:
        msg = _message(e)
        if ns.a not in msg and ns.b not in msg:
            msg = f"'{ns.a}' vs '{ns.b}': {msg}"
        print(f"{PROG} diff: error: {msg}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as e:
        print(f"{PROG} diff: error: {_message(e)}", file=sys.stderr)
        return 1
    try:
        _emit(data, ns.output)
    except OSError as e:
        print(f"{PROG} diff: error: could not write '{ns.output}': {e}", file=sys.stderr)
        return 1
    if ns.output is not None:
        print(f"{PROG}: {fmt} diff written to {os.path.abspath(ns.output)}", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``codeprof`` console script; returns the exit
    status.  Run as a program (``argv`` None), a script stopped by SIGTERM or
    SIGINT ends the process by that signal once the reports are written;
    called with ``argv`` it returns 128+n instead."""
    parser = build_parser()
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(args)
    sub = ns.command
    try:
        if sub == "run" and ns.native_memory and os.environ.get(NATIVE_REEXEC_ENV) != "1":
            return _native_reexec(args, in_process=argv is not None)
        if sub == "run":
            code, signum = _cmd_run(ns)
            if signum is not None:
                if argv is None:
                    _Signals._die(signum, run_atexit=True)
                return 128 + signum
            return code
        if sub == "exec":
            code, signum = _cmd_exec(ns)
            if signum is not None and argv is None:
                _Signals._die(signum)
            return code
        if sub == "report":
            return _cmd_report(ns)
        if sub == "diff":
            return _cmd_diff(ns)
    except _UsageError as e:
        print(f"{PROG} {sub}: error: {e}", file=sys.stderr)
        return 2
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
