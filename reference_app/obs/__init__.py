"""Observability: Prometheus metrics (plan E2 to E4)."""

from .metrics import METRICS, Metrics, render_metrics

__all__ = ["METRICS", "Metrics", "render_metrics"]
