"""The ``codeprof`` command (also ``python -m code_profiler``).

    codeprof run [-o REPORT] [--level LEVEL] [--text] [-q] script.py [args...]

runs a script the way ``python -m cProfile`` does -- ``sys.argv`` is the
script and its arguments, ``sys.path[0]`` its directory, its code runs in a
fresh ``__main__`` module (installed in sys.modules while it runs) -- under a VideoOpusClipProfiler with the C tracer on, then
prints the C core's text summary to stderr and, with ``-o``, writes the
report (JSON, or the text summary with ``--text``) atomically.

Exit status: the script's (``sys.exit(n)`` is honoured; an uncaught
exception prints its traceback and gives 1, KeyboardInterrupt 130); the
report is written in every case.  2 for a usage error or a missing script;
1 if the report could not be written.
"""
from __future__ import annotations

import argparse
import builtins
import importlib.machinery
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
    run.add_argument("script", help="the Python script to run")
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
    module.__spec__ = importlib.machinery.ModuleSpec("__main__", None, origin=script)
    module.__loader__ = None
    module.__package__ = None
    module.__dict__["__cached__"] = None
    module.__dict__["__builtins__"] = builtins
    return module, code_obj


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
    script = os.path.abspath(ns.script)
    if not os.path.exists(ns.script):
        print(f"{PROG} run: error: script not found: '{ns.script}'", file=sys.stderr)
        return 2
    if not os.path.isfile(ns.script):
        print(f"{PROG} run: error: not a file: '{ns.script}' (expected a Python script)",
              file=sys.stderr)
        return 2
    output = os.path.abspath(ns.output) if ns.output else None  # before the script chdirs

    config = create_profiler_config(ns.level, enable_cprofile=True, save_profiles=False)
    profiler = VideoOpusClipProfiler(config)

    saved_argv = sys.argv[:]
    saved_path0 = sys.path[0] if sys.path else None
    sys.argv = [ns.script, *ns.args]
    if sys.path:
        sys.path[0] = os.path.dirname(script)
    else:
        sys.path.append(os.path.dirname(script))

    code = 0
    try:
        main_module, code_obj = _load_script(script)
    except SyntaxError as e:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        traceback.print_exception(type(e), e, None, file=sys.stderr)
        return 1
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
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0

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
