"""DataLoader workers' memory, measured by the memory sampler from
/proc/<pid>/smaps_rollup (src/memory/memsampler.c), and the copy-on-write
rule CP-DATA-009 (src/analysis/rules_data.c).

A planted copy-on-write dataset: a list of 2.5 million Python str objects
built in the parent and only read by 2 fork workers over a full epoch.
Reading an object writes its reference count, so each worker's private
memory (USS) grows by the pages it touches (about 200 MiB each here): the
rule names the loader, the dataset, the attribute and its type, and the
growth per worker.  Its twin holds the same strings in one numpy array:
the workers' USS stays small and the rule stays quiet.  Both export a
Chrome trace whose counter tracks show RSS/PSS/USS of each worker and RSS
of the main process.

Each run is a subprocess with a timeout (fork workers, real /proc)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("numpy")
if not os.path.exists("/proc/self/smaps_rollup") and not os.path.exists("/proc/self/smaps"):
    pytest.skip("needs /proc/<pid>/smaps_rollup or smaps (Linux)", allow_module_level=True)

MIB = 1 << 20

SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    from torch.utils.data import DataLoader, Dataset
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    KIND, OUT = sys.argv[1], sys.argv[2]
    N = 2_500_000      # Python objects in the dataset
    ITEMS = 2000       # each item reads every 2000th object: an epoch reads them all

    # The memory sampler's period (memory_sample_interval_s): set here so the
    # test does not depend on how the facade maps ProfilerConfig to it.
    _kwargs = ProfilerConfig.session_kwargs
    ProfilerConfig.session_kwargs = lambda self: {**_kwargs(self),
                                                  "memory_sample_interval_s": 0.05}

    class CowDataset(Dataset):
        def __init__(self):
            names = [f"clip_{i:09d}.mp4" for i in range(N)]
            self.samples = names if KIND == "list" else np.array(names, dtype="S18")
            self.root = "/data/clips"
        def __len__(self):
            return ITEMS
        def __getitem__(self, i):
            time.sleep(0.0005)  # a few samples per worker however fast the reads
            return sum(len(x) for x in self.samples[i::ITEMS])

    prof = VideoOpusClipProfiler(ProfilerConfig(output_dir=os.path.dirname(OUT),
                                                save_profiles=False))
    loader = prof.profile_data_loader(DataLoader(CowDataset(), batch_size=50, num_workers=2,
                                                 multiprocessing_context="fork"))
    prof.start_profiling()
    items = sum(len(b) for b in loader)
    prof.stop_profiling()
    found = [f for f in prof.identify_bottlenecks()["slow_data_loading"]
             if f["rule"] == "CP-DATA-009"]
    trace = json.load(open(prof.save_comprehensive_report(OUT, format="trace")))
    counters = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "C" and e.get("cat") == "memory":
            counters.setdefault(f"{e['pid']}:{e['name']}", []).append(
                (e["ts"], e["args"]["bytes"]))
    names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    threads = [e for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"
               and e["tid"] == 0]
    print(json.dumps({"pid": os.getpid(), "items": items, "found": found,
                      "counters": {k: [b for _, b in sorted(v)] for k, v in counters.items()},
                      "names": names, "tid0_threads": len(threads)}))
''')


def _run(kind: str, tmp_path) -> dict:
    script = tmp_path / "cow.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{kind}.trace.json"
    proc = subprocess.run([sys.executable, str(script), kind, str(out)], capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _workers(res: dict) -> dict:
    """worker pid -> its USS readings (bytes, in time order)."""
    main = res["pid"]
    return {int(k.split(":")[0]): v for k, v in res["counters"].items()
            if k.endswith(":memory.uss") and int(k.split(":")[0]) != main}


def _common_checks(res: dict) -> dict:
    assert res["items"] == 2000
    main = str(res["pid"])
    # the main process's RSS track, and RSS/PSS/USS tracks of each worker
    assert len(res["counters"][f"{main}:memory.rss"]) >= 2
    workers = _workers(res)
    assert len(workers) == 2, res["counters"].keys()
    for pid in workers:
        assert f"{pid}:memory.rss" in res["counters"]
        assert f"{pid}:memory.pss" in res["counters"]
        assert res["names"][str(pid)].startswith("DataLoader worker ")
    assert res["names"][main].startswith("main (pid ")
    assert res["tid0_threads"] == 0  # counters made no thread track
    return workers


def test_cow_growth_of_python_objects_is_diagnosed(tmp_path):
    res = _run("list", tmp_path)
    workers = _common_checks(res)
    for pid, uss in workers.items():
        assert len(uss) >= 2
        # ~200 MiB of refcount-dirtied pages per worker; generous bound
        assert max(uss) - uss[0] >= 96 * MIB, (pid, uss[0], max(uss))
    assert len(res["found"]) == 1, res["found"]
    f = res["found"][0]
    rec = f["recommendation"]
    assert f["value"] >= 96 * MIB and f["threshold"] == 64 * MIB
    assert f["subject"].startswith("DataLoader(CowDataset)")
    assert "CowDataset" in rec and "self.samples: list of 2500000 str" in rec
    assert "self.root" not in rec  # a short string is not a container
    assert "2 of 2 workers" in rec and "worker 0 " in rec and "worker 1 " in rec
    assert "KiB per item" in rec and "MiB" in rec
    assert "reference count" in rec and "numpy arrays" in rec and "shared memory" in rec


def test_numpy_backed_twin_is_not_diagnosed(tmp_path):
    res = _run("array", tmp_path)
    workers = _common_checks(res)
    for pid, uss in workers.items():
        assert max(uss) - uss[0] < 48 * MIB, (pid, uss[0], max(uss))
    assert res["found"] == []
