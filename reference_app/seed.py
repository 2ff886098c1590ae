"""Fixture data: tenants with a manager, reps and appointments, and a token for each user.

Used by the harness to prepare a run and by ``python -m stormproof.reference_app seed``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import create_engine, delete, insert, pool

from .auth import mint_token
from .models import (CONSENT_SCOPES, Appointment, AppointmentAssignment, Call, Company, Consent, DeadLetter,
                     DeletionAudit, IdempotencyKey, OutboxRow, RecordingSession, RetentionPolicy, TaskRecord, User)
from .models.lifecycle import DEFAULT_APPOINTMENT_RETENTION_DAYS, DEFAULT_CALL_RETENTION_DAYS
from .settings import Settings
from .worker.names import POLL_TASK  # not celery_app: Celery's import is half a second

__all__ = ["SeededTenant", "seed", "seed_disposable_company"]


@dataclass
class SeededTenant:
    company_id: str
    name: str
    manager_id: str
    manager_token: str
    rep_ids: list[str] = field(default_factory=list)
    rep_tokens: list[str] = field(default_factory=list)
    appointment_ids: list[str] = field(default_factory=list)
    #: A manager token of this tenant that expired an hour before seeding (probes of 401).
    expired_token: str = ""
    #: With ``at_risk``: two appointments whose windows overlap; the first is assigned to the first rep,
    #: so assigning the second to that rep must be refused (double booking, plan A3).
    overlap_appointment_ids: list[str] = field(default_factory=list)
    #: With ``at_risk``: an appointment with a session already recording (a start must answer 409).
    active_session_appointment_ids: list[str] = field(default_factory=list)
    #: With ``at_risk``: an appointment without any consent (recording must answer 409 consent-required).
    unconsented_appointment_ids: list[str] = field(default_factory=list)
    #: With ``at_risk``: the id of an appointment created then deleted (must answer 404, like any missing id).
    deleted_appointment_ids: list[str] = field(default_factory=list)
    #: With ``at_risk``: a dead letter (a poll of a job that no longer exists, so a retry ends at once),
    #: because no API route creates one: cross-tenant probes of POST /dead-letters/{id}/retry and manual
    #: retries (plan C2, D2) need one in every tenant even when no task ran out of retries.
    dead_letter_ids: list[str] = field(default_factory=list)
    #: With ``at_risk``: old calls and appointments (plan F1), each ``{"kind", "id", "company_id", "at"}`` with
    #: ``at`` the unix time retention counts from (a call's created_at, an appointment's ends_at): one of each
    #: past the defaults (a retention run must delete it) and one of each within them (it must stay unless the
    #: tenant's own policy is shorter); and a deletion audit row as old as the expired call, which no
    #: retention may delete. The first tenant, with two or more, has a short policy of its own.
    retention_rows: list[dict[str, object]] = field(default_factory=list)
    #: With ``at_risk``: the tenant's own retention policy (``call_days``, ``appointment_days``), or None where
    #: the defaults apply. The load sets it through PUT /retention-policy before a retention run; the seed
    #: stores a looser one (SEEDED_POLICY), so that a PUT which stored nothing shows.
    retention_policy: dict[str, int] | None = None
    #: With ``at_risk``: pairs of appointments whose windows overlap, none assigned, so that a rep assigned to
    #: both at once is a double booking one race away (plan A3); the load's ``appointment.double_book`` tries it.
    overlap_pair_ids: list[list[str]] = field(default_factory=list)
    #: With ``at_risk``: pairs of appointments whose windows touch (the second starts when the first ends), none
    #: assigned: a rep may hold both, so a check that takes touching windows for overlapping ones refuses a
    #: free rep. ``appointment.double_book`` tries them too.
    adjacent_pair_ids: list[list[str]] = field(default_factory=list)
    #: With ``at_risk``, on the first tenant only: another company, used by no load but the company-scope
    #: deletion (plan F2), so that deleting all of it leaves every other promise's data alone. Its keys:
    #: ``company_id``, ``manager_id``, ``manager_token``, ``rep_ids`` and ``rows`` (how many rows of it
    #: each table holds, all of which the deletion must take: the seed is the only writer).
    disposable_company: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def seed(
    settings: Settings,
    *,
    tenants: int = 2,
    reps: int = 3,
    appointments: int = 5,
    start: datetime | None = None,
    consent: bool = True,
    at_risk: bool = False,
    disposable: bool = True,
) -> list[SeededTenant]:
    """Insert ``tenants`` companies; appointments are one hour long, one hour apart.

    Non-overlapping windows let any rep take any appointment, so contention is
    about the appointment, not the calendar, unless a scenario wants otherwise.
    With ``consent`` (the default) every appointment gets a consent of each
    scope (plan F3), so recording and analysis work on seeded data as before
    the consent check existed; ``consent=False`` leaves them without, for the
    tests of that check.

    ``at_risk`` adds, per tenant and outside ``appointment_ids`` (so the hot
    appointments of existing scenarios do not change), data that puts the
    plan's promises at risk: two overlapping appointments, the first assigned
    to the first rep (a double booking is one assign away); an appointment
    with a session already recording; one without consent; the id of a
    deleted appointment; and :data:`_DEAD_LETTERS` dead letters. The tenants also differ: the last one (with two or
    more) has no consent on its overlapping appointments. With ``disposable`` (the default) ``at_risk`` adds
    the first tenant's disposable company too (``SeededTenant.disposable_company``).
    """
    now = datetime.now(timezone.utc)
    base = (start or now + timedelta(days=1)).replace(microsecond=0)
    engine = create_engine(settings.database_url, poolclass=pool.NullPool)
    out: list[SeededTenant] = []
    try:
        with engine.begin() as conn:
            for t in range(tenants):
                company_id = uuid.uuid4()
                name = f"tenant-{t + 1}"
                conn.execute(insert(Company).values(id=company_id, name=name))
                manager_id = uuid.uuid4()
                conn.execute(
                    insert(User).values(
                        id=manager_id, company_id=company_id, email=f"manager@{name}.test",
                        name=f"Manager {t + 1}", role="manager",
                    )
                )
                tenant = SeededTenant(
                    company_id=str(company_id),
                    name=name,
                    manager_id=str(manager_id),
                    manager_token=mint_token(settings, company_id=company_id, user_id=manager_id, role="manager"),
                )
                for r in range(reps):
                    rep_id = uuid.uuid4()
                    conn.execute(
                        insert(User).values(
                            id=rep_id, company_id=company_id, email=f"rep{r + 1}@{name}.test",
                            name=f"Rep {r + 1}", role="rep",
                        )
                    )
                    tenant.rep_ids.append(str(rep_id))
                    tenant.rep_tokens.append(
                        mint_token(settings, company_id=company_id, user_id=rep_id, role="rep")
                    )
                for a in range(appointments):
                    appointment_id = uuid.uuid4()
                    starts = base + timedelta(hours=2 * a)
                    conn.execute(
                        insert(Appointment).values(
                            id=appointment_id, company_id=company_id, title=f"Visit {a + 1}",
                            starts_at=starts, ends_at=starts + timedelta(hours=1), status="scheduled",
                        )
                    )
                    tenant.appointment_ids.append(str(appointment_id))
                    if consent:
                        _consent(conn, company_id, appointment_id, manager_id, now)
                tenant.expired_token = mint_token(settings, company_id=company_id, user_id=manager_id,
                                                  role="manager", ttl_seconds=60, now=now.timestamp() - 3600)
                if at_risk:
                    _seed_at_risk(conn, tenant, company_id, manager_id, base + timedelta(hours=2 * appointments),
                                  now, consent=consent and not (tenants > 1 and t == tenants - 1))
                    _seed_retention(conn, tenant, company_id, manager_id, now, short_policy=tenants > 1 and t == 0)
                    _seed_overlap_pairs(conn, tenant, company_id, base + timedelta(hours=2 * appointments + 24))
                    if t == 0 and disposable:
                        tenant.disposable_company = _seed_disposable(conn, settings, base, now)
                out.append(tenant)
    finally:
        engine.dispose()
    return out


#: The tables a company-scope deletion empties of the company's rows (docs/API.md, "Deletion"), as the
#: reference schema names them, with the rows of the company that each holds (``users``: reps only).
_COMPANY_TABLES = ("appointments", "appointment_assignments", "consents", "recording_sessions", "calls",
                   "call_analyses", "shunya_jobs", "task_records", "dead_letters", "retention_policies", "users",
                   "outbox", "idempotency_keys")


def seed_disposable_company(settings: Settings) -> dict[str, object]:
    """One more disposable company (see ``SeededTenant.disposable_company``), for tests of company deletion."""
    now = datetime.now(timezone.utc)
    engine = create_engine(settings.database_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            return _seed_disposable(conn, settings, (now + timedelta(days=1)).replace(microsecond=0), now)
    finally:
        engine.dispose()


def _seed_disposable(conn: Any, settings: Settings, base: datetime, now: datetime) -> dict[str, object]:
    """A company with a row in every table a company deletion must empty, for the deletion alone."""
    company_id, manager_id = uuid.uuid4(), uuid.uuid4()
    conn.execute(insert(Company).values(id=company_id, name="disposable"))
    conn.execute(insert(User).values(id=manager_id, company_id=company_id, email="manager@disposable.test",
                                     name="Manager of the disposable company", role="manager"))
    reps = [uuid.uuid4() for _ in range(2)]
    for n, rep in enumerate(reps):
        conn.execute(insert(User).values(id=rep, company_id=company_id, email=f"rep{n + 1}@disposable.test",
                                         name=f"Disposable rep {n + 1}", role="rep"))
    starts = base + timedelta(days=30)
    appointments = [_appointment(conn, company_id, f"Disposable {n + 1}", starts + timedelta(hours=2 * n), 1)
                    for n in range(3)]
    for appointment in appointments:
        _consent(conn, company_id, appointment, manager_id, now)
    conn.execute(insert(AppointmentAssignment).values(
        id=uuid.uuid4(), company_id=company_id, appointment_id=appointments[0], rep_id=reps[0], starts_at=starts,
        ends_at=starts + timedelta(hours=1), status="active"))
    conn.execute(Appointment.__table__.update().where(Appointment.id == appointments[0])
                 .values(assigned_rep_id=reps[0]))
    session = uuid.uuid4()
    conn.execute(insert(RecordingSession).values(
        id=session, company_id=company_id, appointment_id=appointments[1], started_by=manager_id,
        status="stopped", source="seed", stopped_at=now))
    conn.execute(insert(Call).values(id=uuid.uuid4(), company_id=company_id, appointment_id=appointments[1],
                                     recording_session_id=session, status="completed", created_at=now))
    task_id = uuid.uuid4().hex
    conn.execute(insert(TaskRecord).values(
        task_id=task_id, name=POLL_TASK, company_id=company_id, args={"job_row_id": str(uuid.uuid4())},
        state="dead_lettered", attempts=1, last_error="seeded", finished_at=now))
    conn.execute(insert(DeadLetter).values(
        id=uuid.uuid4(), company_id=company_id, task_id=task_id, task_name=POLL_TASK,
        args={"job_row_id": str(uuid.uuid4()), "company_id": str(company_id)}, error="seeded", attempts=1,
        status="dead"))
    conn.execute(insert(RetentionPolicy).values(company_id=company_id, updated_at=now, call_days=45,
                                                appointment_days=120))
    # A task waiting for a retry due tomorrow (an outbox row no relay publishes during a run) and a stored
    # idempotent answer: a company deletion must take them too (a deletion scoped wrong on either passed every
    # scenario while the company had none, 2026-12-05).
    conn.execute(insert(OutboxRow).values(
        task_id=uuid.uuid4().hex, name=POLL_TASK, company_id=company_id, due_at=now + timedelta(days=1),
        kwargs={"job_row_id": str(uuid.uuid4()), "company_id": str(company_id)}, publications=0,
        started_publication=0))
    conn.execute(insert(IdempotencyKey).values(
        company_id=company_id, key=f"seeded-{uuid.uuid4().hex}", fingerprint="0" * 64, method="POST",
        path="/api/v1/calls", state="completed", lease_expires_at=now, expires_at=now + timedelta(days=1),
        response_status=202, response_content_type="application/json", response_body=b"{}"))
    rows = {}
    for table in _COMPANY_TABLES:
        extra = " AND role = 'rep'" if table == "users" else ""
        rows[table] = int(conn.exec_driver_sql(
            f"SELECT count(*) FROM {table} WHERE company_id = %(c)s{extra}", {"c": company_id}).scalar_one())  # noqa: S608
    return {"company_id": str(company_id), "manager_id": str(manager_id), "rep_ids": [str(r) for r in reps],
            "manager_token": mint_token(settings, company_id=company_id, user_id=manager_id, role="manager"),
            "rows": rows}


def _consent(conn: Any, company_id: uuid.UUID, appointment_id: uuid.UUID, manager_id: uuid.UUID,
             now: datetime) -> None:
    for scope in CONSENT_SCOPES:
        conn.execute(
            insert(Consent).values(
                id=uuid.uuid4(), company_id=company_id, appointment_id=appointment_id,
                scope=scope, granted_at=now, ip=None, user_agent="stormproof-seed",
                evidence="seeded fixture data: consent assumed", recorded_by=manager_id,
            )
        )


def _appointment(conn: Any, company_id: uuid.UUID, title: str, starts: datetime, hours: float) -> uuid.UUID:
    appointment_id = uuid.uuid4()
    conn.execute(insert(Appointment).values(
        id=appointment_id, company_id=company_id, title=title, starts_at=starts,
        ends_at=starts + timedelta(hours=hours), status="scheduled",
    ))
    return appointment_id


#: Overlapping pairs per tenant: a few, so a run has more than one chance at the race.
_OVERLAP_PAIRS = 4
#: Touching pairs per tenant.
_ADJACENT_PAIRS = 2
#: Dead letters per tenant (no route makes one): the load retries each once, half the time with two
#: retries at once, so the race between two retries of one letter is run a dozen times. With one letter
#: per tenant, and few of the run's own letters listed before the end, an app whose retry read the
#: letter without locking it passed shunya-outage (2026-12-03): two successful retries in the whole run.
_DEAD_LETTERS = 8


def _seed_overlap_pairs(conn: Any, tenant: SeededTenant, company_id: uuid.UUID, base: datetime) -> None:
    """Pairs of two-hour appointments, the second starting an hour into the first, a pair every six hours; then
    pairs of one-hour appointments that touch."""
    for n in range(_OVERLAP_PAIRS):
        starts = base + timedelta(hours=6 * n)
        pair = [_appointment(conn, company_id, f"Overlap pair {n + 1}{half}", starts + timedelta(hours=i), 2)
                for i, half in enumerate("ab")]
        tenant.overlap_pair_ids.append([str(a) for a in pair])
    # After the overlapping pairs, a pair every six hours: one hour each, the second starting as the first ends.
    for n in range(_ADJACENT_PAIRS):
        starts = base + timedelta(hours=6 * (_OVERLAP_PAIRS + n))
        pair = [_appointment(conn, company_id, f"Adjacent pair {n + 1}{half}", starts + timedelta(hours=i), 1)
                for i, half in enumerate("ab")]
        tenant.adjacent_pair_ids.append([str(a) for a in pair])


#: The short policy of the first tenant: shorter than the defaults (90, 365) and than the ages of the rows
#: within them below, so one tenant's run deletes rows another tenant's policy keeps.
SHORT_POLICY = {"call_days": 30, "appointment_days": 100}
#: What the seed stores for that tenant: a day longer each, so that the policy is in force only once the load
#: has set it through PUT /retention-policy (its retention turn does, before each run). A PUT that answered
#: 200 and stored nothing passed every scenario while the seed had already stored the very days it sent
#: (2026-12-04); now the row keeps the seed's days and retention-enforced says ``policy-lost``. A day longer,
#: never shorter: a retention run before any PUT deletes less than SHORT_POLICY asks, never more.
SEEDED_POLICY = {key: days + 1 for key, days in SHORT_POLICY.items()}
#: Ages in days: past the defaults, and within them (past SHORT_POLICY).
_EXPIRED_DAYS = {"call": 100, "appointment": 400}
_RETAINED_DAYS = {"call": 60, "appointment": 200}


def _seed_retention(conn: Any, tenant: SeededTenant, company_id: uuid.UUID, manager_id: uuid.UUID, now: datetime,
                    *, short_policy: bool) -> None:
    """Calls and appointments past and within the default retention, so that retention has work (plan F1)."""
    if short_policy:
        conn.execute(insert(RetentionPolicy).values(company_id=company_id, updated_at=now, **SEEDED_POLICY))
        tenant.retention_policy = dict(SHORT_POLICY)  # the days the load sets (see SEEDED_POLICY)
    for ages in (_EXPIRED_DAYS, _RETAINED_DAYS):
        created = now - timedelta(days=ages["call"])
        call = uuid.uuid4()
        conn.execute(insert(Call).values(id=call, company_id=company_id, status="completed", created_at=created))
        ended = now - timedelta(days=ages["appointment"])
        appointment = _appointment(conn, company_id, "Long past", ended - timedelta(hours=1), 1)
        tenant.retention_rows += [
            {"kind": "call", "id": str(call), "company_id": str(company_id), "at": created.timestamp()},
            {"kind": "appointment", "id": str(appointment), "company_id": str(company_id), "at": ended.timestamp()},
        ]
    # A second appointment past every policy: with the call one hour past the cutoff below, each tenant has at
    # least two expired rows of each kind, so a scenario run in batches of one (lifecycle-under-load) has a second
    # batch to lose. With one expired appointment per tenant and batches of 500, a retention loop that stopped
    # after its first batch passed lifecycle-under-load (a mutation sweep, 2026-12-05).
    ended = now - timedelta(days=_EXPIRED_DAYS["appointment"] + 7)
    appointment = _appointment(conn, company_id, "Long past, again", ended - timedelta(hours=1), 1)
    tenant.retention_rows.append(
        {"kind": "appointment", "id": str(appointment), "company_id": str(company_id), "at": ended.timestamp()})
    # An appointment across its tenant's cutoff: started an hour before it, ended an hour after. Kept (its age
    # counts from its end); nothing seeded sat across a cutoff, so a retention that compared starts_at passed
    # lifecycle-under-load (2026-12-02).
    days = SHORT_POLICY["appointment_days"] if short_policy else DEFAULT_APPOINTMENT_RETENTION_DAYS
    ended = now - timedelta(days=days) + timedelta(hours=1)
    across = _appointment(conn, company_id, "Across the cutoff", ended - timedelta(hours=2), 2)
    tenant.retention_rows.append(
        {"kind": "appointment", "id": str(across), "company_id": str(company_id), "at": ended.timestamp()})
    # Calls an hour either side of the tenant's call cutoff: the one inside is kept, the one past deleted. Rows
    # days away from every cutoff passed a retention that cut a day early (lifecycle-under-load, 2026-12-02).
    days = SHORT_POLICY["call_days"] if short_policy else DEFAULT_CALL_RETENTION_DAYS
    for hours in (-1, 1):
        created = now - timedelta(days=days) - timedelta(hours=hours)
        call = uuid.uuid4()
        conn.execute(insert(Call).values(id=call, company_id=company_id, status="completed", created_at=created))
        tenant.retention_rows.append(
            {"kind": "call", "id": str(call), "company_id": str(company_id), "at": created.timestamp()})
    executed = now - timedelta(days=_EXPIRED_DAYS["call"])
    audit = uuid.uuid4()  # an appointment deleted long ago: the row is the record of it (plan F1, F2)
    conn.execute(insert(DeletionAudit).values(
        id=audit, company_id=company_id, requested_by=manager_id, confirmed_by=manager_id, scope="appointment",
        target_id=uuid.uuid4(), counts={"appointments": 1}, requested_at=executed, executed_at=executed,
    ))
    tenant.retention_rows.append(
        {"kind": "audit", "id": str(audit), "company_id": str(company_id), "at": executed.timestamp()})


def _seed_at_risk(conn: Any, tenant: SeededTenant, company_id: uuid.UUID, manager_id: uuid.UUID, base: datetime,
                  now: datetime, *, consent: bool) -> None:
    first = _appointment(conn, company_id, "Overlap A", base, 2)
    second = _appointment(conn, company_id, "Overlap B", base + timedelta(hours=1), 2)
    tenant.overlap_appointment_ids += [str(first), str(second)]
    if tenant.rep_ids:
        rep = uuid.UUID(tenant.rep_ids[0])
        conn.execute(insert(AppointmentAssignment).values(
            id=uuid.uuid4(), company_id=company_id, appointment_id=first, rep_id=rep, starts_at=base,
            ends_at=base + timedelta(hours=2), status="active",
        ))
        conn.execute(Appointment.__table__.update().where(Appointment.id == first).values(assigned_rep_id=rep))
    active = _appointment(conn, company_id, "Recording already", base + timedelta(hours=4), 1)
    tenant.active_session_appointment_ids.append(str(active))
    conn.execute(insert(RecordingSession).values(
        id=uuid.uuid4(), company_id=company_id, appointment_id=active, started_by=manager_id, status="recording",
        source="seed",  # made here, not through the API: metrics-agree does not expect it counted
    ))
    unconsented = _appointment(conn, company_id, "No consent", base + timedelta(hours=6), 1)
    tenant.unconsented_appointment_ids.append(str(unconsented))
    _consent(conn, company_id, active, manager_id, now)  # a session exists: its consent must too
    for appointment_id in (first, second):
        if consent:
            _consent(conn, company_id, appointment_id, manager_id, now)
    gone = _appointment(conn, company_id, "Deleted", base + timedelta(hours=8), 1)
    conn.execute(delete(Appointment).where(Appointment.id == gone))
    tenant.deleted_appointment_ids.append(str(gone))
    for _ in range(_DEAD_LETTERS):
        task_id = uuid.uuid4().hex  # its ledger row, dead-lettered, so the task accounting stays balanced
        conn.execute(insert(TaskRecord).values(
            task_id=task_id, name=POLL_TASK, company_id=company_id, args={"job_row_id": str(uuid.uuid4())},
            state="dead_lettered", attempts=1, last_error="seeded", finished_at=now,
        ))
        letter = uuid.uuid4()
        conn.execute(insert(DeadLetter).values(
            id=letter, company_id=company_id, task_id=task_id, task_name=POLL_TASK,
            args={"job_row_id": str(uuid.uuid4()), "company_id": str(company_id)}, error="seeded", attempts=1,
            status="dead",
        ))
        tenant.dead_letter_ids.append(str(letter))
    # One letter retried by hand before the run: a list asked for the dead ones must leave it out (an app whose
    # status filter was dropped passed while every letter of a fresh stack was dead, 2026-12-05). Not among
    # ``dead_letter_ids``: the load retries dead ones.
    task_id = uuid.uuid4().hex
    conn.execute(insert(TaskRecord).values(
        task_id=task_id, name=POLL_TASK, company_id=company_id, args={"job_row_id": str(uuid.uuid4())},
        state="dead_lettered", attempts=1, last_error="seeded", finished_at=now,
    ))
    conn.execute(insert(DeadLetter).values(
        id=uuid.uuid4(), company_id=company_id, task_id=task_id, task_name=POLL_TASK,
        args={"job_row_id": str(uuid.uuid4()), "company_id": str(company_id)}, error="seeded", attempts=1,
        status="retried", retried_task_id=uuid.uuid4().hex, retried_at=now,
    ))
