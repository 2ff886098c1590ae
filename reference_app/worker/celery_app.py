"""The Celery application, configured from :class:`Settings`.

Acks late and reject on worker loss: a worker killed mid-task leaves its
message to be delivered again, and the task's own guards make the second run
harmless. Prefetch 1, so a paused worker holds at most one task hostage.

``beat_schedule`` runs retention (plan F1) for every company every
``STORMPROOF_RETENTION_INTERVAL_SECONDS``; it takes effect only where Celery
beat runs (``celery -A stormproof.reference_app.worker.main beat``), never in a worker.
"""

from __future__ import annotations

from celery import Celery

from ..settings import Settings

__all__ = ["make_celery", "QUEUE", "SUBMIT_TASK", "POLL_TASK", "RETENTION_TASK"]

QUEUE = "shunya"
SUBMIT_TASK = "shunya.submit_job"
POLL_TASK = "shunya.poll_shunya_job_status"
RETENTION_TASK = "lifecycle.enforce_retention"


def make_celery(settings: Settings) -> Celery:
    app = Celery("stormproof.reference_app", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule={
            "enforce-retention": {
                "task": RETENTION_TASK,
                "schedule": float(settings.retention_interval_seconds),
                "kwargs": {},
            },
        },
    )
    return app
