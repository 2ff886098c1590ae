"""refusals-explained (every run): a well-formed request is refused only as its route's contract allows.

server-errors-explained judges every 5xx; this judges every 4xx of the load's
own requests. The load sends well-formed requests (a valid body, a fresh
printable Idempotency-Key, a valid token of a user of the tenant that owns
the rows it names: its manager, or a rep where any user may call), so the
only refusals the contract (docs/API.md) gives them are the ones a state of
the data explains: 404 (no such row: tenant-isolation
judges the tenant's own rows; a list names no row, so its 404 is judged here,
unless it named another tenant in ``X-Company-Id``), 429 (a rate limit: rate-limit-enforced judges
it), the 409s of its route's table (a start's ``active-session-exists`` or
``consent-required``, an assign's ``appointment-already-assigned`` or
``rep-double-booked``, ...) and the transient ones of any write
(``resource-busy``; ``idempotency-key-in-flight`` under a key). Anything else
is ``refusal-outside-contract``: a 409 naming a problem its route never
answers, a 400 or 422 of a well-formed body, a 401 of a valid token, a 403 of
a user the route allows, a 405, 410, 413, 415...

Found 2026-12-05 by injecting wrong refusals into the reference app (a
middleware answering a random 400, 403, 409 or 422 to 12 % of the requests,
without running them) over seven scenarios: of 3,438 such answers, those to
session starts, appointment reads and unassigns, call submissions, webhook
deliveries and deletions were judged by no rule (0 of 176 start 409s, 0 of 49
call 422s): an app that refused a well-formed request for no reason passed,
as long as the refusal was not a 404 or a 5xx. A client told "no" where the
contract says "yes" lost its write as surely as a crash.

Explained besides:

- ``422 idempotency-key-mismatch`` when an earlier request of the tenant under
  that key was another route or another payload (the load reuses keys on
  purpose); ``400 idempotency-key-missing`` when no key was sent; ``401`` of a
  webhook delivery the load signed wrongly on purpose (``bad_signature``;
  job-applied-once judges those); ``400``, ``422`` of a signed delivery sent
  without its result or hash on purpose (``incomplete``; job-applied-once
  judges those too); ``422 confirmation-token-invalid`` of a
  confirmation sent with a wrong token on purpose (``wrong_token``);
- ``400``, ``403`` of an appointment list naming another tenant in
  ``X-Company-Id`` (an app may refuse the header; tenant-isolation judges
  what a 2xx answered);
- a 409 whose body names no problem: not judged (a backend's own wording),
  counted as ``unnamed_conflicts``.

Faults on the app's dependencies and processes explain none of these (a
dependency's failure is a 5xx, which server-errors-explained judges, or a
transient 409; a killed app answers nothing). Only a network fault on the
clients' own ``app`` link may cut a request's body on its way: a 400, 413 or
422 of a request in flight then (or in the 2 s after) is counted
``under_app_link_faults``, not judged. With every fix on, the 22 scenarios
refused 37,337 load requests (one run each, 2026-12-05), none outside this.

Requests that other rules judge answer by answer are left to them: stops
(single-active-session), consent grants (consent-before-processing),
retention (retention-enforced), dead-letter retries (dead-letter-accounting)
and every probe (tenant-isolation, idempotent-replay, authorization).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from stormproof.harness.history import History, Op
from stormproof.harness.history import vocabulary as v
from stormproof.harness.invariants.checkers._probes import FaultWindows
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["CONFLICTS", "NAME", "check_refusals_explained"]

NAME = "refusals-explained"

_START_CONFLICTS = frozenset(("active-session-exists", "consent-required"))
#: The load's requests judged here, with the 409 problems the contract gives each (docs/API.md, "Endpoints").
CONFLICTS: dict[str, frozenset[str]] = {
    v.SESSION_START: _START_CONFLICTS,
    v.LEGACY_START: _START_CONFLICTS,
    v.ASSIGN: frozenset(("appointment-already-assigned", "rep-double-booked")),
    v.UNASSIGN: frozenset(),
    v.APPOINTMENT_CREATE: frozenset(),
    v.APPOINTMENT_READ: frozenset(),
    v.APPOINTMENT_LIST: frozenset(),
    v.DEAD_LETTER_LIST: frozenset(),
    v.APPOINTMENT_DELETE: frozenset(),
    v.SESSION_READ: frozenset(),
    v.CALL_SUBMIT: frozenset(("consent-required",)),
    v.CALL_READ: frozenset(),
    v.CALL_REFRESH: frozenset(),
    v.WEBHOOK_DELIVER: frozenset(),
    v.DELETION_REQUEST: frozenset(),
    v.DELETION_CONFIRM: frozenset(("deletion-not-pending",)),
}
#: Routes that name no row: a 404 ("no such row") is no answer of theirs (found by the refusal sweep over the
#: fault scenarios, 2026-12-05: 0 of 20 list 404s were judged, 404 being taken for a deleted row).
_LISTS = frozenset((v.APPOINTMENT_LIST, v.DEAD_LETTER_LIST))
#: Answers a network fault on the clients' link may explain: a body that arrived cut.
_CUT_BODY = frozenset((400, 413, 422))


@checker(NAME, "safety")
def check_refusals_explained(history: History, snapshot: Snapshot) -> Verdict:
    """Every 4xx answer to a well-formed load request is one its route's contract gives it."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    pairs = history.pairs_of(*CONFLICTS)
    sent_under = _KeyUses(pairs)
    cut = FaultWindows(history, lambda fault, target: target == "app" and fault not in ("kill", "pause"))
    answered = refusals = unnamed = under_cut = 0
    by_route: Counter[str] = Counter()
    for invoke, completion in pairs:
        if completion is None:
            continue
        status = completion.status
        if not status:
            continue
        answered += 1
        if status < 400 or status >= 500:
            continue
        refusals += 1
        problem = completion.result.get("problem")
        if status == 409 and problem is None:
            unnamed += 1
            continue
        if _explained(invoke, completion, status, problem, sent_under):
            continue
        if status in _CUT_BODY and cut and cut.may_explain(invoke.time_ns, completion.time_ns):
            under_cut += 1
            continue
        by_route[invoke.f] += 1
        allowed = sorted(CONFLICTS[invoke.f])
        log.add("refusal-outside-contract",
                f"a well-formed {invoke.f} was answered {status}" + (f" {problem}" if problem else "")
                + ": its contract refuses it only with 404, 429"
                + (f", 409 {' or '.join(allowed)}" if allowed else "")
                + " or a transient 409 (resource-busy, idempotency-key-in-flight)",
                (invoke.index, completion.index), tenant=invoke.tenant, f=invoke.f, status=status, problem=problem)
    return log.verdict(answers_judged=answered, refusals=refusals, unnamed_conflicts=unnamed,
                       under_app_link_faults=under_cut,
                       unexplained_by_operation=dict(sorted(by_route.items())))


class _KeyUses:
    """(tenant, Idempotency-Key) -> every (sent, f, payload_fp) under it; built at the first 422 mismatch
    (rare: a pass over every keyed request of a million-op history is not paid for nothing)."""

    def __init__(self, pairs: list[tuple[Op, Op | None]]) -> None:
        self._pairs = pairs
        self._uses: dict[tuple[object, object], list[tuple[int, str, object]]] | None = None

    def get(self, key: tuple[object, object]) -> list[tuple[int, str, object]]:
        if self._uses is None:
            self._uses = defaultdict(list)
            for invoke, _ in self._pairs:
                sent = invoke.args.get("idempotency_key")
                if sent is not None:
                    self._uses[(invoke.tenant, sent)].append((invoke.time_ns, invoke.f, invoke.args.get("payload_fp")))
        return self._uses.get(key, [])


def _explained(invoke: Op, completion: Op, status: int, problem: object, sent_under: _KeyUses) -> bool:
    """Whether the contract gives this refusal to this request (the faults aside)."""
    args = invoke.args
    if status == 404:
        return invoke.f not in _LISTS or "header_tenant" in args  # another tenant's header may read as no such one
    if status == 429:
        return True
    key = args.get("idempotency_key")
    if status == 409:
        if problem in CONFLICTS[invoke.f] or problem == "resource-busy":
            return True
        return problem == "idempotency-key-in-flight" and key is not None
    if status == 422 and problem == "idempotency-key-mismatch" and key is not None:
        # Another route or payload under the key, sent before this answer: the load reuses keys on purpose.
        mine = (invoke.f, args.get("payload_fp"))
        return any(sent < completion.time_ns and (f, fp) != mine
                   for sent, f, fp in sent_under.get((invoke.tenant, key)))
    if status == 400 and problem == "idempotency-key-missing":
        return key is None
    if status == 401:
        return invoke.f == v.WEBHOOK_DELIVER and "bad_signature" in args
    if status in (400, 422) and invoke.f == v.WEBHOOK_DELIVER and "incomplete" in args:
        return True  # a completion without its result or hash, sent on purpose: job-applied-once judges it
    if status == 422 and problem == "confirmation-token-invalid":
        return invoke.f == v.DELETION_CONFIRM and "wrong_token" in args
    if status in (400, 403):
        return invoke.f == v.APPOINTMENT_LIST and "header_tenant" in args
    return False
