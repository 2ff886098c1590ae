"""bandwidth: cap a direction at ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy).

A per-connection virtual clock ("the next byte may leave at T") keeps the rate
exact over many chunks instead of accumulating every sleep's overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register

#: Large chunks are released in pieces worth this much time, like Toxiproxy.
_SLICE_SECONDS = 0.1


@dataclass(slots=True)
class _Pace:
    next_time: float = 0.0


@register
@dataclass(frozen=True, slots=True)
class BandwidthToxic(Toxic):
    """Limits throughput to ``rate`` kilobytes per second; 0 means unlimited."""

    type_name = "bandwidth"
    rate: int = 0

    def new_state(self) -> _Pace:
        return _Pace()

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        if self.rate <= 0:
            await emit(chunk)
            return
        bytes_per_second = self.rate * 1000.0
        piece = max(1, int(bytes_per_second * _SLICE_SECONDS))
        pace: _Pace = ctx.state
        data = chunk.data
        while data:
            part, data = data[:piece], data[piece:]
            pace.next_time = max(pace.next_time, ctx.now()) + len(part) / bytes_per_second
            wait = pace.next_time - ctx.now()
            if wait > 0 and not await ctx.sleep(wait):
                await emit(Chunk(part + data, chunk.timestamp))  # removed: flush the rest
                return
            await emit(Chunk(part, chunk.timestamp))
