"""reset_peer: on the first data (or EOF), wait ``timeout`` ms, then send RST.

The destination socket is closed with SO_LINGER 0 so the kernel sends a TCP
reset and its peer sees ECONNRESET, as Toxiproxy does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class ResetPeerToxic(Toxic):
    """Resets the connection instead of delivering data."""

    type_name = "reset_peer"
    go_struct = "ResetToxic"
    timeout: int = 0

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        await self._reset(ctx)

    async def on_close(self, ctx: ToxicContext) -> None:
        await self._reset(ctx)

    async def _reset(self, ctx: ToxicContext) -> None:
        if self.timeout > 0:
            await asyncio.sleep(self.timeout / 1000.0)
        ctx.reset_connection()
