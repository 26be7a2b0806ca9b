"""profiler.gpu_profiler (python/code_profiler/gpu.py) without a GPU.

This machine has no CUDA driver: every GPU operation is timed on the host
and the report's gpu section must say so, with the guide's keys present.
The fallback timing of synchronization points is driven through a stand-in
for torch (the real CPU build of torch cannot synchronize).  Tests against
the fake CUDA driver are in test_gpu_fake_driver.py.
"""
from __future__ import annotations

import json
import sys
import time
import types
import warnings

import pytest

from code_profiler import ProfilerConfig, VideoOpusClipProfiler, _core, create_profiler_config
from code_profiler import gpu as gpu_mod


def _profiler(**kw):
    cfg = ProfilerConfig(enable_gpu_profiler=True, **kw)
    return VideoOpusClipProfiler(cfg)


def test_config_maps_the_guide_fields_to_session_kwargs():
    off = ProfilerConfig().gpu_session_kwargs()
    assert off["gpu"] is False and off["gpu_sync"] is False and off["gpu_sample_interval_s"] == 0
    basic = ProfilerConfig(enable_gpu_profiler=True, sample_interval=0.1).gpu_session_kwargs()
    assert basic["gpu"] and basic["gpu_memory"] and not basic["gpu_sync"]
    assert basic["gpu_sample_interval_s"] == pytest.approx(0.1)
    detailed = create_profiler_config("detailed").gpu_session_kwargs()
    assert detailed["gpu"] and detailed["gpu_memory"] and detailed["gpu_sync"]
    # a disabled profiler profiles nothing, GPU included
    assert not ProfilerConfig(enabled=False, enable_gpu_profiler=True).gpu_session_kwargs()["gpu"]
    # the session accepts them
    _core.Session(**create_profiler_config("comprehensive").session_kwargs())


def test_operations_are_timed_on_the_host_without_a_driver_and_the_report_says_why():
    p = _profiler()
    p.start_profiling()

    @p.gpu_profiler.profile_cuda_operation
    def gpu_intensive_function():
        time.sleep(0.02)
        return 1

    for _ in range(3):
        assert gpu_intensive_function() == 1
    with p.gpu_profiler.cuda_context("model_inference"):
        time.sleep(0.01)
    p.stop_profiling()
    report = p.gpu_profiler.get_gpu_report()
    assert report["enabled"] is True
    assert report["available"] is False
    assert report["reason"], report
    stats = report["gpu_statistics"]
    assert stats["operations"] == 4
    assert stats["timing"] == "host"
    # 3 x 20 ms + 10 ms of host time, generous bounds
    assert 60.0 <= stats["total_time_ms"] < 5000
    assert stats["avg_time_ms"] == pytest.approx(stats["total_time_ms"] / 4)
    names = {op["context"] for op in report["operations"]}
    assert "model_inference" in names
    assert any(n.endswith("gpu_intensive_function") for n in names)
    # the guide's GPU report blocks index these keys
    assert isinstance(report["slow_gpu_operations"], list)
    mem = report["memory_statistics"]
    assert "total_memory_delta" in mem and "avg_memory_delta" in mem
    # the operations are in the call tree too, with their host time
    perf = p.get_comprehensive_report()["performance"]
    assert any(f["function"] == "model_inference" for f in perf["functions"])


def test_the_guides_gpu_report_blocks_run_as_written(capsys):
    p = _profiler()
    p.start_profiling()
    with p.gpu_profiler.cuda_context("model_inference"):
        sum(range(1000))
    p.stop_profiling()
    profiler = p
    # --- the guide, "GPU Report Analysis" and "CUDA Memory Profiling" ---
    gpu_report = profiler.gpu_profiler.get_gpu_report()
    stats = gpu_report['gpu_statistics']
    print(f"Total GPU time: {stats['total_time_ms']:.2f}ms")
    print(f"Average GPU time: {stats['avg_time_ms']:.2f}ms")
    for op in gpu_report['slow_gpu_operations']:
        print(f"Slow GPU operation: {op['context']} took {op['elapsed_time_ms']:.2f}ms")
    memory_stats = gpu_report['memory_statistics']
    print(f"Total memory delta: {memory_stats['total_memory_delta'] / 1024 / 1024:.1f}MB")
    print(f"Average memory delta: {memory_stats['avg_memory_delta'] / 1024 / 1024:.1f}MB")
    # --- "Slow GPU Operations" of identify_bottlenecks ---
    bottlenecks = profiler.identify_bottlenecks()
    for item in bottlenecks['slow_gpu_operations']:
        print(f"Slow GPU operation: {item}")
    out = capsys.readouterr().out
    assert "Total GPU time:" in out and "Average memory delta:" in out


def test_slow_operation_is_a_bottleneck_even_when_timed_on_the_host():
    p = _profiler(slow_gpu_operation_threshold_s=0.01)
    with p.gpu_profiler.cuda_context("slow_op"):
        time.sleep(0.05)
    with p.gpu_profiler.cuda_context("fast_op"):
        pass
    p.stop_profiling()
    report = p.gpu_profiler.get_gpu_report()
    slow = report["slow_gpu_operations"]
    assert [op["context"] for op in slow] == ["slow_op"]
    assert slow[0]["elapsed_time_ms"] >= 50.0
    items = p.identify_bottlenecks()["slow_gpu_operations"]
    assert len(items) == 1 and "slow_op" in json.dumps(items[0])


def test_nested_and_threaded_operations_are_each_their_own():
    import threading
    p = _profiler()
    p.start_profiling()

    def work(i):
        with p.gpu_profiler.cuda_context("outer"):
            with p.gpu_profiler.cuda_context("inner"):
                time.sleep(0.002)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    work(-1)
    p.stop_profiling()
    ops = {op["context"]: op for op in p.gpu_profiler.get_gpu_report()["operations"]}
    assert ops["outer"]["calls"] == 5 and ops["inner"]["calls"] == 5
    assert ops["outer"]["host_time_ms"] >= ops["inner"]["host_time_ms"]


def test_decorator_forms_and_errors():
    p = _profiler()

    @p.gpu_profiler.profile_cuda_operation(name="named_op")
    def f(x):
        """doc"""
        return x + 1

    def g():
        yield 1
        yield 2

    gg = p.gpu_profiler.profile_cuda_operation(g)
    assert f(1) == 2 and f.__doc__ == "doc" and f.__wrapped__ is not None
    assert list(gg()) == [1, 2]
    with pytest.raises(TypeError, match="expected a function"):
        p.gpu_profiler.profile_cuda_operation(42)
    with pytest.raises(TypeError, match="name must be a str"):
        p.gpu_profiler.cuda_context(3)
    p.stop_profiling()
    ops = {op["context"]: op for op in p.gpu_profiler.get_gpu_report()["operations"]}
    assert ops["named_op"]["calls"] == 1
    assert any(k.endswith(".g") and v["calls"] == 3 for k, v in ops.items())  # per resume


def test_disabled_profiler_records_nothing_and_says_so():
    p = VideoOpusClipProfiler(ProfilerConfig(enabled=False, enable_gpu_profiler=True))

    @p.gpu_profiler.profile_cuda_operation
    def f():
        return 3

    assert f() == 3
    with p.gpu_profiler.cuda_context("x"):
        pass
    with pytest.warns(RuntimeWarning, match="disabled"):
        r = p.gpu_profiler.get_gpu_report()
    assert r["recorded"] is False


def test_the_profiler_never_imports_torch_nor_initialises_cuda(tmp_path):
    import subprocess
    code = (
        "import sys\n"
        "from code_profiler import ProfilerConfig, VideoOpusClipProfiler\n"
        "p = VideoOpusClipProfiler(ProfilerConfig(enable_gpu_profiler=True,"
        " enable_cuda_profiling=True))\n"
        "p.start_profiling()\n"
        "with p.gpu_profiler.cuda_context('c'): pass\n"
        "p.stop_profiling(); p.gpu_profiler.get_gpu_report()\n"
        "assert 'torch' not in sys.modules, 'the profiler imported torch'\n"
        "import torch\n"
        "with p.gpu_profiler.cuda_context('d'): pass\n"
        "assert not torch.cuda.is_initialized(), 'the profiler initialised CUDA'\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "No module named 'torch'" in r.stderr:
        pytest.skip("torch is not installed for this Python")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


# -- the fallback for synchronization points --------------------------------

class _FakeTensor:
    def __init__(self, cuda):
        self.is_cuda = cuda

    def item(self):
        time.sleep(0.01)
        return 1.0

    def cpu(self):
        return _FakeTensor(False)

    def tolist(self):
        return [1.0]

    def to(self, device):
        return _FakeTensor(device != "cpu")


def _fake_torch():
    cuda = types.SimpleNamespace()
    cuda.synchronize = lambda: time.sleep(0.02)
    cuda.is_initialized = lambda: True
    return types.SimpleNamespace(cuda=cuda, Tensor=_FakeTensor, __file__="/nonexistent/torch/x.py")


def test_fallback_sync_wrappers_time_and_blame_the_calling_line():
    s = _core.Session(gpu=True, gpu_sync=True)
    s.start()
    torch = _fake_torch()
    orig_sync = torch.cuda.synchronize
    orig_item = _FakeTensor.item
    try:
        assert gpu_mod._SyncFallback.install(s, torch)
        assert torch.cuda.synchronize is not orig_sync
        torch.cuda.synchronize(); sync_line = sys._getframe().f_lineno  # noqa: E702
        t = _FakeTensor(True)
        for _ in range(3):
            t.item(); item_line = sys._getframe().f_lineno  # noqa: E702
        _FakeTensor(False).item()  # a CPU tensor does not block on the GPU: not recorded
        t.to("cuda")  # stays on the GPU: not recorded
        t.to("cpu"); to_line = sys._getframe().f_lineno  # noqa: E702
    finally:
        gpu_mod._SyncFallback.uninstall(s)
    assert torch.cuda.synchronize is orig_sync and _FakeTensor.item is orig_item
    s.stop()
    sync = s.model().report("gpu")["synchronization"]
    pts = {(p["line"], p["kind"]): p for p in sync["points"]}
    assert pts[(sync_line, "device")]["count"] == 1
    assert pts[(sync_line, "device")]["blocked_ms"] >= 20.0
    assert pts[(item_line, "memcpy")]["count"] == 3
    assert pts[(to_line, "memcpy")]["count"] == 1
    assert sum(p["count"] for p in sync["points"]) == 5
    assert all(p["file"] == __file__ for p in sync["points"])
    assert all(p["function"].endswith("test_fallback_sync_wrappers_time_and_blame_the_calling_line")
               for p in sync["points"])


def test_gpu_op_binding_rejects_bad_use():
    s = _core.Session(gpu=True)
    s.start()
    op = _core.GpuOp(s, s.site("x", None, 0, _core.SITE_GPU))
    with pytest.raises(RuntimeError, match="not begun"):
        op.end(-1, -1, -1)
    op.begin(0, -1, -1, -1)
    with pytest.raises(RuntimeError, match="already open"):
        op.begin(0, -1, -1, -1)
    op.end(-1, -1, -1)
    with pytest.raises(TypeError):
        op.begin(0)
    with pytest.raises(TypeError, match="initialised _core.Session"):
        _core.GpuOp(object(), 1)
    with pytest.raises(ValueError):
        _core.gpu_sync_record(s, 9, 0, 0, 1)
    s.stop()
    libs = _core.gpu_libraries()
    assert set(libs) == {"driver", "nvml", "cupti"}
    assert libs["driver"]["status"] in {"not_found", "ok", "too_old", "disabled", "not_tried",
                                        "no_context", "init_failed"}


def test_example_4_as_written_degrades_on_a_machine_without_cuda(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: bench/gpu_device_check.py runs Example 4 on it")
    profiler = VideoOpusClipProfiler(create_profiler_config("detailed"))
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())
    inputs = torch.randn(8, 64)

    # --- the guide's Example 4, as written ---
    @profiler.gpu_profiler.profile_cuda_operation
    def gpu_intensive_operation():
        with torch.cuda.amp.autocast():
            result = model(inputs)
        return result

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: "CUDA is not available, disabling autocast"
            result = gpu_intensive_operation()
        gpu_report = profiler.gpu_profiler.get_gpu_report()
        stats = gpu_report['gpu_statistics']
        print(f"GPU time: {stats['avg_time_ms']:.2f}ms")
        if stats['avg_time_ms'] > 100:
            print("Consider GPU optimization strategies")
        # --- end ---
    finally:
        # the decorated call made the session live ("detailed": with the
        # memory hooks); leave none running for the next tests
        profiler.stop_profiling()
    assert result.shape == (8, 64)
    assert stats["operations"] == 1 and stats["timing"] == "host"
    assert gpu_report["available"] is False and gpu_report["reason"]
    assert "GPU time:" in capsys.readouterr().out
