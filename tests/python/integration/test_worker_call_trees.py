"""Worker call trees reach the parent's report: a DataLoader worker that
exits cleanly writes its call tree next to its spool (<pid>.cpmodel), and
the parent's report merges it, its threads tagged with the worker id.  A
worker killed by SIGKILL writes none (its items still arrive through the
spool); reset() discards the files.  Real DataLoaders with two forked
workers, each run in a subprocess with a timeout."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

_SCRIPT = r"""
import json, os, signal, sys, time
from torch.utils.data import DataLoader, Dataset
from code_profiler import ProfilerConfig, VideoOpusClipProfiler

mode = sys.argv[1]
prof = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", save_profiles=False))

class Clips(Dataset):
    def __len__(self):
        return 24
    def __getitem__(self, i):
        if mode == "kill" and i == 13:
            os.kill(os.getpid(), signal.SIGKILL)
        with prof.profiling_context("decode"):
            time.sleep(0.001)
        return i

loader = DataLoader(Clips(), batch_size=4, num_workers=2, multiprocessing_context="fork",
                    persistent_workers=(mode == "persistent"))
pl = prof.profile_data_loader(loader)
prof.start_profiling()
raised = None
try:
    for _ in pl:
        pass
except Exception as e:  # the killed worker
    raised = type(e).__name__
prof.stop_profiling()
if mode == "persistent":  # shut the persistent workers down cleanly
    del loader._iterator
    loader._iterator = None
spool = prof._data.spool_dir()
files = sorted(os.listdir(spool))
report = prof.get_comprehensive_report()
out = {"raised": raised, "files": files, "report": report, "pid": os.getpid()}
if mode == "reset":
    prof.reset()
    out["after_reset"] = prof.get_comprehensive_report()
    out["files_after_reset"] = sorted(os.listdir(spool))
print(json.dumps(out), flush=True)
os._exit(0)  # torch's SIGCHLD watch of a killed worker: not this test's business
"""


def _run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_SITES: list = []  # performance.sites of the report being read (schema v2)


def _calls(node: dict, name: str) -> int:
    """Calls of `name` anywhere under `node` (nodes name their site by
    index into performance.sites; set _SITES first)."""
    site = node.get("site")
    n = node.get("calls", 0) if site is not None and _SITES[site]["function"] == name else 0
    return n + sum(_calls(c, name) for c in node.get("children", []))


def _worker_threads(report: dict) -> list:
    _SITES[:] = report["performance"]["sites"]
    return [t for t in report["performance"]["call_tree"] if t["worker"] >= 0]


@pytest.mark.parametrize("mode", ["plain", "persistent"])
def test_worker_call_trees_reach_parent_tagged(mode):
    res = _run(mode)
    report = res["report"]
    workers = [w for w in report["data_loading"]["workers"] if w["worker"] >= 0]
    assert {w["worker"] for w in workers} == {0, 1}
    assert sum(w["items"] for w in workers) == 24
    models = [f for f in res["files"] if f.endswith(".cpmodel")]
    assert len(models) == 2, res["files"]

    threads = _worker_threads(report)
    by_worker = {0: 0, 1: 0}
    for t in threads:
        assert t["pid"] != res["pid"]
        by_worker[t["worker"]] += _calls(t, "decode")
    # every item's "decode" scope, under the thread of the worker that ran it
    items = {w["worker"]: w["items"] for w in workers}
    assert by_worker == items, (by_worker, items)
    assert by_worker[0] > 0 and by_worker[1] > 0
    # the parent itself ran no "decode"
    parent = [t for t in report["performance"]["call_tree"] if t["worker"] < 0]
    assert sum(_calls(t, "decode") for t in parent) == 0
    # the flat table sums both workers
    funcs = {f["function"]: f for f in report["performance"]["functions"]}
    assert funcs["decode"]["calls"] == 24
    assert report["meta"]["merged_models"] == 2
    assert report["data_loading"]["spool_errors"] == 0


def test_killed_worker_leaves_no_call_tree():
    res = _run("kill")
    assert res["raised"]
    report = res["report"]
    workers = [w for w in report["data_loading"]["workers"] if w["worker"] >= 0]
    killed = [w for w in workers if w["incomplete"]]
    assert len(killed) == 1
    models = [f for f in res["files"] if f.endswith(".cpmodel")]
    assert f"{killed[0]['pid']}.cpmodel" not in models
    tree_pids = {t["pid"] for t in _worker_threads(report)}
    assert killed[0]["pid"] not in tree_pids
    # its items before the kill still arrived through its spool
    assert killed[0]["items"] >= 1
    # a killed worker is not a failed model write
    assert report["data_loading"]["spool_errors"] == 0


def test_reset_discards_worker_call_trees():
    res = _run("reset")
    assert _worker_threads(res["report"])
    assert not _worker_threads(res["after_reset"])
    assert not [f for f in res["files_after_reset"] if f.endswith((".cpmodel", ".cpspool"))]


_FULL_SCRIPT = r"""
import json, os, sys
from torch.utils.data import DataLoader, Dataset
from code_profiler import ProfilerConfig, VideoOpusClipProfiler

prof = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))

class Tiny(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        return i

def init(_wid):
    # ~2000 distinct contexts: the worker's call tree (~600 KiB on disk)
    # cannot fit in the 64 KiB filesystem; its few spool records can.
    for k in range(2000):
        with prof.profiling_context(f"warm_up_context_number_{k:05d}"):
            pass

loader = DataLoader(Tiny(), batch_size=2, num_workers=1, multiprocessing_context="fork",
                    worker_init_fn=init)
pl = prof.profile_data_loader(loader)
prof.start_profiling()
batches = sum(1 for _ in pl)
prof.stop_profiling()
spool = prof._data.spool_dir()
files = sorted(os.listdir(spool))
report = prof.get_comprehensive_report()
print(json.dumps({"batches": batches, "files": files, "report": report}), flush=True)
"""


def test_full_filesystem_fails_the_model_write_not_the_worker(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        env = dict(os.environ, CODEPROF_SPOOL_BASE=str(mnt))
        out = subprocess.run([sys.executable, "-c", _FULL_SCRIPT], capture_output=True,
                             text=True, timeout=180, env=env)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["batches"] == 4  # the worker went on
    report = res["report"]
    workers = [w for w in report["data_loading"]["workers"] if w["worker"] >= 0]
    assert len(workers) == 1 and not workers[0]["incomplete"]
    assert workers[0]["items"] == 8  # the spool made it
    # no model file, no temporary file left behind; the failure is counted
    assert not [f for f in res["files"] if "cpmodel" in f], res["files"]
    assert not _worker_threads(report)
    assert report["data_loading"]["spool_errors"] == 1


_TRACER_SCRIPT = r"""
import json, os, sys
from torch.utils.data import DataLoader, Dataset
from code_profiler import ProfilerConfig, VideoOpusClipProfiler

# every traced function and call path in the report (the default policy
# folds these tiny calls into "other" nodes)
prof = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, save_profiles=False,
                                            profile_workers_tracer=(sys.argv[1] == "on"),
                                            report_top_functions=1 << 20,
                                            report_tree_max_nodes=1 << 20,
                                            report_tree_min_share=0.0))

def wt_decode_frame(i):
    return sum(range(50 + i))

class Frames(Dataset):
    def __len__(self):
        return 24
    def __getitem__(self, i):
        return wt_decode_frame(i)

pl = prof.profile_data_loader(DataLoader(Frames(), batch_size=4, num_workers=2,
                                         multiprocessing_context="fork", timeout=120))
prof.start_profiling()
for _ in pl:
    pass
prof.stop_profiling()
print(json.dumps({"report": prof.get_comprehensive_report(), "pid": os.getpid()}), flush=True)
"""


@pytest.mark.parametrize("tracer", ["on", "off"])
def test_workers_traced_functions_reach_parent_when_asked(tracer):
    from code_profiler import ProfilerConfig
    if not hasattr(ProfilerConfig(), "profile_workers_tracer"):
        pytest.skip("this build has no ProfilerConfig.profile_workers_tracer")
    out = subprocess.run([sys.executable, "-c", _TRACER_SCRIPT, tracer], capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])["report"]
    threads = _worker_threads(report)
    assert {t["worker"] for t in threads} == {0, 1}  # each worker's tree arrived
    calls = {0: 0, 1: 0}
    for t in threads:
        calls[t["worker"]] += _calls(t, "__main__.wt_decode_frame")
    if tracer == "on":
        assert calls[0] > 0 and calls[1] > 0 and calls[0] + calls[1] == 24, calls
        funcs = {f["function"]: f["calls"] for f in report["performance"]["functions"]}
        assert funcs["__main__.wt_decode_frame"] == 24  # the parent called it never
    else:  # the tracer stayed off in the workers: their trees hold no traced call
        assert calls == {0: 0, 1: 0}
