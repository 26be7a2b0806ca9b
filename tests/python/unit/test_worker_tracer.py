"""The Python tracer in DataLoader workers (issue 6, "Workers run the tracer").

With enable_cprofile=True in the parent the tracer is off in the workers
unless ProfilerConfig.profile_workers_tracer asks for it: a forked worker
drops the tracer it inherited before its first item is timed, a spawn or
forkserver worker never starts one.  The check is not a timing: each item
reports whether the tracer's hook records the worker's thread.
"""
from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _tracer_worker_data import TracerProbeDataset  # noqa: E402

from code_profiler import ProfilerConfig, VideoOpusClipProfiler, _core  # noqa: E402


def _items(method: str, workers_tracer: bool):
    prof = VideoOpusClipProfiler(ProfilerConfig(enable_cprofile=True, save_profiles=False,
                                                profile_workers_tracer=workers_tracer))
    ds = prof.profile_dataset(TracerProbeDataset(n=16))
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context=method,
                        timeout=120)  # a hung worker fails the test instead of blocking it
    rows = []
    prof.start_profiling()
    try:
        assert _core.tracer_on_this_thread()  # the parent traces
        for batch in loader:
            rows.extend(batch.tolist())
    finally:
        prof.stop_profiling()
    assert sorted(r[0] for r in rows) == list(range(16))
    assert all(r[1] != os.getpid() for r in rows)  # loaded in the workers
    assert len({r[1] for r in rows}) == 2
    return rows


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_tracer_is_off_in_workers_by_default(method):
    rows = _items(method, workers_tracer=False)
    assert [r[2] for r in rows] == [0] * 16


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_trace_when_asked(method):
    rows = _items(method, workers_tracer=True)
    assert [r[2] for r in rows] == [1] * 16


def test_config_field_is_a_checked_bool():
    assert ProfilerConfig().profile_workers_tracer is False
    with pytest.raises(TypeError, match="profile_workers_tracer"):
        ProfilerConfig(profile_workers_tracer=1)
