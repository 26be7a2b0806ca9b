"""codeprof run --sample [--interval MS] [--native] [--cpu] [--trace], run in
subprocesses.  Tests marked `needs_sampler` need issue 10's C sampler
(Session.set_sampling): they run as soon as it is merged and must pass."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from code_profiler import _core
from conftest import function_entry, functions_named, run_python

needs_sampler = pytest.mark.skipif(
    not hasattr(_core.Session, "set_sampling"),
    reason="needs issue 10's stack sampler (Session.set_sampling); runs once it is merged")

SPIN = textwrap.dedent("""
    import sys, time

    def spin(seconds):
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n

    def work(n):
        return sum(i * i for i in range(n))

    def main():
        for _ in range(4):
            work(1000)
        spin(float(sys.argv[1]) if len(sys.argv) > 1 else 0.05)
        open("ran", "w").close()

    main()
""")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "spinner.py"
    path.write_text(SPIN)
    return path


def codeprof(*args: str, cwd: Path, timeout: float = 120):
    return run_python(["-m", "code_profiler", *args], cwd, timeout=timeout)


@pytest.mark.parametrize("args,expected", [
    (["--interval", "5"], "--interval needs --sample"),
    (["--native"], "--native needs --sample"),
    (["--cpu"], "--cpu needs --sample"),
    (["--trace"], "--trace needs --sample (the tracer is on without --sample)"),
    (["--sample", "--interval", "0.5"], "--interval must be a number of milliseconds in "
                                        "[1, 60000], got '0.5'"),
    (["--sample", "--interval", "0"], "in [1, 60000], got '0'"),
    (["--sample", "--interval", "60001"], "in [1, 60000], got '60001'"),
    (["--sample", "--interval", "ten"], "in [1, 60000], got 'ten'"),
    (["--sample", "--interval", "nan"], "in [1, 60000], got 'nan'"),
    (["--sample", "--interval", "-5"], "in [1, 60000], got '-5'"),
])
def test_bad_sampling_options_exit_2_before_the_script_runs(script, tmp_path, args, expected):
    res = codeprof("run", *args, "-o", "r.json", str(script), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert res.stderr.startswith("codeprof run: error: ")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ran").exists()  # the script did not run
    assert not (tmp_path / "r.json").exists()


def traced_calls(report):
    return [f for f in report["performance"]["functions"]
            if f["kind"] == "python" and f["calls"] > 0]


def test_sample_alone_does_not_trace(script, tmp_path):
    res = codeprof("run", "-q", "--sample", "-o", "r.json", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ran").exists()
    report = json.loads((tmp_path / "r.json").read_text())
    # No call was traced: functions of the script are at most estimates.
    assert traced_calls(report) == []


@pytest.mark.parametrize("as_module", [False, True])
def test_sample_with_trace_traces_too(script, tmp_path, as_module):
    target = ["-m", "spinner"] if as_module else [str(script)]
    res = codeprof("run", "-q", "--sample", "--trace", "--interval", "2", "-o", "r.json",
                   *target, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert function_entry(report, "work", kind="python")["calls"] == 4


def test_without_sample_the_tracer_runs_and_nothing_samples(script, tmp_path):
    res = codeprof("run", "-q", "-o", "r.json", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert function_entry(report, "work", kind="python")["calls"] == 4
    assert report["sampling"]["enabled"] is False


@needs_sampler
@pytest.mark.parametrize("as_module", [False, True])
@pytest.mark.parametrize("extra,mode,interval", [([], "wall", 0.01),
                                                 (["--interval", "2", "--cpu"], "cpu", 0.002),
                                                 (["--interval", "1", "--native"], "wall", 0.001)])
def test_sample_runs_the_sampler_with_the_options(script, tmp_path, as_module, extra, mode,
                                                  interval):
    target = ["-m", "spinner"] if as_module else [str(script)]
    res = codeprof("run", "--sample", *extra, "-o", "r.json", *target, "1.0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    samp = report["sampling"]
    assert samp["enabled"] is True
    assert samp["mode"] == mode
    assert samp["interval_s"] == pytest.approx(interval)
    assert samp["native"] is ("--native" in extra)
    # 1 s of spinning at 1-10 ms: at least a few dozen samples, even on a
    # loaded machine; the spinning function is the estimated hot spot.
    assert samp["samples"] >= 20
    spin = function_entry(report, "spin", kind="python")
    assert spin["estimated"] is True and spin["calls"] == 0
    assert spin["samples"] >= 10 and spin["sampled_s"] > 0.3
    assert traced_calls(report) == []
    # the summary printed to stderr shows the estimated function
    assert "spin" in res.stderr


@pytest.mark.parametrize("args,percentiles,memory", [
    (["--sample"], False, 0.0),                                # basic by default
    (["--sample", "--level", "detailed"], True, 0.01),         # memory profiler on too
    ([], True, 0.1),                                           # tracing: detailed by default
])
def test_sample_defaults_to_the_basic_level(script, tmp_path, args, percentiles, memory):
    """--sample alone runs at "basic": no memory, GPU or data-loading
    instruments add to the sampler's cost; --level says otherwise."""
    res = codeprof("run", "-q", *args, "-o", "r.json", str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    cfg = json.loads((tmp_path / "r.json").read_text())["config"]
    assert cfg["percentiles"] is percentiles
    # the memory profiler's RSS sampler shares sample_interval (10 ms with --sample)
    assert cfg["memory_sample_interval_s"] == pytest.approx(memory)
