"""The traced-call timeline store in the configuration: ProfilerConfig's
timeline_traced_events (validated like the other integer fields), the
profile level deciding whether traced calls go on the timeline, and
_core.Session's keywords checked by the C core with the field named."""
from __future__ import annotations

import pytest

from code_profiler import ProfilerConfig, _core, create_profiler_config


@pytest.mark.parametrize("level, traced", [("basic", False), ("detailed", True),
                                           ("comprehensive", True)])
def test_level_decides_traced_calls_on_the_timeline(level, traced):
    kw = ProfilerConfig(profile_level=level).session_kwargs()
    assert kw["timeline_traced"] is traced
    assert kw["timeline_traced_events"] == 1 << 18
    assert create_profiler_config(level).session_kwargs()["timeline_traced"] is traced
    _core.Session(**kw)  # the core accepts what the facade passes


def test_timeline_traced_events_bounds():
    assert ProfilerConfig(timeline_traced_events=0).timeline_traced_events == 0
    assert ProfilerConfig(timeline_traced_events=1 << 24).timeline_traced_events == 1 << 24
    with pytest.raises(ValueError, match=r"timeline_traced_events must be an int in \[0, 16777216\]"):
        ProfilerConfig(timeline_traced_events=(1 << 24) + 1)
    with pytest.raises(ValueError, match="timeline_traced_events"):
        ProfilerConfig(timeline_traced_events=-1)
    with pytest.raises(TypeError, match="timeline_traced_events"):
        ProfilerConfig(timeline_traced_events=2.0)
    with pytest.raises(TypeError, match="timeline_traced_events"):
        ProfilerConfig(timeline_traced_events=True)


def test_core_session_checks_the_field():
    _core.Session(timeline_traced=True, timeline_traced_events=0)
    with pytest.raises(ValueError, match="timeline_traced_events"):
        _core.Session(timeline_traced=True, timeline_traced_events=(1 << 24) + 1)
    with pytest.raises((ValueError, OverflowError), match="timeline_traced_events"):
        _core.Session(timeline_traced_events=-1)
