"""A minimal asyncio HTTP/1.1 server: enough for Toxiproxy clients, nothing more.

Hand-written rather than uvicorn/starlette so the whole fault proxy is one
process on one event loop, starts in milliseconds, and API calls never
compete with another framework's machinery.  Supports keep-alive,
Content-Length and chunked request bodies, with size and time limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from stormproof.harness.faults.api import Response
from stormproof.harness.faults.errors import ApiError

__all__ = ["HttpHandler", "serve_http"]

HttpHandler = Callable[[str, str, bytes, str], Awaitable[Response]]

_MAX_HEADER_LINES = 100
_MAX_BODY = 4 << 20
_IDLE_TIMEOUT = 60.0
_READ_TIMEOUT = 15.0  # Toxiproxy's read_timeout


class _BadRequest(Exception):
    pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        size_total = 0
        for _ in range(100_000):
            line = await reader.readline()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            size_total += size
            if size_total > _MAX_BODY:
                raise _BadRequest("body too large")
            parts.append(await reader.readexactly(size))
            await reader.readline()
        raise _BadRequest("too many chunks")
    length_text = headers.get("content-length", "0").strip() or "0"
    if not length_text.isdigit():
        raise _BadRequest("bad content-length")
    length = int(length_text)
    if length > _MAX_BODY:
        raise _BadRequest("body too large")
    return await reader.readexactly(length) if length else b""


def _render(response: Response, keep_alive: bool) -> bytes:
    reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
    head = [f"HTTP/1.1 {response.status} {reason}"]
    if response.status != 204:
        head.append(f"Content-Type: {response.content_type}")
        head.append(f"Content-Length: {len(response.body)}")
    head.append("Connection: keep-alive" if keep_alive else "Connection: close")
    body = b"" if response.status == 204 else response.body
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _serve_connection(handler: HttpHandler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            async with asyncio.timeout(_IDLE_TIMEOUT):
                request_line = await reader.readline()
            if not request_line.strip():
                return
            async with asyncio.timeout(_READ_TIMEOUT):
                try:
                    method, target, version = request_line.decode("latin-1").split()
                except ValueError:
                    raise _BadRequest("malformed request line") from None
                headers: dict[str, str] = {}
                for _ in range(_MAX_HEADER_LINES + 1):
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = line.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                else:
                    raise _BadRequest("too many headers")
                body = await _read_body(reader, headers)
            connection = headers.get("connection", "").lower()
            keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
            response = await handler(method, target, body, headers.get("user-agent", ""))
            writer.write(_render(response, keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except _BadRequest as exc:
        writer.write(_render(Response(400, ApiError(f"bad request: {exc}", 400).body()), False))
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_http(handler: HttpHandler, host: str, port: int) -> asyncio.Server:
    """Start serving; the caller owns the returned server."""
    return await asyncio.start_server(
        lambda r, w: _serve_connection(handler, r, w), host, port, reuse_address=True
    )
