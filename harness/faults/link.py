"""One proxied TCP connection: two sockets and two one-way links between them.

Speed comes from asyncio Protocols rather than streams: with no toxic on a
direction, ``data_received`` writes the bytes straight to the other socket's
transport (no task, no await, no copy).  Only when a direction has toxics do
its chunks go through a queue and a processor task that runs the chain.
Backpressure is the transports' own: a full write buffer pauses reading on
the other socket.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from stormproof.harness.faults.toxic_collection import DOWNSTREAM, UPSTREAM, ToxicCollection, ToxicEntry
from stormproof.harness.faults.toxics import Chunk

if TYPE_CHECKING:
    from stormproof.harness.faults.proxy import Proxy

__all__ = ["Connection", "Link"]

_log = logging.getLogger(__name__)

#: Queue limits (bytes) for a direction with toxics before reading pauses.
_QUEUE_HIGH = 1 << 20
_QUEUE_LOW = 1 << 18

_PAUSE_DST = 1  # destination write buffer is full
_PAUSE_QUEUE = 2  # toxic queue is full


class _Endpoint(asyncio.Protocol):
    """One socket of the pair; routes its events to the links that use it."""

    __slots__ = ("conn", "transport", "reader_link", "writer_link", "lost", "_paused_by", "early", "early_eof")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.reader_link: Link | None = None  # link whose source is this socket
        self.writer_link: Link | None = None  # link whose destination is this socket
        self.lost = False
        self._paused_by = 0
        # Bytes/EOF that arrive before the links exist (some loops start
        # reading right after connection_made even when it paused reading).
        self.early: list[bytes] = []
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.endpoint_made(self)

    def data_received(self, data: bytes) -> None:
        link = self.reader_link
        if link is None:
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        if link.fast:  # the no-toxic fast path: straight through
            link.dst_write(data)
            link.fast_bytes += len(data)
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        if self.reader_link is not None:
            self.reader_link.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket half-open; the links decide when to close

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.endpoint_lost(self)

    def pause_writing(self) -> None:
        if self.writer_link is not None:
            self.writer_link.dst_paused(True)

    def resume_writing(self) -> None:
        if self.writer_link is not None:
            self.writer_link.dst_paused(False)

    def pause_reason(self, reason: int, on: bool) -> None:
        """Pause reading while any reason holds; resume when none do."""
        before = self._paused_by
        self._paused_by = before | reason if on else before & ~reason
        if self.transport is None or self.lost or self.transport.is_closing():
            return
        if before == 0 and self._paused_by:
            self.transport.pause_reading()
        elif before and self._paused_by == 0:
            self.transport.resume_reading()


class _Ctx:
    """``ToxicContext`` for one toxic on one link."""

    __slots__ = ("_link", "_entry")

    def __init__(self, link: Link, entry: ToxicEntry) -> None:
        self._link = link
        self._entry = entry

    @property
    def state(self) -> Any:
        return self._link.state_for(self._entry)

    def now(self) -> float:
        return self._link.loop.time()

    async def sleep(self, seconds: float) -> bool:
        entry = self._entry
        if entry.retired:
            return False
        fut: asyncio.Future[bool] = self._link.loop.create_future()
        handle = self._link.loop.call_later(max(0.0, seconds), _resolve, fut, True)
        entry.add_waiter(fut)
        try:
            return await fut
        finally:
            handle.cancel()
            entry.discard_waiter(fut)

    async def wait_retired(self) -> None:
        entry = self._entry
        if entry.retired:
            return
        fut: asyncio.Future[bool] = self._link.loop.create_future()
        entry.add_waiter(fut)
        try:
            await fut
        finally:
            entry.discard_waiter(fut)

    def close_connection(self) -> None:
        self._link.conn.close()

    def reset_connection(self) -> None:
        self._link.conn.reset(self._link.dst)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


class Link:
    """One direction (source socket -> toxic chain -> destination socket)."""

    __slots__ = (
        "conn", "direction", "src", "dst", "loop", "fast", "fast_bytes", "done",
        "dst_write", "bytes_received", "bytes_sent", "_collection", "_chain",
        "_queue", "_queued", "_task", "_wakeup", "_drain", "_eof", "_dst_full",
        "_states", "_rolls", "_ctxs", "_background",
    )

    def __init__(
        self,
        conn: Connection,
        direction: str,
        src: _Endpoint,
        dst: _Endpoint,
        collection: ToxicCollection,
    ) -> None:
        assert dst.transport is not None
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.loop = asyncio.get_running_loop()
        self.dst_write = dst.transport.write
        self.fast = True
        self.fast_bytes = 0  # bytes that took the fast path (received == sent)
        self.bytes_received = 0  # slow path only
        self.bytes_sent = 0  # slow path only
        self.done = False
        self._collection = collection
        self._chain: tuple[ToxicEntry, ...] = collection.chain(direction)
        self._queue: deque[Chunk] = deque()
        self._queued = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._eof = False
        self._dst_full = False
        self._states: dict[str, Any] = {}
        self._rolls: dict[ToxicEntry, bool] = {}
        self._ctxs: dict[ToxicEntry, _Ctx] = {}
        self._background: dict[ToxicEntry, asyncio.Task[None]] = {}
        src.reader_link = self
        dst.writer_link = self
        collection.attach(self)
        self._sync_background()
        self._refresh()

    def take_early(self) -> None:
        """Deliver what the source sent before this link existed."""
        early, self.src.early = self.src.early, []
        for data in early:
            if self.fast:
                self.dst_write(data)
                self.fast_bytes += len(data)
            else:
                self.feed(data)
        if self.src.early_eof:
            self.feed_eof()

    # -- byte accounting -----------------------------------------------------
    @property
    def received(self) -> int:
        return self.fast_bytes + self.bytes_received

    @property
    def sent(self) -> int:
        return self.fast_bytes + self.bytes_sent

    # -- chain changes -------------------------------------------------------
    def set_chain(self, chain: tuple[ToxicEntry, ...]) -> None:
        """Called by the collection whenever this direction's toxics change."""
        self._chain = chain
        live = set(chain)
        names = {e.name for e in chain}
        for table in (self._rolls, self._ctxs):
            for entry in [e for e in table if e not in live]:
                del table[entry]
        for name in [n for n in self._states if n not in names]:
            del self._states[name]
        self._sync_background()
        self._refresh()
        self._wake()

    def _refresh(self) -> None:
        self.fast = not self._chain and self._task is None and not self._queue and not self.done

    def applies(self, entry: ToxicEntry) -> bool:
        """The toxicity roll, made once per connection and toxic (Toxiproxy's rule)."""
        rolled = self._rolls.get(entry)
        if rolled is None:
            rolled = self._rolls[entry] = random.random() < entry.toxicity
        return rolled

    def state_for(self, entry: ToxicEntry) -> Any:
        if entry.name not in self._states:
            self._states[entry.name] = entry.toxic.new_state()
        return self._states[entry.name]

    def _ctx(self, entry: ToxicEntry) -> _Ctx:
        ctx = self._ctxs.get(entry)
        if ctx is None:
            ctx = self._ctxs[entry] = _Ctx(self, entry)
        return ctx

    def _sync_background(self) -> None:
        if self.done:
            return
        live = set(self._chain)
        for entry, task in list(self._background.items()):
            if entry not in live:
                task.cancel()
                del self._background[entry]
        for entry in self._chain:
            if entry.toxic.has_background and entry not in self._background and self.applies(entry):
                task = self.loop.create_task(entry.toxic.run(self._ctx(entry)))
                task.add_done_callback(_log_failure)
                self._background[entry] = task

    # -- data in -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Slow path: queue a chunk for the toxic chain."""
        if self.done:
            return
        self.bytes_received += len(data)
        self._queue.append(Chunk(data, self.loop.time()))
        self._queued += len(data)
        if self._queued >= _QUEUE_HIGH:
            self.src.pause_reason(_PAUSE_QUEUE, True)
        self._start()

    def feed_eof(self) -> None:
        if self.done or self._eof:
            return
        self._eof = True
        if self.fast:
            self._finish()
        else:
            self._start()

    def _start(self) -> None:
        self.fast = False
        if self._task is None:
            self._task = self.loop.create_task(self._process())
        else:
            self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        self._wakeup = None

    async def _process(self) -> None:
        try:
            while not self.done:
                if self._queue:
                    chunk = self._queue.popleft()
                    self._queued -= len(chunk.data)
                    if self._queued <= _QUEUE_LOW:
                        self.src.pause_reason(_PAUSE_QUEUE, False)
                    await self._push(self._chain, 0, chunk)
                elif self._eof:
                    for entry in self._chain:
                        if not entry.retired and self.applies(entry):
                            await entry.toxic.on_close(self._ctx(entry))
                    self._finish()
                elif not self._chain:
                    break  # back to the fast path
                else:
                    self._wakeup = self.loop.create_future()
                    await self._wakeup
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("toxic chain failed; closing connection")
            self.conn.close()
        finally:
            self._task = None
            self._refresh()

    async def _push(self, chain: tuple[ToxicEntry, ...], index: int, chunk: Chunk) -> None:
        while index < len(chain):
            entry = chain[index]
            index += 1
            if entry.retired or not self.applies(entry):
                continue
            await entry.toxic.pipe(chunk, self._ctx(entry), partial(self._push, chain, index))
            return
        await self._write(chunk.data)

    async def _write(self, data: bytes) -> None:
        while self._dst_full and not self.done:
            self._drain = self.loop.create_future()
            await self._drain
        transport = self.dst.transport
        if self.done or transport is None or transport.is_closing():
            return
        transport.write(data)
        self.bytes_sent += len(data)

    # -- destination flow control ---------------------------------------------
    def dst_paused(self, paused: bool) -> None:
        self._dst_full = paused
        self.src.pause_reason(_PAUSE_DST, paused)
        if not paused and self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- end of life ----------------------------------------------------------
    def _finish(self) -> None:
        """All data and the EOF went through: tell the connection."""
        if self.done:
            return
        self.done = True
        self.fast = False
        self.conn.link_finished(self)

    def kill(self) -> None:
        """Stop at once, dropping queued data (the connection is going away)."""
        self.done = True
        self.fast = False
        self._queue.clear()
        self._collection.detach(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        for task in self._background.values():
            if task is not asyncio.current_task():
                task.cancel()
        self._background.clear()
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("toxic background task failed", exc_info=task.exception())


class Connection:
    """A client socket, its upstream socket, and the two links between them."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client = _Endpoint(self)
        self.upstream: _Endpoint | None = None
        self.links: tuple[Link, ...] = ()
        self.closed = False
        self._connecting: asyncio.Task[None] | None = None  # strong ref: loops keep weak ones

    # -- setup ---------------------------------------------------------------
    def endpoint_made(self, endpoint: _Endpoint) -> None:
        if endpoint is self.client:
            assert endpoint.transport is not None
            endpoint.transport.pause_reading()  # until upstream is connected
            self.proxy.connection_opened(self)
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream_address()
        upstream = _Endpoint(self)
        try:
            await asyncio.get_running_loop().create_connection(lambda: upstream, host, port)
        except OSError as exc:
            _log.warning("proxy %s: cannot reach upstream %s: %s", self.proxy.name, self.proxy.upstream, exc)
            self.close()
            return
        self.upstream = upstream
        if self.closed or self.client.lost:
            self.close()
            return
        toxics = self.proxy.toxics
        self.links = (
            Link(self, UPSTREAM, self.client, upstream, toxics),
            Link(self, DOWNSTREAM, upstream, self.client, toxics),
        )
        for link in self.links:
            link.take_early()
        assert self.client.transport is not None
        if not self.client.transport.is_closing():
            self.client.transport.resume_reading()

    # -- teardown ------------------------------------------------------------
    def endpoint_lost(self, endpoint: _Endpoint) -> None:
        if endpoint.writer_link is not None:
            endpoint.writer_link.kill()  # nothing can be written there any more
        if endpoint.reader_link is not None:
            endpoint.reader_link.feed_eof()  # deliver what is queued, then close
        if not self.links:
            self.close()
        self._maybe_done()

    def link_finished(self, link: Link) -> None:
        other = self.links[0] if link is self.links[1] else self.links[1]
        transport = link.dst.transport
        if transport is not None and not transport.is_closing():
            if other.done or link.src.lost or not transport.can_write_eof():
                transport.close()
            else:
                transport.write_eof()  # half-close: the other direction goes on
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.links and all(link.done for link in self.links):
            self.close()

    def close(self) -> None:
        """Close both sockets gracefully (flush, then FIN); idempotent."""
        for link in self.links:
            link.kill()
        for endpoint in (self.client, self.upstream):
            if endpoint is not None and endpoint.transport is not None:
                endpoint.transport.close()
        if not self.closed:
            self.closed = True
            self.proxy.connection_closed(self)

    def reset(self, endpoint: _Endpoint) -> None:
        """Abort ``endpoint`` with RST (SO_LINGER 0), close the other side."""
        transport = endpoint.transport
        if transport is not None and not transport.is_closing():
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()
        self.close()
