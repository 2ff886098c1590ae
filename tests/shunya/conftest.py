"""Fixtures: a real Shunya stub and a real webhook receiver, both on 127.0.0.1 free ports."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from stormproof.harness.shunya import RunningStub, ShunyaStubClient, start_stub

SECRET = "test-webhook-secret"
WAIT_S = 10.0


@dataclass(frozen=True)
class Received:
    """One webhook request as the receiver saw it."""

    index: int
    arrived: float  # time.monotonic()
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """A threading HTTP server that records every POST and answers scripted statuses.

    ``script`` holds statuses for the next requests (FIFO); when it is empty
    the receiver answers ``default_status``, after ``delay_s`` (a slow app).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[int] = deque()
        self.default_status = 200
        self.delay_s = 0.0
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._cond:
                    status = receiver.script.popleft() if receiver.script else receiver.default_status
                    receiver.received.append(
                        Received(len(receiver.received), time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    receiver._cond.notify_all()
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                payload = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/shunya"

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[Received]:
        """Block until at least ``count`` requests arrived; fail the test after ``timeout_s``."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.received) >= count, timeout_s)
            got = list(self.received)
        assert ok, f"expected {count} webhook deliveries within {timeout_s}s, got {len(got)}"
        return got

    def snapshot(self) -> list[Received]:
        with self._cond:
            return list(self.received)

    def clear(self) -> None:
        """Forget what was received so far."""
        with self._cond:
            self.received.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_S, interval_s: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail after ``timeout_s`` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval_s)


def start_test_stub(receiver: WebhookReceiver) -> RunningStub:
    """Start a stub that sends its webhooks to ``receiver``, signed with ``SECRET``."""
    return start_stub(webhook_url=receiver.url, webhook_secret=SECRET)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    rcv = WebhookReceiver()
    try:
        yield rcv
    finally:
        rcv.close()


@pytest.fixture
def stub(receiver: WebhookReceiver) -> Iterator[RunningStub]:
    with start_test_stub(receiver) as running:
        yield running
    assert not running.running


@pytest.fixture
def client(stub: RunningStub) -> Iterator[ShunyaStubClient]:
    with ShunyaStubClient(stub.url) as c:
        yield c
