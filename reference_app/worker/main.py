"""The worker's entry point: ``celery -A stormproof.reference_app.worker.main worker -Q shunya``.

Settings come from the environment, as for the API.
"""

from __future__ import annotations

from celery import signals

from ..obs.logging import configure_logging
from ..settings import Settings
from . import broker_restart
from .celery_app import make_celery

_settings = Settings.from_env()
broker_restart.install(_settings.redis_url)
app = make_celery(_settings)
app.set_current()
app.set_default()
app.autodiscover_tasks(["stormproof.reference_app.worker"], related_name="tasks", force=True)
from . import tasks as _tasks  # noqa: E402,F401 - registers the tasks on this app


@signals.setup_logging.connect
def _logging(**_: object) -> None:
    configure_logging(trace_from_context=not _settings.weakened("task-log-trace"))


__all__ = ["app"]
