"""Recording sessions of appointments. ``pending`` and ``recording`` count as active."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt, new_id

__all__ = ["RecordingSession", "ACTIVE_SESSION_STATUSES"]

ACTIVE_SESSION_STATUSES = ("pending", "recording")


class RecordingSession(CreatedAt, Base):
    __tablename__ = "recording_sessions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), index=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    started_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="recording")
    source: Mapped[str] = mapped_column(String(20), default="sessions")
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
