"""The local cache of the manifest's files: lookup, resumable verified downloads, offline errors.

:class:`WeightsStore` turns a name into a verified local path. A file is hashed once and a small
``<file>.verified`` marker (keyed on size and mtime) spares re-hashing multi-GB files on every
start. Downloads go to ``<file>.part`` in the same directory, resume with an HTTP Range request,
retry what a later attempt can change (timeouts, dropped connections, 5xx) with exponential
backoff, fall through to the next mirror at once on what it cannot (404, a host name that does
not resolve, a refused connection), are checked against the manifest, then fsync'ed and renamed
into place. :meth:`WeightsStore.require` checks every file a request needs before it downloads
or loads any, so one error lists every missing file with its size, the total and the command
that fetches them. An exclusive ``flock`` on ``<file>.lock`` serialises processes fetching the same file:
the second one waits and then finds the finished file. Offline (``REMIXER_OFFLINE=1``, or
``HF_HUB_OFFLINE=1`` when ``REMIXER_OFFLINE`` is unset) nothing touches the network and a missing
file raises :class:`MissingWeightsError` saying how to provide it.
"""
from __future__ import annotations

import enum
import errno
import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from remixer.weights.manifest import REPO_ROOT, Manifest, WeightSpec, format_bytes

__all__ = ["WeightsStore", "WeightState", "WeightStatus", "FileDigests", "file_digests", "WeightsError",
           "MissingWeightsError", "DownloadError", "ChecksumError", "DEFAULT_CACHE_DIR", "CLI"]

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = REPO_ROOT / "weights"
CLI = "python -m remixer.weights"

_CHUNK = 1 << 20
_USER_AGENT = "musicgen-remixer-weights/1"
# 408/429 are the only 4xx answers that a later attempt can change.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Socket errors that say the host cannot be reached at all: retrying them only makes a user wait.
_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


class WeightsError(RuntimeError):
    """A weight file could not be provided, or is not the file the manifest describes."""


class MissingWeightsError(WeightsError):
    """A weight file is absent and may not be downloaded (offline mode)."""


class DownloadError(WeightsError):
    """Every URL of a weight file failed; the message lists each URL's failure.

    ``causes`` says why each URL failed (without the URL); ``unreachable_hosts`` holds the hosts
    that did not answer at all (name not resolved, connection refused): other files from them
    would fail the same way.
    """

    def __init__(self, message: str, causes: tuple[str, ...] = (),
                 unreachable_hosts: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.causes = causes
        self.unreachable_hosts = unreachable_hosts


class ChecksumError(WeightsError):
    """A file on disk does not match the manifest's size or digests."""



@dataclass(frozen=True)
class FileDigests:
    """Digests of a file's bytes (``git_blob_sha1`` only when asked for)."""

    size: int
    sha256: str
    git_blob_sha1: str | None = None


def file_digests(path: str | os.PathLike[str], *, git_blob: bool = False) -> FileDigests:
    """Hash a file in one pass: SHA-256, and optionally git's blob id.

    Parameters
    ----------
    path : path-like
        File to read.
    git_blob : bool
        Also compute ``sha1(b"blob <size>\\0" + content)``, the id git gives the file.
    """
    path = Path(path)
    size = path.stat().st_size
    sha = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode()) if git_blob else None
    with path.open("rb") as fh:
        while chunk := fh.read(8 * _CHUNK):
            sha.update(chunk)
            if blob is not None:
                blob.update(chunk)
    return FileDigests(size=size, sha256=sha.hexdigest(),
                       git_blob_sha1=blob.hexdigest() if blob is not None else None)


def _mismatch(spec: WeightSpec, digests: FileDigests) -> str | None:
    """Why ``digests`` contradict ``spec`` (naming expected and actual), or None if they agree."""
    if spec.size is not None and digests.size != spec.size:
        return f"size mismatch: expected {spec.size} bytes, got {digests.size}"
    if spec.sha256 is not None and digests.sha256 != spec.sha256:
        return f"sha256 mismatch: expected {spec.sha256}, got {digests.sha256}"
    if spec.sha256_prefix is not None and not digests.sha256.startswith(spec.sha256_prefix):
        return f"sha256 mismatch: expected a digest starting {spec.sha256_prefix}, got {digests.sha256}"
    if spec.git_blob_sha1 is not None and digests.git_blob_sha1 != spec.git_blob_sha1:
        return f"git blob sha1 mismatch: expected {spec.git_blob_sha1}, got {digests.git_blob_sha1}"
    return None


class WeightState(enum.Enum):
    """What :meth:`WeightsStore.status` knows about a file without hashing it."""

    MISSING = "missing"
    PARTIAL = "partial"      # only an interrupted ``.part`` download
    PRESENT = "present"      # on disk, not (yet) verified
    VERIFIED = "verified"    # a valid marker: size, mtime and digests were checked
    CORRUPT = "corrupt"      # its size contradicts the manifest


@dataclass(frozen=True)
class WeightStatus:
    """One row of :meth:`WeightsStore.status`."""

    spec: WeightSpec
    path: Path
    state: WeightState
    size_on_disk: int | None


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    return None if not value else value not in {"0", "false", "no", "off"}


class _Transient(Exception):
    """A failure that a later attempt at the same URL may not repeat."""


class _Permanent(Exception):
    """A failure that makes this URL useless (404, wrong size announced, host unreachable)."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _unreachable(exc: BaseException) -> str | None:
    """Why ``exc`` (from urlopen) means the host cannot be reached at all, or None.

    A name that does not resolve, a refused connection, an unreachable network and a certificate
    that does not verify stay so for the seconds a retry would wait; a timeout may not.
    """
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror or reason}; no network or no DNS?)"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate does not verify ({reason.verify_message or reason})"
    if isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS:
        return f"{os.strerror(reason.errno).lower()}"
    return None


class _Progress:
    """Byte progress: a tqdm bar on a terminal, otherwise a log line every ~10 %."""

    def __init__(self, label: str, total: int | None, done: int) -> None:
        self._label, self._total, self._done = label, total, done
        self._bar = (tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=label, leave=False)
                     if sys.stderr.isatty() else None)
        self._step = max(total // 10, 1) if total else 64 * _CHUNK
        self._next = (done // self._step + 1) * self._step

    def update(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._done >= self._next:
            self._next = (self._done // self._step + 1) * self._step
            if self._total:
                logger.info("%s: %d%% (%.1f of %.1f MiB)", self._label, 100 * self._done // self._total,
                            self._done / 2**20, self._total / 2**20)
            else:
                logger.info("%s: %.1f MiB", self._label, self._done / 2**20)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/n`` (or ``bytes */n``) header."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WeightsStore:
    """Local cache of the manifest's files: lookup, download, verification.

    Parameters
    ----------
    cache_dir : path-like or None
        Cache root; default ``$REMIXER_WEIGHTS_DIR``, else ``<repo>/weights``.
    offline : bool or None
        Never touch the network; default from ``REMIXER_OFFLINE`` (``1``/``true``), else
        ``HF_HUB_OFFLINE``, else online.
    manifest : Manifest or None
        Default :meth:`Manifest.load` of ``<repo>/weights/manifest.json``.
    retries : int
        Extra attempts per URL after a transient failure (an attempt that grows the partial
        download does not count).
    backoff_s : float
        Wait before the first retry; doubled for each further one.
    timeout_s : float
        Socket timeout of connects and reads.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, offline: bool | None = None,
                 manifest: Manifest | None = None, retries: int = 4, backoff_s: float = 1.0,
                 timeout_s: float = 60.0) -> None:
        if cache_dir is None:
            cache_dir = os.environ.get("REMIXER_WEIGHTS_DIR") or DEFAULT_CACHE_DIR
        self.root = Path(cache_dir).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"weights cache {self.root} exists and is not a directory")
        if offline is None:
            remixer_flag = _env_flag("REMIXER_OFFLINE")
            offline = remixer_flag if remixer_flag is not None else bool(_env_flag("HF_HUB_OFFLINE"))
        self.offline = offline
        self.manifest = manifest if manifest is not None else Manifest.load()
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError(f"retries and backoff_s must be >= 0 and timeout_s > 0, got "
                             f"{retries}, {backoff_s}, {timeout_s}")
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        # Files checked by this store, keyed by (size, mtime): covers read-only caches where no
        # marker can be written.
        self._checked: dict[Path, tuple[int, int]] = {}

    def target(self, name: str) -> Path:
        """Where file ``name`` lives in the cache (whether or not it is there)."""
        return self.root / self.manifest.get(name).path

    def path(self, name: str) -> Path:
        """Local path of file ``name``: verified if present, else downloaded (online).

        Raises
        ------
        MissingWeightsError
            Offline and the file is absent.
        ChecksumError
            Offline and the file on disk does not match the manifest.
        DownloadError
            Online and no URL delivered the right bytes.
        """
        spec = self.manifest.get(name)
        target = self.root / spec.path
        if target.is_file():
            problem = self._check(spec, target)
            if problem is None:
                return target
            if self.offline:
                raise ChecksumError(f"{target} ({name}): {problem}. Replace it with the right file, or "
                                    f"run `{CLI} fetch --force {name} --dir {self.root}` online.")
            logger.warning("%s: %s; downloading it again", target, problem)
        elif self.offline:
            raise MissingWeightsError(self._missing_message([spec]))
        return self.fetch(name)

    def group_paths(self, group: str) -> list[Path]:
        """Local paths of every file of ``group``, in its order (see :meth:`require`)."""
        self.manifest.group(group)  # an unknown group is named as one
        return self.require([group])

    def require(self, names: Iterable[str], *, optional: Iterable[str] = (), files: bool = False) -> list[Path]:
        """Local paths of every file ``names`` means (file or group names), fetched if missing online.

        Every file is looked at before any is downloaded, so one error lists all that are missing,
        each with its size, their total and the one command that fetches them. ``optional`` files,
        which the caller can do without, are neither fetched nor required here, but when missing
        they are listed as optional and included in the command. Online, a host that does not
        answer at all (its name does not resolve, it refuses) fails its other files at once.
        ``files``: ``names`` are file names, also where a group has the same name.

        Raises
        ------
        MissingWeightsError
            Offline, when a file is missing.
        DownloadError
            Online, when a missing file could not be downloaded.
        ChecksumError
            Offline, when a file on disk does not match the manifest.
        """
        specs = [self.manifest.get(name) for name in names] if files else self.manifest.resolve(names)
        missing = [spec for spec in specs if not (self.root / spec.path).is_file()]
        if missing:
            extra = [spec for spec in self.manifest.resolve(optional)
                     if spec not in specs and not (self.root / spec.path).is_file()]
            if self.offline:
                raise MissingWeightsError(self._missing_message(
                    missing, extra, "offline mode is on (REMIXER_OFFLINE / HF_HUB_OFFLINE), so nothing "
                                    "was downloaded"))
            self._fetch_all(missing, extra)
        return [self.path(spec.name) for spec in specs]

    def _fetch_all(self, specs: Sequence[WeightSpec], optional: Sequence[WeightSpec]) -> None:
        """Download ``specs``; one :class:`DownloadError` lists every file that failed."""
        failed: list[WeightSpec] = []
        reasons: dict[str, None] = {}
        dead: set[str] = set()
        for spec in specs:
            if {urllib.parse.urlsplit(url).hostname for url in spec.urls} <= dead:
                failed.append(spec)
                continue
            try:
                self.fetch(spec.name)
            except DownloadError as exc:
                failed.append(spec)
                dead |= exc.unreachable_hosts
                reasons.update(dict.fromkeys(exc.causes))
        if failed:
            why = "; ".join(_grouped_by_cause(reasons))
            raise DownloadError(self._missing_message(failed, optional, f"they could not be downloaded ({why})"),
                                tuple(reasons), frozenset(dead))

    def fetch(self, name: str, force: bool = False) -> Path:
        """Download file ``name`` unless a verified copy is present (``force``: download anyway).

        Waits while another process downloads the same file, then uses its result.
        """
        spec = self.manifest.get(name)
        target = self.root / spec.path
        if self.offline:
            if force:
                raise MissingWeightsError(f"cannot download {name} again: offline mode is on "
                                          "(REMIXER_OFFLINE / HF_HUB_OFFLINE)")
            return self.path(name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._exclusive(target):
                if target.is_file() and not force:
                    problem = self._check(spec, target)
                    if problem is None:
                        return target
                    logger.warning("%s: %s; downloading it again", target, problem)
                for stale in (target, self._marker(target)):
                    stale.unlink(missing_ok=True)
                self._download(spec, target)
        except OSError as exc:
            raise WeightsError(f"cannot write {name} under {target.parent}: {exc}") from exc
        return target

    def verify(self, name: str) -> bool:
        """Re-hash file ``name`` ignoring any marker; True if it matches the manifest.

        Returns False when the file is absent or wrong (a wrong file keeps no marker).
        """
        return self.rehash(self.manifest.get(name))[0] is None

    def status(self) -> list[WeightStatus]:
        """State of every manifest file, from file sizes and markers only (no hashing)."""
        rows = []
        for spec in self.manifest.files:
            target = self.root / spec.path
            part = target.with_name(target.name + ".part")
            if target.is_file():
                st = target.stat()
                if spec.size is not None and st.st_size != spec.size:
                    state = WeightState.CORRUPT
                elif self._marked(spec, target, st) or (not spec.has_digest and spec.size is not None):
                    state = WeightState.VERIFIED
                else:
                    state = WeightState.PRESENT
                rows.append(WeightStatus(spec, target, state, st.st_size))
            elif part.is_file():
                rows.append(WeightStatus(spec, target, WeightState.PARTIAL, part.stat().st_size))
            else:
                rows.append(WeightStatus(spec, target, WeightState.MISSING, None))
        return rows

    # -- verification --------------------------------------------------------------------------

    @staticmethod
    def _marker(target: Path) -> Path:
        return target.with_name(target.name + ".verified")

    def _marked(self, spec: WeightSpec, target: Path, st: os.stat_result) -> bool:
        """Whether this file, as it is now, was already checked against the spec's digests."""
        if self._checked.get(target) == (st.st_size, st.st_mtime_ns):
            return True
        try:
            mark = json.loads(self._marker(target).read_text(encoding="utf-8"))
            digests = FileDigests(size=mark["size"], sha256=mark["sha256"],
                                  git_blob_sha1=mark.get("git_blob_sha1"))
            fresh = mark["size"] == st.st_size and mark["mtime_ns"] == st.st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if spec.git_blob_sha1 is not None and digests.git_blob_sha1 is None:
            return False
        return fresh and _mismatch(spec, digests) is None

    def _remember(self, target: Path, digests: FileDigests) -> None:
        st = target.stat()
        self._checked[target] = (st.st_size, st.st_mtime_ns)
        mark = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digests.sha256}
        if digests.git_blob_sha1 is not None:
            mark["git_blob_sha1"] = digests.git_blob_sha1
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        except OSError as exc:
            # A read-only cache still works; it is only re-hashed once per store.
            logger.debug("cannot write the verification marker of %s: %s", target, exc)
            return
        with os.fdopen(fd, "w") as fh:
            json.dump(mark, fh)
        os.replace(tmp, self._marker(target))

    def _check(self, spec: WeightSpec, target: Path) -> str | None:
        """Problem with a present file, hashing it only when no valid marker vouches for it."""
        st = target.stat()
        if spec.size is not None and st.st_size != spec.size:
            return f"size mismatch: expected {spec.size} bytes, got {st.st_size}"
        if not spec.has_digest or self._marked(spec, target, st):
            return None
        return self.rehash(spec)[0]

    def rehash(self, spec: WeightSpec) -> tuple[str | None, FileDigests | None]:
        """Hash the cached file: (problem or None, its digests); a good file gets a marker."""
        target = self.root / spec.path
        if not target.is_file():
            return f"missing ({target})", None
        logger.info("verifying %s (%.1f MiB)", target, target.stat().st_size / 2**20)
        digests = file_digests(target, git_blob=spec.git_blob_sha1 is not None)
        problem = _mismatch(spec, digests)
        if problem is None:
            self._remember(target, digests)
        else:
            self._checked.pop(target, None)
            with suppress(OSError):
                self._marker(target).unlink(missing_ok=True)
        return problem, digests

    # -- download ------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self, target: Path) -> Iterator[None]:
        """Hold an exclusive flock on ``<target>.lock`` (kept on disk: unlinking it would race)."""
        with open(target.with_name(target.name + ".lock"), "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another process to finish %s", target.name)
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _download(self, spec: WeightSpec, target: Path) -> None:
        part = target.with_name(target.name + ".part")
        failures, causes, unreachable = [], [], []
        for url in spec.urls:
            try:
                self._download_url(spec, url, part)
            except _Permanent as exc:
                failures.append(f"{url}: {exc}")
                host = urllib.parse.urlsplit(url).hostname or url
                causes.append(f"{host}: {exc}")
                if exc.unreachable:
                    unreachable.append(host)
                continue
            digests = file_digests(part, git_blob=spec.git_blob_sha1 is not None)
            problem = _mismatch(spec, digests)
            if problem is not None:
                part.unlink()
                failures.append(f"{url}: {problem} (download removed)")
                causes.append(problem)
                continue
            os.replace(part, target)
            _fsync_dir(target.parent)
            self._remember(target, digests)
            if not spec.has_digest:
                logger.info("%s has no digest in the manifest; its sha256 is %s", spec.name, digests.sha256)
            logger.info("%s ready at %s", spec.name, target)
            return
        raise DownloadError(f"could not download {spec.name} to {target}:\n  " + "\n  ".join(failures),
                            tuple(causes),
                            frozenset(unreachable) if len(unreachable) == len(spec.urls) else frozenset())

    def _download_url(self, spec: WeightSpec, url: str, part: Path) -> None:
        """Complete ``part`` from ``url``, retrying transient failures with exponential backoff."""
        failed, best = 0, -1
        while True:
            try:
                self._transfer(spec, url, part)
                return
            except _Transient as exc:
                size = part.stat().st_size if part.exists() else 0
                if size > best >= 0:
                    # The partial download grew: the link works, earlier failures are forgiven.
                    failed = 0
                best = max(best, size)
                failed += 1
                if failed > self.retries:
                    raise _Permanent(f"{exc} (gave up after {failed} failed attempts)") from None
                delay = self.backoff_s * 2 ** (failed - 1)
                logger.warning("%s: %s; retrying in %.1f s", url, exc, delay)
                time.sleep(delay)

    def _transfer(self, spec: WeightSpec, url: str, part: Path) -> None:
        """One HTTP attempt: resume ``part`` if it has bytes, else download from the start."""
        have = part.stat().st_size if part.exists() else 0
        if spec.size is not None and have > spec.size:
            part.unlink()
            have = 0
        headers = {"User-Agent": _USER_AGENT}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                              timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and have:
                # The part may already hold the whole file (interrupted before the rename).
                total = _content_range(exc.headers.get("Content-Range"))[1]
                if have == (total if total is not None else spec.size):
                    return
                part.unlink()
                raise _Transient("the server refused to resume the partial download") from None
            if exc.code in _RETRY_STATUS:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            unreachable = _unreachable(exc)
            if unreachable is not None:
                raise _Permanent(unreachable, unreachable=True) from None
            raise _Transient(f"connection failed: {getattr(exc, 'reason', exc)}") from None

        with response:
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if have and response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    raise _Transient(f"the server resumed at byte {start}, not {have}; restarting")
            else:
                if have:
                    logger.info("%s ignored the Range request; downloading %s from the start", url, spec.name)
                have, total = 0, length
            if total is None and length is not None:
                total = have + length
            if spec.size is not None and total is not None and total != spec.size:
                raise _Permanent(f"the server announces {total} bytes, the manifest expects {spec.size}")
            progress = _Progress(spec.name, total, have)
            received = 0
            try:
                with part.open("ab" if have else "wb") as fh:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (OSError, http.client.HTTPException) as exc:
                            raise _Transient(f"connection lost after {have + received} bytes: "
                                             f"{exc!r}") from None
                        if not chunk:
                            break
                        fh.write(chunk)
                        received += len(chunk)
                        progress.update(len(chunk))
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                progress.close()
        if total is not None and have + received < total:
            raise _Transient(f"connection closed after {have + received} of {total} bytes")

    # -- messages ------------------------------------------------------------------------------

    def _missing_message(self, specs: Sequence[WeightSpec], optional: Sequence[WeightSpec] = (),
                         reason: str = "offline mode is on (REMIXER_OFFLINE / HF_HUB_OFFLINE), so nothing "
                                       "was downloaded") -> str:
        """Every missing file with its size and source, their total, and the command that fetches them."""
        rows = [(spec, "") for spec in specs] + [(spec, "optional") for spec in optional]
        width = max(len(spec.name) for spec, _ in rows)
        lines = [f"{len(specs)} weight file(s) needed here are missing from {self.root}: {reason}."]
        lines += [f"  {spec.name:<{width}}  {spec.size_text:>9}  {note:<8}  {spec.urls[0]}"
                  for spec, note in rows]
        lines.append("  total: " + _total(specs) + (f"; optional: {_total(optional)}" if optional else ""))
        names = " ".join(self.manifest.cover([spec.name for spec, _ in rows]))
        lines.append(f"Fetch {'it' if len(rows) == 1 else 'them'} where the hosts are reachable with:\n"
                     f"  {CLI} fetch {names} --dir {self.root}\n"
                     f"or download each from its URL to its path under {self.root} "
                     f"(`{CLI} list` shows the paths).")
        return "\n".join(lines)


def _grouped_by_cause(causes: Iterable[str]) -> list[str]:
    """``["a: no DNS", "b: no DNS", "c: HTTP 404"]`` -> ``["a, b: no DNS", "c: HTTP 404"]``."""
    hosts: dict[str, list[str]] = {}
    for cause in causes:
        host, _, why = cause.partition(": ")
        hosts.setdefault(why, [])
        if host not in hosts[why]:
            hosts[why].append(host)
    return [f"{', '.join(names)}: {why}" for why, names in hosts.items()]


def _total(specs: Sequence[WeightSpec]) -> str:
    """``"1.3 GB in 8 files"``, ``"... + 1 file of unknown size"``; estimates make it approximate."""
    known = [spec.expected_size for spec in specs if spec.expected_size is not None]
    unknown = len(specs) - len(known)
    exact = all(spec.size is not None for spec in specs if spec.expected_size is not None)
    text = f"{'' if exact else '~'}{format_bytes(sum(known))} in {len(known)} file(s)" if known else ""
    if unknown:
        text += f"{' + ' if text else ''}{unknown} file(s) of unknown size"
    return text
