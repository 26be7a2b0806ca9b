"""Statistical profiling through the guide's API, real runs in subprocesses:
the sampled split of known workloads (70/30; compute/sleep in wall and CPU
mode), every export of a sampled run read back by its real consumer, the
text summary, threads started after start, the guide's Production
Monitoring config, DataLoader workers (fork and spawn) tagged by worker.

Every test here needs issue 10's stack sampler in the C core
(Session.set_sampling): they are skipped until it is merged, then they run
and must pass.  Bounds are generous (the machine is loaded) and no test
retries: the accuracy tests compare the sampled split with the wall time
the workload itself measured in each function, with enough samples that
the bound is several standard errors wide."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest

from code_profiler import _core
from conftest import run_python

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(_core.Session, "set_sampling"),
                       reason="needs issue 10's stack sampler (Session.set_sampling); runs "
                              "once it is merged"),
]

HERE = os.path.dirname(os.path.abspath(__file__))

PRELUDE = f"""
import json, os, sys, threading, time
sys.path.insert(0, {HERE!r})
from code_profiler import ProfilerConfig, VideoOpusClipProfiler, create_profiler_config
import _sampling_fixtures as fx

def emit(**out):
    print("RESULT " + json.dumps(out), flush=True)
"""


def run_script(tmp_path: Path, body: str, timeout: float = 240) -> Dict[str, Any]:
    script = tmp_path / "sampled_run.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    res = run_python([str(script)], tmp_path, timeout=timeout)
    assert res.returncode == 0, res.stderr[-4000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def entry(report: Dict[str, Any], name: str) -> Dict[str, Any]:
    found = [f for f in report["performance"]["functions"]
             if f["function"] == name or f["function"].endswith("." + name)]
    names = sorted(f["function"] for f in report["performance"]["functions"])
    assert len(found) == 1, f"{name}: {names}"
    return found[0]


def test_70_30_split_within_3_points(tmp_path):
    out = run_script(tmp_path, """
        p = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", sampling=True,
                                                 sample_interval=0.001))
        p.start_profiling()
        spent = fx.split_70_30(total_s=2.5)
        p.stop_profiling()
        emit(spent=spent, report=p.get_comprehensive_report())
    """)
    report, spent = out["report"], out["spent"]
    samp = report["sampling"]
    assert samp["enabled"] is True and samp["mode"] == "wall"
    assert samp["interval_s"] == pytest.approx(0.001)
    s70, s30 = entry(report, "seventy"), entry(report, "thirty")
    for e in (s70, s30):
        assert e["estimated"] is True and e["calls"] == 0  # sampled, not traced
        assert e["error_s"] >= 0
    assert s70["samples"] + s30["samples"] >= 300  # even with many missed ticks
    truth = spent["seventy"] / (spent["seventy"] + spent["thirty"])
    # the workload did roughly what it says (a loaded machine stretches both
    # phases by its scheduling delays, so the truth drifts toward 50/50: the
    # sampled share is compared with the measured one)
    assert 0.55 < truth < 0.80, spent
    share = s70["sampled_s"] / (s70["sampled_s"] + s30["sampled_s"])
    assert share == pytest.approx(truth, abs=0.03), (share, truth, s70, s30)


def test_compute_sleep_alternation_wall_and_cpu_modes(tmp_path):
    out = run_script(tmp_path, """
        res = {}
        for clock in ("wall", "cpu"):
            p = VideoOpusClipProfiler(ProfilerConfig(profile_level="basic", sample_clock=clock,
                                                     sample_interval=0.001))
            p.start_profiling()
            spent = fx.compute_sleep(total_s=2.0)
            p.stop_profiling()
            res[clock] = {"spent": spent, "report": p.get_comprehensive_report()}
        emit(**res)
    """)
    # wall: compute and rest each about half of the sampled time, and about
    # half the samples running, half idle (sleeping)
    wall, spent = out["wall"]["report"], out["wall"]["spent"]
    assert wall["sampling"]["mode"] == "wall"
    comp, rest = entry(wall, "compute"), entry(wall, "rest")
    truth = spent["compute"] / (spent["compute"] + spent["rest"])
    share = comp["sampled_s"] / (comp["sampled_s"] + rest["sampled_s"])
    assert share == pytest.approx(truth, abs=0.05), (share, truth)
    # Running vs idle samples: a sample whose interval straddles a phase
    # boundary, or a tick delayed on a loaded machine, can be classed
    # either way, so the bound here is generous (the merged build gave
    # 36.5% running for a 54% computing share at load 15, and within 5
    # points when the machine was less loaded); bench_sampling.py measures
    # the split precisely.
    samp = wall["sampling"]
    running = samp["running"] / max(1, samp["running"] + samp["idle"] + samp["gil_wait"])
    assert running == pytest.approx(truth, abs=0.25), (samp, truth)
    assert samp["idle"] > 0.2 * samp["samples"]  # the sleeps are seen as idle
    # cpu: the sleeping function weighs (almost) nothing.  Regression: the
    # first sample in rest() carries the CPU time since the previous sample,
    # spent at the end of compute(); it used to be charged to rest() (90.5%
    # on compute() at 1 kHz); the sampler now charges the stack the thread
    # left when it is found asleep in another one (bench: 100.0% against a
    # CPU truth of 99.3%).
    cpu = out["cpu"]["report"]
    assert cpu["sampling"]["mode"] == "cpu"
    comp = entry(cpu, "compute")
    rest_s = sum(f["sampled_s"] for f in cpu["performance"]["functions"]
                 if f["function"].endswith(".rest") and f.get("samples", 0) > 0)
    assert comp["sampled_s"] / (comp["sampled_s"] + rest_s) >= 0.97


def test_every_export_of_a_sampled_run_reads_back(tmp_path):
    out = run_script(tmp_path, """
        p = VideoOpusClipProfiler(create_profiler_config("basic", sample_interval=0.001,
                                                         output_dir=os.getcwd()))
        p.start_profiling()
        fx.split_70_30(total_s=0.8)
        p.stop_profiling()
        paths = {}
        for name in ("r.prof", "r.speedscope.json", "r.trace.json", "r.collapsed", "r.json"):
            paths[name] = p.save_comprehensive_report(name)
        emit(paths=paths, text=p.get_text_summary())
    """)
    paths = out["paths"]
    import pstats
    stats = pstats.Stats(paths["r.prof"])
    names = {func for (_file, _line, func) in stats.stats}
    assert any(n.endswith("seventy") for n in names) and any(n.endswith("thirty") for n in names)
    stats.sort_stats("cumulative").print_stats(0)  # sorts and prints without error
    speed = json.loads(Path(paths["r.speedscope.json"]).read_text())
    assert speed["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = [f["name"] for f in speed["shared"]["frames"]]
    assert any(n.endswith("seventy") for n in frames)
    trace = json.loads(Path(paths["r.trace.json"]).read_text())
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    # no tracer ran: "seventy" on the timeline can only come from samples
    assert any("seventy" in json.dumps(ev) for ev in events if ev.get("ph") != "M")
    collapsed = Path(paths["r.collapsed"]).read_text().splitlines()
    hot = [ln for ln in collapsed if "seventy" in ln]
    assert hot and all(int(ln.rsplit(" ", 1)[1]) > 0 for ln in hot)
    report = json.loads(Path(paths["r.json"]).read_text())
    assert report["sampling"]["enabled"] is True and report["sampling"]["samples"] > 0
    assert entry(report, "seventy")["estimated"] is True
    # the text summary shows the estimated functions
    assert "seventy" in out["text"] and "estimated" in out["text"]


def test_thread_started_after_start_is_sampled(tmp_path):
    out = run_script(tmp_path, """
        def late_worker():
            fx.burn(0.6)

        p = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", sampling=True,
                                                 sample_interval=0.002))
        p.start_profiling()
        time.sleep(0.05)
        t = threading.Thread(target=late_worker, name="late")
        t.start()
        t.join()
        p.stop_profiling()
        emit(report=p.get_comprehensive_report())
    """)
    report = out["report"]
    late = entry(report, "late_worker")
    assert late["estimated"] is True and late["samples"] >= 20
    assert report["sampling"]["threads"] >= 2


def test_guide_production_monitoring_config_samples_and_saves(tmp_path):
    out = run_script(tmp_path, """
        # the guide's "Production Monitoring" block, output in the test's folder
        config = ProfilerConfig(
            enabled=True,
            profile_level="basic",
            save_profiles=True,
            detailed_reports=False,
            output_dir=os.getcwd(),
        )
        profiler = VideoOpusClipProfiler(config)
        profiler.start_profiling()
        fx.seventy(2.0)  # at the default sample_interval (0.1 s): ~20 samples
        profiler.stop_profiling()
        emit(path=profiler.last_report_path, tracer=profiler.session.tracer)
    """)
    report = json.loads(Path(out["path"]).read_text())
    samp = report["sampling"]
    assert samp["enabled"] is True and samp["interval_s"] == pytest.approx(0.1)
    assert samp["samples"] >= 8
    e = entry(report, "seventy")
    assert e["estimated"] is True and e["sampled_s"] == pytest.approx(2.0, rel=0.5)


def test_decorated_functions_before_start_do_not_start_the_sampler(tmp_path):
    out = run_script(tmp_path, """
        p = VideoOpusClipProfiler(create_profiler_config("basic", sample_interval=0.002))

        @p.profile_function
        def early():
            fx.burn(0.3)

        early()  # records the decorated call; the sampler is not on yet
        before = p.session.model().report("sampling")
        p.start_profiling()
        fx.seventy(0.3)
        p.stop_profiling()
        emit(before=before, report=p.get_comprehensive_report())
    """)
    assert out["before"].get("samples", 0) == 0
    report = out["report"]
    assert entry(report, "early")["calls"] == 1
    assert entry(report, "seventy")["samples"] >= 20


_LOADER = """
    from torch.utils.data import DataLoader

    def main():
        p = VideoOpusClipProfiler(create_profiler_config("basic", sample_interval=0.002))
        loader = DataLoader(fx.SpinningClips(32), batch_size=4, num_workers=2,
                            multiprocessing_context=METHOD)
        pl = p.profile_data_loader(loader)
        p.start_profiling()
        n = sum(len(b) for b in pl)
        p.stop_profiling()
        emit(n=n, report=p.get_comprehensive_report(), pid=os.getpid())

    if __name__ == "__main__":  # spawn workers import this script again
        main()
"""


def _sampled_calls(node: Dict[str, Any], sites: list, name: str) -> int:
    site = node.get("site")
    hit = (site is not None and sites[site]["function"].endswith(name)
           and node.get("samples", 0) > 0)
    return (node.get("samples", 0) if hit else 0) + sum(
        _sampled_calls(c, sites, name) for c in node.get("children", []))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataloader_workers_samples_reach_the_parent_tagged_by_worker(tmp_path, method):
    pytest.importorskip("torch")
    out = run_script(tmp_path, _LOADER.replace("METHOD", repr(method)), timeout=300)
    assert out["n"] == 32
    report = out["report"]
    sites = report["performance"]["sites"]
    by_worker: Dict[int, int] = {}
    for thread in report["performance"]["call_tree"]:
        if thread["worker"] >= 0:
            assert thread["pid"] != out["pid"]
            by_worker[thread["worker"]] = (by_worker.get(thread["worker"], 0)
                                           + _sampled_calls(thread, sites, "decode_clip"))
    # 32 items x 20 ms spinning, split over two workers, sampled every 2 ms
    assert set(by_worker) == {0, 1}, by_worker
    assert all(n >= 20 for n in by_worker.values()), by_worker
    decode = entry(report, "decode_clip")
    assert decode["estimated"] is True and decode["samples"] >= 40
