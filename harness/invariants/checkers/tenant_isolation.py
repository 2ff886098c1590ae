"""tenant-isolation: tenant A never sees or touches tenant B's data.

Three views:

- no response to A carries another company id (``result.company_ids_seen``,
  every company id the load client found anywhere in the body);
- every ``probe.cross_tenant`` (A naming B's ids) is answered 404: a 2xx is
  a leak; other definite answers are counted in the summary;
- no ``ok`` operation of A named a row that the final state shows belongs to
  B (an id in its arguments or the ``id`` it got back): A read or wrote B's
  row. Ids are matched against every captured table.
"""

from __future__ import annotations

from collections import Counter

from harness.history import History
from harness.history.vocabulary import NEMESIS, PROBE
from harness.invariants.collector import ViolationLog
from harness.invariants.registry import checker
from harness.invariants.snapshot import TABLES, Snapshot
from harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_tenant_isolation"]

NAME = "tenant-isolation"

#: Argument keys that are not row ids even though they end in ``_id``.
_NOT_ROW_IDS = frozenset(("company_id", "target_tenant", "idempotency_key"))


def _owners(snapshot: Snapshot) -> tuple[dict[object, tuple[str, object]], list[str]]:
    owners: dict[object, tuple[str, object]] = {}
    missing: list[str] = []
    for table in TABLES:
        rows = snapshot.table(table)
        if rows is None:
            missing.append(table)
            continue
        id_column = "task_id" if table == "task_records" else "id"
        for row in rows:
            company = row.get("company_id")
            if company is not None:
                owners[row.get(id_column)] = (table, company)
    return owners, missing


@checker(NAME, "safety")
def check_tenant_isolation(history: History, snapshot: Snapshot) -> Verdict:
    """No foreign company ids in responses, probes answered 404, no ok op on another tenant's row."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    owners, missing = _owners(snapshot)
    if len(missing) == len(TABLES):
        log.cannot("no table in snapshot: rows touched across tenants not checked")
    probe_answers: Counter[str] = Counter()
    responses = 0
    for invoke, completion in history.pairs():
        if completion is None or invoke.process == NEMESIS:
            continue
        tenant = invoke.tenant
        responses += 1
        seen = completion.result.get("company_ids_seen")
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
        if invoke.f == PROBE:
            probe_answers[str(completion.status) if completion.type != "info" else "info"] += 1
            if completion.type == "ok":
                log.add(
                    "probe-leak",
                    f"cross-tenant probe by {tenant} of {invoke.args.get('target_tenant')}'s "
                    f"{invoke.args.get('target_id')} answered {completion.status}, not 404",
                    (invoke.index, completion.index),
                    tenant=tenant,
                    target_tenant=invoke.args.get("target_tenant"),
                    target_id=invoke.args.get("target_id"),
                )
            continue
        if completion.type != "ok" or tenant is None or not owners:
            continue
        named = [value for name, value in invoke.args.items()
                 if name.endswith("_id") and name not in _NOT_ROW_IDS]
        returned = completion.result.get("id")
        if returned is not None:
            named.append(returned)
        for row_id in named:
            owner = owners.get(row_id)
            if owner is not None and owner[1] != tenant:
                log.add(
                    "foreign-row",
                    f"{invoke.f} by tenant {tenant} succeeded on {owner[0]} row {row_id} of {owner[1]}",
                    (invoke.index, completion.index),
                    tenant=tenant,
                    owner=owner[1],
                    table=owner[0],
                    row_id=row_id,
                )
    return log.verdict(
        responses=responses,
        probes=sum(probe_answers.values()),
        probe_answers=dict(probe_answers),
        tables_missing=missing,
    )
