"""authorization: only the right caller gets an answer (docs/API.md, plan D2's tenancy from the token).

Judges every ``probe.authz`` answer (probes derived from the OpenAPI
document: every operation that declares a security requirement, with the
roles it names) against what the caller may get:

- no token, an expired token, a forged token (signed with another key), a
  ``lapsed`` token (one the load sent while it was live, ``lapsing``, and
  sends again once it has expired: an app that verified it once and keeps
  the answer serves it still): 401, on every route, writes included. A 2xx is ``unauthenticated-success``;
  any other refusal (403, 404, 400, ...) is ``wrong-refusal``: the route
  looked at something before it knew who asked;
- a rep on a route that requires the ``manager`` role: 403. A 2xx is
  ``forbidden-success``; another status is ``wrong-refusal``;
- a manager on a read: never 401 or 403 (``rightful-caller-refused``);
- any of them: never a 5xx (``server-error``), unless a fault was active.

No answer and 429 are counted, not judged; nor are the answers to a ``lapsing``
token (it may expire on the way), but a 5xx. The verdict counts the lapsed probes
whose token had been served before (``lapsed_after_served``): only those put the
expiry of a known token at risk. With no probe at all the verdict
is ``unknown`` ("not exercised"). The verdict names the manager routes that
were probed but never by a rep (``manager_routes_without_rep``): their 403 was
not put at risk in this run.
"""

from __future__ import annotations

from collections import Counter

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import PROBE_AUTHZ
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._probes import FaultWindows, answer_class

__all__ = ["NAME", "check_authorization", "expected_status", "lapsed_after_served"]

NAME = "authorization"


def expected_status(role: object, required_roles: object) -> int | None:
    """The status the contract names for ``role`` on a route requiring ``required_roles``; None: not a refusal."""
    if role in ("none", "expired", "forged", "lapsed"):
        return 401
    if role == "rep" and "manager" in (required_roles or ()):
        return 403
    return None


@checker(NAME, "safety")
def check_authorization(history: History, snapshot: Snapshot) -> Verdict:
    """Unauthenticated callers get 401, reps 403 on manager routes, managers are served, nobody a 5xx."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    faults = FaultWindows(history)
    outcomes: Counter[str] = Counter()
    per_role: Counter[str] = Counter()
    routes: set[object] = set()
    manager_routes: set[str] = set()
    rep_probed: set[str] = set()
    for invoke, completion in history.pairs_of(PROBE_AUTHZ):
        if completion is None:
            continue
        role = invoke.args.get("role")
        per_role[str(role)] += 1
        routes.add(invoke.args.get("route"))
        kind = answer_class(invoke, completion, faults)
        if kind in ("none", "limited", "excused"):
            outcomes[kind] += 1
            continue
        route = invoke.args.get("route") or f"{invoke.args.get('method')} {invoke.args.get('path')}"
        if "manager" in (invoke.args.get("required_roles") or ()):
            manager_routes.add(str(route))
            if role == "rep":
                rep_probed.add(str(route))
        facts = dict(tenant=invoke.tenant, role=role, route=route, status=completion.status)
        ops = (invoke.index, completion.index)
        expected = expected_status(role, invoke.args.get("required_roles"))
        if role == "lapsed":
            facts["past_exp_s"] = invoke.args.get("past_exp_s")
        if kind == "5xx":
            log.add("server-error", f"{route} called by {role} answered {completion.status}", ops, **facts)
        elif role == "lapsing":
            pass  # priming: a token close to its exp may be refused on the way
        elif role == "lapsed" and kind == "2xx":
            log.add("unauthenticated-success",
                    f"{route} served a token {invoke.args.get('past_exp_s')} s past its exp ({completion.status}): "
                    "its expiry was not checked on this request", ops, **facts)
        elif expected is None:
            if completion.status in (401, 403):
                log.add("rightful-caller-refused", f"{route} refused a {role} with {completion.status}", ops,
                        **facts)
        elif kind == "2xx":
            name = "unauthenticated-success" if expected == 401 else "forbidden-success"
            log.add(name, f"{route} called by {role} answered {completion.status}, not {expected}", ops, **facts)
        elif completion.status != expected:
            log.add("wrong-refusal", f"{route} called by {role} answered {completion.status}, not {expected}",
                    ops, **facts)
        outcomes["judged"] += 1
    if not per_role:
        log.cannot("not exercised: no authorization probe in the history")
    return log.verdict(probes=sum(per_role.values()), per_role=dict(per_role), outcomes=dict(outcomes),
                       routes=len(routes), manager_routes_without_rep=sorted(manager_routes - rep_probed),
                       lapsed_after_served=lapsed_after_served(history))


def lapsed_after_served(history: History) -> int:
    """Lapsed probes answered (a status, not 429) whose token an earlier ``lapsing`` probe had been served
    with (2xx answered before the lapsed one was sent): the probes that put a known token's expiry at risk."""
    served: dict[object, int] = {}
    lapsed: list[tuple[object, int]] = []
    for invoke, completion in history.pairs_of(PROBE_AUTHZ):
        if completion is None or not completion.status or completion.status == 429:
            continue
        role = invoke.args.get("role")
        if role == "lapsing" and 200 <= completion.status < 300:
            token = invoke.args.get("token_id")
            if token not in served or completion.time_ns < served[token]:
                served[token] = completion.time_ns
        elif role == "lapsed":
            lapsed.append((invoke.args.get("token_id"), invoke.time_ns))
    return sum(1 for token, sent in lapsed if token in served and served[token] < sent)
