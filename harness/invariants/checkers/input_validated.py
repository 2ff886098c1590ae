"""input-validated (every run that sends them): a body the API's own schema refuses is refused, not run.

Judges every ``probe.malformed`` answer (stormproof.harness.load.malformed: a
write's body broken in one way its document refuses: a required property
missing, a wrong type, a NUL in a string, one character over a maxLength, a
number out of range, a value outside an enum, a date-time without offset, a
window that ends before it starts, a property the schema does not list, an
array for an object). Sent with a valid token of the tenant's manager, on the
tenant's own ids, under a fresh Idempotency-Key where the route takes one, so
the body is the only thing wrong with the request:

- a 2xx is ``malformed-accepted``: the write ran on a body its contract
  refuses (an appointment ending before it starts, a retention of 0 days);
- a 5xx while no fault was in place (and not a 503 shedding load with a
  Retry-After) is ``malformed-crashed``: the body got past validation and broke
  something further in (a NUL refused by PostgreSQL's text, a naive date-time
  compared with an aware one).

Any 4xx is a refusal (400 and 422 are the usual; the contract of the other
refusals is judged elsewhere); 429 and no answer are counted, not judged.
With no probe in the history nothing is judged (``malformed_judged`` 0): the
run's coverage then shows the promise "not exercised", and a run whose
scenario asked for this check is ``unknown``; every other run adds it and is
not held to it (run_plan.ALWAYS_CHECKS).

Found by a source-mutation sweep of the reference app (bench/mutation_sweep.py,
2026-12-05): each of its body validators removed, every scenario passed; the
load never sent a body the schema refuses.
"""

from __future__ import annotations

from collections import Counter

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import PROBE_MALFORMED
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._probes import FaultWindows, answer_class

__all__ = ["NAME", "check_input_validated"]

NAME = "input-validated"


@checker(NAME, "safety")
def check_input_validated(history: History, snapshot: Snapshot) -> Verdict:
    """Every malformed-body probe answered with a status is refused 4xx: never a 2xx, never an unexplained 5xx."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    faults = FaultWindows(history)
    outcomes: Counter[str] = Counter()
    per_case: Counter[str] = Counter()
    routes: set[str] = set()
    for invoke, completion in history.pairs_of(PROBE_MALFORMED):
        if completion is None:
            outcomes["none"] += 1
            continue
        case, field = str(invoke.args.get("case")), str(invoke.args.get("field") or "")
        route = str(invoke.args.get("route") or f"{invoke.args.get('method')} {invoke.args.get('path')}")
        kind = answer_class(invoke, completion, faults)
        if kind in ("none", "limited", "excused"):
            outcomes[kind] += 1
            continue
        outcomes["judged"] += 1
        per_case[case] += 1
        routes.add(route)
        what = f"{route} with {case}" + (f" ({field})" if field else "")
        facts = dict(tenant=invoke.tenant, route=route, case=case, field=field, status=completion.status)
        ops = (invoke.index, completion.index)
        if kind == "2xx":
            log.add("malformed-accepted", f"{what} was answered {completion.status}: the write ran on a body its "
                    "own schema refuses, where a 4xx was due", ops, **facts)
        elif kind == "5xx":  # any other status but a 2xx is a 4xx to answer_class (a refusal)
            problem = completion.result.get("problem")
            log.add("malformed-crashed", f"{what} was answered {completion.status}"
                    + (f" ({problem})" if problem else "") + " with no fault in place: the body got past "
                    "validation and broke the app, where a 4xx was due", ops, **facts)
    return log.verdict(malformed_judged=outcomes["judged"], per_case=dict(sorted(per_case.items())),
                       routes=len(routes), outcomes=dict(outcomes))
