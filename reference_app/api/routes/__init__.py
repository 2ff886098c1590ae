"""One router per resource."""

from . import appointments, meta, recording_sessions, recordings, reps

ROUTERS = (meta.router, appointments.router, reps.router, recording_sessions.router, recordings.router)

__all__ = ["ROUTERS"]
