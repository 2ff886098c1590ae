"""slicer: cut chunks into ~``average_size`` +/- ``size_variation`` byte pieces,
sleeping ``delay`` microseconds after each, to mimic fragmented TCP reads.

Upstream Toxiproxy accepts any integers here (its comment asks for a
variation below the average, but nothing enforces it), and clients such as
toxiproxy-node-client create slicers with a variation at or above the
average. So we accept them too, and keep every cut strictly inside the piece
being split, which upstream's arithmetic does not guarantee. Where upstream
would recurse forever or panic (an average of 0 or below, a piece of one byte
still above ``average + variation``), we pass the piece through whole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stormproof.harness.faults.toxics.base import Chunk, Emit, Toxic, ToxicContext
from stormproof.harness.faults.toxics.registry import register


@register
@dataclass(frozen=True, slots=True)
class SlicerToxic(Toxic):
    """Splits writes; sizes in bytes, delay in microseconds."""

    type_name = "slicer"
    go_int = "int"
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    def cut_points(self, size: int) -> list[int]:
        """Offsets [0, a, b, ..., size]: recursive halving like Toxiproxy, so
        pieces vary evenly with no small tail at either end."""
        if self.average_size <= 0:
            return [0, size]
        points = [0]
        stack = [(0, size)]
        while stack:  # iterative, depth-first, left to right
            start, end = stack.pop()
            if (end - start) - self.average_size <= self.size_variation or end - start <= 1:
                points.append(end)
                continue
            variation = self.size_variation
            jitter = random.randint(-variation, variation) if variation > 0 else 0
            # Clamped so that both halves are non-empty: with a variation at or above the
            # average a jittered midpoint could otherwise fall outside the piece.
            mid = min(end - 1, max(start + 1, start + (end - start) // 2 + jitter))
            stack.append((mid, end))
            stack.append((start, mid))
        return points

    async def pipe(self, chunk: Chunk, ctx: ToxicContext, emit: Emit) -> None:
        data = chunk.data
        points = self.cut_points(len(data))
        for start, end in zip(points, points[1:]):
            await emit(Chunk(data[start:end], chunk.timestamp))
            if self.delay > 0 and end < len(data):
                if not await ctx.sleep(self.delay / 1_000_000):
                    await emit(Chunk(data[end:], chunk.timestamp))  # removed: flush
                    return
