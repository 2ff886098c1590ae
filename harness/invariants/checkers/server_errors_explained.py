"""server-errors-explained (every run, plan E5): no request is answered 5xx while no fault is in place.

The error-rate SLO tolerates 1 % of errors and is reported apart from the
verdict (a slow machine's timeouts must not fail a release). A server error
is not a slow machine: with every dependency up and reachable, a correct app
answers each request with a success or a definite refusal, never a 500. So
every client answer is judged here, whatever its route: a 5xx whose request
overlapped no fault of the schedule (nor the few seconds after one, while
connections broken by it are found and replaced) is ``unexplained-server-error``.

Found by an outside bug (an unassign that raised on an appointment with no
active assignment): assignment-storm answered 16 % of its requests 500 and
passed, since no invariant of it judged an unassign's answer.

A 503 that carries a Retry-After is the app shedding load on purpose ("come
back later"): counted (``shed``), not a violation. Answers sent while the load
was stopping, and requests that got no answer, are not 5xx answers.
"""

from __future__ import annotations

from collections import Counter

from stormproof.harness.history import History
from stormproof.harness.invariants.checkers._answers import answers
from stormproof.harness.invariants.checkers._probes import FaultWindows, answer_class
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_server_errors_explained"]

NAME = "server-errors-explained"


@checker(NAME, "safety")
def check_server_errors_explained(history: History, snapshot: Snapshot) -> Verdict:
    """Every 5xx answer to a client overlaps a fault window (or sheds load with a Retry-After)."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    seen = answers(history)
    judged = sum(seen.totals.values())
    if judged == 0:
        log.cannot("no client request was answered")
        return log.verdict(answers_judged=0)
    faults = FaultWindows(history)
    excused = shed = 0
    by_route: Counter[str] = Counter()
    for invoke, completion in seen.server_errors:
        status = completion.status or 0
        kind = answer_class(invoke, completion, faults)  # the probes' own two excuses, so the rules agree
        if kind == "limited":  # a 503 with a Retry-After: load shed
            shed += 1
        elif kind == "excused":  # under a fault, or in the AFTER_FAULT_S after it
            excused += 1
        else:
            by_route[invoke.f] += 1
            problem = completion.result.get("problem")
            log.add("unexplained-server-error",
                    f"{invoke.f} was answered {status}" + (f" ({problem})" if problem else "")
                    + " with no fault in place: with its dependencies up, a request gets a success or a "
                      "definite refusal, never a server error", (invoke.index, completion.index),
                    tenant=invoke.tenant, f=invoke.f, status=status)
    return log.verdict(answers_judged=judged, server_errors=len(seen.server_errors), under_faults=excused,
                       shed=shed, unexplained_by_operation=dict(sorted(by_route.items())))
