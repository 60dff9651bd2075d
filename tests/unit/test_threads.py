"""CPU threads: the cores a process may use (affinity, cgroup quota) and what configure_threads sets."""
from __future__ import annotations

import os

import pytest
import torch
from threadpoolctl import threadpool_info

from remixer import threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads(), dict(os.environ)
    yield
    torch.set_num_threads(before[0])
    os.environ.clear()
    os.environ.update(before[1])


@pytest.mark.parametrize("cpu_max, expected", [("50000 100000\n", 1), ("150000 100000\n", 2),
                                               ("max 100000\n", None)])
def test_a_cgroup_v2_quota_caps_the_cores(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    quota = threads._cgroup_quota(tmp_path)
    assert (None if quota is None else -(-quota // 1)) == expected


def test_a_cgroup_v1_quota_is_read_too(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_quota(tmp_path) == 2.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads._cgroup_quota(tmp_path) is None


def test_available_cores_is_the_affinity_under_the_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.available_cores() == 2
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.available_cores() == 4


@pytest.mark.parametrize("value, message", [("0", "got '0'"), ("two", "got 'two'"), ("-1", "got '-1'")])
def test_a_bad_remixer_threads_is_named(monkeypatch, value, message):
    monkeypatch.setenv("REMIXER_THREADS", value)
    with pytest.raises(ValueError, match=f"REMIXER_THREADS must be a whole number of threads >= 1, {message}"):
        threads.threads_from_env()


def test_configure_sets_torch_and_blas_and_reports_what_they_say(restore_threads, monkeypatch):
    monkeypatch.delenv("REMIXER_THREADS", raising=False)
    settings = threads.configure_threads(1)
    assert (settings.threads, settings.source, settings.torch_intra_op, settings.blas) == (1, "asked for", 1, 1)
    assert torch.get_num_threads() == 1 and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
    monkeypatch.setenv("REMIXER_THREADS", "2")
    settings = threads.configure_threads()
    assert (settings.source, settings.torch_intra_op, torch.get_num_threads()) == ("REMIXER_THREADS", 2, 2)
    monkeypatch.delenv("REMIXER_THREADS")
    settings = threads.configure_threads()
    assert settings.source == "cores available" and settings.threads == threads.available_cores()
    # The suite imports remixer before torch (conftest), as the front-ends do: OpenMP waits passively.
    assert not threads.TORCH_BEFORE_REMIXER and settings.wait_policy == "PASSIVE"
    assert settings.torch_inter_op == torch.get_num_interop_threads()
