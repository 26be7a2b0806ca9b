"""profile_data_loader(loader) leaves the user's loader as it was:
``loader.dataset`` stays the user's object (an isinstance check on it
holds, before, during and after iteration), while item load times are
still recorded in the worker processes.  Regression test for issue 7
("profile_data_loader replaces the user's loader.dataset")."""
from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _data_fixtures import SleepyDataset  # noqa: E402

from code_profiler import ProfilerConfig, VideoOpusClipProfiler  # noqa: E402


@pytest.mark.parametrize("persistent", [False, True])
def test_loader_dataset_is_the_users_and_items_are_recorded(persistent):
    prof = VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", save_profiles=False))
    ds = SleepyDataset(n=24, item_s=0.001)
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=persistent)
    pl = prof.profile_data_loader(loader)
    assert loader.dataset is ds
    seen = []
    prof.start_profiling()
    try:
        for _epoch in range(2):
            for batch in pl:
                assert loader.dataset is ds and isinstance(loader.dataset, SleepyDataset)
                seen.extend(int(i) for i in batch[1])
    finally:
        prof.stop_profiling()
    assert loader.dataset is ds and isinstance(loader.dataset, SleepyDataset)
    assert sorted(seen) == sorted(list(range(24)) * 2)
    data = prof.data_loading_profiler.get_data_loading_report()
    assert sum(d["count"] for d in data["datasets"]) == 48
    workers = [w for w in data["workers"] if w.get("worker", -1) >= 0]
    assert {w["worker"] for w in workers} == {0, 1}
