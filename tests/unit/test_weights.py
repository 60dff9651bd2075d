"""Weights manager: manifest, downloads against a real loopback HTTP server, offline mode, CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.http_server import PayloadServer
from remixer import weights
from remixer.weights import (ChecksumError, DownloadError, Manifest, MissingWeightsError,
                             UnknownWeightError, WeightsStore, WeightState)
from remixer.weights import store as weights_store
from remixer.weights.__main__ import main

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def entry(name: str, urls: list[str], payload: bytes = PAYLOAD, **extra: object) -> dict:
    data = {"name": name, "path": f"sub/{name}.bin", "urls": urls, "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(), "license": "MIT", "description": "test file"}
    data.update(extra)
    return data


def write_manifest(tmp_path: Path, files: list[dict], groups: dict | None = None) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"files": files, "groups": groups or {}}))
    return path


def make_store(tmp_path: Path, files: list[dict], **options: object) -> WeightsStore:
    manifest = Manifest.load(write_manifest(tmp_path, files))
    options = {"offline": False, "retries": 2, "backoff_s": 0.01, "timeout_s": 5.0, **options}
    return WeightsStore(tmp_path / "cache", manifest=manifest, **options)


def leftovers(store: WeightsStore) -> list[str]:
    return sorted(p.name for p in store.root.rglob("*.part"))


@pytest.fixture
def server():
    with PayloadServer() as srv:
        yield srv


# -- downloads ------------------------------------------------------------------------------------


def test_fetch_checks_sha256_and_renames_into_place(server, tmp_path):
    store = make_store(tmp_path, [entry("a", [server.add("/a", PAYLOAD)])])
    path = store.fetch("a")
    assert path == tmp_path / "cache" / "sub" / "a.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(store) == []
    assert json.loads(Path(str(path) + ".verified").read_text())["sha256"] == SHA
    assert server.requests_for("/a")[0].range is None
    assert store.fetch("a") == path and len(server.requests_for("/a")) == 1  # present: no download


def test_404_fails_at_once_naming_the_url(server, tmp_path):
    url = server.add("/gone", PAYLOAD, status=404)
    store = make_store(tmp_path, [entry("gone", [url])])
    with pytest.raises(DownloadError, match=re.escape(url) + ".*HTTP 404"):
        store.fetch("gone")
    assert len(server.requests_for("/gone")) == 1
    assert not store.target("gone").exists() and leftovers(store) == []


def test_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    store = make_store(tmp_path, [entry("big", [server.add("/big", PAYLOAD, drop_after=100_000)])])
    assert store.fetch("big").read_bytes() == PAYLOAD
    first, second = server.requests_for("/big")
    assert first.range is None and second.range == "bytes=100000-"
    assert leftovers(store) == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD, ignore_range=True)])])
    part = Path(str(store.target("f")) + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 50_000)  # garbage: keeping it would fail the checksum
    assert store.fetch("f").read_bytes() == PAYLOAD
    assert [r.range for r in server.requests_for("/f")] == ["bytes=50000-"]


def test_complete_part_is_finished_when_server_answers_416(server, tmp_path):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD)])])
    part = Path(str(store.target("f")) + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    assert store.fetch("f").read_bytes() == PAYLOAD
    assert [r.range for r in server.requests_for("/f")] == [f"bytes={len(PAYLOAD)}-"]


def test_5xx_is_retried_with_exponential_backoff(server, tmp_path, monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(weights_store.time, "sleep", delays.append)
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD, fail_first=2)])], backoff_s=0.5)
    assert store.fetch("f").read_bytes() == PAYLOAD
    assert len(server.requests_for("/f")) == 3
    assert delays == [0.5, 1.0]


def test_retries_are_bounded(server, tmp_path, monkeypatch):
    monkeypatch.setattr(weights_store.time, "sleep", lambda s: None)
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD, fail_first=99)])], retries=2)
    with pytest.raises(DownloadError, match="HTTP 503.*gave up after 3 failed attempts"):
        store.fetch("f")
    assert len(server.requests_for("/f")) == 3


def test_wrong_checksum_removes_the_download(server, tmp_path):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD, corrupt=True)])])
    actual = hashlib.sha256(bytes([PAYLOAD[0] ^ 0xFF]) + PAYLOAD[1:]).hexdigest()
    with pytest.raises(DownloadError, match=f"sha256 mismatch: expected {SHA}, got {actual}"):
        store.fetch("f")
    assert not store.target("f").exists() and leftovers(store) == []


@pytest.mark.parametrize("fault", [{"status": 404}, {"corrupt": True}])
def test_next_mirror_is_used_when_one_fails(server, tmp_path, fault):
    urls = [server.add("/bad", PAYLOAD, **fault), server.add("/good", PAYLOAD)]
    store = make_store(tmp_path, [entry("f", urls)])
    assert store.fetch("f").read_bytes() == PAYLOAD
    assert [r.path for r in server.requests] == ["/bad", "/good"]


def test_git_blob_and_sha256_prefix_digests(server, tmp_path):
    blob_file = tmp_path / "blob.bin"
    blob_file.write_bytes(PAYLOAD)
    git_blob = subprocess.run(["git", "hash-object", str(blob_file)], capture_output=True, text=True,
                              check=True).stdout.strip()
    url = server.add("/f", PAYLOAD)
    good = [entry("blob", [url], size=None, sha256=None, git_blob_sha1=git_blob),
            entry("prefix", [url], size=None, sha256=None, sha256_prefix=SHA[:8])]
    store = make_store(tmp_path, good)
    assert store.fetch("blob").read_bytes() == PAYLOAD
    assert store.fetch("prefix").read_bytes() == PAYLOAD
    (tmp_path / "bad").mkdir()
    bad = make_store(tmp_path / "bad", [entry("blob", [url], sha256=None, git_blob_sha1="0" * 40)])
    with pytest.raises(DownloadError, match=f"git blob sha1 mismatch: expected {'0' * 40}, got {git_blob}"):
        bad.fetch("blob")


def test_progress_is_logged_without_a_terminal(server, tmp_path, caplog):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD, drop_after=100_000)])])
    with caplog.at_level("INFO", logger="remixer.weights"):
        store.fetch("f")
    messages = [r.getMessage() for r in caplog.records]
    assert any("connection closed after 100000 of 300000 bytes; retrying" in m for m in messages)
    assert any(m.startswith("f: 100% (") for m in messages)


def test_status_reports_partial_corrupt_and_verified_files(server, tmp_path):
    files = [entry("a", [server.add("/a", PAYLOAD, drop_after=1000)]), entry("b", [server.add("/b", PAYLOAD)]),
             entry("c", ["http://127.0.0.1:9/c"]), entry("d", ["http://127.0.0.1:9/d"])]
    store = make_store(tmp_path, files, retries=0)
    with pytest.raises(DownloadError, match="gave up after 1 failed attempts"):
        store.fetch("a")  # the interrupted download stays for the next attempt to resume
    store.fetch("b")
    store.target("c").write_bytes(b"short")
    states = {row.spec.name: (row.state, row.size_on_disk) for row in store.status()}
    assert states == {"a": (WeightState.PARTIAL, 1000), "b": (WeightState.VERIFIED, len(PAYLOAD)),
                      "c": (WeightState.CORRUPT, 5), "d": (WeightState.MISSING, None)}


# -- cache, markers, offline ----------------------------------------------------------------------


def test_marker_spares_rehashing_until_the_file_changes(server, tmp_path, monkeypatch):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD)])])
    path = store.fetch("f")
    calls: list[Path] = []
    real = weights_store.file_digests
    monkeypatch.setattr(weights_store, "file_digests", lambda p, **kw: calls.append(Path(p)) or real(p, **kw))
    fresh = WeightsStore(store.root, manifest=store.manifest, offline=True)
    assert fresh.path("f") == path and calls == []
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert fresh.path("f") == path and calls == [path]
    assert WeightsStore(store.root, manifest=store.manifest, offline=True).path("f") == path
    assert calls == [path]
    assert fresh.verify("f") and calls == [path, path]  # verify always re-hashes


def test_offline_missing_file_names_it_and_the_fix_without_network(server, tmp_path, monkeypatch):
    url = server.add("/f", PAYLOAD)
    store = make_store(tmp_path, [entry("f", [url])], offline=True)
    monkeypatch.setattr(weights_store.urllib.request, "urlopen", pytest.fail)
    with pytest.raises(MissingWeightsError) as info:
        store.path("f")
    message = str(info.value).splitlines()
    assert message[0] == (f"1 weight file(s) needed here are missing from {store.root}: offline mode is on "
                          f"(REMIXER_OFFLINE / HF_HUB_OFFLINE), so nothing was downloaded.")
    assert message[1].split() == ["f", "300.0", "kB", url]
    assert message[2:4] == ["  total: 300.0 kB in 1 file(s)", "Fetch it where the hosts are reachable with:"]
    assert message[4] == f"  python -m remixer.weights fetch f --dir {store.root}"
    assert server.requests == [] and not store.root.exists()


def _sized(name: str, **size: object) -> dict:
    data = entry(name, [f"http://127.0.0.1:9/{name}"])
    for key in ("size", "sha256"):
        data.pop(key)
    return {**data, **size}


def test_offline_request_lists_every_missing_file_with_sizes_total_and_one_command(tmp_path):
    files = [_sized("lm"), _sized("codec", size=2_000_000), _sized("fold0", size=1_400_571),
             _sized("fold1", approx_size=1_400_000), entry("present", ["http://127.0.0.1:9/p"])]
    path = write_manifest(tmp_path, files, {"model": {"files": ["lm", "codec"]},
                                            "folds": {"files": ["fold0", "fold1"]}})
    store = WeightsStore(tmp_path / "cache", manifest=Manifest.load(path), offline=True)
    store.target("present").parent.mkdir(parents=True)
    store.target("present").write_bytes(PAYLOAD)
    with pytest.raises(MissingWeightsError) as info:
        store.require(["model", "present"], optional=["folds"])
    lines = str(info.value).splitlines()
    assert lines[0].startswith("2 weight file(s) needed here are missing")
    assert [line.split()[:3] for line in lines[1:5]] == [
        ["lm", "unknown", "http://127.0.0.1:9/lm"], ["codec", "2.0", "MB"], ["fold0", "1.4", "MB"],
        ["fold1", "~1.4", "MB"]]
    assert "optional" in lines[3] and "optional" in lines[4] and "optional" not in lines[2]
    assert lines[5] == "  total: 2.0 MB in 1 file(s) + 1 file(s) of unknown size; optional: ~2.8 MB in 2 file(s)"
    # One command for the lot: whole groups by their names.
    assert lines[7] == f"  python -m remixer.weights fetch model folds --dir {store.root}"
    assert store.require(["present"]) == [store.target("present")]


def test_a_host_that_does_not_resolve_fails_every_file_at_once_without_retries(tmp_path, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(weights_store.time, "sleep", slept.append)
    files = [entry(name, [f"https://no-such-host.invalid/{name}"]) for name in ("a", "b", "c")]
    store = make_store(tmp_path, files, retries=4)
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        store.require(["a", "b", "c"])
    assert time.monotonic() - start < 10 and slept == []
    message = str(info.value)
    assert message.startswith("3 weight file(s) needed here are missing")
    assert "no-such-host.invalid: cannot resolve the host name" in message
    assert f"python -m remixer.weights fetch a b c --dir {store.root}" in message
    assert info.value.unreachable_hosts == {"no-such-host.invalid"}


def test_a_refused_connection_is_not_retried_but_a_5xx_is(server, tmp_path, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(weights_store.time, "sleep", slept.append)
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/f"
    store = make_store(tmp_path, [entry("f", [refused, server.add("/f", PAYLOAD, fail_first=1)])], retries=3)
    assert store.fetch("f").read_bytes() == PAYLOAD
    assert slept == [0.01]  # one retry, for the 503 of the mirror; none for the refusal


def test_offline_and_cache_dir_come_from_the_environment(tmp_path, monkeypatch):
    manifest = Manifest.load(write_manifest(tmp_path, [entry("f", ["http://127.0.0.1:9/f"])]))
    monkeypatch.setenv("REMIXER_WEIGHTS_DIR", str(tmp_path / "env-cache"))
    monkeypatch.delenv("REMIXER_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = WeightsStore(manifest=manifest)
    assert store.offline and store.root == tmp_path / "env-cache"
    monkeypatch.setenv("REMIXER_OFFLINE", "0")
    assert not WeightsStore(manifest=manifest).offline
    monkeypatch.setenv("REMIXER_OFFLINE", "1")
    assert WeightsStore(manifest=manifest, offline=False).offline is False


def test_corrupt_cached_file_offline_is_an_error_online_is_replaced(server, tmp_path):
    store = make_store(tmp_path, [entry("f", [server.add("/f", PAYLOAD)])], offline=True)
    target = store.target("f")
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(len(PAYLOAD)))
    zeros_sha = hashlib.sha256(bytes(len(PAYLOAD))).hexdigest()
    with pytest.raises(ChecksumError, match=f"expected {SHA}, got {zeros_sha}"):
        store.path("f")
    online = WeightsStore(store.root, manifest=store.manifest, offline=False, retries=0)
    assert online.path("f").read_bytes() == PAYLOAD


def _fetch_in_child(root: str, manifest: str, barrier, results) -> None:
    store = WeightsStore(root, manifest=Manifest.load(manifest), offline=False, retries=0)
    barrier.wait()
    start = time.monotonic()
    path = store.fetch("f")
    results.put((str(path), start, time.monotonic()))


def test_two_processes_fetching_one_file_download_it_once(server, tmp_path):
    url = server.add("/f", PAYLOAD, delay_s=0.03)  # ~0.6 s of transfer: the two fetches overlap
    manifest = write_manifest(tmp_path, [entry("f", [url])])
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    args = (str(tmp_path / "cache"), str(manifest), barrier, results)
    procs = [ctx.Process(target=_fetch_in_child, args=args) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    outcomes = [results.get(timeout=5) for _ in procs]
    (p1, s1, e1), (p2, s2, e2) = outcomes
    assert p1 == p2 and Path(p1).read_bytes() == PAYLOAD
    assert max(s1, s2) < min(e1, e2)  # both were inside fetch() at the same time
    assert len(server.requests_for("/f")) == 1
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == [
        "f.bin", "f.bin.lock", "f.bin.verified"]


# -- manifest -------------------------------------------------------------------------------------


def test_unknown_name_lists_valid_names(tmp_path):
    manifest = Manifest.load(write_manifest(tmp_path, [entry("alpha", ["https://x/a"])],
                                            {"grp": {"files": ["alpha"]}}))
    with pytest.raises(KeyError) as info:
        manifest.get("alpah")
    assert isinstance(info.value, UnknownWeightError)
    assert "Did you mean alpha?" in str(info.value) and "files: alpha" in str(info.value)
    with pytest.raises(UnknownWeightError, match="groups: grp"):
        manifest.group("nope")
    assert [s.name for s in manifest.resolve(["grp", "alpha"])] == ["alpha"]


@pytest.mark.parametrize("files, groups, problem", [
    ([entry("a", ["https://x/a"]), entry("a", ["https://x/b"], path="other")], {}, "duplicate file names"),
    ([entry("a", ["https://x/a"])], {"g": {"files": ["a", "b"]}}, r"group 'g' lists unknown files \['b'\]"),
    ([entry("a", ["https://x/a"], sha256="abc")], {}, "sha256 must be 64 lowercase hex"),
    ([entry("a", ["https://x/a"], path="../a")], {}, "must be relative"),
    ([entry("a", [])], {}, "needs 'urls'"),
    ([entry("a", ["https://x/a"], licence="MIT")], {}, r"unknown keys \['licence'\]"),
    ([entry("a", ["https://x/a"]), entry("b", ["https://x/b"])], {"a": {"files": ["b"]}},
     "has a file's name but does not contain that file"),
])
def test_malformed_manifest_is_rejected_naming_the_file(tmp_path, files, groups, problem):
    path = write_manifest(tmp_path, files, groups)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + problem):
        Manifest.load(path)


def test_real_manifest_is_complete_and_consistent():
    raw = json.loads(weights.DEFAULT_MANIFEST.read_text())
    names = [e["name"] for e in raw["files"]]
    assert len(names) == len(set(names))
    manifest = Manifest.load()
    for spec in manifest.files:
        assert spec.urls and spec.license in {"CC-BY-NC-4.0", "MIT", "Apache-2.0"} and spec.path
        assert all(url.rsplit("/", 1)[1] == Path(spec.path).name for url in spec.urls), spec.name
    for group, members in raw["groups"].items():
        assert members["files"] and set(members["files"]) <= set(names), group
    by_name = {s.name: s for s in manifest.files}
    assert by_name["htdemucs"].sha256_prefix == "8726e21a"
    assert by_name["htdemucs"].sha256.startswith("8726e21a") and by_name["htdemucs"].size == 84_141_911
    assert by_name["allinone-harmonix-fold0"].size == 1_400_571
    assert by_name["t5-base-model"].size == 891_646_390
    # Every file has a size, an estimate, or the reason it has none, and where it comes from.
    for spec in manifest.files:
        assert spec.size_source, spec.name
        assert spec.size is None or spec.approx_size is None, spec.name
        if spec.expected_size is None:
            assert "not published" in spec.size_source, spec.name
    assert by_name["btc-model"].git_blob_sha1 == "6b4d7f796998cb22822e33468d66394e176ee33a"
    assert by_name["btc-model-large-voca"].git_blob_sha1 == "11c6edbaaaee33737aa7a41dcb9044191630326f"
    assert by_name["musicgen-melody-codec"].sha256 == (
        "37d256b525d4117f8bbf790ab448a8e9f4746cd401900fe1ae72e154b1513a30")
    assert by_name["musicgen-melody-codec"].size == 236_001_935
    assert by_name["allinone-harmonix-fold3"].urls == (
        "https://huggingface.co/taejunkim/allinone/resolve/main/harmonix-fold3-i92b7m8p.pth",)
    remix = {s.name for s in manifest.group("remix-default")}
    assert {"musicgen-stereo-chord", "btc-model-large-voca", "htdemucs", "encodec-32khz-model",
            "t5-base-model", "t5-base-spiece"} <= remix
    assert {f"allinone-harmonix-fold{i}" for i in range(8)} <= remix
    melody = {s.name for s in manifest.group("musicgen-melody")}
    assert {"musicgen-melody-lm", "musicgen-melody-codec", "encodec-32khz-config", "t5-base-config"} <= melody


# -- command line ---------------------------------------------------------------------------------


def test_cli_list_fetch_verify(server, tmp_path, capsys):
    files = [entry("a", [server.add("/a", PAYLOAD)]), entry("b", [server.add("/b", PAYLOAD[:1000])],
                                                             payload=PAYLOAD[:1000])]
    manifest = write_manifest(tmp_path, files, {"both": {"description": "a and b", "files": ["a", "b"]}})
    cache = tmp_path / "cache"
    common = ["--manifest", str(manifest), "--dir", str(cache)]

    assert main(["list", *common]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^a\s+missing\s+300\.0 kB\s", out, re.M) and re.search(r"^b\s+missing\s+1\.0 kB\s", out, re.M)
    assert "both (0/2 on disk, 301.0 kB): a and b" in out

    # `fetch` goes online even though the test environment sets REMIXER_OFFLINE=1.
    assert main(["fetch", "both", *common]) == 0
    assert (cache / "sub/a.bin").read_bytes() == PAYLOAD
    assert (cache / "sub/b.bin").read_bytes() == PAYLOAD[:1000]
    capsys.readouterr()
    assert main(["list", *common]) == 0
    assert re.search(r"^b\s+verified\s", capsys.readouterr().out, re.M)

    assert main(["verify", *common]) == 0
    assert capsys.readouterr().out.splitlines() == ["a: ok", "b: ok"]
    (cache / "sub/b.bin").write_bytes(b"x" * 1000)
    assert main(["verify", "b", *common]) == 1
    assert "b: FAILED: sha256 mismatch" in capsys.readouterr().out

    assert main(["fetch", "nope", *common]) == 2
    assert "unknown weight file or group 'nope'" in capsys.readouterr().err
    assert main(["fetch", *common]) == 2
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    assert all(cmd in usage for cmd in ("list", "fetch", "verify"))
