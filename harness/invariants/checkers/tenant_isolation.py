"""tenant-isolation: tenant A never sees or touches tenant B's data (plan D1, D2).

Every answer is judged, not only the successes:

- no response to A carries another company id (``result.company_ids_seen``,
  every company id the load client found anywhere in the body);
- a ``probe.cross_tenant`` (A naming B's id, on any route that takes one,
  any method; in a read's query string too, ``query_field``, where the
  right answer is whatever the missing id gets, e.g. an empty list) must
  answer exactly like the same request naming a missing id
  (its control, paired by ``probe_id``): 404, with the same body once the ids
  are masked (``result.body_masked``). A 2xx is a leak (``probe-leak``); any
  other status, 403, 409, 422, 5xx ... (``probe-wrong-status``) tells A the id
  exists; a 404 whose body differs from the control's
  (``probe-distinguishable``) too. When the control got the very same
  non-404 refusal (the body was refused before the id mattered) the pair is
  inconclusive and counted. No answer and 429 are counted, not judged; a 5xx
  while a fault was active is excused (see ``_probes``). A probe whose
  "foreign" id the final state gives to the prober itself is not judged as
  a probe: the load files ids under a tenant only from its seed and its own
  answers, so an answer to the other tenant named the prober's row
  (``foreign-id-learned``: a list that lost its tenant filter, in a backend
  whose rows carry no company id);
- a probe whose path ids are no ids at all (``malformed_id``: a word, a negative number, a
  quoted SQL condition, 300 characters) is refused 400, 404 or 422 (403 to a rep
  on a managers' route): a 2xx served a row no id names
  (``malformed-id-served``), a 5xx crashed on parsing or looking it up
  (``malformed-id-crashed``, a fault aside), any other refusal misnames it
  (``malformed-id-wrong-status``);
- no ``ok`` operation of A named a row that the final state shows belongs to
  B (an id in its arguments or the ``id`` it got back);
- the final state: no row of B carries the marker a probe of A writes into
  its bodies (``sp-probe-<A>``: a foreign write took effect whatever it
  answered), no row of A names a row of B in an ``*_id`` column (a session
  or a call of A on B's appointment: an id in a body was taken, whatever the
  answer said), and no row of a foreign ``DELETE`` probe vanished unless its
  own tenant deleted it;
- the other way round: a request of the load of A naming only rows of A that
  the final state holds (an appointment, a session, a call, a rep) is never
  answered 404 (``own-row-not-found``: a guard that refuses its own tenant, a
  lookup that skips locked rows). The load names a row only once it has it
  (from the seed or an answer), and rows never come back once deleted, so a
  row there at the end was there when the request was sent. A deletion
  request of an appointment (its ``target_id``), or of the caller's own company
  (there while any user of it is), is judged alike. Stops, session
  reads, consent grants and dead-letter retries judge their own 404s.

With no answered operation at all the verdict is ``unknown`` ("not exercised").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from stormproof.harness.history import History, Op
from stormproof.harness.history import vocabulary as v
from stormproof.harness.history.vocabulary import RETENTION_RUN
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import TABLES, Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._answers import RowIdKeys, answers, named_by
from ._common import deleters, possible_span
from ._probes import FaultWindows, answer_class

__all__ = ["NAME", "MARKER", "check_tenant_isolation"]

NAME = "tenant-isolation"
#: The prefix a probe writes into every string of its bodies, followed by its tenant (stormproof.harness.load.probes).
MARKER = "sp-probe-"


def _owners(snapshot: Snapshot) -> tuple[dict[object, tuple[str, object]], list[str]]:
    owners: dict[object, tuple[str, object]] = {}
    missing: list[str] = []
    for table in TABLES:
        rows = snapshot.table(table)
        if rows is None:
            missing.append(table)
            continue
        id_column = "task_id" if table == "task_records" else "id"
        for row in rows:  # ``in`` and ``[]`` reach the row's dict directly; ``get`` is a forwarded method call
            if "company_id" in row and row["company_id"] is not None:
                owners[row[id_column] if id_column in row else None] = (table, row["company_id"])
    return owners, missing


@checker(NAME, "safety")
def check_tenant_isolation(history: History, snapshot: Snapshot) -> Verdict:
    """No foreign data in answers, cross-tenant probes answered like a missing id, foreign rows untouched."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    owners, missing = _owners(snapshot)
    if len(missing) == len(TABLES):
        log.cannot("no table in snapshot: rows touched across tenants not checked")
    faults = FaultWindows(history)
    seen = answers(history).part("tenancy")  # the walk of every answer, shared (see _answers)
    probes = seen.probes
    outcome: Counter[str] = Counter()
    row_keys = RowIdKeys()
    # (invoke index, 0 data / 1 row, ...): logged in history order
    found: list[tuple[int, int, Op, Op]] = [(index, 0, invoke, completion)
                                            for index, invoke, completion in seen.foreign_data]
    if owners:
        owned = set(owners)
        # Each company's own rows, from the owners index (the last row of an id wins there, as here): a
        # tenant named a foreign row exactly when an id it named is owned and not its own.
        own: dict[object, set[object]] = {}
        for row_id, (_, company) in owners.items():
            mine = own.get(company)
            if mine is None:
                own[company] = {row_id}
            else:
                mine.add(row_id)
        nothing: set[object] = set()
        for tenant, ids in seen.part("named").named.items():
            # Every id a tenant's ok ops named, at once; its ops are walked only when one is foreign.
            if (ids & owned) <= own.get(tenant, nothing):
                continue
            for invoke, completion in named_by(history, tenant):
                if _foreign_rows(invoke, completion, owners, row_keys):
                    found.append((invoke.index, 1, invoke, completion))
    found.sort(key=lambda item: item[:2])
    for _, kind, invoke, completion in found:
        if kind == 0:
            _foreign_data(log, invoke, completion)
        else:
            _foreign_row(log, invoke, completion, owners, _foreign_rows(invoke, completion, owners, row_keys))

    for pair in probes.values():
        if False in pair:
            outcome[_judge_probe(log, pair[False], pair.get(True), faults, owners)] += 1
        elif True in pair and pair[True][0].args.get("malformed_id"):
            outcome["malformed-" + _judge_malformed(log, pair[True], faults)] += 1
    if owners:
        _final_state(log, history, snapshot, probes, owners)
    own_judged, own_refused = _own_rows_not_found(log, history, snapshot)
    if seen.responses == 0:
        log.cannot("not exercised: no answered operation to judge")
    return log.verdict(
        own_row_404s=own_judged,
        own_rows_not_found=own_refused,
        responses=seen.responses,
        probes=sum(seen.probe_answers.values()),
        probe_answers=dict(seen.probe_answers),
        probe_outcomes=dict(outcome),
        probed_routes=len({pair[False][0].args.get("route") for pair in probes.values() if False in pair}),
        tables_missing=missing,
    )


#: The load's operations whose 404 no other rule judges, and the arguments naming a row: argument -> (table, the
#: role the row must have, if any). An operation with another row id in its arguments is not judged.
_OWN_ROW_OPS = (v.SESSION_START, v.LEGACY_START, v.ASSIGN, v.UNASSIGN, v.APPOINTMENT_READ, v.APPOINTMENT_DELETE,
                v.CALL_SUBMIT, v.CALL_READ, v.CALL_REFRESH, v.DELETION_REQUEST, v.DELETION_CONFIRM,
                v.PROBE_FILTER)  # an own read names its path's ids in its args (the others name none)
_OWN_ROW_ARGS: Mapping[str, tuple[str, str | None]] = {
    "appointment_id": ("appointments", None), "call_id": ("calls", None),
    "recording_session_id": ("recording_sessions", None), "rep_id": ("users", "rep"),
    # A confirmation of a request still there at the end (read where the database has the table): an executed
    # or expired one answers 409 deletion-not-pending, never 404 (a refusal sweep's mutant, 2026-12-06).
    "deletion_id": ("deletion_requests", None),
}
#: A deletion request of scope ``appointment`` names its appointment as ``target_id`` (one of scope company
#: names the caller's own company: judged apart). Every request was answered 404 by an app whose deletion took
#: each scope for the other, and lifecycle-under-load passed (a sweep's mutant, 2026-12-05).
_TARGET_ARGS: Mapping[str, Mapping[str, tuple[str, str | None]]] = {
    "appointment": {"target_id": ("appointments", None)},
}


def _own_row_args(invoke: Op) -> Mapping[str, tuple[str, str | None]]:
    if invoke.f == v.DELETION_REQUEST:
        return _TARGET_ARGS.get(str(invoke.args.get("scope")), {})
    return _OWN_ROW_ARGS


def _own_rows_not_found(log: ViolationLog, history: History, snapshot: Snapshot) -> tuple[int, int]:
    """The 404s of the load's requests whose 404 no other rule judges, and how many of them named only rows of their
    own tenant that the final state holds (``own-row-not-found``): (404s, violations)."""
    refused = [(invoke, completion) for invoke, completion in history.pairs_of(*_OWN_ROW_OPS)
               if completion is not None and completion.status == 404 and invoke.tenant is not None
               and not completion.result.get("replayed")]
    if not refused:
        return 0, 0
    rows: dict[str, dict[str, Mapping[str, object]]] = {}
    for table in {table for args in (_OWN_ROW_ARGS, *_TARGET_ARGS.values()) for table, _ in args.values()}:
        held = snapshot.table(table)
        if held is not None:
            rows[table] = {str(row.get("id")): row for row in held}
    # A company is there while anyone of it is (its managers outlive its deletion); one whose deletion was
    # confirmed 2xx may be refused as gone by then (another load process's request, sent after it).
    companies = {str(row.get("company_id")) for row in snapshot.table("users") or ()}
    deleted_from: dict[str, int] = {}
    for confirm, done in history.pairs_of(v.DELETION_CONFIRM):
        if done is not None and done.status and 200 <= done.status < 300 \
                and confirm.args.get("scope") == "company" and not confirm.args.get("wrong_token"):
            target = str(confirm.args.get("target_id"))
            deleted_from[target] = min(deleted_from.get(target, confirm.time_ns), confirm.time_ns)
    row_keys = RowIdKeys()
    found = 0
    for invoke, completion in refused:
        if invoke.f == v.DELETION_REQUEST and invoke.args.get("scope") == "company":
            company = str(invoke.args.get("target_id"))
            if company == str(invoke.tenant) and company in companies \
                    and completion.time_ns < deleted_from.get(company, completion.time_ns + 1):
                found += 1
                log.add("own-row-not-found", f"{invoke.f} of {invoke.tenant} for its own company answered 404, "
                        "though the company is still there at the end: the request refused its own tenant",
                        (invoke.index, completion.index), tenant=invoke.tenant, f=invoke.f, target_id=company)
            continue
        known = _own_row_args(invoke)
        if invoke.f == v.DELETION_REQUEST:  # a target is no row id of the answers' walk (RowIdKeys)
            named = [name for name in known if name in invoke.args]
        else:
            named = [name for name in row_keys[tuple(invoke.args)] if name != "trace_id"]  # a trace's id names no row
        if not named or any(name not in known for name in named):
            continue
        present = []
        for name in named:
            value = invoke.args[name]
            if value is None:
                continue
            table, role = known[name]
            row = rows.get(table, {}).get(str(value))
            if row is None or str(row.get("company_id")) != str(invoke.tenant) \
                    or role is not None and row.get("role") != role:
                break
            present.append(f"{name} {value}")
        else:
            if not present:
                continue
            found += 1
            log.add("own-row-not-found",
                    f"{invoke.f} of {invoke.tenant} answered 404, though it named only its own rows, all still there "
                    f"at the end ({', '.join(present)}): the request refused its own tenant",
                    (invoke.index, completion.index), tenant=invoke.tenant, f=invoke.f,
                    **{name: invoke.args[name] for name in named})
    return len(refused), found


def _foreign_data(log: ViolationLog, invoke: Op, completion: Op) -> None:
    seen = completion.result.get("company_ids_seen")
    tenant = invoke.tenant
    if seen and tenant is not None:
        foreign = sorted(str(company) for company in seen if company != tenant)
        if foreign:
            log.add(
                "foreign-data",
                f"{invoke.f} by tenant {tenant} was answered with data of {', '.join(foreign)}",
                (completion.index,),
                badness=float(len(foreign)),
                tenant=tenant,
                foreign=tuple(foreign),
            )


class _RowIdColumns(dict[tuple[str, ...], tuple[str, ...]]):
    """Row columns -> those that may name another row (``*_id`` but ``company_id``), once per table shape."""

    def __missing__(self, names: tuple[str, ...]) -> tuple[str, ...]:
        chosen = self[names] = tuple(n for n in names if n.endswith("_id") and n != "company_id")
        return chosen


def _foreign_rows(invoke: Op, completion: Op, owners: dict[object, tuple[str, object]],
                  row_keys: RowIdKeys) -> list[tuple[object, tuple[str, object]]]:
    """The rows of another tenant that an ``ok`` operation named (ids in its args, the id it got back)."""
    tenant = invoke.tenant
    args = invoke.args
    named = [args[name] for name in row_keys[tuple(args)]]
    returned = completion.result.get("id")
    if returned is not None:
        named.append(returned)
    foreign = []
    for row_id in named:
        owner = owners.get(row_id)
        if owner is not None and owner[1] != tenant:
            foreign.append((row_id, owner))
    return foreign


def _foreign_row(log: ViolationLog, invoke: Op, completion: Op, owners: dict[object, tuple[str, object]],
                 foreign: list[tuple[object, tuple[str, object]]]) -> None:
    tenant = invoke.tenant
    for row_id, owner in foreign:
        log.add(
            "foreign-row",
            f"{invoke.f} by tenant {tenant} succeeded on {owner[0]} row {row_id} of {owner[1]}",
            (invoke.index, completion.index),
            tenant=tenant,
            owner=owner[1],
            table=owner[0],
            row_id=row_id,
        )


#: What a path id that is no id may be answered: refused as malformed (400, 422) or as no such row (404). A 403
#: only where a rep called a route for managers (the role is checked before the id).
_MALFORMED_REFUSALS = frozenset((400, 404, 422))


def _judge_malformed(log: ViolationLog, probe: tuple[Op, Op], faults: FaultWindows) -> str:
    """A probe whose path ids are no ids (``malformed_id``): refused 400, 404 or 422, never served or crashed."""
    invoke, completion = probe
    kind = answer_class(invoke, completion, faults)
    if kind in ("none", "limited", "excused"):
        return kind
    status = completion.status
    if kind == "4xx" and (status in _MALFORMED_REFUSALS or status == 403 and invoke.args.get("as_role") == "rep"):
        return "refused"
    where = f"{invoke.args.get('method', '')} {invoke.args.get('path', '')}".strip()
    what = ("served it: an id that names no row answered as if it did" if kind == "2xx" else
            "crashed on it: an id must be parsed, or looked up, without a server error" if kind == "5xx" else
            "refused it as something else: an id that is no id is malformed (400, 422) or names no row (404)")
    log.add(f"malformed-id-{'served' if kind == '2xx' else 'crashed' if kind == '5xx' else 'wrong-status'}",
            f"{where} by {invoke.tenant}, its id {str(invoke.args.get('target_id'))[:40]!r} no id at all, was "
            f"answered {status}: the app {what}", (invoke.index, completion.index), tenant=invoke.tenant,
            route=invoke.args.get("route"), status=status)
    return "violation"


def _judge_probe(log: ViolationLog, probe: tuple[Op, Op], control: tuple[Op, Op] | None,
                 faults: FaultWindows, owners: Mapping[object, tuple[str, object]] | None = None) -> str:
    """One foreign-id probe against the promise; returns how it came out (for the summary)."""
    invoke, completion = probe
    kind = answer_class(invoke, completion, faults)
    if kind in ("none", "limited", "excused"):
        return kind
    where = f"{invoke.args.get('method', '')} {invoke.args.get('path', '')}".strip() or invoke.f
    facts = dict(tenant=invoke.tenant, target_tenant=invoke.args.get("target_tenant"),
                 target_id=invoke.args.get("target_id"), route=invoke.args.get("route"))
    ops = (invoke.index, completion.index)
    owner = owners.get(facts["target_id"]) if owners else None
    if owner is not None and str(owner[1]) == str(invoke.tenant) != str(facts["target_tenant"]):
        # The load files an id under a tenant only from that tenant's seed and its own answers: the "other
        # tenant's id" was the prober's own row, so an answer to the other tenant named it. The probe itself
        # is not judged (a 2xx is right for one's own row); the leak that fed it is (2026-12-04: a reps list
        # without its company filter, rows without company_id, was reported as a leak of GET /reps/{id}).
        log.add("foreign-id-learned", f"tenant {facts['target_tenant']} was handed {facts['target_id']}, a "
                f"{owner[0]} row of {invoke.tenant} (per the final state): the load files an id under a tenant "
                "only from its seed and its own answers, so one of its answers named another tenant's row "
                f"(seen when {invoke.tenant} probed it as {facts['target_tenant']}'s: {where})", ops,
                table=owner[0], **facts)
        return "violation"
    if "query_field" in invoke.args:
        return _judge_filter(log, probe, control, faults, where, facts)
    if kind == "2xx":
        log.add("probe-leak", f"cross-tenant probe by {invoke.tenant} of {facts['target_tenant']}'s "
                f"{facts['target_id']} ({where}) answered {completion.status}, not 404", ops, **facts)
        return "violation"
    same_as_control = None
    control_unanswered = False
    if control is not None:
        c_kind = answer_class(*control, faults)
        control_unanswered = c_kind not in ("2xx", "4xx", "5xx")
        if not control_unanswered:
            same_as_control = (control[1].status == completion.status
                               and control[1].result.get("body_masked") == completion.result.get("body_masked"))
            ops = ops + (control[0].index, control[1].index)
    if completion.status == 404:
        if same_as_control is False and control is not None and control[1].status == 404:
            log.add("probe-distinguishable", f"cross-tenant probe by {invoke.tenant} ({where}) answered 404 with "
                    "another body than the same request for a missing id", ops, **facts)
            return "violation"
        return "404" if same_as_control else "404-unpaired"
    if kind == "4xx" and same_as_control and (completion.status != 403 or invoke.args.get("as_role") == "rep"):
        # Refused before the id mattered, exactly like the missing id (a 409 consent-required for the
        # body's own appointment, whatever session id it names beside it); for a rep, a 403 on both is the
        # route's role (an app whose document does not say the route is the manager's), not the id.
        return "inconclusive"
    if kind == "4xx" and control_unanswered:
        # Its missing-id twin got no answer to compare with (cut by the end of the load, a timeout, a 429):
        # a refusal before the id mattered (consent-required for the body's own appointment) cannot be told
        # from one that knew the id. A plain-Locust smoke run flagged such a 409 (2026-12-02).
        return "unpaired"
    log.add("probe-wrong-status", f"cross-tenant probe by {invoke.tenant} of {facts['target_tenant']}'s "
            f"{facts['target_id']} ({where}) answered {completion.status}, not the 404 of a missing id"
            + (f" (the missing id got {control[1].status})" if control is not None else ""), ops,
            status=completion.status, **facts)
    return "violation"


def _judge_filter(log: ViolationLog, probe: tuple[Op, Op], control: tuple[Op, Op] | None, faults: FaultWindows,
                  where: str, facts: dict[str, object]) -> str:
    """A read filtered by another tenant's id (``query_field``) must answer exactly as the same read filtered
    by a missing id: status and body, the id masked (an empty list, or the same refusal). Any difference
    tells the caller the id exists elsewhere, or hands over what it filters (the rows themselves are
    judged by the company ids in every answer)."""
    invoke, completion = probe
    if control is None or answer_class(*control, faults) not in ("2xx", "4xx", "5xx"):
        return "filter-unpaired"
    if (control[1].status == completion.status
            and control[1].result.get("body_masked") == completion.result.get("body_masked")):
        return "filter-alike"
    log.add("probe-distinguishable",
            f"a read by {invoke.tenant} filtered by {facts['target_tenant']}'s {invoke.args.get('query_field')} "
            f"{facts['target_id']} ({where}) answered {completion.status}, unlike the same read filtered by a "
            f"missing id ({control[1].status}, another body): the filter reached the other tenant's rows",
            (invoke.index, completion.index, control[0].index, control[1].index), **facts)
    return "violation"


def _final_state(log: ViolationLog, history: History, snapshot: Snapshot,
                 probes: dict[object, dict[bool, tuple[Op, Op]]], owners: dict[object, tuple[str, object]]) -> None:
    """Foreign rows untouched: no probe's marker in another tenant's row, no row naming another tenant's row;
    no foreign DELETE took effect."""
    probers = {(invoke.tenant) for pair in probes.values() for invoke, _ in pair.values()}
    id_columns = _RowIdColumns()
    owner_of = owners.get
    for table in TABLES:
        rows = snapshot.table(table) or ()
        # A probe's marker is rare: one look at all the table's strings at once says whether a row holds it
        # (joined by a character the marker lacks, so a match lies within one string).
        marked = MARKER in "\x1f".join([value for row in rows for value in row.values() if isinstance(value, str)])
        for row in rows:
            company = row["company_id"] if "company_id" in row else None
            # One look per row, at what may break the promise only: the columns that name another row
            # (chosen once per table shape) and the strings that may hold a probe's marker.
            if company is not None:
                for column in id_columns[tuple(row)]:
                    value = row[column]
                    owner = owner_of(value)
                    if owner is not None and owner[1] != company:
                        log.add("foreign-reference", f"{table} row {row.get('id')} of {company} names {owner[0]} row "
                                f"{value} of {owner[1]} in {column}: a write took another tenant's id",
                                (), owner=owner[1], table=table, row_id=row.get("id"), column=column,
                                foreign_id=value)
            if not marked:
                continue
            for column, value in row.items():
                if not isinstance(value, str) or MARKER not in value:
                    continue
                writer = value.split(MARKER, 1)[1]
                if company is not None and not writer.startswith(str(company)):
                    who = next((t for t in probers if t and writer.startswith(str(t))), writer[:36])
                    log.add("foreign-row-changed", f"{table} row {row.get('id')} of {company} holds {column}="
                            f"{value!r}, written by a probe of tenant {who}", (), tenant=who, owner=company,
                            table=table, row_id=row.get("id"))
    deleted_by_owner = _deleted_by_owner(history)
    for pair in probes.values():
        if False not in pair:
            continue
        invoke, completion = pair[False]
        target = invoke.args.get("target_id")
        if invoke.args.get("method") != "DELETE" or target in owners \
                or (invoke.args.get("target_tenant"), str(target)) in deleted_by_owner:
            continue
        segments = str(invoke.args.get("route") or "").replace("-", "_").split("/")
        if not any(segment in TABLES for segment in segments):
            continue  # its table is not in the snapshot: gone or never captured, we cannot tell
        log.add("foreign-row-deleted", f"DELETE probe by {invoke.tenant} of {invoke.args.get('target_tenant')}'s "
                f"{target} answered {completion.status}, and the row is gone from the final state",
                (invoke.index, completion.index), tenant=invoke.tenant, target_id=target)


def _deleted_by_owner(history: History) -> set[tuple[object, object]]:
    """(tenant, row id) of the rows their own tenant may have deleted: an appointment DELETE or a confirmed
    deletion request that may have acted (``deleters``), and the old appointments a retention run names
    (``args.rows``, kind ``appointment``) once a run of their tenant may have acted.

    Only requests that may have acted count: a deletion request left unconfirmed deleted nothing, so the
    row of it that a foreign DELETE took is still the probe's doing. Retention is the owner's too: a probe
    may have learnt another tenant's old appointment from a list answer, and the owner's run deletes it.
    """
    gone: set[tuple[object, object]] = {(tenant, str(row)) for tenant, row in deleters(history)}
    runs = history.pairs_of(RETENTION_RUN)
    ran = {pair[0].tenant for pair in runs if possible_span(pair) is not None}
    for invoke, _ in runs:
        for row in invoke.args.get("rows") or ():
            if isinstance(row, Mapping) and row.get("kind") == "appointment" and row.get("company_id") in ran:
                gone.add((row.get("company_id"), str(row.get("id"))))
    return gone
