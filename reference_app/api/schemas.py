"""Request and response bodies: the documented contract the harness checks against."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ConsentIn",
    "ConsentOut",
    "DeletionAuditOut",
    "DeletionConfirm",
    "DeletionCreate",
    "DeletionCreatedOut",
    "configure",
    "created_body",
    "RetentionPolicyIn",
    "RetentionPolicyOut",
    "RetentionRunOut",
    "CallOut",
    "CallSubmit",
    "DeadLetterOut",
    "JobOut",
    "WebhookIn",
    "AppointmentCreate",
    "AppointmentOut",
    "AppointmentPatch",
    "AssignIn",
    "AssignmentOut",
    "LegacyRecordingOut",
    "RepCreate",
    "RepOut",
    "SessionOut",
    "SessionStart",
    "dump",
]


#: The weakenings (reference_app/weaken.py) of the app this process serves that live in the bodies' validators
#: (``storable-text``, ``appointment-window-checked``): a validator has no request context, so create_app sets
#: them here (one app per process; an app built later in the same process replaces them).
WEAKENED: frozenset[str] = frozenset()


def configure(weakenings: Iterable[str]) -> None:
    """Set the weakenings the validators obey (create_app calls it with its settings')."""
    global WEAKENED
    WEAKENED = frozenset(weakenings)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """Text PostgreSQL can store: no NUL (U+0000), no lone surrogate (not UTF-8). Else 422, not 500."""
        if isinstance(value, str) and "storable-text" not in WEAKENED:
            if "\x00" in value:
                raise ValueError("text may not contain NUL (U+0000)")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text must be valid Unicode (no lone surrogates)") from None
        return value


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def dump(model: type[_Out], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")


class AppointmentCreate(_In):
    title: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _window(self) -> "AppointmentCreate":
        if "appointment-window-checked" in WEAKENED:
            return self
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a timezone offset")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class AppointmentPatch(_In):
    title: str | None = Field(default=None, min_length=1, max_length=200)


class AppointmentOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    status: str
    assigned_rep_id: uuid.UUID | None


class AssignIn(_In):
    rep_id: str = Field(min_length=1, max_length=64)


class AssignmentOut(_Out):
    id: uuid.UUID
    appointment_id: uuid.UUID
    rep_id: uuid.UUID
    company_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: str


class RepCreate(_In):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)


class RepOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    email: str
    name: str
    role: str


class SessionStart(_In):
    appointment_id: str = Field(min_length=1, max_length=64)


class SessionOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    appointment_id: uuid.UUID
    started_by: uuid.UUID
    status: str
    source: str
    created_at: datetime
    stopped_at: datetime | None


class LegacyRecordingOut(BaseModel):
    """The legacy ``/recordings`` shape: the same session under older field names."""

    recording_id: uuid.UUID
    appointment_id: uuid.UUID
    status: str

    @classmethod
    def of(cls, session: Any) -> dict[str, Any]:
        return cls(
            recording_id=session.id, appointment_id=session.appointment_id, status=session.status
        ).model_dump(mode="json")


class CallSubmit(_In):
    appointment_id: str | None = Field(default=None, max_length=64)
    recording_session_id: str | None = Field(default=None, max_length=64)


class CallOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    appointment_id: uuid.UUID | None
    recording_session_id: uuid.UUID | None
    status: str
    lead_score: int | None
    outcome: str | None


class JobOut(_Out):
    id: uuid.UUID
    call_id: uuid.UUID
    shunya_job_id: str | None
    status: str
    processed_output_hash: str | None


class DeadLetterOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID | None
    task_id: str
    task_name: str
    args: dict[str, Any]
    error: str
    attempts: int
    trace_id: str | None
    status: str
    retried_task_id: str | None
    created_at: datetime


class WebhookIn(BaseModel):
    """A Shunya delivery. Unknown fields are tolerated: the sender may add some."""

    event: str = Field(max_length=50)
    delivery_id: str = Field(max_length=100)
    job_id: str = Field(min_length=1, max_length=64)
    #: Shunya echoes the call the job was created for; the job id, not this, says whose result it is.
    call_id: str | None = Field(default=None, max_length=64)
    status: str = Field(pattern="^(completed|failed)$")
    result: dict[str, Any] | None = None
    output_hash: str | None = Field(default=None, max_length=128)
    error: Any = None

    @model_validator(mode="after")
    def _complete(self) -> "WebhookIn":
        if self.status == "completed" and (self.result is None or not self.output_hash):
            raise ValueError("a completed job needs result and output_hash")
        return self


class WebhookInLax(WebhookIn):
    """Weakened ``webhook-complete-result``: a completed delivery taken in without its result or hash."""

    @model_validator(mode="after")
    def _complete(self) -> "WebhookInLax":
        return self


# -- data lifecycle (plan F1 to F3) --

class ConsentIn(_In):
    scope: Literal["recording", "analysis"]
    #: What the person agreed to and how (a form's version, a recorded phrase), kept verbatim.
    evidence: str = Field(min_length=1, max_length=4000)


class ConsentOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    appointment_id: uuid.UUID
    scope: str
    granted_at: datetime
    ip: str | None
    user_agent: str | None
    evidence: str


class RetentionPolicyIn(_In):
    call_days: int = Field(ge=1, le=36_500)
    appointment_days: int = Field(ge=1, le=36_500)


class RetentionPolicyOut(BaseModel):
    company_id: uuid.UUID
    call_days: int
    appointment_days: int
    #: True when no policy was set and the defaults (90 and 365 days) apply.
    default: bool


class RetentionRunOut(BaseModel):
    company_id: uuid.UUID
    counts: dict[str, int]


class DeletionCreate(_In):
    scope: Literal["appointment", "company"]
    target_id: str = Field(min_length=1, max_length=64)


class DeletionCreatedOut(BaseModel):
    id: uuid.UUID
    scope: str
    target_id: uuid.UUID
    status: str
    #: Rows that confirming would delete, per table, counted when the request was made.
    counts: dict[str, int]
    #: Shown once: only its hash is stored.
    confirmation_token: str
    expires_at: datetime


def created_body(created: Any) -> dict[str, Any]:
    """The answer to a new deletion request (a ``services.deletion.CreatedDeletion``), whichever route made it."""
    r = created.request
    return DeletionCreatedOut(
        id=r.id, scope=r.scope, target_id=r.target_id, status=r.status, counts=r.counts,
        confirmation_token=created.token, expires_at=r.expires_at,
    ).model_dump(mode="json")


class DeletionConfirm(_In):
    confirmation_token: str = Field(min_length=1, max_length=200)


class DeletionAuditOut(_Out):
    id: uuid.UUID
    company_id: uuid.UUID
    requested_by: uuid.UUID
    confirmed_by: uuid.UUID
    scope: str
    target_id: uuid.UUID
    counts: dict[str, int]
    requested_at: datetime
    executed_at: datetime
