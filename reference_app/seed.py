"""Fixture data: tenants with a manager, reps and appointments, and a token for each user.

Used by the harness to prepare a run and by ``python -m reference_app seed``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, insert, pool

from .auth import mint_token
from .models import CONSENT_SCOPES, Appointment, Company, Consent, User
from .settings import Settings

__all__ = ["SeededTenant", "seed"]


@dataclass
class SeededTenant:
    company_id: str
    name: str
    manager_id: str
    manager_token: str
    rep_ids: list[str] = field(default_factory=list)
    rep_tokens: list[str] = field(default_factory=list)
    appointment_ids: list[str] = field(default_factory=list)

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
) -> list[SeededTenant]:
    """Insert ``tenants`` companies; appointments are one hour long, one hour apart.

    Non-overlapping windows let any rep take any appointment, so contention is
    about the appointment, not the calendar, unless a scenario wants otherwise.
    With ``consent`` (the default) every appointment gets a consent of each
    scope (plan F3), so recording and analysis work on seeded data as before
    the consent check existed; ``consent=False`` leaves them without, for the
    tests of that check.
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
                        for scope in CONSENT_SCOPES:
                            conn.execute(
                                insert(Consent).values(
                                    id=uuid.uuid4(), company_id=company_id, appointment_id=appointment_id,
                                    scope=scope, granted_at=now, ip=None, user_agent="stormproof-seed",
                                    evidence="seeded fixture data: consent assumed", recorded_by=manager_id,
                                )
                            )
                out.append(tenant)
    finally:
        engine.dispose()
    return out
