"""slow_close: hold the close of the connection for ``delay`` ms after EOF."""

from __future__ import annotations

from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class SlowCloseToxic(Toxic):
    """Data flows normally; only the FIN is delayed."""

    type_name = "slow_close"
    delay: int = 0

    async def on_close(self, ctx: ToxicContext) -> None:
        await ctx.sleep(self.delay / 1000.0)
