"""retention-enforced: after a retention run, nothing of the tenant older than its policy remains (plan F1).

For each tenant whose retention run was acknowledged (``retention.run``
``ok``), the final state must hold none of its calls created more than
``call_days`` before that run began, and none of its appointments that ended
more than ``appointment_days`` before it. The policy is the tenant's
``retention_policies`` row, or the defaults (calls 90 days, appointments 365)
without one. Rows created after the run cannot be older than its cutoff, so
the latest acknowledged run of a tenant is the one judged. A run skips the
rows live traffic holds (SKIP LOCKED, left for the next run): an expired row
that a request naming it (the load's, or a probe's that learnt an old row from
a list) held during every run that found it expired is counted
(``expired_held``), not a violation.

Each run deletes every expired row, not only a batch of them (``run-left-expired``): the final state
alone cannot tell, since a later run clears what an earlier one left. A run's
answer counts the calls and appointments it deleted (``counts``); a tenant's
seeded rows (``args.rows``) past every policy it may have read (the defaults,
its final policy, every PUT's days, plus ``_SLACK_DAYS``), named by no other
request before the run ended (which may have held or deleted them), are
expired at its start, and the runs of the tenant before it deleted at most
their counts of them. So a run that no other run of its tenant overlapped, all
of whose predecessors were acknowledged with counts, must count at least the
expired rows less those earlier counts (a run that stopped after one full
batch, in lifecycle-under-load's batches of one row, counts one of two). A
periodic retention (a ``lifecycle.enforce_retention`` task record) deletes
rows no answer counts: the rule then judges nothing.

The periodic retention itself (plan F1's cleanup task: every company, no
request asks) is judged from its task records: after the latest run that
succeeded and began after each of a tenant's policy PUTs was answered, no
row of that tenant past its retention when the run began is left
(``scheduled-<kind>-kept``; held rows aside, as above). A tenant on the
defaults is judged as one with a policy of its own: a schedule that visits
only the companies with a policy row leaves its rows.

And only those: a row still within its own tenant's retention must survive
every run, its tenant's and every other tenant's. The rows known to exist are
the ones a run's (or a policy read's) invoke names in ``args.rows`` (``{"kind", "id",
"company_id", "at"}``, the seed's old calls and appointments); one of them
younger than its tenant's policy at the latest acknowledged run, and gone from
the final state, is ``retained-<kind>-deleted``. An expired row kept cites the
tenant's latest acknowledged run (the request that had to delete it), so that
``stormproof reproduce`` has a request to replay. Every answer of a run is
judged too: the caller is a manager, so a refusal (4xx other than 429) or a
5xx outside a fault is ``retention-run-refused``.

The policy route is judged as well (plan F1: per-tenant policies). A manager's
PUT /retention-policy answers 200 with the days it was sent
(``policy-misanswered`` otherwise; a refusal or a 5xx outside a fault is
``policy-refused``), and the tenant's final policy row holds them
(``policy-lost``: no row, or other days), unless a PUT of other days may have
acted after it. A manager's GET answers the policy in force: the days of a PUT
answered before the read was sent (when every PUT of the tenant sent the same
days), else the final row's, else the defaults; other days are
``policy-misread``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import (APPOINTMENT_CREATE, CALL_SUBMIT, NEMESIS, RETENTION_POLICY_PUT,
                                                   RETENTION_POLICY_READ, RETENTION_RUN)
from stormproof.harness.invariants.checkers._common import acknowledged
from stormproof.harness.invariants.checkers._probes import FaultWindows, answer_class
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.timeline import INF
from stormproof.harness.invariants.verdict import Verdict

__all__ = ["DEFAULT_APPOINTMENT_DAYS", "DEFAULT_CALL_DAYS", "NAME", "check_retention_enforced"]

NAME = "retention-enforced"
DEFAULT_CALL_DAYS = 90
DEFAULT_APPOINTMENT_DAYS = 365
_DAY = 86_400.0
#: Days beyond every policy a run may have read before a seeded row counts as certainly expired: the seed may
#: store a policy no history shows (the reference seed stores its short policy a day longer until the load sets it).
_SLACK_DAYS = 2.0
#: The reference app's periodic retention task: its deletions are answered to no one.
_PERIODIC_TASK = "lifecycle.enforce_retention"
#: Seconds of slack between the app's clock (a periodic run's times) and the load's (its requests').
_CLOCK_SLACK_S = 1.0


@checker(NAME, "safety")
def check_retention_enforced(history: History, snapshot: Snapshot) -> Verdict:
    """No call or appointment older than its tenant's retention survives an acknowledged retention run."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    runs: dict[object, float] = {}
    spans: dict[str, list[tuple[float, float, float]]] = {}  # company -> (began wall, invoke ns, completion ns)
    pairs = history.pairs_of(RETENTION_RUN)
    _judge_answers(log, history, pairs)
    cite: dict[str, tuple[int, int]] = {}  # company -> its latest acknowledged run (invoke, completion)
    for invoke, completion in acknowledged(pairs):
        assert completion is not None
        company = completion.result.get("company_id") or invoke.tenant
        if str(company) not in runs or invoke.wall >= runs[str(company)]:
            cite[str(company)] = (invoke.index, completion.index)
        runs[str(company)] = max(runs.get(str(company), 0.0), invoke.wall)
        spans.setdefault(str(company), []).append((invoke.wall, invoke.time_ns, completion.time_ns))
    calls, appointments = snapshot.table("calls"), snapshot.table("appointments")
    if calls is None or appointments is None:
        log.cannot("calls or appointments not captured: retention not checked")
        return log.verdict(runs=len(runs))
    policies = {str(row.get("company_id")): row for row in snapshot.table("retention_policies") or ()}
    if snapshot.table("retention_policies") is not None:
        _judge_policy_route(log, history, policies)
    kept = held = 0
    expired: list[tuple[str, str, str, Row, float, float, float]] = []  # company, kind, column, row, at, days, began
    for company, began in runs.items():
        call_days = _policy_days(policies, company, "call")
        appointment_days = _policy_days(policies, company, "appointment")
        for kind, rows, column, days in (("call", calls, "created_at", call_days),
                                         ("appointment", appointments, "ends_at", appointment_days)):
            cutoff = began - days * _DAY
            for row in rows:
                at = row.get(column)
                if str(row.get("company_id")) == company and isinstance(at, (int, float)) and at < cutoff:
                    expired.append((company, kind, column, row, float(at), days, began))
    touching = _touching(history, {str(item[3].get("id")) for item in expired}) if expired else {}
    for company, kind, column, row, at, days, began in expired:
        if _held_at_every_run(spans[company], at + days * _DAY, touching.get(str(row.get("id")), ())):
            held += 1
            continue
        kept += 1
        log.add(f"expired-{kind}-kept",
                f"{kind} {row.get('id')} of {company} ({column} {(began - at) / _DAY:.0f} days before "
                f"the retention run) outlived its {days:.0f}-day retention", cite.get(company, ()),
                badness=(began - days * _DAY - at) / _DAY, company_id=company, row_id=row.get("id"))
    periodic = [row for row in snapshot.table("task_records") or () if row.get("name") == _PERIODIC_TASK]
    scheduled, latest_scheduled = _scheduled_left_expired(log, history, periodic, policies, calls, appointments)
    deleted = _retained_deleted(log, pairs + history.pairs_of(RETENTION_POLICY_READ),
                                max([*runs.values(), *latest_scheduled], default=None), policies,
                                {"call": {row.get("id") for row in calls},
                                 "appointment": {row.get("id") for row in appointments}})
    counted = 0 if periodic else _runs_left_expired(log, history, pairs, policies)
    return log.verdict(runs=len(runs), expired_kept=kept, expired_held=held, retained_deleted=deleted,
                       runs_counted_judged=counted, scheduled_runs_judged=scheduled)


def _runs_left_expired(log: ViolationLog, history: History, pairs: list, policies: dict[str, Row]) -> int:
    """Each run no other run of its tenant overlapped, after predecessors all acknowledged with counts, counts
    at least the tenant's seeded rows certainly expired at its start, less what those predecessors counted.
    Returns how many runs were judged."""
    seeded: dict[str, list[Mapping[str, Any]]] = {}
    ids: set[str] = set()
    for invoke, _ in pairs:
        for row in invoke.args.get("rows") or ():
            if (isinstance(row, Mapping) and row.get("kind") in ("call", "appointment")
                    and isinstance(row.get("at"), (int, float)) and str(row.get("id")) not in ids):
                ids.add(str(row.get("id")))
                seeded.setdefault(str(row.get("company_id")), []).append(row)
    if not seeded:
        return 0
    sent: dict[str, list[Mapping[str, Any]]] = {}
    for invoke, _ in history.pairs_of(RETENTION_POLICY_PUT):
        sent.setdefault(str(invoke.tenant), []).append(invoke.args)
    touching = _touching(history, ids)
    by_tenant: dict[str, list] = {}
    for invoke, completion in pairs:
        by_tenant.setdefault(str(invoke.tenant), []).append((invoke, completion))
    judged = 0
    for company, runs in by_tenant.items():
        if company not in seeded:
            continue
        days = {kind: max([float(default), _policy_days(policies, company, kind)]
                          + [float(a[key]) for a in sent.get(company, ()) if isinstance(a.get(key), (int, float))])
                + _SLACK_DAYS
                for kind, key, default in (("call", "call_days", DEFAULT_CALL_DAYS),
                                           ("appointment", "appointment_days", DEFAULT_APPOINTMENT_DAYS))}
        runs.sort(key=lambda pair: pair[0].time_ns)
        before = {"call": 0, "appointment": 0}  # what the runs before this one counted
        for n, (invoke, completion) in enumerate(runs):
            counts = None if completion is None or completion.type != "ok" else completion.result.get("counts")
            if not isinstance(counts, Mapping):
                break  # it may have deleted rows no answer counts: the runs after it are not judged
            alone = not any(other.time_ns < completion.time_ns and (done is None or done.time_ns > invoke.time_ns)
                            for m, (other, done) in enumerate(runs) if m != n)
            if alone:
                judged += 1
                for kind in ("call", "appointment"):
                    expired = [row for row in seeded[company] if row.get("kind") == kind
                               and float(row["at"]) < invoke.wall - days[kind] * _DAY
                               and not any(start < completion.time_ns
                                           for start, _ in touching.get(str(row.get("id")), ()))]
                    got = counts.get(f"{kind}s")
                    if isinstance(got, int) and got < len(expired) - before[kind]:
                        log.add("run-left-expired",
                                f"a retention run of {company} deleted {got} {kind}s, but {len(expired)} of its "
                                f"seeded {kind}s were past every policy it may have read and the runs before it "
                                f"deleted {before[kind]}: it left expired rows behind",
                                (invoke.index, completion.index), badness=len(expired) - before[kind] - got,
                                company_id=company, kind=kind, deleted=got, expired=len(expired),
                                deleted_before=before[kind])
            for kind in before:
                got = counts.get(f"{kind}s")
                before[kind] += got if isinstance(got, int) else 0
    return judged


def _periodic_span(record: Row) -> tuple[float, float, str] | None:
    """A periodic retention task's last try, (began, ended) in unix seconds and how it ended, once it has.

    Ended any way: a run that failed (dead-lettered) owes the rows it left as much as one that succeeded; a
    schedule whose every run fails (a crash in the run) enforces nothing."""
    tries = record.get("tries")
    starts = [t.get("at") for t in tries if isinstance(t, Mapping) and t.get("event") == "start"] \
        if isinstance(tries, list) else []
    finished = record.get("finished_at")
    if not starts or not isinstance(starts[-1], (int, float)) or not isinstance(finished, (int, float)):
        return None
    return float(starts[-1]), float(finished), str(record.get("state"))


def _scheduled_left_expired(log: ViolationLog, history: History, periodic: list[Row], policies: dict[str, Row],
                            calls: Iterable[Row], appointments: Iterable[Row]) -> tuple[int, list[float]]:
    """The app's periodic retention (plan F1: the cleanup task, every company, no request asks): after the
    latest run that ended (succeeded, or failed for good), no row of any tenant past its retention when that
    run began is left.

    A tenant is judged by the latest such run that began after each of its policy PUTs was answered (before,
    the run may have read another policy; a PUT never answered leaves the tenant unjudged), with a second of
    slack each way between the app's clock and the load's. A row that a request naming it held while the run
    went is left for the next run (SKIP LOCKED), as is a row the load created once the run had begun. Returns
    (tenants judged, the runs' begin times)."""
    spans = sorted(span for span in map(_periodic_span, periodic) if span is not None)
    if not spans:
        return 0, []
    put_done: dict[str, float] = {}
    unanswered: set[str] = set()
    for invoke, completion in history.pairs_of(RETENTION_POLICY_PUT):
        if completion is None:
            unanswered.add(str(invoke.tenant))
        else:
            put_done[str(invoke.tenant)] = max(put_done.get(str(invoke.tenant), 0.0), completion.wall)
    run_of: dict[str, tuple[float, float, str]] = {}  # company -> the run it is judged by
    expired: list[tuple[str, str, str, Row, float, float]] = []  # company, kind, column, row, at, days
    for kind, rows, column in (("call", calls, "created_at"), ("appointment", appointments, "ends_at")):
        for row in rows:
            company, at = str(row.get("company_id")), row.get(column)
            if company in unanswered or not isinstance(at, (int, float)):
                continue
            if company not in run_of:
                after = put_done.get(company, float("-inf")) + _CLOCK_SLACK_S
                run = next((span for span in reversed(spans) if span[0] >= after), None)
                if run is None:
                    unanswered.add(company)  # no run to judge it by
                    continue
                run_of[company] = run
            days = _policy_days(policies, company, kind)
            if at < run_of[company][0] - days * _DAY - _CLOCK_SLACK_S:
                expired.append((company, kind, column, row, float(at), days))
    held = _touching(history, {str(item[3].get("id")) for item in expired}, wall=True) if expired else {}
    made = {str(completion.result.get("id")): invoke.wall  # rows the load created, when it asked
            for invoke, completion in history.pairs_of(APPOINTMENT_CREATE, CALL_SUBMIT)
            if completion is not None and isinstance(completion.result, Mapping) and completion.result.get("id")}
    for company, kind, column, row, at, days in expired:
        began, finished, state = run_of[company]
        if made.get(str(row.get("id")), float("-inf")) > began - _CLOCK_SLACK_S:
            continue  # created (dated in the past) after the run began: the next run's to delete
        if any(s <= finished + _CLOCK_SLACK_S and e >= began - _CLOCK_SLACK_S
               for s, e in held.get(str(row.get("id")), ())):
            continue
        log.add(f"scheduled-{kind}-kept",
                f"{kind} {row.get('id')} of {company} ({column} {(began - at) / _DAY:.0f} days before the "
                f"periodic retention run that began at {began:.0f} and ended {state}) outlived its "
                f"{days:.0f}-day retention: the scheduled cleanup left it", (),
                badness=(began - days * _DAY - at) / _DAY, company_id=company, row_id=row.get("id"), run_state=state)
    judged = len(run_of)
    return judged, [began for began, _, state in spans if state == "succeeded"]


def _touching(history: History, ids: set[str], *, wall: bool = False) -> dict[str, list[tuple[float, float]]]:
    """Row id -> when requests naming it (an id in the args, or in a probe's path) were in flight: from the
    invoke to the answer, or to the end of time for a request never answered. In the load's clock (ns), or
    with ``wall`` in unix seconds (to set beside the app's own times: a periodic run's)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for invoke, completion in history.pairs():
        if invoke.process == NEMESIS:
            continue
        named = {str(value) for value in invoke.args.values() if isinstance(value, str)}
        named.update(str(invoke.args.get("path") or "").split("?", 1)[0].split("/"))
        hit = named & ids
        if hit:
            if wall:
                span = (invoke.wall, INF if completion is None else completion.wall)
            else:
                span = (invoke.time_ns, INF if completion is None else completion.time_ns)
            for row_id in hit:
                found.setdefault(row_id, []).append(span)
    return found


def _held_at_every_run(runs: list[tuple[float, float, float]], expires: float,
                       held: Iterable[tuple[float, float]]) -> bool:
    """Whether a request naming the row was in flight during every run that found it expired (``expires``:
    the wall time from which it is past its retention).

    A run deletes in batches of rows it locks with SKIP LOCKED: a row that live traffic holds (a probe
    granting a consent on an old appointment it learnt from a list, say) is left for the next run, not
    waited for. Only a run with no request on the row in flight had to delete it; a row every run found
    held is counted (``expired_held``), not a violation.
    """
    spans = list(held)
    return all(any(s <= end and e >= start for s, e in spans) for began, start, end in runs if began > expires)


def _policy_days(policies: dict[str, Row], company: str, kind: str) -> float:
    policy = policies.get(company, {})
    if kind == "call":
        return float(policy.get("call_days") or DEFAULT_CALL_DAYS)
    return float(policy.get("appointment_days") or DEFAULT_APPOINTMENT_DAYS)


def _retained_deleted(log: ViolationLog, pairs: list, latest: float | None, policies: dict[str, Row],
                      present: dict[str, set[object]]) -> int:
    """Rows the runs name that were within their own tenant's retention, yet are gone."""
    if latest is None:
        return 0
    known: dict[object, tuple[Mapping[str, Any], tuple[int, ...]]] = {}
    for invoke, _ in pairs:
        for row in invoke.args.get("rows") or ():
            if isinstance(row, Mapping) and row.get("kind") in present:
                known.setdefault(row.get("id"), (row, (invoke.index,)))
    deleted = 0
    for row_id, (row, ops) in known.items():
        kind, company, at = str(row.get("kind")), str(row.get("company_id")), row.get("at")
        days = _policy_days(policies, company, kind)
        if not isinstance(at, (int, float)) or latest - at >= days * _DAY or row_id in present[kind]:
            continue
        deleted += 1
        log.add(f"retained-{kind}-deleted", f"{kind} {row_id} of {company} was {(latest - at) / _DAY:.0f} days old "
                f"at the last retention run, within its {days:.0f}-day retention, yet it is gone", ops,
                company_id=company, row_id=row_id)
    return deleted


_DAYS = ("call_days", "appointment_days")


def _judge_policy_route(log: ViolationLog, history: History, policies: dict[str, Row]) -> None:
    """Every answer of PUT and GET /retention-policy, and the row an acknowledged PUT leaves."""
    faults = FaultWindows(history)
    puts = history.pairs_of(RETENTION_POLICY_PUT)
    sent: dict[str, set[tuple[object, ...]]] = {}  # tenant -> every days a PUT of it sent
    for invoke, _ in puts:
        sent.setdefault(str(invoke.tenant), set()).add(tuple(invoke.args.get(k) for k in _DAYS))
    settled: dict[str, tuple[tuple[object, ...], float]] = {}  # tenant -> (the days, first answered) when all agree
    for invoke, completion in puts:
        if completion is None:
            continue
        tenant, days = str(invoke.tenant), tuple(invoke.args.get(k) for k in _DAYS)
        ops = (invoke.index, completion.index)
        kind = answer_class(invoke, completion, faults)
        if kind in ("4xx", "5xx"):
            log.add("policy-refused", f"a manager's PUT /retention-policy answered {completion.status}", ops,
                    tenant=tenant, status=completion.status)
        if completion.type != "ok":
            continue
        answered = tuple(completion.result.get(k) for k in _DAYS)
        if answered != days:
            log.add("policy-misanswered", f"PUT /retention-policy sent days {days} and answered {answered}", ops,
                    tenant=tenant, sent=list(days), answered=list(answered))
        if len(sent[tenant]) == 1:
            settled[tenant] = (days, min(settled.get(tenant, (days, INF))[1], completion.time_ns))
            row = policies.get(tenant)
            stored = None if row is None else tuple(row.get(k) for k in _DAYS)
            if stored != days:
                log.add("policy-lost", f"PUT /retention-policy was answered {completion.status} for days {days}, "
                        f"but the tenant's final policy is {stored or 'absent'}", ops, tenant=tenant,
                        sent=list(days), stored=None if stored is None else list(stored))
    for invoke, completion in history.pairs_of(RETENTION_POLICY_READ):
        if completion is None:
            continue
        tenant = str(invoke.tenant)
        ops = (invoke.index, completion.index)
        if answer_class(invoke, completion, faults) in ("4xx", "5xx"):
            log.add("policy-refused", f"a manager's GET /retention-policy answered {completion.status}", ops,
                    tenant=tenant, status=completion.status)
        if completion.type != "ok":
            continue
        if tenant in sent:
            if tenant not in settled or settled[tenant][1] >= invoke.time_ns:
                continue  # PUTs of other days, or none answered before this read: either policy may be read
            expected = settled[tenant][0]
        else:
            row = policies.get(tenant)
            expected = (DEFAULT_CALL_DAYS, DEFAULT_APPOINTMENT_DAYS) if row is None \
                else tuple(row.get(k) for k in _DAYS)
        answered = tuple(completion.result.get(k) for k in _DAYS)
        if answered != expected:
            log.add("policy-misread", f"GET /retention-policy answered days {answered}, the policy in force is "
                    f"{expected}", ops, tenant=tenant, answered=list(answered), expected=list(expected))


def _judge_answers(log: ViolationLog, history: History, pairs: list) -> None:
    """A manager's retention run answers 200; a refusal or a 5xx outside a fault is a violation."""
    faults: FaultWindows | None = None
    for invoke, completion in pairs:
        if completion is None:
            continue
        faults = faults or FaultWindows(history)
        if answer_class(invoke, completion, faults) in ("4xx", "5xx"):
            log.add("retention-run-refused", f"a manager's retention run answered {completion.status}",
                    (invoke.index, completion.index), tenant=invoke.tenant, status=completion.status)
