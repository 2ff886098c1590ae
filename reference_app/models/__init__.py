"""The app's tables. The schema itself is created by Alembic migrations."""

from .appointments import Appointment, AppointmentAssignment
from .base import Base
from .calls import Call, CallAnalysis, ShunyaJob
from .guards import GUARDS, SchemaGuard, apply_guards
from .idempotency import IdempotencyKey
from .lifecycle import (
    CONSENT_SCOPES,
    DELETION_SCOPES,
    Consent,
    DeletionAudit,
    DeletionRequest,
    RetentionPolicy,
)
from .outbox import OutboxRow
from .tasks import TASK_STATES, DeadLetter, TaskRecord
from .recordings import ACTIVE_SESSION_STATUSES, RecordingSession
from .tenancy import Company, Role, User

__all__ = [
    "ACTIVE_SESSION_STATUSES",
    "Appointment",
    "AppointmentAssignment",
    "Base",
    "Call",
    "CallAnalysis",
    "CONSENT_SCOPES",
    "Company",
    "Consent",
    "DELETION_SCOPES",
    "DeletionAudit",
    "DeletionRequest",
    "DeadLetter",
    "GUARDS",
    "IdempotencyKey",
    "OutboxRow",
    "RecordingSession",
    "RetentionPolicy",
    "Role",
    "SchemaGuard",
    "ShunyaJob",
    "TASK_STATES",
    "TaskRecord",
    "User",
    "apply_guards",
]
