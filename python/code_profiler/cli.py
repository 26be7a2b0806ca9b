"""The ``codeprof`` command (also ``python -m code_profiler``).

    codeprof run [-o REPORT] [--level LEVEL] [--text] [-q] script.py [args...]
    codeprof run [-o REPORT] [--level LEVEL] [--text] [-q] -m module [args...]

runs a script the way ``python script.py`` does -- ``sys.argv`` is the
script and its arguments, ``sys.path[0]`` its directory, its code runs in a
fresh ``__main__`` module (installed in sys.modules while it runs) whose
``__spec__`` is None, so that multiprocessing's spawn and forkserver
children re-run the script by path and find its functions -- or, with
``-m``, a module the way ``python -m module`` does (``sys.argv[0]`` the
module's file, ``sys.path[0]`` the working directory, ``__spec__`` the
module's spec, a package runs its ``__main__`` submodule), under a
VideoOpusClipProfiler with the C tracer on, then prints the C core's text
summary to stderr and, with ``-o``, writes the report (JSON, or the text
summary with ``--text``) atomically.

Exit status: the script's (``sys.exit(n)`` is honoured; an uncaught
exception prints its traceback and gives 1, KeyboardInterrupt 130); the
report is written in every case.  2 for a usage error, a missing script or
a module that cannot be found; 1 if the report could not be written.
"""
from __future__ import annotations

import argparse
import builtins
import importlib.machinery
import importlib.util
import io
import os
import sys
import traceback
import types
from types import TracebackType
from typing import List, Optional, Sequence, Tuple

from . import _core
from .config import LEVELS, create_profiler_config
from .profiler import VideoOpusClipProfiler

__all__ = ["build_parser", "main"]

PROG = "codeprof"


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
        description="Run a Python script under the profiler (tracer on), print the "
                    "summary to stderr and optionally write the report.")
    run.add_argument("-o", "--output", metavar="REPORT",
                     help="write the report to this file (JSON unless --text)")
    run.add_argument("--level", choices=LEVELS, default="detailed",
                     help="profiling level (default: detailed); the tracer is on at every level")
    run.add_argument("--text", action="store_true",
                     help="write the -o report as the text summary instead of JSON")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="do not print the summary to stderr")
    run.add_argument("-m", dest="as_module", action="store_true",
                     help="run the library module SCRIPT as a script, like python -m "
                          "(the first argument is then a module name)")
    run.add_argument("script", help="the Python script to run (with -m: the module)")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


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


def _cmd_run(ns: argparse.Namespace) -> int:
    if not ns.as_module:
        if not os.path.exists(ns.script):
            print(f"{PROG} run: error: script not found: '{ns.script}'", file=sys.stderr)
            return 2
        if not os.path.isfile(ns.script):
            print(f"{PROG} run: error: not a file: '{ns.script}' (expected a Python script)",
                  file=sys.stderr)
            return 2
    output = os.path.abspath(ns.output) if ns.output else None  # before the script chdirs

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
        return 2
    except SyntaxError as e:
        restore_argv_path()
        traceback.print_exception(type(e), e, None, file=sys.stderr)
        return 1

    config = create_profiler_config(ns.level, enable_cprofile=True, save_profiles=False)
    profiler = VideoOpusClipProfiler(config)

    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = main_module
    # The bound C method, fetched before tracing starts: the tracer skips
    # the session's own methods, so stopping adds no frame of ours.
    session = profiler.session
    stop_session = session.stop
    profiler.start_profiling()
    try:
        exec(code_obj, main_module.__dict__)
    except SystemExit as e:
        code = _exit_code(e)
    except KeyboardInterrupt as e:
        _print_exception(e, script)
        code = 130
    except BaseException as e:  # the script's failure: report it like Python does
        _print_exception(e, script)
        code = 1
    finally:
        if session.running:
            stop_session()
        profiler._stopped_by_owner()
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        restore_argv_path()

    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    if not ns.quiet:
        print(profiler.get_text_summary(), file=sys.stderr)
    if output is not None:
        try:
            written = profiler.save_comprehensive_report(output,
                                                         format="text" if ns.text else "json")
        except OSError as e:
            print(f"{PROG} run: error: could not write the report: {e}", file=sys.stderr)
            return code if code != 0 else 1
        if not ns.quiet:
            print(f"{PROG}: report written to {written}", file=sys.stderr)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``codeprof`` console script; returns the exit status."""
    parser = build_parser()
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(args)
    if ns.command == "run":
        return _cmd_run(ns)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
