"""The app's tables. The schema itself is created by Alembic migrations."""

from .appointments import Appointment, AppointmentAssignment
from .base import Base
from .calls import Call, CallAnalysis, ShunyaJob
from .guards import GUARDS, SchemaGuard, apply_guards
from .idempotency import IdempotencyKey
from .recordings import ACTIVE_SESSION_STATUSES, RecordingSession
from .tenancy import Company, Role, User

__all__ = [
    "ACTIVE_SESSION_STATUSES",
    "Appointment",
    "AppointmentAssignment",
    "Base",
    "Call",
    "CallAnalysis",
    "Company",
    "GUARDS",
    "IdempotencyKey",
    "RecordingSession",
    "Role",
    "SchemaGuard",
    "ShunyaJob",
    "User",
    "apply_guards",
]
