"""Requests that may have acted on a route, whoever sent them: the load's named operations are not the only writers.

The load sends named operations (``session.stop``, ``call.refresh`` ...) and the
checkers read them by name. The probes do not: they derive their routes from the
app's OpenAPI document (``stormproof.harness.load.probes``), so a probe may stop a
session, unassign an appointment or refresh a call under its own name
(``probe.idempotency``, ``probe.setup`` ...), with the request in its args
(``method``, ``path``). A checker that reasons about a state change must count
those writes too, or a correct app looks broken (three false alarms came from
this: a probe's stop, a probe's unassign, a probe's refresh).

Only a write that may have acted counts (``possible_span``: a 2xx, or no
definite answer, which may have acted at any time after its invoke); a refusal
such as a cross-tenant probe's 404 did nothing, and neither did a replayed 2xx
(``Idempotent-Replayed``: the idempotency probe's second use of a key answers
what the first did); counting them would hide a real violation.
"""

from __future__ import annotations

import re

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import PROBE, PROBE_AUTHZ, PROBE_IDEMPOTENCY, PROBE_SETUP

from ._common import possible_span

__all__ = ["PROBES", "ProbeWrite", "probe_writes"]

#: Every operation a probe records: each carries the request it sent in ``args["method"]`` and ``args["path"]``.
PROBES = (PROBE, PROBE_IDEMPOTENCY, PROBE_AUTHZ, PROBE_SETUP)

#: (the invoke, the route's match on its path, (invoke time, completion time or INF)).
ProbeWrite = tuple[Op, re.Match[str], tuple[float, float]]


def probe_writes(history: History, method: str, path: re.Pattern[str]) -> list[ProbeWrite]:
    """The probes' ``method`` requests whose path ``path`` matches (searched, so a query string may follow),
    that may have acted, in history order; the match names the ids the path carries."""
    found: list[ProbeWrite] = []
    for pair in history.pairs_of(*PROBES):
        invoke = pair[0]
        if str(invoke.args.get("method") or "").upper() != method:
            continue
        match = path.search(str(invoke.args.get("path") or ""))
        if match is None:
            continue
        completion = pair[1]
        if completion is not None and completion.type == "ok" and completion.result.get("replayed"):
            continue  # the stored answer of an earlier request with its key: this one did nothing
        span = possible_span(pair)
        if span is not None:
            found.append((invoke, match, span))
    return found
