"""Run the fault proxy: API server + proxies on one event loop.

``main(argv)`` is the CLI entry (``python -m stormproof.harness.faults`` and the
``stormproof proxy`` subcommand).  ``FaultProxyServer`` embeds it in an
existing loop, and ``serve_in_thread`` runs it beside synchronous code
(tests, the harness driver) on a private loop in a daemon thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import random
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from stormproof.harness.faults.api import ToxiproxyApi
from stormproof.harness.faults.errors import ApiError
from stormproof.harness.faults.http import serve_http
from stormproof.harness.faults.proxy import format_address

__all__ = ["FaultProxyServer", "RunningServer", "main", "serve_in_thread", "new_event_loop"]

_log = logging.getLogger(__name__)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (several times faster I/O), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class FaultProxyServer:
    """The API server and its proxies, bound to the running loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474) -> None:
        self.host = host
        self.port = port
        self.api = ToxiproxyApi()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` actually bound (valid after ``start``)."""
        assert self._server is not None, "server not started"
        return format_address(self._server.sockets[0].getsockname())

    async def start(self) -> None:
        self._server = await serve_http(self._handle, self.host, self.port)

    async def _handle(self, method: str, target: str, body: bytes, user_agent: str):  # noqa: ANN202
        return await self.api.handle(method, target, body, user_agent)

    async def populate_file(self, path: str) -> int:
        """Create proxies from a Toxiproxy ``-config`` JSON file; returns how many."""
        with open(path, encoding="utf-8") as handle:
            items = json.load(handle)
        return len(await self.api.proxies.populate(items))

    async def stop(self) -> None:
        """Close the API listener and every proxy (and their connections)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.api.proxies.clear()


@dataclass(frozen=True)
class RunningServer:
    """Handle to a server running in a background thread."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def serve_in_thread(host: str = "127.0.0.1", port: int = 0, *, timeout: float = 5.0) -> Iterator[RunningServer]:
    """Run a ``FaultProxyServer`` on its own loop in a daemon thread.

    Stops it (closing all proxies) when the block exits.
    """
    loop = new_event_loop()
    server = FaultProxyServer(host, port)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
    thread.start()
    if not ready.wait(timeout) or failure:
        raise RuntimeError(f"fault proxy failed to start: {failure[0] if failure else 'timeout'}")
    bound_host, bound_port = server.address.rsplit(":", 1)
    try:
        yield RunningServer(bound_host.strip("[]"), int(bound_port))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormproof proxy",
        description="Fault-injecting TCP proxy speaking Toxiproxy's HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API listen host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API listen port (default 8474, 0 = any)")
    parser.add_argument("--config", help="JSON file of proxies to create at start (like toxiproxy -config)")
    parser.add_argument("--seed", type=int, help="seed for toxicity and jitter randomness")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    server = FaultProxyServer(args.host, args.port)
    try:
        await server.start()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else str(exc)
        print(json.dumps({"error": f"listen tcp {args.host}:{args.port}: {reason}"}), file=sys.stderr)
        return 1
    try:
        if args.config:
            try:
                count = await server.populate_file(args.config)
            except (OSError, ValueError, ApiError) as exc:
                print(json.dumps({"error": f"config {args.config}: {exc}"}), file=sys.stderr)
                return 1
            _log.info("populated %d proxies from %s", count, args.config)
        # One parseable line so launchers using --port 0 learn the port.
        print(f"stormproof fault proxy listening on {server.address}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.seed is not None:
        random.seed(args.seed)
    loop = new_event_loop()
    try:
        return loop.run_until_complete(_serve(args))
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()
