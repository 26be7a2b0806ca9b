"""How the facade drives the stack sampler through Session.set_sampling:
off while contexts and decorated functions record before start_profiling(),
on from start_profiling(), re-armed in a forked DataLoader worker.  The
session is wrapped in a proxy that records the calls, so these run without
the C sampler."""
from __future__ import annotations

from typing import Any, List

import pytest

from code_profiler import ProfilerConfig, create_profiler_config
from code_profiler import data as data_mod


class RecordingSession:
    """Delegates to the real _core.Session; records set_sampling(on) and
    start() in call order."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: List[Any] = []

    def set_sampling(self, on: bool) -> None:
        self.calls.append(("set_sampling", on))

    def start(self, **kw: Any) -> None:
        self.calls.append(("start", kw.get("trace_python")))
        self._real.start(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _proxied(make_profiler, config):
    p = make_profiler(config)
    proxy = RecordingSession(p._session)
    p._session = proxy
    return p, proxy


def test_contexts_before_start_keep_the_sampler_off_start_profiling_turns_it_on(make_profiler):
    p, proxy = _proxied(make_profiler, create_profiler_config("basic"))
    with p.profiling_context("early"):  # goes live without the whole-program instruments
        pass
    assert proxy.calls == [("set_sampling", False), ("start", False)]
    p.start_profiling()
    assert proxy.calls[2:] == [("set_sampling", True)]  # running already: no restart
    p.stop_profiling()
    assert not proxy.running


def test_start_profiling_turns_sampling_on_before_the_session_starts(make_profiler):
    p, proxy = _proxied(make_profiler, ProfilerConfig(profile_level="detailed", sampling=True,
                                                      sample_interval=0.01))
    p.start_profiling()
    assert proxy.calls == [("set_sampling", True), ("start", False)]
    p.stop_profiling()


def test_a_config_without_the_sampler_never_calls_set_sampling(make_profiler):
    p, proxy = _proxied(make_profiler, create_profiler_config("basic", sampling=False))
    with p.profiling_context("early"):
        pass
    p.start_profiling()
    p.stop_profiling()
    assert [c for c in proxy.calls if c[0] == "set_sampling"] == []


class FakeSession:
    def __init__(self) -> None:
        self.on: List[bool] = []

    def set_sampling(self, on: bool) -> None:
        self.on.append(on)


@pytest.mark.parametrize("interval,expected", [(0.01, [True]), (0.0, [])])
def test_forked_worker_rearms_the_sampler_when_the_config_samples(interval, expected):
    sess = FakeSession()
    data_mod._rearm_sampler(sess, {"sample_interval_s": interval})
    assert sess.on == expected


def test_rearm_is_a_no_op_without_set_sampling():
    data_mod._rearm_sampler(object(), {"sample_interval_s": 0.01})  # no AttributeError


def test_spawn_workers_get_the_sampling_kwargs(make_profiler):
    """A spawn/forkserver worker builds its session from the pickled
    session kwargs: they carry the sampler's settings."""
    p = make_profiler(create_profiler_config("basic", sample_interval=0.005, sample_clock="cpu"))
    kw = p.config.session_kwargs()
    assert kw["sample_interval_s"] == pytest.approx(0.005) and kw["sample_mode"] == 1
    ds = p.profile_dataset([1, 2, 3])
    state = ds.__getstate__()
    assert state["session_kwargs"]["sample_interval_s"] == pytest.approx(0.005)
    assert state["session_kwargs"]["sample_mode"] == 1
