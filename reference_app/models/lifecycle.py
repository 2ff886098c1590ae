"""Data lifecycle (plan F1 to F3): retention policies, deletion requests and their audit, consent.

``deletion_audit`` rows outlive everything they describe: retention never
deletes them and a company-scope deletion keeps them (with the company row and
its managers, whom the rows name), so there is always a record of what was
erased, by whom and when.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt, new_id

__all__ = [
    "CONSENT_SCOPES",
    "Consent",
    "DEFAULT_APPOINTMENT_RETENTION_DAYS",
    "DEFAULT_CALL_RETENTION_DAYS",
    "DELETION_SCOPES",
    "DeletionAudit",
    "DeletionRequest",
    "RetentionPolicy",
]

CONSENT_SCOPES = ("recording", "analysis")
DELETION_SCOPES = ("appointment", "company")
#: Used for a company without a ``retention_policies`` row.
DEFAULT_CALL_RETENTION_DAYS = 90
DEFAULT_APPOINTMENT_RETENTION_DAYS = 365


class RetentionPolicy(CreatedAt, Base):
    __tablename__ = "retention_policies"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    call_days: Mapped[int] = mapped_column(Integer)
    appointment_days: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Consent(CreatedAt, Base):
    __tablename__ = "consents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), index=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    evidence: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class DeletionRequest(CreatedAt, Base):
    """A pending hard deletion: nothing is deleted until it is confirmed with its token."""

    __tablename__ = "deletion_requests"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column()
    scope: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[uuid.UUID] = mapped_column()
    #: SHA-256 of the confirmation token: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeletionAudit(Base):
    """One row per executed deletion; its id is the deletion request's id."""

    __tablename__ = "deletion_audit"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    requested_by: Mapped[uuid.UUID] = mapped_column()
    confirmed_by: Mapped[uuid.UUID] = mapped_column()
    scope: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[uuid.UUID] = mapped_column()
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
