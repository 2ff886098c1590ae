"""metrics-agree's start-up rule: every series an alert rule reads is in the scrape before the load (plan E2)."""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.invariants import CheckConfig, Snapshot, check_all
from stormproof.harness.invariants.checkers._alert_series import rule_selectors
from stormproof.harness.invariants.metrics import parse_metrics
from tests.invariants.builders import HistoryBuilder

RULES = """
groups:
  - name: g
    rules:
      - alert: Errors
        expr: sum(rate(http_requests_total{status=~"5.."}[2m])) / sum(rate(http_requests_total[2m])) > 0.05
      - alert: DeadLetters
        expr: sum by (task) (increase(tasks_finished_total{outcome="dead_lettered"}[10m])) > 1e3
      - record: not_an_alert
        expr: sum(ignored_total)
"""

START = """
http_requests_total{method="GET",route="/x",status="200"} 3
http_requests_total{method="GET",route="/x",status="500"} 0
webhook_dedupe_misses_total{source="poll"} 0
"""


def test_selectors_are_read_from_every_alert_rule(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(RULES)
    assert rule_selectors(path) == (
        ("Errors", "http_requests_total", (("status", "=~", "5.."),)),
        ("Errors", "http_requests_total", ()),
        ("DeadLetters", "tasks_finished_total", (("outcome", "=", "dead_lettered"),)),
    )


def test_the_reference_rules_name_their_series() -> None:
    names = {name for _, name, _ in rule_selectors()}
    assert {"shunya_api_errors_total", "webhook_dedupe_misses_total", "tasks_finished_total"} <= names
    assert not names & {"sum", "rate", "increase", "by", "le", "histogram_quantile"}


def _verdict(start: str, end: str):
    snap = Snapshot.build({}, metrics_text=end, baseline_text=start, config=CheckConfig())
    (verdict,) = check_all(HistoryBuilder().build(), snap, ["metrics-agree"])
    return verdict


def test_a_series_born_at_its_first_event_is_a_violation() -> None:
    """The dead-letter counter appears only once a task was dead-lettered: the alert misses that first one."""
    end = START + 'tasks_finished_total{outcome="dead_lettered",task="t"} 1\n'
    verdict = _verdict(START, end)
    assert verdict.status == "invalid"
    kinds = {v.details["type"] for v in verdict.violations}
    assert "series-absent-at-start-up" in kinds
    assert any("tasks_finished_total" in v.message and "DeadLetterGrowth" in v.message for v in verdict.violations)


def test_series_there_from_the_start_pass_and_missing_metrics_are_not_judged() -> None:
    start = START + 'tasks_finished_total{outcome="dead_lettered",task="t"} 0\n'
    verdict = _verdict(start, start.replace("} 0\n", "} 2\n"))
    assert not [v for v in verdict.violations if v.details["type"] == "series-absent-at-start-up"]
    assert verdict.summary["alert_series"]["judged"] >= 3
    assert verdict.summary["alert_series"]["not_judged"] >= 1  # e.g. celery_queue_depth: not in either scrape
    assert parse_metrics(start)  # the fixture is a real exposition
