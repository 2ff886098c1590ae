"""Structured logs: one JSON object per line, every line with the current trace id."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from .tracing import current_trace_id

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, *, trace_from_context: bool = True) -> None:
        """``trace_from_context=False`` is the worker's weakening ``task-log-trace``: a line carries a trace
        id only when its call passed one (``extra={"trace_id": ...}``), so Celery's own lines carry none."""
        super().__init__()
        self._trace_from_context = trace_from_context

    def format(self, record: logging.LogRecord) -> str:
        trace = getattr(record, "trace_id", None)
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": trace or (current_trace_id() if self._trace_from_context else None),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str | None = None, *, trace_from_context: bool = True) -> None:
    """Route the root, uvicorn and celery loggers through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(trace_from_context=trace_from_context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("STORMPROOF_LOG_LEVEL", "INFO")).upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task", "celery.worker"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
