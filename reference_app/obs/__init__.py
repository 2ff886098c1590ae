"""Observability: Prometheus metrics (plan E2 to E4), trace ids and JSON logs (E1)."""

from .logging import JsonFormatter, configure_logging
from .metrics import METRICS, Metrics, render_metrics
from .tracing import TRACE_HEADER, current_trace_id, new_trace_id, set_trace_id

__all__ = [
    "METRICS",
    "JsonFormatter",
    "Metrics",
    "TRACE_HEADER",
    "configure_logging",
    "current_trace_id",
    "new_trace_id",
    "render_metrics",
    "set_trace_id",
]
