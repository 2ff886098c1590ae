"""timeout: swallow all data, and close the connection after ``timeout`` ms.

With ``timeout`` 0 the connection is held open and data is dropped until the
toxic is removed (the README's contract).  The timer starts when the toxic is
attached to the connection, not on the first byte, as in Toxiproxy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class TimeoutToxic(Toxic):
    """Black-holes a direction; optionally closes the connection later."""

    type_name = "timeout"
    has_background = True
    timeout: int = 0

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        return None  # dropped on the floor while the toxic is active

    async def on_close(self, ctx: ToxicContext) -> None:
        await ctx.wait_retired()  # the peer must not see the close either

    async def run(self, ctx: ToxicContext) -> None:
        if self.timeout > 0:
            await asyncio.sleep(self.timeout / 1000.0)
            ctx.close_connection()
