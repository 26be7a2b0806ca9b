"""The bounded report (schema v2) and the views that read the model.

- the views (get_comprehensive_report, identify_bottlenecks,
  get_profile_stats, get_data_loading_report, dataset and loader get_stats)
  call none of the JSON machinery: they are built from the C model;
- the model's dict equals json.loads of the JSON report, section by
  section, on a real profile;
- the model is reused until new data arrives, and a view after new records
  sees them;
- the report is bounded by the report policy with exact counts and times
  (checked with exact decimal arithmetic), and the guide's Example 1
  prints a small document.
"""
from __future__ import annotations

import json
import os
import struct
import threading
from decimal import Decimal
from typing import Any, Dict, Iterator, List

import pytest

from code_profiler import ProfilerConfig, VideoOpusClipProfiler, _core, create_profiler_config

SECTIONS = ["meta", "config", "report_policy", "performance", "data_loading", "memory",
            "sampling", "lines", "gpu", "findings", "bottlenecks"]


class ItemsDataset:
    """A map-style dataset without torch: item i is i squared."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return sum(range(200)) + i * i


class ListLoader:
    """An iterable that yields batches of a dataset (a DataLoader stand-in)."""

    def __init__(self, dataset: Any, batch_size: int) -> None:
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[List[int]]:
        for start in range(0, len(self.dataset), self.batch_size):
            yield [self.dataset[i] for i in range(start, min(start + self.batch_size,
                                                              len(self.dataset)))]

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size


def _work(n: int) -> int:
    return sum(i * i for i in range(n))


def _profiled_run(make_profiler, **cfg: Any):
    prof = make_profiler(ProfilerConfig(enable_cprofile=True, save_profiles=False, **cfg))
    ds = prof.profile_dataset(ItemsDataset(40))
    loader = prof.profile_data_loader(ListLoader(ds, 8))
    prof.start_profiling()
    with prof.profiling_context("epoch"):
        for batch in loader:
            _work(500 + len(batch))
    t = threading.Thread(target=_work, args=(3000,))
    t.start()
    t.join()
    prof.stop_profiling()
    return prof, ds, loader


class JsonSpy:
    """Counts calls of the json module's parsing and rendering entry points."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: List[str] = []
        for owner, name in [(json, "loads"), (json, "load"), (json, "dumps"), (json, "dump"),
                            (json.JSONDecoder, "decode"), (json.JSONDecoder, "raw_decode"),
                            (json.JSONEncoder, "encode"), (json.JSONEncoder, "iterencode")]:
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name), name))

    def _wrap(self, fn: Any, name: str) -> Any:
        def spy(*a: Any, **k: Any) -> Any:
            self.calls.append(name)
            return fn(*a, **k)
        return spy


def test_views_use_no_json(make_profiler, monkeypatch):
    prof, ds, loader = _profiled_run(make_profiler)
    spy = JsonSpy(monkeypatch)
    report = prof.get_comprehensive_report()
    bottlenecks = prof.identify_bottlenecks()
    stats = prof.performance_profiler.get_profile_stats()
    data = prof.data_loading_profiler.get_data_loading_report()
    ds_stats = ds.get_stats()
    loader_stats = loader.get_stats()
    assert spy.calls == []
    # and they hold what the run recorded
    assert report["schema_version"] == 4
    assert set(bottlenecks) >= {"slow_functions", "recommendations"}
    assert stats["total_calls"] == report["performance"]["total_calls"] > 0
    assert data["datasets"][0]["count"] == 40
    assert ds_stats["count"] == 40
    assert loader_stats["batches"] == 5


def test_model_dict_equals_the_json_report(make_profiler):
    prof, _, _ = _profiled_run(make_profiler)
    session = prof._session
    model = session.model()
    doc = model.report()
    parsed = json.loads(session.report_json())
    assert doc == parsed
    assert list(doc) == ["schema", "schema_version", "generator"] + SECTIONS
    for section in SECTIONS:
        assert model.report(section) == parsed[section], section
    # and the same types where JSON can tell them apart
    assert isinstance(doc["meta"]["python_traced"], bool)
    assert isinstance(doc["meta"]["tree_nodes"], int)
    with pytest.raises(ValueError, match="section"):
        model.report("nope")


def test_model_is_reused_until_new_data_arrives(make_profiler):
    prof, ds, _ = _profiled_run(make_profiler)
    session = prof._session
    built0, reused0 = session.model_counts()
    prof.get_comprehensive_report()
    prof.identify_bottlenecks()
    prof.performance_profiler.get_profile_stats()
    ds.get_stats()
    built1, reused1 = session.model_counts()
    assert built1 - built0 <= 1  # one model for four views
    assert reused1 - reused0 >= 3

    # new records after the views: the next view sees them
    prof.start_profiling()
    with prof.profiling_context("after_first_views"):
        ds[3]
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    names = [f["function"] for f in report["performance"]["functions"]]
    assert any(n.endswith("after_first_views") for n in names)
    assert ds.get_stats()["count"] == 41
    assert session.model_counts()[0] == built1 + 1

    # reset: the next view is empty again
    prof.reset() if hasattr(prof, "reset") else session.reset()
    assert prof.get_comprehensive_report()["performance"]["total_calls"] == 0


def test_model_in_use_outlives_a_rebuild():
    session = _core.Session()
    site = session.site("first")
    session.start()
    session.enter(site)
    session.exit(site)
    session.stop()
    old = session.model()
    session.start()
    second = session.site("second")
    session.enter(second)
    session.exit(second)
    session.stop()
    new = session.model()
    assert old is not new
    old_names = [f["function"] for f in old.report("performance")["functions"]]
    new_names = [f["function"] for f in new.report("performance")["functions"]]
    assert old_names == ["first"]
    assert sorted(new_names) == ["first", "second"]
    del session  # the models stay valid after their session is gone
    assert old.report("performance")["total_calls"] == 1
    assert new.report("performance")["total_calls"] == 2


def test_an_open_worker_spool_is_never_trusted(tmp_path):
    """A live worker writes its records through shared mappings, which need
    not change the file's size or times: while a spool in the session's
    directory is not closed, every report builds a new model."""
    session = _core.Session()
    session.set_spool_dir(str(tmp_path))
    session.model()
    session.model()
    assert session.model_counts() == (1, 1)
    # a spool header (cp_spool_header) that is not closed
    header = b"CPSPOOL1" + struct.pack("<IiiIQIiIIQQ", 2, 999999, 0, 0, 0, 4096, 0, 0, 0, 0, 0)
    (tmp_path / "999999.cpspool").write_bytes(header.ljust(4096, b"\0"))
    session.model()
    session.model()
    assert session.model_counts() == (3, 1)


def _exact_tree_checks(report: Dict[str, Any]) -> int:
    """Checks every written node with decimal arithmetic: self + children
    == inclusive (to the model's ns rounding), a thread's inclusive time is
    its top-level nodes' exactly; returns the nodes the tree accounts for."""
    accounted = 0

    def walk(node: Dict[str, Any]) -> None:
        nonlocal accounted
        if "other" in node:
            assert node["self_s"] == node["inclusive_s"]
            accounted += node["other"]
            return
        accounted += 1
        kids = node.get("children", [])
        if "elided_nodes" in node:
            accounted += node["elided_nodes"]
            return
        # exact in the model's ticks; each time is rounded to the ns on its
        # own when the model is built (tests/c/test_tree_prune.c checks that
        # the report adds nothing to that)
        diff = node["self_s"] + sum((k["inclusive_s"] for k in kids), Decimal(0)) - \
            node["inclusive_s"]
        assert abs(diff) <= Decimal(sum(k.get("other", 1) for k in kids) + 1) / 10**9
        for k in kids:
            walk(k)

    total = Decimal(0)
    for thread in report["performance"]["call_tree"]:
        kids = thread.get("children", [])
        assert sum((k["inclusive_s"] for k in kids), Decimal(0)) == thread["inclusive_s"]
        total += thread["inclusive_s"]
        for k in kids:
            walk(k)
    return accounted


def test_a_big_profile_is_bounded_with_exact_counts():
    """40k distinct call-tree nodes (session-local names, three levels): the
    report keeps the policy's bound, and counts and times stay exact."""
    session = _core.Session(max_nodes=1 << 20)
    sites = [session.site(f"node_{i}") for i in range(200)]
    session.start()
    calls = 0
    for a in range(4):
        session.enter(sites[a])
        for b in range(50):
            session.enter(sites[b])
            for c in range(200):
                session.enter(sites[c])
                session.exit(sites[c])
                calls += 1
            session.exit(sites[b])
            calls += 1
        session.exit(sites[a])
        calls += 1
    session.stop()
    text = session.report_json()
    assert len(text) < 1_000_000
    report = json.loads(text, parse_float=Decimal)
    meta, perf = report["meta"], report["performance"]
    assert meta["tree_nodes"] == 4 + 4 * 50 + 4 * 50 * 200
    assert perf["total_calls"] == calls
    assert perf["total_functions_profiled"] == 200
    assert len(perf["functions"]) + perf["functions_omitted"] == 200
    assert len(perf["functions"]) <= 100
    assert _exact_tree_checks(report) == meta["tree_nodes"]
    written = sum(1 for _ in _iter_nodes(report))
    assert written == meta["tree_nodes_written"]
    assert written <= 2 * report["report_policy"]["tree_max_nodes"] + meta["threads"]
    # every site index and file index resolves
    for node in _iter_nodes(report):
        if "site" in node:
            site = perf["sites"][node["site"]]
            assert site["file"] is None or 0 <= site["file"] < len(perf["files"])


def _iter_nodes(report: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    stack = [k for t in report["performance"]["call_tree"] for k in t.get("children", [])]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.get("children", []))


def test_policy_from_profiler_config(make_profiler):
    prof = make_profiler(ProfilerConfig(save_profiles=False, report_top_functions=3,
                                        report_tree_max_nodes=5, report_tree_min_share=0.0))
    prof.start_profiling()
    for i in range(10):
        with prof.profiling_context(f"ctx_{i}"):
            _work(100 * (i + 1))
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    assert report["report_policy"] == {"top_functions": 3, "tree_min_share": 0.0,
                                       "tree_max_nodes": 5, "tree_max_depth": 256}
    assert report["performance"]["total_functions_profiled"] == 10
    assert len(report["performance"]["functions"]) <= 6
    written = [n for n in _iter_nodes(report) if "site" in n]
    assert len(written) == 5
    with pytest.raises(ValueError, match="report_tree_min_share"):
        ProfilerConfig(report_tree_min_share=1.5)


def test_guide_example_1_prints_a_small_report(make_profiler, capsys):
    """Example 1 of the guide: profile a training loop under the "basic"
    config and print json.dumps(report, indent=2)."""
    config = create_profiler_config("basic")
    config.save_profiles = False
    profiler = make_profiler(config)
    profiler.start_profiling()

    def model(batch: List[int]) -> int:
        return sum(x * x for x in batch)

    train_loader = [list(range(i, i + 64)) for i in range(200)]

    @profiler.profile_function
    def training_epoch() -> None:
        for batch in train_loader:
            loss = model(batch)
            str(loss)

    for epoch in range(5):
        training_epoch()
    profiler.stop_profiling()
    report = profiler.get_comprehensive_report()
    profiler.identify_bottlenecks()
    print("Profiling Results:")
    print(json.dumps(report, indent=2))
    out = capsys.readouterr().out
    assert len(out) < 1_000_000
    assert '"total_functions_profiled"' in out


def test_views_from_threads_and_a_fork_child():
    """Concurrent views share one model safely; a fork child builds its own
    (the parent's cache, and its lock, are never used there)."""
    session = _core.Session()
    site = session.site("shared")
    session.start()
    for _ in range(100):
        session.enter(site)
        session.exit(site)
    session.stop()
    errors: List[BaseException] = []

    def views() -> None:
        try:
            for _ in range(20):
                assert session.model().report("performance")["total_calls"] == 100
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=views) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    built, reused = session.model_counts()
    assert built == 1 and reused == 79

    pid = os.fork()
    if pid == 0:  # child: exits with 0 only if its own model is right
        code = 1
        try:
            session.start()
            session.enter(site)
            session.exit(site)
            session.stop()
            perf = session.model().report("performance")
            code = 0 if perf["total_calls"] == 1 and session.model_counts()[0] == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert session.model().report("performance")["total_calls"] == 100
