"""Pausing CPython's cyclic garbage collector while building big acyclic structures.

Loading a history or building its views allocates millions of small tuples
and ops while millions more are alive; each allocation burst triggers
collections that rescan everything alive, which made building the pair views
of a 1,000,000-op history about 9 times slower (1.9 s against 0.2 s,
bench/bench_checkers.py). These structures hold no reference cycles, so
nothing is lost by pausing; reference counting still frees memory as usual.

Pausing alone only postponed the cost: the collector counts allocations while
it is off, so the first allocation after the pause ran a young collection of
everything the block had allocated and kept (the ops of a loaded history, the
views and indexes of every checker): about 5% of ``check_all`` on 300k ops,
one scan of several hundred thousand objects that are all alive. So the
outermost pause ends by moving what the young generations hold straight into
the oldest one (``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no
scan). Nothing escapes collection: a cycle made during the block is still
found, by the next full collection instead of a young one. This is skipped
when anything is frozen already (``gc.get_freeze_count()``), so as not to
unfreeze what another part of the process froze on purpose.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic GC for the block, restoring its previous state after (nesting-safe)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()  # the young generations' objects, kept by the block: to the oldest one, unscanned
                gc.unfreeze()
            gc.enable()
