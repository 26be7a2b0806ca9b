"""Worker spools belong to a profiler session: ``reset()`` discards them,
freeing the profiler or leaving the process removes the spool directory,
directories of main processes that were killed are removed by the next
profiler, a full filesystem under the spool directory is reported (never a
dead worker), and temporary report files of killed saves are cleaned up."""
from __future__ import annotations

import gc
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from code_profiler import ProfilerConfig, VideoOpusClipProfiler
from code_profiler.data import remove_stale_spool_dirs


def _profiler() -> VideoOpusClipProfiler:
    return VideoOpusClipProfiler(ProfilerConfig(profile_level="detailed", save_profiles=False))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def spool_base(tmp_path, monkeypatch):
    base = tmp_path / "spools"
    base.mkdir()
    monkeypatch.setenv("CODEPROF_SPOOL_BASE", str(base))
    return base


def test_spool_dir_named_with_pid_and_removed_when_profiler_freed(spool_base):
    prof = _profiler()
    path = prof.data_loading_profiler.spool_dir()
    assert os.path.isdir(path)
    assert os.path.basename(path).startswith(f"codeprof-spool-{os.getpid()}-")
    assert os.path.dirname(path) == str(spool_base)
    del prof
    gc.collect()
    assert not os.path.exists(path)


_EXIT_SCRIPT = textwrap.dedent(r"""
    import os, signal, sys
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler
    prof = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))
    path = prof.data_loading_profiler.spool_dir()
    open(os.path.join(path, "123.cpspool"), "wb").close()
    print(path, flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_spool_dir_removed_at_exit_and_stale_dirs_of_killed_parents(spool_base):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, "exit"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    clean = out.stdout.strip().splitlines()[-1]
    assert not os.path.exists(clean)  # a normal exit removes it
    out = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, "kill"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == -signal.SIGKILL
    stale = out.stdout.strip().splitlines()[-1]
    assert os.path.isdir(stale)  # killed: nothing could run
    # a directory of a live process (our parent) is never touched
    live = spool_base / f"codeprof-spool-{os.getppid()}-keepme"
    live.mkdir()
    unrelated = spool_base / "codeprof-spool-notapid"
    unrelated.mkdir()
    prof = _profiler()
    mine = prof.data_loading_profiler.spool_dir()  # the next start cleans up
    assert not os.path.exists(stale)
    assert live.is_dir() and unrelated.is_dir() and os.path.isdir(mine)
    assert remove_stale_spool_dirs(str(spool_base)) == []


def test_stale_symlink_is_not_followed(spool_base, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    os.symlink(victim, spool_base / f"codeprof-spool-{_dead_pid()}-link")
    remove_stale_spool_dirs(str(spool_base))
    assert (victim / "keep").exists()


def test_reset_discards_worker_spools(spool_base):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader
    sys.path.insert(0, os.path.dirname(__file__))
    from _data_fixtures import SleepyDataset

    prof = _profiler()
    loader = DataLoader(SleepyDataset(n=16, item_s=0.0), batch_size=4, num_workers=2,
                        multiprocessing_context="fork")
    pl = prof.profile_data_loader(loader)
    prof.start_profiling()
    for _ in pl:
        pass
    prof.stop_profiling()
    dl = prof.get_comprehensive_report()["data_loading"]
    assert dl["datasets"][0]["count"] == 16
    spool = prof.data_loading_profiler.spool_dir()
    assert glob.glob(os.path.join(spool, "*.cpspool"))
    prof.reset()
    assert not glob.glob(os.path.join(spool, "*.cpspool"))
    dl = prof.get_comprehensive_report()["data_loading"]
    assert sum(d["count"] for d in dl.get("datasets", [])) == 0  # re-read them before
    assert not [w for w in dl.get("workers", []) if w["worker"] >= 0]
    loader2 = DataLoader(SleepyDataset(n=8, item_s=0.0), batch_size=4, num_workers=2,
                         multiprocessing_context="fork")
    pl2 = prof.profile_data_loader(loader2)
    prof.start_profiling()
    for _ in pl2:
        pass
    prof.stop_profiling()
    dl = prof.get_comprehensive_report()["data_loading"]
    assert dl["datasets"][0]["count"] == 8
    del torch


_TMPFS_SCRIPT = textwrap.dedent(r"""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from torch.utils.data import DataLoader
    from _data_fixtures import SleepyDataset
    from code_profiler import ProfilerConfig, VideoOpusClipProfiler
    prof = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))
    # 4000 items x 64 bytes does not fit a 64 KiB filesystem
    pl = prof.profile_data_loader(DataLoader(SleepyDataset(n=4000, item_s=0.0), batch_size=100,
                                             num_workers=1, multiprocessing_context="fork"))
    prof.start_profiling()
    n = 0
    for _ in pl:
        n += 1
    prof.stop_profiling()
    report = prof.get_comprehensive_report()
    print(json.dumps({"batches": n, "data": report["data_loading"]}), flush=True)
""")


def test_full_spool_filesystem_keeps_worker_alive_and_reports_why(tmp_path):
    pytest.importorskip("torch")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        env = dict(os.environ, CODEPROF_SPOOL_BASE=str(mnt))
        out = subprocess.run([sys.executable, "-c", _TMPFS_SCRIPT, os.path.dirname(__file__)],
                             capture_output=True, text=True, timeout=300, env=env)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["batches"] == 40  # the worker survived: every batch arrived
    workers = [w for w in res["data"]["workers"] if w["worker"] >= 0]
    assert len(workers) == 1
    w = workers[0]
    assert w["incomplete"] is True
    assert w["spool_errno"] == 28  # ENOSPC
    assert "No space left on device" in w["incomplete_reason"]
    assert 0 < w["items"] < 4000
    assert w["items"] + w["spool_dropped_records"] == 4000


def test_save_removes_temp_files_of_killed_saves(tmp_path):
    prof = _profiler()
    with prof.profiling_context("x"):
        pass
    target = tmp_path / "report.json"
    dead = _dead_pid()
    stale = [tmp_path / f"report.json.tmp.{dead}", tmp_path / f"report.json.tmp.{dead}.7"]
    for p in stale:
        p.write_text("{partial")
    live = tmp_path / f"report.json.tmp.{os.getppid()}"
    live.write_text("{in progress")
    assert prof.save_comprehensive_report(str(target)) == str(target)
    assert json.loads(target.read_text())
    assert not any(p.exists() for p in stale)
    assert live.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["report.json", live.name])
