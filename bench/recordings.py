"""Real, freely licensed recordings for the benchmarks, fetched at run time from Debian packages.

Synthesized songs have perfect, sample-exact beats; real music has swing, fills, reverb tails
and sparse passages, which is where beat tracking and beat-sync go wrong. Debian ships game
soundtracks under free licences; :func:`fetch` downloads one such package with
``apt-get download`` and unpacks it with ``dpkg -x`` into a cache outside the repository
(``$REMIXER_RECORDINGS_DIR``, default ``~/.cache/remixer-recordings``), once. Nothing of it is
ever committed.

==============================  ==================================================  ======================
package                         what                                                licence (debian/copyright)
==============================  ==================================================  ======================
``hyperrogue-music``            17 tracks (Parrotte, Domina, Savino), Ogg           CC-BY-SA-3.0
``singularity-music``           16 tracks (Max McCracken), Ogg                      CC-BY-SA-3.0
``drascula-music``              31 tracks (Alcachofa Soft), Ogg                     Drascula licence
                                                                                    (freeware, DFSG-free)
``fb-music-high``               Frozen Bubble's 2-player theme, XM module           GPL-2+
``fretsonfire-songs-muldjord``  4 metal songs (El Senator / Muldjord), Ogg          CC-BY-SA-3.0
``fretsonfire-songs-sectoid``   4 hard rock songs (Carlos Viola Iborra), Ogg        Expat (MIT)
``colobot-common-sounds``       19 electronic pieces, some without drums, Ogg       GPL-3+
``seahorse-adventures``         6 chiptune-like tunes (tim), Ogg                    GPL-2
``torus-trooper-data``          4 electronic loops (Kenta Cho), Ogg                 BSD-2-clause
``amoebax-data``                8 electronic tunes (Alex Almarza), Ogg              Free-Art-License-1.2
``lincity-ng-data``             3 tracks (a slow blues on keys without drums), Ogg  GPL-2+
``pingus-data``                 20 tracker modules (IT, S3M)                        GPL-2+
``extremetuxracer-data``        10 tracks (calm mallets, fast triple metre), Ogg    GPL-2+
``trackballs-data``             the ``tb_*`` tracks (a 3/4 waltz among them), Ogg   GPL-2+
==============================  ==================================================  ======================

Decoding goes through the ``ffmpeg`` command (the tracker modules need its libopenmpt decoder,
which the Python decoders lack). A recording is named by its path inside the package's music
folder, without the suffix: ``hyperrogue-music/hr3-desert``, and
``fretsonfire-songs-muldjord/armygeddon/song`` where every song is a ``song.ogg`` in its own
folder. Only the files named here are used: ``trackballs-data`` also ships tracks under another
licence, which the ``tb_*`` pattern leaves out. :func:`cut` returns an :class:`Excerpt` of a recording at a
given rate and channel count.

Usage: ``python bench/recordings.py [PACKAGE ...]`` fetches (if needed) and lists the
recordings with their licences.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Per package: where its music lies inside the package, which files are music, and the licence.
PACKAGES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "hyperrogue-music": ("usr/share/hyperrogue/music", ("*.ogg",), "CC-BY-SA-3.0"),
    "singularity-music": ("usr/share/games/singularity/music", ("*.ogg", "*/*.ogg"),
                          "CC-BY-SA-3.0"),
    "drascula-music": ("usr/share/scummvm/drascula/audio", ("*.ogg",), "Drascula-License"),
    "fb-music-high": ("usr/share/games/frozen-bubble/snd", ("*.xm",), "GPL-2+"),
    "fretsonfire-songs-muldjord": ("usr/share/games/fretsonfire/data/songs/muldjord",
                                   ("*/song.ogg",), "CC-BY-SA-3.0"),
    "fretsonfire-songs-sectoid": ("usr/share/games/fretsonfire/data/songs/sectoid",
                                  ("*/song.ogg",), "Expat"),
    "colobot-common-sounds": ("usr/share/games/colobot/music", ("*.ogg",), "GPL-3+"),
    "seahorse-adventures": ("usr/share/games/seahorse-adventures/data/music", ("*.ogg",),
                            "GPL-2"),
    "torus-trooper-data": ("usr/share/games/torus-trooper/sounds/musics", ("*.ogg",),
                           "BSD-2-clause"),
    "amoebax-data": ("usr/share/games/amoebax/music", ("*.ogg",), "Free-Art-License-1.2"),
    "lincity-ng-data": ("usr/share/games/lincity-ng/music/default", ("*.ogg",), "GPL-2+"),
    "pingus-data": ("usr/share/games/pingus/data/music", ("*.it", "*.s3m"), "GPL-2+"),
    "extremetuxracer-data": ("usr/share/games/etr/music", ("*.ogg",), "GPL-2+"),
    "trackballs-data": ("usr/share/games/trackballs/music", ("tb_*.ogg",), "GPL-2+"),
}
# Marks a completely unpacked package: an interrupted fetch leaves no half cache behind it.
_COMPLETE = ".complete"


class RecordingsUnavailable(RuntimeError):
    """The recordings cannot be fetched or decoded here (no apt-get, no network, no ffmpeg)."""


@dataclass(frozen=True)
class Recording:
    """One piece of music from a fetched package.

    Attributes
    ----------
    name : str
        ``"<package>/<path in its music folder, no suffix>"``, e.g.
        ``"hyperrogue-music/hr3-desert"``.
    path : Path
        The unpacked file in the cache.
    package : str
        The Debian package it came from.
    license : str
        Its licence, as named in the package's ``debian/copyright``.
    """

    name: str
    path: Path
    package: str
    license: str


@dataclass(frozen=True, eq=False)
class Excerpt:
    """A cut of a :class:`Recording`: ``audio`` is (channels, samples) float32."""

    recording: Recording
    start: float
    audio: np.ndarray
    sample_rate: int

    @property
    def name(self) -> str:
        return f"{self.recording.name}@{self.start:g}s"

    @property
    def seconds(self) -> float:
        return self.audio.shape[1] / self.sample_rate


def cache_dir() -> Path:
    """Where packages are unpacked: ``$REMIXER_RECORDINGS_DIR``, else
    ``~/.cache/remixer-recordings``."""
    configured = os.environ.get("REMIXER_RECORDINGS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "remixer-recordings"


def fetch(package: str, cache: Path | None = None) -> Path:
    """Download and unpack ``package`` into the cache once; return its unpacked root.

    Raises
    ------
    ValueError
        For a package not in `PACKAGES`.
    RecordingsUnavailable
        When ``apt-get``/``dpkg`` are missing or the download fails (no network, no apt lists),
        with the command that failed and its output.
    """
    if package not in PACKAGES:
        raise ValueError(f"unknown recordings package {package!r}; choose from {sorted(PACKAGES)}")
    root = (cache or cache_dir()) / package
    if (root / _COMPLETE).is_file():
        return root
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RecordingsUnavailable(
                f"cannot fetch the recordings package {package!r}: `{tool}` is not installed "
                f"(it needs a Debian/Ubuntu system); or unpack the package into {root} yourself "
                f"and create {root / _COMPLETE}")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{package}-") as tmp:
        _run(["apt-get", "download", package], Path(tmp), package)
        (deb,) = Path(tmp).glob("*.deb")
        unpacked = Path(tmp) / "root"
        _run(["dpkg", "-x", str(deb), str(unpacked)], Path(tmp), package)
        (unpacked / _COMPLETE).touch()
        shutil.rmtree(root, ignore_errors=True)
        unpacked.rename(root)
    return root


def recordings(packages: tuple[str, ...] = tuple(PACKAGES),
               cache: Path | None = None) -> list[Recording]:
    """Every music file of ``packages`` (fetched as needed), sorted by name."""
    found = []
    for package in packages:
        fetch(package, cache)  # validates the name before it indexes PACKAGES
        subdir, patterns, license_name = PACKAGES[package]
        music = fetch(package, cache) / subdir
        for pattern in patterns:
            found += [Recording(name=f"{package}/{path.relative_to(music).with_suffix('')}",
                                path=path, package=package, license=license_name)
                      for path in music.glob(pattern)]
    return sorted(found, key=lambda r: r.name)


def recording(name: str, cache: Path | None = None) -> Recording:
    """The recording called ``name`` (see :class:`Recording`), fetching its package."""
    package = name.split("/", 1)[0]
    if package not in PACKAGES:
        raise ValueError(f"recording {name!r}: unknown package {package!r}; "
                         f"choose from {sorted(PACKAGES)}")
    for found in recordings((package,), cache):
        if found.name == name:
            return found
    raise ValueError(f"recording {name!r} is not in package {package!r}")


def cut(recording: Recording, start: float, seconds: float, *, sample_rate: int = 44_100,
        channels: int = 2) -> Excerpt:
    """Decode ``seconds`` of ``recording`` from ``start`` at ``sample_rate`` Hz.

    Raises
    ------
    ValueError
        On a negative ``start``, non-positive ``seconds``, rate or channel count, or when the
        recording ends before ``start + seconds``.
    RecordingsUnavailable
        When ``ffmpeg`` is not installed or cannot decode the file.
    """
    if not (np.isfinite(start) and start >= 0):
        raise ValueError(f"excerpt start must be >= 0 seconds, got {start}")
    if not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"excerpt length must be > 0 seconds, got {seconds}")
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels!r}")
    if shutil.which("ffmpeg") is None:
        raise RecordingsUnavailable("decoding the recordings needs the `ffmpeg` command "
                                    "(apt-get install ffmpeg)")
    wanted = int(round(seconds * sample_rate))
    command = ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{start:.6f}",
               "-i", str(recording.path),
               # A little more than asked: the cut is trimmed to the exact sample count below.
               "-t", f"{seconds + 0.1:.6f}", "-ac", str(channels), "-ar", str(sample_rate),
               "-f", "f32le", "-"]
    done = subprocess.run(command, capture_output=True)
    if done.returncode != 0:
        raise RecordingsUnavailable(f"ffmpeg could not decode {recording.path}: "
                                    f"{done.stderr.decode(errors='replace').strip()}")
    samples = np.frombuffer(done.stdout, dtype=np.float32)[:wanted * channels]
    if samples.size < wanted * channels:
        got = samples.size / channels / sample_rate
        raise ValueError(f"recording {recording.name} has only {got:.2f} s after {start:g} s; "
                         f"an excerpt of {seconds:g} s does not fit")
    audio = np.ascontiguousarray(samples.reshape(-1, channels).T)
    return Excerpt(recording=recording, start=float(start), audio=audio, sample_rate=sample_rate)


def _run(command: list[str], cwd: Path, package: str) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RecordingsUnavailable(
            f"cannot fetch the recordings package {package!r}: `{' '.join(command)}` failed "
            f"(exit {done.returncode}; no network or no apt package lists? try `apt-get update`): "
            f"{(done.stderr or done.stdout).strip()[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", help=f"default: all of {', '.join(PACKAGES)}")
    args = parser.parse_args()
    try:
        found = recordings(tuple(args.packages or PACKAGES))
    except (RecordingsUnavailable, ValueError) as err:
        sys.exit(str(err))
    for item in found:
        print(f"{item.name:<45} {item.license:<18} {item.path}")
    print(f"{len(found)} recordings in {cache_dir()}")


if __name__ == "__main__":
    main()
