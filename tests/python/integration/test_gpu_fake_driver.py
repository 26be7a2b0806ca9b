"""profiler.gpu_profiler end to end against the fake CUDA driver, NVML and
CUPTI (tests/c/fake_*.c), compiled here and named to the loader through
$CODEPROF_CUDA_LIBRARY / $CODEPROF_NVML_LIBRARY / $CODEPROF_CUPTI_LIBRARY.

The fakes are deterministic: the device clock advances by a programmed
amount at every event record, so GPU times are known exactly; NVML answers
programmed utilization sequences; CUPTI callbacks are fired by the test
(what the real library does around a synchronizing call).  Each scenario
runs in a fresh interpreter: the loader loads once per process.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler to build the fake libraries")


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_fakes")
    libs = {}
    for name in ("cuda", "nvml", "cupti"):
        so = out / f"libfake_{name}.so"
        src = REPO / "tests" / "c" / f"fake_{name}.c"
        subprocess.run([CC, "-shared", "-fPIC", "-O1", "-std=c11", "-D_GNU_SOURCE",
                        "-I", str(REPO / "tests" / "c"), "-o", str(so), str(src), "-lpthread"],
                       check=True, timeout=120)
        libs[name] = str(so)
    return libs


def run_scenario(fakes, body: str, timeout: int = 120) -> dict:
    env = dict(os.environ)
    env["CODEPROF_CUDA_LIBRARY"] = fakes["cuda"]
    env["CODEPROF_NVML_LIBRARY"] = fakes["nvml"]
    env["CODEPROF_CUPTI_LIBRARY"] = fakes["cupti"]
    prelude = textwrap.dedent("""\
        import ctypes, json, os, sys, time
        cuda = ctypes.CDLL(os.environ["CODEPROF_CUDA_LIBRARY"])
        nvml = ctypes.CDLL(os.environ["CODEPROF_NVML_LIBRARY"])
        cupti = ctypes.CDLL(os.environ["CODEPROF_CUPTI_LIBRARY"])
        cuda.fake_cuda_set_default_advance.argtypes = [ctypes.c_double]
        cuda.fake_cuda_count.restype = ctypes.c_longlong
        cuda.fake_cuda_set_mem.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
        cuda.fake_cuda_reset(); nvml.fake_nvml_reset(); cupti.fake_cupti_reset()
        from code_profiler import ProfilerConfig, VideoOpusClipProfiler
        """)
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_operations_timed_on_the_device_with_memory_and_the_guide_figures(fakes):
    out = run_scenario(fakes, """
        cuda.fake_cuda_set_context(1)
        cuda.fake_cuda_set_default_advance(25.0)   # 25 ms of GPU time between records
        cuda.fake_cuda_set_mem(8 << 30, 16 << 30)
        profiler = VideoOpusClipProfiler(ProfilerConfig(enable_gpu_profiler=True,
                                                        slow_gpu_operation_threshold_s=0.02))
        profiler.start_profiling()

        @profiler.gpu_profiler.profile_cuda_operation
        def gpu_intensive_function():
            cuda.fake_cuda_set_mem((8 << 30) - (64 << 20), 16 << 30)  # 64 MiB more used
            return 1

        for _ in range(3):
            gpu_intensive_function()
            cuda.fake_cuda_set_mem(8 << 30, 16 << 30)
        with profiler.gpu_profiler.cuda_context("model_inference"):
            pass
        profiler.stop_profiling()
        r = profiler.gpu_profiler.get_gpu_report()
        b = profiler.identify_bottlenecks()["slow_gpu_operations"]
        print(json.dumps({"r": r, "b": b, "syncs": cuda.fake_cuda_count(b"cuEventSynchronize"),
                          "init": cuda.fake_cuda_count(b"cuInit"),
                          "create": cuda.fake_cuda_count(b"cuCtxCreate"),
                          "live": cuda.fake_cuda_count(b"live_events")}))
        """)
    r = out["r"]
    assert r["available"] is True, r["reason"]
    stats = r["gpu_statistics"]
    assert stats["timing"] == "device"
    assert stats["operations"] == 4 and stats["timed_operations"] == 4
    assert stats["total_time_ms"] == pytest.approx(100.0)
    assert stats["avg_time_ms"] == pytest.approx(25.0)
    ops = {o["context"]: o for o in r["operations"]}
    fn = next(o for k, o in ops.items() if k.endswith("gpu_intensive_function"))
    assert fn["calls"] == 3 and fn["avg_time_ms"] == pytest.approx(25.0)
    assert fn["memory_delta"] == 3 * (64 << 20)
    assert r["memory_statistics"]["total_memory_delta"] == 3 * (64 << 20)
    assert r["memory_statistics"]["source"] == "driver"
    assert [o["elapsed_time_ms"] for o in r["slow_gpu_operations"]] == pytest.approx([25.0] * 4)
    assert len(out["b"]) >= 1  # CP-GPU-001 fills identify_bottlenecks()
    # never initialises CUDA, never creates a context
    assert out["init"] == 0 and out["create"] == 0


def test_no_context_means_host_time_and_a_reason(fakes):
    out = run_scenario(fakes, """
        cuda.fake_cuda_set_context(-1)   # the program has not initialised CUDA
        p = VideoOpusClipProfiler(ProfilerConfig(enable_gpu_profiler=True))
        with p.gpu_profiler.cuda_context("early"):
            time.sleep(0.01)
        p.stop_profiling()
        r = p.gpu_profiler.get_gpu_report()
        print(json.dumps({"r": r, "records": cuda.fake_cuda_count(b"cuEventRecord"),
                          "init": cuda.fake_cuda_count(b"cuInit")}))
        """)
    r = out["r"]
    assert r["available"] is False and r["gpu_statistics"]["timing"] == "host"
    assert "context" in r["reason"] or "initialis" in r["reason"], r["reason"]
    assert r["gpu_statistics"]["total_time_ms"] >= 10.0
    assert out["records"] == 0 and out["init"] == 0


def test_nvml_utilization_and_cupti_sync_blamed_on_the_line(fakes):
    out = run_scenario(fakes, """
        cuda.fake_cuda_set_context(1)
        nvml.fake_nvml_set_devices(1)
        seq = (ctypes.c_ulonglong * 4)(20, 40, 60, 80)
        nvml.fake_nvml_set_sequence(0, 0, seq, 4)      # GPU utilization %
        p = VideoOpusClipProfiler(ProfilerConfig(enable_gpu_profiler=True,
                                                 enable_cuda_profiling=True,
                                                 sample_interval=0.01))
        p.start_profiling()
        with p.gpu_profiler.cuda_context("step"):
            pass
        # what CUPTI does around cudaDeviceSynchronize (runtime API domain 2)
        def synchronize():
            cupti.fake_cupti_fire(2, 165, b"cudaDeviceSynchronize_v3020", 0)
            time.sleep(0.03)
            cupti.fake_cupti_fire(2, 165, b"cudaDeviceSynchronize_v3020", 1)
        for _ in range(2):
            synchronize(); line = sys._getframe().f_lineno
        time.sleep(0.3)
        p.stop_profiling()
        r = p.gpu_profiler.get_gpu_report()
        print(json.dumps({"r": r, "line": line}))
        """)
    r = out["r"]
    sync = r["synchronization"]
    assert sync["source"] == "cupti"
    pts = [pt for pt in sync["points"] if pt["kind"] == "device"]
    assert pts, sync
    assert pts[0]["count"] == 2 and pts[0]["blocked_ms"] >= 60.0
    # blamed on the innermost user frame named when a GPU operation began (the
    # callback runs without the GIL, when nothing new can be named): here the
    # script's line that called synchronize()
    assert pts[0]["line"] == out["line"] and pts[0]["file"] == "<string>"
    devs = r["utilization"]["devices"]
    assert len(devs) == 1 and devs[0]["samples"] >= 5
    assert 20.0 <= devs[0]["util_mean"] <= 80.0 and devs[0]["util_max"] == 80.0


def test_forked_dataloader_workers_make_no_cuda_call(fakes):
    pytest.importorskip("torch")
    out = run_scenario(fakes, """
        import torch.utils.data as tud
        cuda.fake_cuda_set_context(1)
        cuda.fake_cuda_set_default_advance(1.0)
        p = VideoOpusClipProfiler(ProfilerConfig(enable_gpu_profiler=True,
                                                 enable_cuda_profiling=True))
        p.start_profiling()
        with p.gpu_profiler.cuda_context("before_fork"):
            pass

        class DS(tud.Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                with p.gpu_profiler.cuda_context("in_worker"):
                    pass
                return int(cuda.fake_cuda_count(b"after_fork"))

        loader = tud.DataLoader(DS(), batch_size=2, num_workers=2,
                                multiprocessing_context="fork")
        counts = [int(x) for batch in loader for x in batch]
        with p.gpu_profiler.cuda_context("after_loader"):
            pass
        p.stop_profiling()
        r = p.gpu_profiler.get_gpu_report()
        print(json.dumps({"counts": counts, "r": r}))
        """, timeout=240)
    assert out["counts"] == [0] * 8  # no CUDA call in any worker
    ops = {o["context"]: o for o in out["r"]["operations"]}
    assert ops["before_fork"]["timed"] == 1 and ops["after_loader"]["timed"] == 1
