"""Shared pytest fixtures and helpers for tests/python (unit and integration).

Keep edits additive: several test modules rely on these names.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------
# Report helpers (plain functions; import them with `from conftest import ...`
# or use the `report_tools` fixture)
# ---------------------------------------------------------------------------

def functions_named(report: Dict[str, Any], name: str) -> List[Dict[str, Any]]:
    """Entries of report['performance']['functions'] whose 'function' is
    `name` or ends with '.' + name (the tracer and the decorators prefix
    the module name)."""
    out = []
    for f in report["performance"]["functions"]:
        fn = f["function"]
        if fn == name or fn.endswith("." + name):
            out.append(f)
    return out


def function_entry(report: Dict[str, Any], name: str, kind: Optional[str] = None) -> Dict[str, Any]:
    """The single function-table entry for `name` (and `kind` if given);
    fails the test with the list of names when there is none or several."""
    found = [f for f in functions_named(report, name) if kind is None or f["kind"] == kind]
    if len(found) != 1:
        names = sorted((f["function"], f["kind"]) for f in report["performance"]["functions"])
        pytest.fail(f"expected one function entry {name!r} (kind={kind}), found {len(found)}; "
                    f"report has {names}")
    return found[0]


def tree_nodes(report: Dict[str, Any]) -> Iterator[tuple]:
    """Yields (path, node) for every node of every thread's call tree; path
    is the tuple of function names from the thread root to the node.

    Schema v2 nodes name their site by index into performance.sites (and
    its file into performance.files); the nodes yielded are copies with
    "function", "file", "line" and "kind" filled in from those tables.  An
    "other" node (pruned children folded together) is yielded with
    function "<other>"."""
    perf = report["performance"]
    sites = perf.get("sites", [])
    files = perf.get("files", [])

    def resolve(node: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(node)
        if "other" in node:
            out.update(function="<other>", file="", line=0, kind="other")
        elif "site" in node:
            site = sites[node["site"]]
            f = site["file"]
            out.update(function=site["function"], file=files[f] if f is not None else "",
                       line=site["line"], kind=site["kind"])
        return out

    def walk(node: Dict[str, Any], path: tuple) -> Iterator[tuple]:
        n = resolve(node)
        p = path + (n["function"],)
        yield p, n
        for child in node.get("children", []):
            yield from walk(child, p)

    for thread in perf["call_tree"]:
        for child in thread.get("children", []):
            yield from walk(child, ())


def short(name: str) -> str:
    """'mod.Class.func' -> 'func'."""
    return name.rsplit(".", 1)[-1]


class ReportTools:
    functions_named = staticmethod(functions_named)
    function_entry = staticmethod(function_entry)
    tree_nodes = staticmethod(tree_nodes)
    short = staticmethod(short)


@pytest.fixture
def report_tools() -> ReportTools:
    return ReportTools()


# ---------------------------------------------------------------------------
# Profilers: created through the fixture, always stopped at teardown, and the
# module-level "current profiler" restored so tests do not leak into others.
# ---------------------------------------------------------------------------

@pytest.fixture
def make_profiler() -> Iterator[Callable[..., Any]]:
    from code_profiler import VideoOpusClipProfiler, profiler as profiler_mod

    saved = (profiler_mod._current, profiler_mod._default)
    made: List[Any] = []

    def make(config: Any = None) -> Any:
        p = VideoOpusClipProfiler(config)
        made.append(p)
        return p

    yield make
    for p in made:
        if p.is_profiling:
            p.stop_profiling()
    profiler_mod._current, profiler_mod._default = saved


# ---------------------------------------------------------------------------
# Subprocess runs (real-run tests always run in a subprocess with a timeout)
# ---------------------------------------------------------------------------

def subprocess_env() -> Dict[str, str]:
    """The environment for child Pythons: this one's, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    # The child must import the same code_profiler as this process (an
    # installed one is found anyway; a development tree needs PYTHONPATH).
    import code_profiler
    pkg_parent = Path(os.path.abspath(code_profiler.__file__)).parent.parent
    if not str(pkg_parent).startswith(sys.prefix):
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pkg_parent), env.get("PYTHONPATH", "")) if p)
    return env


def run_python(args: Sequence[str], cwd: Path, timeout: float = 120,
               input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs `sys.executable *args` in `cwd`, capturing text output."""
    return subprocess.run([sys.executable, *args], cwd=str(cwd), env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, input=input)


def run_code(code: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Writes `code` (dedented) to cwd/snippet.py and runs it."""
    script = cwd / "snippet.py"
    script.write_text(textwrap.dedent(code))
    return run_python([str(script)], cwd, timeout=timeout)


@pytest.fixture
def python_runner() -> Any:
    class Runner:
        run = staticmethod(run_python)
        code = staticmethod(run_code)
        env = staticmethod(subprocess_env)
    return Runner()


def load_json(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: Dict[str, Any] = json.load(fh)
    return data
