"""bench/recordings.py without the network: cached packages are listed, excerpts are cut at the
exact samples, and a machine that cannot fetch says why."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile

from bench.recordings import Recording, RecordingsUnavailable, cut, fetch, recording, recordings

RATE = 44_100


@pytest.fixture()
def cache(tmp_path):
    """A cache holding an unpacked ``fb-music-high`` and nothing else."""
    music = tmp_path / "fb-music-high" / "usr/share/games/frozen-bubble/snd"
    music.mkdir(parents=True)
    (music / "theme.xm").write_bytes(b"")
    (music / "notes.txt").write_text("not music")
    (tmp_path / "fb-music-high" / ".complete").touch()
    return tmp_path


@pytest.fixture()
def no_tools(monkeypatch, tmp_path):
    """No apt-get, dpkg or ffmpeg on PATH."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_a_cached_package_is_listed_without_fetching(cache, no_tools):
    (found,) = recordings(("fb-music-high",), cache)
    path = cache / "fb-music-high/usr/share/games/frozen-bubble/snd/theme.xm"
    assert found == Recording(name="fb-music-high/theme", path=path, package="fb-music-high",
                              license="GPL-2+")
    assert recording("fb-music-high/theme", cache) == found
    with pytest.raises(ValueError, match="'fb-music-high/other' is not in package"):
        recording("fb-music-high/other", cache)


def test_songs_in_folders_of_their_own_are_named_by_their_folder(tmp_path, no_tools):
    music = tmp_path / "fretsonfire-songs-sectoid/usr/share/games/fretsonfire/data/songs/sectoid"
    for song in ("Metal madness", "Feelings"):
        (music / song).mkdir(parents=True)
        (music / song / "song.ogg").write_bytes(b"")
        (music / song / "guitar.ogg").write_bytes(b"")  # a stem, not the song
    (tmp_path / "fretsonfire-songs-sectoid" / ".complete").touch()
    found = recordings(("fretsonfire-songs-sectoid",), tmp_path)
    assert [r.name for r in found] == ["fretsonfire-songs-sectoid/Feelings/song",
                                       "fretsonfire-songs-sectoid/Metal madness/song"]
    assert recording("fretsonfire-songs-sectoid/Metal madness/song", tmp_path) == found[1]


def test_fetching_without_apt_names_the_package_and_the_missing_tool(tmp_path, no_tools):
    with pytest.raises(RecordingsUnavailable, match="'drascula-music': `apt-get` is not installed"):
        fetch("drascula-music", tmp_path / "cache")
    assert not (tmp_path / "cache" / "drascula-music").exists()


def test_unknown_packages_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown recordings package 'mp3-hits'"):
        fetch("mp3-hits", tmp_path)
    with pytest.raises(ValueError, match="unknown package 'mp3-hits'"):
        recording("mp3-hits/song", tmp_path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_cut_returns_the_exact_samples_of_the_span(tmp_path):
    signal = np.random.default_rng(0).uniform(-0.5, 0.5, (3 * RATE, 2)).astype(np.float32)
    soundfile.write(tmp_path / "song.wav", signal, RATE, subtype="FLOAT")
    song = Recording("test/song", tmp_path / "song.wav", "test", "CC0-1.0")
    excerpt = cut(song, 1.0, 0.5)
    assert excerpt.audio.shape == (2, RATE // 2) and excerpt.sample_rate == RATE
    np.testing.assert_array_equal(excerpt.audio, signal[RATE:RATE + RATE // 2].T)
    assert excerpt.name == "test/song@1s" and excerpt.seconds == 0.5
    mono = cut(song, 0.0, 1.0, sample_rate=22_050, channels=1)
    assert mono.audio.shape == (1, 22_050)
    with pytest.raises(ValueError, match=r"test/song has only 1.00 s after 2 s"):
        cut(song, 2.0, 1.5)
    with pytest.raises(ValueError, match="excerpt start must be >= 0"):
        cut(song, -1.0, 1.0)


def test_cut_without_ffmpeg_says_so(tmp_path, no_tools):
    with pytest.raises(RecordingsUnavailable, match="needs the `ffmpeg` command"):
        cut(Recording("test/song", tmp_path / "song.ogg", "test", "CC0-1.0"), 0.0, 1.0)
