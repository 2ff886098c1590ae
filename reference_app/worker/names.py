"""The queue's and the tasks' names, without Celery: what the seed and the harness need of the worker.

Importing Celery costs about half a second of CPU; the seed (run by every replay attempt, in the
written reproducer's own process) needs only a task's name.
"""

__all__ = ["QUEUE", "SUBMIT_TASK", "POLL_TASK", "RETENTION_TASK"]

QUEUE = "shunya"
SUBMIT_TASK = "shunya.submit_job"
POLL_TASK = "shunya.poll_shunya_job_status"
RETENTION_TASK = "lifecycle.enforce_retention"
