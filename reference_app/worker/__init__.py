"""Background work on Celery with the Redis broker (plan A1, A4, B2, C1, C2).

Run a worker with ``celery -A stormproof.reference_app.worker.main worker -Q shunya``.
"""
