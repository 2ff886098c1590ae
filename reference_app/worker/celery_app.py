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

__all__ = ["make_celery", "restore_interval", "QUEUE", "SUBMIT_TASK", "POLL_TASK", "RETENTION_TASK"]

from .names import POLL_TASK, QUEUE, RETENTION_TASK, SUBMIT_TASK


def restore_interval(visibility_timeout_s: int) -> int:
    """Seconds between the worker's looks for messages whose worker died (see make_celery)."""
    return max(1, min(10, visibility_timeout_s // 2))


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
            # kombu looks for messages held past the visibility timeout (their worker died) only every
            # unacked_restore_interval * unacked_restore_throttle seconds: 10 * 10 by default, so a
            # dead worker's tasks came back up to 100 s after the timeout. One look every
            # min(10 s, half the timeout) is one cheap ZRANGE on the unacked index.
            "unacked_restore_interval": restore_interval(settings.broker_visibility_timeout_seconds),
            "unacked_restore_throttle": 1,
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
