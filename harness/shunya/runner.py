"""Run the stub under uvicorn: in a background thread (tests) or in the foreground (CLI).

Why: tests need a real HTTP server on a free loopback port that starts in
well under a second and stops cleanly; the CLI needs the same server in the
foreground with signal handling.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import uvicorn

from .config import StubConfig
from .core import StubCore, StubSettings
from .delivery import check_webhook_url
from .server import create_app

__all__ = ["RunningStub", "bind_socket", "build_server", "start_stub"]

_POLL_S = 0.01


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (not yet listen) a TCP socket; binding before serving makes port 0 race-free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto is TCP; with proto 0 every response waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def build_server(
    *,
    webhook_url: str | None,
    webhook_secret: str,
    config: StubConfig | None = None,
    allow_remote_webhook: bool = False,
    log_level: str = "warning",
) -> tuple[uvicorn.Server, StubCore]:
    """Build (but do not start) a uvicorn server for a new stub; validates the webhook URL."""
    if webhook_url is not None:
        check_webhook_url(webhook_url, allow_remote=allow_remote_webhook)
    if not webhook_secret:
        raise ValueError("webhook secret must not be empty")
    core = StubCore(StubSettings(webhook_url=webhook_url, webhook_secret=webhook_secret), config)
    uv_config = uvicorn.Config(
        create_app(core),
        lifespan="on",
        log_level=log_level,
        access_log=False,
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(uv_config), core


@dataclass
class RunningStub:
    """A stub serving in a background thread. Use as a context manager or call ``stop()``.

    ``core`` is the live state; read it only for diagnostics (it belongs to
    the server thread's event loop), and steer the stub over HTTP instead.
    """

    host: str
    port: int
    core: StubCore
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit, wait for the thread; background tasks are cancelled on the way."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError("Shunya stub thread did not stop")

    def __enter__(self) -> RunningStub:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_stub(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "shunya-stub-secret",
    host: str = "127.0.0.1",
    port: int = 0,
    config: StubConfig | None = None,
    allow_remote_webhook: bool = False,
    startup_timeout_s: float = 10.0,
) -> RunningStub:
    """Start a stub in a daemon thread and return once it accepts connections.

    ``port=0`` picks a free port (the socket is bound here, so there is no
    race between choosing and using it); read it back from ``.port``/``.url``.
    """
    server, core = build_server(
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        config=config,
        allow_remote_webhook=allow_remote_webhook,
    )
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"shunya-stub-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(startup_timeout_s)
            sock.close()
            raise RuntimeError("Shunya stub failed to start")
        time.sleep(_POLL_S)
    return RunningStub(host, bound_port, core, server, thread)
