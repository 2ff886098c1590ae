"""Headless Chromium driven over the DevTools protocol, with the network cut off.

The reports must open offline: Chromium runs with every request sent to a
dead proxy and every host name unresolvable, and the page load records each
request the page made, each console message and each uncaught exception,
so a test can assert the page asked for nothing but itself. The protocol is
spoken over ``websockets``' synchronous client (installed with
``uvicorn[standard]``), so no browser-automation package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

__all__ = ["BINARIES", "Browser", "PageLoad", "find_chromium"]

BINARIES = ("chromium", "chromium-browser", "google-chrome")

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    # No network: every request goes to a closed port, every name fails to resolve.
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr", "--v=0", "--remote-debugging-port=0", "--window-size=1400,2400",
)


def find_chromium() -> str | None:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    """What one page load did."""

    url: str
    text: str = ""
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    log_offset: int = 0


class Browser:
    """One Chromium process and one tab; ``load`` a page, ``screenshot`` it."""

    def __init__(self, binary: str, workdir: Path, *, timeout: float = 30.0) -> None:
        self.workdir = workdir
        self.timeout = timeout
        profile = workdir / "profile"
        profile.mkdir(parents=True)
        self.stderr_path = workdir / "chromium.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self._proc = subprocess.Popen([binary, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                      start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start; see {self.stderr_path}:\n"
                                   + self.stderr_path.read_text(errors="replace")[-2000:])
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._stack = ExitStack()
        self._ws = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None, proxy=None, open_timeout=timeout))
        self._next = 0
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 2400, "deviceScaleFactor": 1, "mobile": False})

    # -- protocol --------------------------------------------------------------------------
    def _call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call(method, params, self._session)

    def _wait_event(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self._events):
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in reply:
                self._events.append(reply)

    # -- pages -----------------------------------------------------------------------------
    def load(self, path: Path) -> PageLoad:
        """Open a local file and return its text and everything it asked for or complained about."""
        url = path.resolve().as_uri()
        self._events.clear()
        offset = self.stderr_path.stat().st_size
        self.send("Page.navigate", {"url": url})
        self._wait_event("Page.loadEventFired")
        page = PageLoad(url, log_offset=offset)
        page.text = self.send("Runtime.evaluate", {"expression": "document.body.innerText",
                                                   "returnByValue": True})["result"]["value"]
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled":
                page.console.append(f"{params.get('type')}: {params.get('args')}")
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                page.console.append(f"{entry.get('level')}: {entry.get('text')} ({entry.get('url')})")
            elif method == "Runtime.exceptionThrown":
                page.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        return page

    def log_since(self, page: PageLoad) -> str:
        """Chromium's own log (stderr) from the start of ``page``'s load: console lines say ``CONSOLE``."""
        with open(self.stderr_path, "rb") as handle:
            handle.seek(page.log_offset)
            return handle.read().decode(errors="replace")

    def viewport(self, width: int, height: int) -> None:
        """Resize the tab's window (CSS pixels), e.g. 1400x900 for an above-the-fold check."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def screenshot(self, out: Path, *, y: float = 0.0, height: float = 2400.0, width: float = 1400.0) -> Path:
        """A ``width``-pixel-wide PNG of the page from ``y`` down ``height`` pixels."""
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": y, "width": width, "height": height, "scale": 1}})
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        try:
            if getattr(self, "_stack", None) is not None:
                self._stack.close()
        finally:
            if self._proc.poll() is None:
                os.killpg(self._proc.pid, 15)
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self._proc.pid, 9)
                    self._proc.wait()
            self._stderr.close()
