"""The files a client sends with a served request (a URL or a data URI), fetched into its directory.

``predict.py`` declares its file inputs ``pathlib.Path``: Cog's schema still offers a file
(``format: uri``, an upload in Replicate's form), but coglet 0.23.1 downloads only ``cog.Path``
inputs, so ``predict`` receives the text the client sent and :meth:`SentFile.fetch` downloads it.
coglet's own download has no overall deadline, no size limit, ignores a cancel until it ends, leaves
a 0-byte temp file when it fails and reports urllib3's text without the input's name. Here:

* the whole transfer has a deadline (:attr:`FetchLimits.timeout_s`) and a stall limit, so a
  sender that trickles a byte at a time frees its slot in time;
* a file larger than :attr:`FetchLimits.max_bytes` is refused by its announced length before its
  body, and otherwise as soon as it grows past the cap; a data URI before it is decoded;
* the transfer runs in ``predict``'s coroutine, so a cancel stops it at once;
* the file is written into the request's own directory (removed with it, whatever happens);
* every failure is an :class:`~remixer.requests.InputError` naming the input and the URL
  (without its query string, which may hold a signature).
"""
from __future__ import annotations

import asyncio
import binascii
import logging
import mimetypes
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx

from remixer.requests import InputError, check_sent_file

__all__ = ["FetchLimits", "SentFile", "DEFAULT_MAX_INPUT_MB", "DEFAULT_INPUT_TIMEOUT_S"]

logger = logging.getLogger(__name__)

# A ten-minute 48 kHz 24-bit stereo WAV (the longest song at REMIXER_MAX_DURATION's default) is
# 173 MB; a compressed one a fraction of that.
DEFAULT_MAX_INPUT_MB = 256.0
DEFAULT_INPUT_TIMEOUT_S = 120.0
# coglet's connect and per-read timeout: the longest wait for a first or a next byte.
_STALL_S = 10.0
_USER_AGENT = "musicgen-remixer"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}")
_MB = 1_000_000
# Audio types that Python's mimetypes does not know everywhere (it reads the system's table).
_AUDIO_SUFFIXES = {"audio/wav": ".wav", "audio/wave": ".wav", "audio/x-wav": ".wav", "audio/mpeg": ".mp3",
                   "audio/mp3": ".mp3", "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg",
                   "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".aac"}
_SPACE = re.compile(r"\s+")
_BASE64_PIECE = 4 * 2 ** 20  # characters: whole 4-character groups


@dataclass(frozen=True)
class FetchLimits:
    """How long and how large a sent file may be.

    Attributes
    ----------
    max_bytes : int
        Largest file accepted (decoded bytes of a data URI).
    timeout_s : float
        Deadline of the whole transfer, from the connection to the last byte.
    stall_s : float
        Longest wait for the connection, the answer or the next bytes.
    """

    max_bytes: int = int(DEFAULT_MAX_INPUT_MB * _MB)
    timeout_s: float = DEFAULT_INPUT_TIMEOUT_S
    stall_s: float = _STALL_S

    def __post_init__(self) -> None:
        if not self.max_bytes > 0 or not self.timeout_s > 0 or not self.stall_s > 0:
            raise ValueError(f"fetch limits must be positive, got {self}")

    @classmethod
    def from_env(cls) -> FetchLimits:
        """``REMIXER_MAX_INPUT_MB`` (default 256) and ``REMIXER_INPUT_TIMEOUT_S`` (default 120)."""
        timeout_s = float(os.environ.get("REMIXER_INPUT_TIMEOUT_S", DEFAULT_INPUT_TIMEOUT_S))
        return cls(max_bytes=int(float(os.environ.get("REMIXER_MAX_INPUT_MB", DEFAULT_MAX_INPUT_MB)) * _MB),
                   timeout_s=timeout_s, stall_s=min(_STALL_S, timeout_s))


@dataclass(frozen=True)
class SentFile:
    """File input ``name`` as the client sent it (``source``: a URL or a data URI) and the
    ``path`` in the request's directory it is fetched to."""

    name: str
    source: str
    path: Path

    @classmethod
    def of(cls, value: object, name: str, directory: Path) -> SentFile | None:
        """The file input ``name`` was given as ``value`` (None when not given).

        The path is ``directory/<name><suffix>``, the suffix taken from the URL's file name or
        the data URI's type (``.mp3``): a hint for the decoder, as Cog's own temp names were.

        Raises
        ------
        InputError
            ``value`` is not a URL or a data URI (a path on the server, a number, ...).
        """
        source = check_sent_file(value, name)
        if source is None:
            return None
        try:
            suffix = _suffix(source)
        except ValueError:  # urllib's verdict on a malformed host or port
            raise InputError(f"{name}: {_shown_url(source)} is not a valid URL") from None
        return cls(name=name, source=source, path=directory / f"{name}{suffix}")

    async def fetch(self, limits: FetchLimits) -> int:
        """Write the file to :attr:`path`; returns its size in bytes.

        Raises
        ------
        InputError
            The data URI is malformed, the URL cannot be downloaded (connection, HTTP status,
            broken transfer), or the file exceeds ``limits``; the message names the input.
        asyncio.CancelledError
            The request was cancelled: the transfer stops at once (the caller removes the file
            with the request's directory).
        """
        start = time.perf_counter()
        if self.source[:5].lower() == "data:":
            size = self._decode(limits)  # in this thread: no decoding outlives a cancel (1 GB/s)
        else:
            size = await self._download(limits)
        logger.info("%s: %.1f kB received in %.2f s", self.name, size / 1000, time.perf_counter() - start)
        return size

    def _decode(self, limits: FetchLimits) -> int:
        header, comma, data = self.source[5:].partition(",")
        if not comma:
            raise InputError(f"{self.name}: not a data URI (data:[<type>][;base64],<data>)")
        if not header.lower().endswith(";base64"):
            payload = urllib.parse.unquote_to_bytes(data)
            if len(payload) > limits.max_bytes:
                raise self._too_large(limits, _megabytes(len(payload)))
            self.path.write_bytes(payload)
            return len(payload)
        if _SPACE.search(data):  # line breaks of MIME-style base64
            data = _SPACE.sub("", data)
        if len(data) // 4 * 3 > limits.max_bytes:
            raise self._too_large(limits, f"about {_megabytes(len(data) // 4 * 3)}")
        size = 0
        with self.path.open("wb") as out:
            # In pieces: the server already holds the text, a decoded copy would add 3/4 of it.
            for start in range(0, len(data), _BASE64_PIECE):
                try:
                    piece = binascii.a2b_base64(data[start:start + _BASE64_PIECE], strict_mode=True)
                except binascii.Error:
                    raise InputError(f"{self.name}: the data URI's base64 data is damaged") from None
                size += out.write(piece)
        return size

    async def _download(self, limits: FetchLimits) -> int:
        url = _shown_url(self.source)
        headers = {"User-Agent": os.environ.get("COG_USER_AGENT") or _USER_AGENT}
        size = 0
        try:
            async with asyncio.timeout(limits.timeout_s):
                async with httpx.AsyncClient(follow_redirects=True, headers=headers,
                                             timeout=httpx.Timeout(limits.stall_s)) as client:
                    async with client.stream("GET", self.source) as response:
                        if response.status_code != 200:
                            raise InputError(f"{self.name}: {url} answered HTTP {response.status_code} "
                                             f"{response.reason_phrase}".rstrip())
                        announced = response.headers.get("content-length", "")
                        if announced.isdigit() and int(announced) > limits.max_bytes:
                            raise self._too_large(limits, _megabytes(int(announced)))
                        with self.path.open("wb") as out:
                            async for chunk in response.aiter_bytes():
                                size += len(chunk)
                                if size > limits.max_bytes:
                                    raise self._too_large(limits, "more")
                                out.write(chunk)
        except TimeoutError:
            raise InputError(f"{self.name}: downloading {url} took longer than {limits.timeout_s:g} s "
                             f"({size / 1000:.1f} kB received)") from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise InputError(f"{self.name}: could not download {url}: "
                             f"{_reason(error, limits.stall_s, size)}") from None
        return size

    def _too_large(self, limits: FetchLimits, size: str) -> InputError:
        return InputError(f"{self.name} is larger than this server's limit of {_megabytes(limits.max_bytes)} "
                          f"({size})")


def _megabytes(size: int) -> str:
    return f"{size / _MB:.3g} MB"


def _suffix(source: str) -> str:
    if source[:5].lower() == "data:":
        mime = source[5:].partition(",")[0].split(";")[0].strip().lower()
        guessed = _AUDIO_SUFFIXES.get(mime) or mimetypes.guess_extension(mime) or ""
        return guessed if _SUFFIX.fullmatch(guessed) else ""
    suffix = Path(urllib.parse.urlsplit(source).path).suffix
    return suffix if _SUFFIX.fullmatch(suffix) else ""


def _shown_url(url: str, limit: int = 100) -> str:
    """``url`` for a message: scheme, host and path only (no credentials, no query), cut short."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        shown = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    except ValueError:  # an invalid port
        shown = url.split("?", 1)[0]
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _reason(error: httpx.HTTPError | httpx.InvalidURL, stall_s: float, size: int) -> str:
    """What went wrong, in words (httpx's text may be empty or a library's repr)."""
    if isinstance(error, httpx.ConnectTimeout):
        return f"no connection within {stall_s:g} s"
    if isinstance(error, httpx.TimeoutException):
        return f"nothing received for {stall_s:g} s ({size / 1000:.1f} kB received)"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({_first_line(error) or 'refused'})"
    if isinstance(error, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return "not a valid http(s) URL"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the transfer broke off ({size / 1000:.1f} kB received)"
    return f"{type(error).__name__} ({size / 1000:.1f} kB received)"


def _first_line(error: Exception, limit: int = 120) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text[:limit]
