"""Stormproof invariants: pure checkers of (history, final snapshot) -> verdict.

Each invariant is a function ``(History, Snapshot) -> Verdict`` registered by
name (one module per checker under ``stormproof.harness.invariants.checkers``).
``check_all`` runs them so that a crash is ``unknown``, never a pass;
``overall`` ranks invalid > unknown > valid, with SLO verdicts apart.
"""

from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.config import CheckConfig
from stormproof.harness.invariants.metrics import metric_key, metric_sum, parse_metrics, split_metric_key
from stormproof.harness.invariants.registry import Checker, CheckerInfo, check_all, checker, get_checker, names, run_checker
from stormproof.harness.invariants.snapshot import TABLES, Quiescence, Row, Snapshot, normalise_row
from stormproof.harness.invariants.verdict import (
    Kind,
    Overall,
    Status,
    Verdict,
    Violation,
    merge_status,
    overall,
    verdict_to_dict,
)

__all__ = [
    "TABLES",
    "CheckConfig",
    "Checker",
    "CheckerInfo",
    "Kind",
    "Overall",
    "Quiescence",
    "Row",
    "Snapshot",
    "Status",
    "Verdict",
    "Violation",
    "ViolationLog",
    "check_all",
    "checker",
    "get_checker",
    "merge_status",
    "metric_key",
    "metric_sum",
    "names",
    "normalise_row",
    "overall",
    "parse_metrics",
    "run_checker",
    "split_metric_key",
    "verdict_to_dict",
]
