"""One router per resource."""

from . import (
    appointments,
    calls,
    consents,
    dead_letters,
    lifecycle,
    meta,
    recording_sessions,
    recordings,
    reps,
    shunya_webhook,
)

ROUTERS = (
    meta.router,
    appointments.router,
    reps.router,
    recording_sessions.router,
    recordings.router,
    calls.router,
    shunya_webhook.router,
    dead_letters.router,
    consents.router,
    lifecycle.router,
)

__all__ = ["ROUTERS"]
