"""The transactional outbox: one row per task that is still to run (see ``services/outbox.py``).

A row is written in the same transaction as the business write that wants the
task, published by the relay, re-armed by the task itself when it must run
again later (a retry, the next poll), and deleted in the transaction that
records the task's end in ``task_records``. A row therefore exists exactly as
long as its work is unfinished; ``(name, dedupe_key)`` is unique among rows,
which is the task de-duplication of plan A4/B2 held by the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt

__all__ = ["OutboxRow"]


class OutboxRow(CreatedAt, Base):
    __tablename__ = "outbox"
    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    company_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the relay may publish it (a retry's or a poll's countdown ends).
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the relay last handed it to the broker; NULL: waiting for the relay.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When a worker last began running it.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: How many times it was published; each message carries its number, so a superseded one is skipped.
    publications: Mapped[int] = mapped_column(Integer, default=0)
    #: The newest publication a worker has begun: older messages still in the broker are skipped.
    started_publication: Mapped[int] = mapped_column(Integer, default=0)
