"""Stored Idempotency-Key claims and their responses (IETF Idempotency-Key draft).

A row is scoped by (company_id, key): two tenants may use the same key. It
holds the request fingerprint, so the same key with another payload is a 422,
and the exact response bytes, so a replay is identical byte for byte.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt

__all__ = ["IdempotencyKey"]


class IdempotencyKey(CreatedAt, Base):
    __tablename__ = "idempotency_keys"
    company_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    #: ``in_flight`` while the first request runs, then ``completed``.
    state: Mapped[str] = mapped_column(String(20))
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
