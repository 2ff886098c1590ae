"""What the assigns and unassigns of each appointment left at a moment, where the history says so for sure.

Two checkers ask it: reads-current (an appointment read must answer the rep the
last acknowledged write left) and single-assignment (a refusal 409
appointment-already-assigned must be explained by an assignment that may have
been in place). Both need the same answer: the write the appointment's state at
some moment certainly comes from, or "ambiguous".

Every write that may have acted counts: the load's assigns and unassigns with a
2xx or no definite answer (``possible_span``), and the probes' POSTs on the same
routes (``probe_writes``), whose value is unknown. A keyed write may have acted
as early as its key was first sent (a retry or a replay under the key acted
then). A replayed 2xx wrote nothing new, so its value is unknown too.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import ASSIGN, UNASSIGN
from stormproof.harness.invariants.checkers._acted import probe_writes
from stormproof.harness.invariants.checkers._common import first_sent, possible_span
from stormproof.harness.invariants.timeline import INF

__all__ = ["AMBIGUOUS", "AssignTimeline", "Write"]

#: (began, ended, the rep it left assigned or None for nobody, ``...`` when unknown; its completion's index).
Write = tuple[float, float, object, "int | None"]
#: ``AssignTimeline.last_write``'s answer when another write may have acted in between.
AMBIGUOUS = "ambiguous"

_APPOINTMENT_WRITE = re.compile(r"/appointments/(?P<id>[^/?]+)/(?:assign|unassign)(?:\?|$)")


class AssignTimeline:
    """Per appointment, its writes by when they ended, and the earliest start among each write and those ending
    after it: the last write before a moment found by bisection, and whether any other write may have acted
    between that write's start and a later moment in O(1) (a scan per question was quadratic on hot
    appointments). Build it with ``history.view(AssignTimeline)``, shared by every checker."""

    __slots__ = ("_ordered",)

    def __init__(self, history: History) -> None:
        first = first_sent(history, ASSIGN, UNASSIGN)
        writes: dict[str, list[Write]] = defaultdict(list)
        for pair in history.pairs_of(ASSIGN, UNASSIGN):
            span = possible_span(pair)
            if span is None:
                continue
            invoke, completion = pair
            key = invoke.args.get("idempotency_key")
            began = min(span[0], first.get((invoke.tenant, key), INF)) if key is not None else span[0]
            value: object = ...  # unknown: no unambiguous value
            if completion is not None and completion.type == "ok" and not completion.result.get("replayed"):
                if invoke.f == ASSIGN:
                    value = str(invoke.args.get("rep_id"))
                elif invoke.f == UNASSIGN:
                    value = None
            writes[str(invoke.args.get("appointment_id"))].append(
                (began, span[1], value, completion.index if completion is not None else None))
        for _invoke, match, span in probe_writes(history, "POST", _APPOINTMENT_WRITE):
            writes[match.group("id")].append((span[0], span[1], ..., None))
        ordered: dict[str, tuple[list[float], list[Write], list[float]]] = {}
        for appointment, known in writes.items():
            known.sort(key=lambda w: w[1])
            later_start = [INF] * (len(known) + 1)
            for i in range(len(known) - 1, -1, -1):
                later_start[i] = min(known[i][0], later_start[i + 1])
            ordered[appointment] = ([w[1] for w in known], known, later_start)
        self._ordered = ordered

    def last_write(self, appointment: str, sent: float, answered: float) -> Write | str | None:
        """The write that the appointment's state between ``sent`` and ``answered`` certainly comes from: the last
        one that ended before ``sent``, when no other write may have acted from its start until ``answered``.
        None when no write of the appointment ended before ``sent``; ``AMBIGUOUS`` when another may have acted
        or that write's value is unknown."""
        entry = self._ordered.get(appointment)
        if entry is None:
            return None
        ends, known, later_start = entry
        q = bisect_left(ends, sent) - 1  # the write that ended last before ``sent``
        if q < 0:
            return None
        last = known[q]
        # Another write ending at or after the last one began: one ending before ``sent`` (sorted before it)
        # overlaps it for sure; one ending later overlaps the moment unless it began after ``answered``.
        if last[2] is ... or bisect_left(ends, last[0]) < q or later_start[q + 1] <= answered:
            return AMBIGUOUS
        return last
