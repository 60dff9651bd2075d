"""Per-request directories: a failed or cancelled request's goes at once, a succeeded one's
after its outputs were kept long enough for Cog to read them, and nothing else is touched."""
from __future__ import annotations

import time

import pytest

from remixer.workdirs import RequestDirs


def test_failed_requests_lose_their_directory_at_once(tmp_path):
    dirs = RequestDirs(tmp_path, keep_s=60)
    workdir = dirs.create()
    (workdir / "remix.mp3").write_bytes(b"partial")
    assert workdir.parent == tmp_path and workdir.name.startswith("remixer-")
    dirs.discard(workdir)
    assert list(tmp_path.iterdir()) == []


def test_succeeded_outputs_stay_for_keep_s_then_go_at_the_next_request(tmp_path):
    dirs = RequestDirs(tmp_path, keep_s=0.3)
    first = dirs.create()
    (first / "remix.wav").write_bytes(b"RIFF")
    dirs.succeeded(first)
    second = dirs.create()  # too soon: the first one's output may not be read yet
    assert (first / "remix.wav").is_file()
    time.sleep(0.35)
    third = dirs.create()
    assert not first.exists()
    assert second.is_dir() and third.is_dir()  # still running: never removed by a sweep


def test_only_its_own_directories_are_removed(tmp_path):
    foreign = tmp_path / "remixer-someone-else"
    foreign.mkdir()
    dirs = RequestDirs(tmp_path, keep_s=0)
    dirs.succeeded(dirs.create())
    dirs.sweep()
    assert list(tmp_path.iterdir()) == [foreign]


def test_keep_s_must_be_a_duration():
    with pytest.raises(ValueError, match="keep_s"):
        RequestDirs(keep_s=-1)
