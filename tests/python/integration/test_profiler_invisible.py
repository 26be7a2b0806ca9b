"""The profiler is invisible: no frame of code_profiler (facade, wrappers,
CLI, traceback printing) and none of the C extension's own calls appears in
a report, while the user code they call still does (real runs, in
subprocesses, on every Python of the test legs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import code_profiler
from conftest import run_python, subprocess_env

PKG_DIRS = [os.path.join(os.path.abspath(p), "") for p in code_profiler.__path__]


def _sites(report: Dict[str, Any]) -> Optional[List[Tuple[str, Optional[str]]]]:
    """Schema 2's site table as (function, file) pairs; None for schema 1."""
    perf = report["performance"]
    if "sites" not in perf:
        return None
    files = perf.get("files", [])
    return [(s["function"], files[s["file"]] if s.get("file") is not None else None)
            for s in perf["sites"]]


def tree_frames(report: Dict[str, Any]) -> Iterator[Tuple[Tuple[str, ...], Optional[str]]]:
    """(path of function names from the thread root, file) of every call-tree
    node of every thread; schema 1 (names per node) or 2 (site indices);
    schema 2's folded "other" nodes are skipped."""
    sites = _sites(report)

    def ident(node: Dict[str, Any]) -> Optional[Tuple[str, Optional[str]]]:
        if sites is not None:
            return sites[node["site"]] if "site" in node else None
        return node["function"], node.get("file")

    def walk(node: Dict[str, Any], path: Tuple[str, ...]):
        me = ident(node)
        if me is None:
            return
        p = path + (me[0],)
        yield p, me[1]
        for child in node.get("children", []):
            yield from walk(child, p)

    for thread in report["performance"]["call_tree"]:
        for child in thread.get("children", []):
            yield from walk(child, ())


def profiler_frames(report: Dict[str, Any]) -> List[str]:
    """Every function entry, site or tree node that is the profiler's own."""
    def own(name: str, file: Optional[str]) -> bool:
        if file and any(os.path.abspath(file).startswith(d) for d in PKG_DIRS):
            return True
        return name.startswith(("code_profiler.", "code_profiler._core")) or \
            name.startswith(("Session.", "Scope."))
    bad = [f"functions: {f['function']} ({f.get('file')})"
           for f in report["performance"]["functions"] if own(f["function"], f.get("file"))]
    bad += [f"tree: {' > '.join(p)} ({file})" for p, file in tree_frames(report)
            if own(p[-1], file)]
    return bad


def paths_ending(report: Dict[str, Any], name: str) -> List[Tuple[str, ...]]:
    return [p for p, _ in tree_frames(report) if p[-1] == name or p[-1].endswith("." + name)]


README_QUICK_START = textwrap.dedent("""
    import json, sys, time
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler, profile_function

    config = ProfilerConfig(
        enabled=True,
        profile_level="detailed",
        enable_cprofile=True,
        enable_memory_profiler=True,
        enable_gpu_profiler=True,
        save_profiles=False,
    )
    if hasattr(config, "report_tree_min_share"):  # schema 2: keep every node
        config.report_tree_min_share = 0.0
    profiler = VideoOpusClipProfiler(config)

    def user_helper():
        return sum(range(1000))

    @profile_function("detailed")
    def slow_function():
        time.sleep(0.02)
        user_helper()
        return "result"

    @profiler.profile_function
    def produce(n):
        for i in range(n):
            yield user_helper() + i

    profiler.start_profiling()
    with profiler.profiling_context("work"):
        slow_function()
        list(produce(3))
    for i in range(3):
        with profiler.profiling_context(f"step_{i}"):
            user_helper()
    bottlenecks = profiler.identify_bottlenecks()
    profiler.stop_profiling()
    print(profiler.save_comprehensive_report(sys.argv[1]))
""")


# Every tracer mechanism this Python has (CODEPROF_TRACER).
TRACERS = (["setprofile", "eval_frame"] if sys.version_info < (3, 12) else
           ["sys.monitoring", "setprofile", "eval_frame"] if sys.version_info < (3, 13) else
           ["sys.monitoring", "setprofile"])


@pytest.mark.parametrize("tracer", TRACERS)
def test_readme_quick_start_report_has_no_profiler_frame(tmp_path: Path, tracer: str) -> None:
    (tmp_path / "quick.py").write_text(README_QUICK_START)
    out = tmp_path / "quick.json"
    env = subprocess_env()
    env["CODEPROF_TRACER"] = tracer
    res = subprocess.run([sys.executable, str(tmp_path / "quick.py"), str(out)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert profiler_frames(report) == []
    names = {f["function"] for f in report["performance"]["functions"]}
    # the user's code is all there, decorated functions once (their scope)
    assert {"work", "__main__.slow_function", "__main__.produce", "__main__.user_helper",
            "step_0"} <= names, sorted(names)
    # user callees of a decorated function stay under it
    assert ("work", "__main__.slow_function", "__main__.user_helper") in \
        paths_ending(report, "user_helper")
    if tracer != "eval_frame":  # the frame hook sees no C functions
        assert ("work", "__main__.slow_function", "time.sleep") in paths_ending(report, "sleep")
    assert any(p[:2] == ("work", "__main__.produce") for p in paths_ending(report, "user_helper"))
    meta = report["meta"]
    if report["schema_version"] >= 2:
        assert meta["python_traced"] is True
        assert meta["hidden_calls"] > 0


RAISES = textwrap.dedent("""
    import json

    def work(n):
        return sum(i * i for i in range(n))

    def main():
        for _ in range(4):
            work(1000)
        json.dumps({"a": [1, 2]})
        raise ValueError("planted failure")

    main()
""")


def test_script_that_raises_under_codeprof_run_has_no_profiler_frame(tmp_path: Path) -> None:
    (tmp_path / "raises.py").write_text(RAISES)
    out = tmp_path / "r.json"
    res = run_python(["-m", "code_profiler", "run", "-o", str(out), "raises.py"], tmp_path)
    assert res.returncode == 1
    assert "ValueError: planted failure" in res.stderr
    report = json.loads(out.read_text())
    assert profiler_frames(report) == []
    names = {f["function"] for f in report["performance"]["functions"]}
    # the traceback printing (the traceback and linecache modules) is not recorded
    assert not [n for n in names if n.startswith(("traceback.", "linecache."))], sorted(names)
    assert {"__main__.<module>", "__main__.main", "__main__.work"} <= names
    # the script is the root of the main thread's tree: nothing of ours above it
    roots = {p[0] for p, _ in tree_frames(report)}
    assert roots == {"__main__.<module>"}, roots
    work = [f for f in report["performance"]["functions"] if f["function"] == "__main__.work"]
    assert work[0]["calls"] == 4


def test_standard_library_called_by_the_user_stays_visible(tmp_path: Path) -> None:
    """Hiding what the profiler calls must not hide the same library
    functions when user code calls them (classification is per caller)."""
    (tmp_path / "lib.py").write_text(textwrap.dedent("""
        import colorsys, sys, traceback
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler

        p = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, save_profiles=False))
        p.start_profiling()
        for _ in range(2):
            with p.profiling_context("ctx"):
                colorsys.rgb_to_hsv(0.2, 0.4, 0.4)
        try:
            1 / 0
        except ZeroDivisionError:
            traceback.format_exc()
        p.stop_profiling()
        p.save_comprehensive_report(sys.argv[1])
    """))
    out = tmp_path / "lib.json"
    res = run_python([str(tmp_path / "lib.py"), str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert profiler_frames(report) == []
    calls = {f["function"]: f["calls"] for f in report["performance"]["functions"]}
    assert calls.get("colorsys.rgb_to_hsv") == 2
    assert calls.get("traceback.format_exc") == 1


LOADER = textwrap.dedent("""
    import json
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    class Batches:
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            for i in range(self.n):
                yield make_batch(i)

        def __len__(self):
            return self.n

    def make_batch(i):
        return [i] * 4

    p = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, save_profiles=False))
    loader = p.profile_data_loader(Batches(3))
    p.start_profiling()
    for batch in loader:
        pass
    p.stop_profiling()
    print(json.dumps(p.get_comprehensive_report()))
""")


def test_user_code_called_by_the_loader_wrapper_stays_visible(tmp_path: Path) -> None:
    """The wrapper (profiler code) calls the user's loader; the user's frames
    are recorded whether the script is a file or `python -c` code (whose
    file is "<string>", like code namedtuple compiles)."""
    (tmp_path / "loader.py").write_text(LOADER)
    for args in ([str(tmp_path / "loader.py")], ["-c", LOADER]):
        res = run_python(args, tmp_path)
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert profiler_frames(report) == []
        calls = {f["function"]: f["calls"] for f in report["performance"]["functions"]}
        assert calls.get("__main__.make_batch") == 3, (args[0], sorted(calls))
        assert calls.get("__main__.Batches.__iter__") == 4, (args[0], sorted(calls))
