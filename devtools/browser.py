"""A headless Chromium driven over the DevTools protocol, to test ``analysis.html`` for real.

Debian's ``chromium`` (``apt-get install chromium``; ``scripts/setup.sh`` installs it) is started
with ``--remote-debugging-pipe``: protocol messages are JSON objects ended by a NUL byte, written
to the browser's file descriptor 3 and read from its descriptor 4. So no port is opened and no
extra package is needed. The profile is a fresh temporary directory and every background
service that could reach the network is off.

    with Chromium.start() as browser:
        page = browser.open(Path("analysis.html").resolve().as_uri())
        page.evaluate("document.title")
        png = page.screenshot()
        page.errors()  # uncaught exceptions, console errors, failed loads

:func:`find_chromium` says whether one is installed.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import typing as tp
from dataclasses import dataclass, field

__all__ = ["Chromium", "Page", "BrowserError", "find_chromium"]

# The flags that work on this project's machines (no sandbox in containers, no GPU, nothing in the
# background that reaches the network), plus the protocol pipe.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """The browser failed, answered with an error, or did not answer in time."""


def find_chromium() -> str | None:
    """The path of an installed Chromium (``$CHROMIUM`` first), or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _above(fd: int, low: int) -> int:
    """``fd`` moved to a descriptor number of at least ``low``."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return moved


@dataclass
class _Events:
    """What the browser told without being asked, in order."""

    items: list[dict[str, tp.Any]] = field(default_factory=list)


class Chromium:
    """One headless browser process; use :meth:`start` as a context manager."""

    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int, profile: str) -> None:
        self._process, self._out, self._in, self._profile = process, to_browser, from_browser, profile
        self._buffer = b""
        self._next_id = 0
        self.events = _Events()

    @classmethod
    def start(cls, executable: str | None = None) -> Chromium:
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError("chromium is not installed (apt-get install chromium)")
        profile = tempfile.mkdtemp(prefix="remixer-chromium-")
        commands_r, commands_w = os.pipe()
        replies_r, replies_w = os.pipe()
        # Above 4, so that placing them at 3 and 4 never overwrites one with the other.
        commands_r, replies_w = (_above(fd, 10) for fd in (commands_r, replies_w))
        # The browser reads fd 3 and writes fd 4: bash puts the pipe ends there, then becomes it.
        script = f'exec "$0" "$@" 3<&{commands_r} 4>&{replies_w} {commands_r}<&- {replies_w}>&-'
        process = subprocess.Popen(["bash", "-c", script, executable, *FLAGS, f"--user-data-dir={profile}",
                                    "about:blank"], pass_fds=(commands_r, replies_w),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_r)
        os.close(replies_w)
        return cls(process, commands_w, replies_r, profile)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except BrowserError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def open(self, url: str, *, width: int = 1400, height: int = 1000, timeout: float = 60) -> Page:
        """A new tab of ``width`` x ``height`` CSS pixels that loaded ``url`` (its load event fired)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": url})
        self.wait_for(lambda event: event.get("sessionId") == session and event["method"] == "Page.loadEventFired",
                      timeout)
        return page

    def call(self, method: str, params: dict[str, tp.Any] | None = None, *, session: str | None = None,
             timeout: float = 60) -> dict[str, tp.Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, tp.Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._out, json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise BrowserError(f"{method}: the browser is gone ({error})") from None
        reply = self._read_until(lambda item: item.get("id") == self._next_id, timeout, method)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_for(self, matches: tp.Callable[[dict[str, tp.Any]], bool], timeout: float = 60) -> dict[str, tp.Any]:
        """The first event (already received or still to come) that ``matches``."""
        for event in self.events.items:
            if matches(event):
                return event
        return self._read_until(lambda item: "method" in item and matches(item), timeout, "event")

    def _read_until(self, matches: tp.Callable[[dict[str, tp.Any]], bool], timeout: float,
                    waiting_for: str) -> dict[str, tp.Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                item = json.loads(raw)
                if "method" in item:
                    self.events.items.append(item)
                if matches(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise BrowserError(f"no answer to {waiting_for} within {timeout:g} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"the browser exited while waiting for {waiting_for}")
            self._buffer += chunk


@dataclass
class Page:
    """One tab, attached to its own protocol session."""

    browser: Chromium
    session: str

    def call(self, method: str, params: dict[str, tp.Any] | None = None, timeout: float = 60) -> dict[str, tp.Any]:
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60) -> tp.Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:60]!r} threw: "
                               f"{details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def mouse(self, kind: str, x: float, y: float, **extra: tp.Any) -> None:
        """A mouse event at CSS pixel (x, y): ``mouseMoved``, ``mousePressed``, ``mouseReleased``,
        ``mouseWheel`` (with ``deltaX``/``deltaY``)."""
        self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.mouse(kind, x, y, button="left" if kind != "mouseMoved" else "none", clickCount=1)

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """The page as PNG bytes: the viewport, or everything when ``full_page``."""
        params: dict[str, tp.Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        return base64.b64decode(self.call("Page.captureScreenshot", params)["data"])

    def errors(self) -> list[str]:
        """Uncaught exceptions, console errors and failed loads of this tab so far."""
        found = []
        for event in self.browser.events.items:
            if event.get("sessionId") != self.session:
                continue
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(arg.get("value", arg.get("description")))
                                                     for arg in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}".strip())
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def requested_urls(self) -> list[str]:
        """Every URL this tab requested."""
        return [event["params"]["request"]["url"] for event in self.browser.events.items
                if event.get("sessionId") == self.session and event["method"] == "Network.requestWillBeSent"]
