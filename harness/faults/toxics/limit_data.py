"""limit_data: let ``bytes`` bytes through per connection, then close it."""

from __future__ import annotations

from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@dataclass(slots=True)
class _Sent:
    transmitted: int = 0


@register
@dataclass(frozen=True, slots=True)
class LimitDataToxic(Toxic):
    """Truncates the stream at ``bytes`` and closes the connection."""

    type_name = "limit_data"
    bytes: int = 0

    def new_state(self) -> _Sent:
        return _Sent()

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        sent: _Sent = ctx.state
        remaining = max(0, self.bytes - sent.transmitted)
        data = chunk.data[:remaining]
        if data:
            sent.transmitted += len(data)
            await emit(Chunk(data, chunk.timestamp))
        if self.bytes - sent.transmitted <= 0:
            ctx.close_connection()
