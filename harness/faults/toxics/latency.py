"""latency: delay every chunk by ``latency`` ms +/- ``jitter`` ms.

The delay counts from when the chunk was read, so chunks queued behind a
sleeping one are not delayed twice (Toxiproxy's timestamp behaviour).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class LatencyToxic(Toxic):
    """Adds latency (ms) with uniform jitter (ms) to each chunk."""

    type_name = "latency"
    latency: int = 0
    jitter: int = 0

    def delay_seconds(self) -> float:
        """One sample of latency +/- jitter, in seconds."""
        delay = self.latency
        if self.jitter > 0:
            delay += random.randrange(self.jitter * 2) - self.jitter
        return delay / 1000.0

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        delay = self.delay_seconds()
        remaining = delay - (ctx.now() - chunk.timestamp)
        if remaining > 0:
            await ctx.sleep(remaining)  # interrupted: deliver at once, drop nothing
        chunk.timestamp += delay
        await emit(chunk)
