"""The codeprof command (python -m code_profiler), run in subprocesses."""
from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import function_entry, functions_named, run_python

WORKLOAD = textwrap.dedent("""
    import sys, json, os

    def work(n):
        return sum(i * i for i in range(n))

    def main():
        for _ in range(4):
            work(1000)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.json"), "w") as fh:
            json.dump({"argv": sys.argv, "path0": sys.path[0], "name": __name__}, fh)

    main()
    if len(sys.argv) > 1 and sys.argv[1] == "exit":
        sys.exit(int(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "raise":
        1 / 0
    if len(sys.argv) > 1 and sys.argv[1] == "exit-text":
        sys.exit("leaving with a message")
""")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "workload.py"
    path.write_text(WORKLOAD)
    return path


def codeprof(*args: str, cwd: Path, timeout: float = 120):
    return run_python(["-m", "code_profiler", *args], cwd, timeout=timeout)


def test_run_writes_report_with_the_scripts_functions(script, tmp_path):
    out = tmp_path / "reports" / "r.json"
    out.parent.mkdir()
    res = codeprof("run", "-o", str(out), str(script), "a", "--flag", "-o", "x", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    work = function_entry(report, "work", kind="python")
    assert work["calls"] == 4
    assert work["file"] == str(script)
    assert function_entry(report, "main", kind="python")["calls"] == 1
    # the summary went to stderr, the script's own output stream is untouched
    assert "work" in res.stderr and res.stdout == ""
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["argv"] == [str(script), "a", "--flag", "-o", "x"]
    assert seen["path0"] == str(tmp_path)
    assert seen["name"] == "__main__"
    assert sorted(os.listdir(out.parent)) == ["r.json"]  # atomic: no temporaries


def test_relative_output_is_relative_to_cwd_and_text_format(script, tmp_path):
    res = codeprof("run", "--level", "basic", "--text", "-o", "summary.txt", "workload.py",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "summary.txt").read_text()
    assert "work" in text and not text.lstrip().startswith("{")


@pytest.mark.parametrize("code", [0, 3, 7])
def test_exit_code_is_the_scripts(script, tmp_path, code):
    out = tmp_path / "r.json"
    res = codeprof("run", "-q", "-o", str(out), str(script), "exit", str(code), cwd=tmp_path)
    assert res.returncode == code
    assert function_entry(json.loads(out.read_text()), "work", kind="python")["calls"] == 4
    assert res.stderr == ""  # -q: no summary


def test_exit_with_message(script, tmp_path):
    res = codeprof("run", "-q", str(script), "exit-text", cwd=tmp_path)
    assert res.returncode == 1
    assert "leaving with a message" in res.stderr


def test_uncaught_exception_prints_traceback_exits_1_and_writes_report(script, tmp_path):
    out = tmp_path / "r.json"
    res = codeprof("run", "-o", str(out), str(script), "raise", cwd=tmp_path)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert "ZeroDivisionError: division by zero" in res.stderr
    assert str(script) in res.stderr
    assert "runpy" not in res.stderr  # the command's own frames are not shown
    report = json.loads(out.read_text())
    assert function_entry(report, "work", kind="python")["calls"] == 4


def test_missing_script_is_a_clear_error(tmp_path):
    res = codeprof("run", "no_such_script.py", cwd=tmp_path)
    assert res.returncode == 2
    assert "script not found: 'no_such_script.py'" in res.stderr
    res = codeprof("run", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2 and "not a file" in res.stderr


def test_unwritable_report_path(script, tmp_path):
    (tmp_path / "blocker").write_text("file")
    res = codeprof("run", "-q", "-o", str(tmp_path / "blocker" / "r.json"), str(script),
                   cwd=tmp_path)
    assert res.returncode == 1
    assert "could not write the report" in res.stderr
    assert str(tmp_path / "blocker" / "r.json") in res.stderr


def test_usage_errors(tmp_path):
    res = codeprof(cwd=tmp_path)
    assert res.returncode == 2 and "usage" in res.stderr.lower()
    res = codeprof("run", "--level", "fast", "x.py", cwd=tmp_path)
    assert res.returncode == 2 and "invalid choice: 'fast'" in res.stderr


def test_version(tmp_path):
    from code_profiler import _core
    res = codeprof("--version", cwd=tmp_path)
    assert res.returncode == 0 and _core.VERSION in res.stdout


def test_decorators_in_the_script_record_into_the_command_profiler(tmp_path):
    (tmp_path / "deco.py").write_text(textwrap.dedent("""
        from code_profiler import profile_function

        @profile_function
        def decorated_step():
            return 1

        for _ in range(3):
            decorated_step()
    """))
    out = tmp_path / "r.json"
    res = codeprof("run", "-q", "-o", str(out), "deco.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert function_entry(report, "decorated_step", kind="function")["calls"] == 3


def test_main_function_in_process(script, tmp_path, capsys, monkeypatch):
    from code_profiler import cli
    monkeypatch.chdir(tmp_path)
    saved_path0 = sys.path[0]
    code = cli.main(["run", "-q", "-o", "inproc.json", str(script), "exit", "4"])
    assert code == 4
    assert sys.path[0] == saved_path0  # restored
    report = json.loads((tmp_path / "inproc.json").read_text())
    assert functions_named(report, "work")


def test_console_script_if_installed(script, tmp_path):
    exe = Path(sys.executable).with_name("codeprof")
    if not exe.exists():
        exe_s = shutil.which("codeprof")
        if exe_s is None:
            pytest.skip("the codeprof console script is not installed in this environment")
        exe = Path(exe_s)
    import subprocess
    from conftest import subprocess_env
    res = subprocess.run([str(exe), "run", "-q", str(script), "exit", "5"], cwd=tmp_path,
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 5, res.stderr


def test_script_with_its_own_tracing_profiler_under_codeprof_run(tmp_path):
    """One tracer per process: the script's profiler records its contexts
    and decorated functions into both reports, with a warning."""
    import json
    import subprocess
    import sys
    script = tmp_path / "own.py"
    script.write_text(
        "import time\n"
        "from code_profiler import ProfilerConfig, VideoOpusClipProfiler\n"
        "p = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, save_profiles=False))\n"
        "@p.profile_function\n"
        "def decorated_sleep():\n"
        "    time.sleep(0.2)\n"
        "p.start_profiling()\n"
        "with p.profiling_context('own_ctx'):\n"
        "    decorated_sleep()\n"
        "p.stop_profiling()\n"
        "names = {f['function'] for f in p.get_comprehensive_report()['performance']['functions']}\n"
        "assert {'own_ctx', '__main__.decorated_sleep'} <= names, names\n")
    out = tmp_path / "r.json"
    res = subprocess.run([sys.executable, "-m", "code_profiler", "run", "-q", "-o", str(out),
                          str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "another profiler is already tracing" in res.stderr
    funcs = {f["function"]: f for f in json.loads(out.read_text())["performance"]["functions"]}
    assert funcs["own_ctx"]["calls"] == 1
    assert funcs["__main__.decorated_sleep"]["calls"] == 1
    assert funcs["__main__.decorated_sleep"]["inclusive_s"] >= 0.2


POOL_SCRIPT = textwrap.dedent("""
    import json, multiprocessing, sys

    def square(x):
        return x * x

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            result = pool.map_async(square, range(10)).get(timeout=60)
        print(json.dumps({"result": result, "spec": repr(__spec__)}))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_pools_find_the_scripts_functions(tmp_path, method):
    """Regression: `codeprof run` set __main__.__spec__ to a spec named
    "__main__", so spawn/forkserver children skipped re-running the script and
    failed with "Can't get attribute 'square'" (and the pool hung)."""
    import multiprocessing
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available here")
    (tmp_path / "pool.py").write_text(POOL_SCRIPT)
    out = tmp_path / "r.json"
    res = codeprof("run", "-q", "-o", str(out), "pool.py", method, cwd=tmp_path, timeout=180)
    assert res.returncode == 0, res.stderr
    assert "Can't get attribute" not in res.stderr
    seen = json.loads(res.stdout)
    assert seen == {"result": [x * x for x in range(10)], "spec": "None"}
    assert json.loads(out.read_text())["performance"]["functions"]  # the report was written


def test_run_module_like_python_dash_m(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(textwrap.dedent("""
        import json, os, sys

        def work(n):
            return sum(range(n))

        def main():
            for _ in range(3):
                work(2_000_000)  # heavy enough for the report's top functions
            print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "name": __name__,
                              "spec": __spec__.name, "package": __package__,
                              "file": __file__}))

        if __name__ == "__main__":
            main()
    """))
    (pkg / "__main__.py").write_text("import sys\nprint('pkg-main', sys.argv[1:])\n")
    out = tmp_path / "r.json"
    res = codeprof("run", "-q", "-o", str(out), "-m", "mypkg.tool", "a", "-o", "x",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen == {"argv": [str(pkg / "tool.py"), "a", "-o", "x"], "path0": str(tmp_path),
                    "name": "__main__", "spec": "mypkg.tool", "package": "mypkg",
                    "file": str(pkg / "tool.py")}
    assert function_entry(json.loads(out.read_text()), "work", kind="python")["calls"] == 3

    res = codeprof("run", "-q", "-m", "mypkg", "b", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "pkg-main ['b']"


def test_run_module_spawn_pool(tmp_path):
    """With -m the spec is the module's, so spawn children re-import it by name."""
    (tmp_path / "poolmod.py").write_text(POOL_SCRIPT)
    res = codeprof("run", "-q", "-m", "poolmod", "spawn", cwd=tmp_path, timeout=180)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["result"] == [x * x for x in range(10)]
    assert "name='poolmod'" in seen["spec"]


def test_run_module_not_found(tmp_path):
    res = codeprof("run", "-m", "no_such_module_xyz", cwd=tmp_path)
    assert res.returncode == 2
    assert "No module named no_such_module_xyz" in res.stderr
    (tmp_path / "emptypkg").mkdir()
    (tmp_path / "emptypkg" / "__init__.py").write_text("")
    res = codeprof("run", "-m", "emptypkg", cwd=tmp_path)
    assert res.returncode == 2
    assert "is a package and cannot be directly executed" in res.stderr


def test_spawn_dataloader_workers_find_the_scripts_dataset(tmp_path):
    """A DataLoader with spawn workers unpickles the script's Dataset class
    in each worker: that needs the same __main__ set-up as a spawn pool."""
    pytest.importorskip("torch")
    (tmp_path / "loader.py").write_text(textwrap.dedent("""
        import json
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Squares(Dataset):
            def __len__(self):
                return 8

            def __getitem__(self, i):
                return torch.tensor([i * i])

        if __name__ == "__main__":
            loader = DataLoader(Squares(), batch_size=4, num_workers=2,
                                multiprocessing_context="spawn", timeout=120)
            print(json.dumps(sorted(int(v) for b in loader for v in b.flatten())))
    """))
    res = codeprof("run", "-q", "loader.py", cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [i * i for i in range(8)]


def test_dash_m_after_the_script_belongs_to_the_script(tmp_path):
    (tmp_path / "argv.py").write_text("import json, sys\nprint(json.dumps(sys.argv))\n")
    res = codeprof("run", "-q", "argv.py", "-m", "x", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == ["argv.py", "-m", "x"]


# ---------------------------------------------------------------------------
# Signals: the report and summary are written, the exit status is the signal's
# ---------------------------------------------------------------------------

SLEEPER = textwrap.dedent("""
    import sys, threading, time

    def work():
        return sum(range(10000))

    def main():
        for _ in range(5):
            work()
        if "thread" in sys.argv:  # a non-daemon thread that never ends
            threading.Thread(target=lambda: time.sleep(3600), daemon=False).start()
        print("ready", flush=True)
        while True:
            time.sleep(0.05)

    main()
""")


def _start_sleeper(tmp_path: Path, *extra: str):
    import signal
    import subprocess
    from conftest import subprocess_env
    (tmp_path / "sleeper.py").write_text(SLEEPER)

    def default_sigint() -> None:
        # A test run in a background job inherits SIGINT ignored; Python
        # then installs no KeyboardInterrupt handler.  Give the child the
        # default, as a terminal would.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        [sys.executable, "-m", "code_profiler", "run", "-o", str(tmp_path / "s.json"),
         "sleeper.py", *extra],
        cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=default_sigint)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"the script did not start: {line!r} {err}")
    return proc


@pytest.mark.parametrize("signame,statuses", [("SIGTERM", (-15, 143)), ("SIGINT", (-2, 130))])
def test_signal_mid_run_writes_report_and_summary_and_keeps_the_signal_status(
        tmp_path, signame, statuses):
    import signal
    proc = _start_sleeper(tmp_path)
    proc.send_signal(getattr(signal, signame))
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in statuses, err
    assert f"stopped by {signame}" in err
    assert "Top functions by inclusive time" in err  # the summary
    report = json.loads((tmp_path / "s.json").read_text())
    assert function_entry(report, "work", kind="python")["calls"] == 5
    assert f"json report written to {tmp_path / 's.json'}" in err


def test_sigterm_with_a_non_daemon_thread_still_ends_the_run(tmp_path):
    """The script's own threads cannot keep the process alive after SIGTERM:
    it ends by the signal once the report is written."""
    import signal
    proc = _start_sleeper(tmp_path, "thread")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (-15, 143)
    assert json.loads((tmp_path / "s.json").read_text())["performance"]["functions"]


# ---------------------------------------------------------------------------
# Output files: format by ending or --format, paths printed
# ---------------------------------------------------------------------------

def test_format_follows_each_files_ending_and_paths_are_printed(script, tmp_path):
    res = codeprof("run", "-o", "r.txt", "-o", "r.json", "-o", "r.dat", str(script),
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "r.txt").read_text()
    assert "work" in text and not text.lstrip().startswith("{")
    for name in ("r.json", "r.dat"):  # an unknown ending gets JSON
        assert function_entry(json.loads((tmp_path / name).read_text()), "work")["calls"] == 4
    lines = [ln for ln in res.stderr.splitlines() if "report written to" in ln]
    assert lines == [f"codeprof: text report written to {tmp_path / 'r.txt'}",
                     f"codeprof: json report written to {tmp_path / 'r.json'}",
                     f"codeprof: json report written to {tmp_path / 'r.dat'}"]
    quiet = codeprof("run", "-q", "-o", "q.json", str(script), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_format_option_overrides_an_unknown_ending(script, tmp_path):
    res = codeprof("run", "-q", "--format", "text", "-o", "summary.out", str(script),
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "summary.out").read_text().lstrip().startswith("{")


@pytest.mark.parametrize("args,expected", [
    (["--format", "pstats", "-o", "x.json"], "--format pstats does not match the file name "
                                             "'x.json' (its ending asks for json)"),
    (["--format", "json", "-o", "x.speedscope.json"], "its ending asks for speedscope"),
    (["--text", "-o", "x.json"], "--format text does not match the file name 'x.json'"),
    (["--text", "--format", "json", "-o", "x"], "--text contradicts --format json"),
])
def test_format_mismatch_is_a_usage_error_before_the_script_runs(script, tmp_path, args,
                                                                 expected):
    res = codeprof("run", *args, str(script), cwd=tmp_path)
    assert res.returncode == 2
    assert expected in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "seen.json").exists()  # the script did not run
    assert not (tmp_path / "x.json").exists()


def test_pstats_ending_asks_for_pstats(script, tmp_path):
    res = codeprof("run", "-q", "-o", "x.prof", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    import pstats
    stats = pstats.Stats(str(tmp_path / "x.prof"))
    # keys name Python functions by their qualified name (docs/exports.md)
    assert any(fn[2] == "__main__.work" and v[1] == 4 for fn, v in stats.stats.items())


def test_report_into_a_path_whose_parent_is_a_file_names_it(script, tmp_path):
    (tmp_path / "afile").write_text("x")
    res = codeprof("run", "-q", "-o", "afile/x.json", str(script), cwd=tmp_path)
    assert res.returncode == 1
    assert f"'{tmp_path / 'afile'}' is a file, not a directory" in res.stderr
    assert (tmp_path / "afile").read_text() == "x"


# ---------------------------------------------------------------------------
# codeprof report / codeprof diff
# ---------------------------------------------------------------------------

def test_report_and_diff_with_stub_reader(tmp_path, monkeypatch, capsys):
    """The subcommands against the reader's interface (_core.render_report,
    save_report, diff_reports), stubbed: argument handling, output files,
    format choice and error lines."""
    from code_profiler import _core, cli
    seen = []

    def render_report(path, fmt):
        seen.append(("render", path, fmt))
        if "bad" in path:
            raise ValueError(f"render_report(): {path}: schema: expected \"codeprof-report\"")
        if "new" in path:
            raise ValueError("schema_version 99 is newer than this reader (2)")
        if fmt == "trace":
            raise RuntimeError("render_report(): no writer for the format 'trace' in this build")
        return b"\x00pstats" if fmt == "pstats" else f"{fmt} of {path}"

    def save_report(path, out, fmt):
        seen.append(("save", path, out, fmt))
        Path(out).write_text(f"{fmt} of {path}")

    def diff_reports(a, b, fmt):
        seen.append(("diff", a, b, fmt))
        return json.dumps({"a": a, "b": b}) if fmt == "json" else f"diff {a} {b}"

    monkeypatch.setattr(_core, "render_report", render_report, raising=False)
    monkeypatch.setattr(_core, "save_report", save_report, raising=False)
    monkeypatch.setattr(_core, "diff_reports", diff_reports, raising=False)
    monkeypatch.chdir(tmp_path)
    for name in ("a.json", "b.json", "bad.json", "new.json"):
        (tmp_path / name).write_text("{}")

    assert cli.main(["report", "a.json"]) == 0
    assert capsys.readouterr().out == "text of a.json\n"
    assert cli.main(["report", "a.json", "-o", "out.prof"]) == 0
    assert seen[-1] == ("save", "a.json", str(tmp_path / "out.prof"), "pstats")
    assert f"pstats report written to {tmp_path / 'out.prof'}" in capsys.readouterr().err
    assert cli.main(["report", "a.json", "--format", "pstats"]) == 2  # binary to a terminal
    assert "give -o" in capsys.readouterr().err
    assert cli.main(["report", "a.json", "--format", "json", "-o", "x.txt"]) == 2
    assert "does not match the file name 'x.txt'" in capsys.readouterr().err

    # errors: one line naming the file and what was expected, exit 2
    for args, expected in (
            (["report", "missing.json"], "report: error: no such file: 'missing.json'"),
            (["report", "bad.json"], "report: error: bad.json: schema: expected"),
            (["report", "new.json"], "report: error: 'new.json': schema_version 99 is newer"),
            (["diff", "a.json", "nope.json"], "diff: error: no such file: 'nope.json'")):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    # a format this build cannot write: not the input's fault, exit 1
    assert cli.main(["report", "a.json", "--format", "trace"]) == 1
    assert capsys.readouterr().err.strip() == \
        "codeprof report: error: no writer for the format 'trace' in this build"

    assert cli.main(["diff", "a.json", "b.json"]) == 0
    assert capsys.readouterr().out == "diff a.json b.json\n"
    assert cli.main(["diff", "a.json", "b.json", "-o", "d.json"]) == 0  # format by ending
    assert json.loads((tmp_path / "d.json").read_text()) == {"a": "a.json", "b": "b.json"}
    assert cli.main(["diff", "a.json", "b.json", "-o", "d.prof"]) == 2
    assert "only text, json can be written here" in capsys.readouterr().err


needs_reader = pytest.mark.skipif(
    not all(hasattr(__import__("code_profiler")._core, n)
            for n in ("render_report", "save_report", "diff_reports")),
    reason="the report reader (_core.render_report/save_report/diff_reports) is not in "
           "this build yet")


@needs_reader
def test_report_renders_a_saved_report_and_reexports_it(script, tmp_path):
    res = codeprof("run", "-q", "-o", "r.json", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = codeprof("report", "r.json", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Top functions by inclusive time" in text.stdout and "work" in text.stdout
    again = codeprof("report", "r.json", "-o", "again.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = json.loads((tmp_path / "again.json").read_text())
    assert function_entry(report, "work", kind="python")["calls"] == 4


@needs_reader
def test_diff_of_two_runs(script, tmp_path):
    for name in ("a.json", "b.json"):
        res = codeprof("run", "-q", "-o", name, str(script), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    res = codeprof("diff", "a.json", "b.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "work" in res.stdout
    res = codeprof("diff", "a.json", "b.json", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    json.loads(res.stdout)


@needs_reader
def test_report_errors_name_the_file(tmp_path):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text('{"schema": ')
    (tmp_path / "newer.json").write_text('{"schema": "codeprof-report", "schema_version": 99}')
    for name, what in (("other.json", "codeprof-report"), ("broken.json", "expected"),
                       ("newer.json", "schema"), ("missing.json", "no such file")):
        for args in (["report", name], ["diff", name, name]):
            res = codeprof(*args, cwd=tmp_path)
            assert res.returncode == 2, res.stderr
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and name in lines[0] and what in lines[0], res.stderr
            assert "()" not in lines[0]  # no C function names


def test_format_without_output_is_a_usage_error(script, tmp_path):
    res = codeprof("run", "--format", "text", str(script), cwd=tmp_path)
    assert res.returncode == 2
    assert "add -o OUT" in res.stderr
    assert not (tmp_path / "seen.json").exists()


def test_summary_and_every_file_come_from_one_model(script, tmp_path, monkeypatch):
    """codeprof run renders the summary and each -o file from the model the
    session built once after the stop (schema 2's cached report model)."""
    from code_profiler import cli
    made = []

    class Recording(cli.VideoOpusClipProfiler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(cli, "VideoOpusClipProfiler", Recording)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "-o", "a.json", "-o", "b.txt", "-o", "c.json", str(script)])
    assert code == 0
    assert (tmp_path / "a.json").exists() and (tmp_path / "c.json").exists()
    session = made[0].session
    if not hasattr(session, "model_counts"):
        pytest.skip("this build's session does not count its report models")
    built, reused = session.model_counts()
    assert built == 1 and reused >= 3, (built, reused)


def test_sigterm_stays_the_exit_status_when_another_exception_follows(tmp_path):
    """A SIGTERM that the script turns into another failure (as a DataLoader
    does when the same process-group SIGTERM kills its workers) still ends
    the run by SIGTERM, after the traceback and the report."""
    import signal
    import subprocess
    from conftest import subprocess_env
    (tmp_path / "swallow.py").write_text(textwrap.dedent("""
        import time
        try:
            # inside the try: a SIGTERM that arrives right after "ready" must
            # be swallowed too, or the test races the script
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        except BaseException:
            pass
        raise RuntimeError("workers gone")
    """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "code_profiler", "run", "-o", str(tmp_path / "s.json"),
         "swallow.py"], cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (-15, 143), err
    assert "RuntimeError: workers gone" in err
    assert (tmp_path / "s.json").exists()
