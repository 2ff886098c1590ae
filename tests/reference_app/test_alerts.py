"""Plan E5: the alert rules are valid Prometheus rules and their unit tests pass in promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install Debian's package 'prometheus' (scripts/install.sh does)")
    return path


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    check = subprocess.run([_promtool(), "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def test_rule_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """Raise the error-rate threshold to 50%: the unit test expecting the alert must fail."""
    rules = (RULES / "alerts.yml").read_text().replace("> 0.05", "> 0.5", 1)
    (tmp_path / "alerts.yml").write_text(rules)
    shutil.copy(RULES / "alerts_test.yml", tmp_path / "alerts_test.yml")
    test = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert test.returncode != 0
    assert "HighErrorRate" in test.stdout + test.stderr


_FUNCTIONS = frozenset(("sum", "rate", "increase", "max", "min", "avg", "count", "histogram_quantile", "by",
                        "without", "on", "ignoring", "and", "or", "unless", "bool", "offset"))
_SELECTOR = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?P<labels>\{[^}]*\})?")
_MATCHER = re.compile(r'(?P<label>[a-zA-Z_]+)\s*(?P<op>=~|!=|!~|=)\s*"(?P<value>[^"]*)"')


def rule_selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The series selectors of a PromQL expression: (metric name, [(label, op, value)])."""
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range durations
    found = []
    for match in _SELECTOR.finditer(expr):
        name, rest = match.group("name"), expr[match.end():].lstrip()
        if name in _FUNCTIONS or rest.startswith("("):
            continue
        found.append((name, _MATCHER.findall(match.group("labels") or "")))
    return found


def test_every_series_an_alert_uses_exists_from_start_up(reference_app) -> None:
    """Scrape a fresh app before any request: every selector of every rule matches a series already.

    An alert on ``increase``/``rate`` cannot fire on the first burst after a start when its series
    is born with that burst (plan E5, issue 12 item 6): the first value it sees is already counted.
    """
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    selectors = {(rule["alert"], name, tuple(matchers)) for group in rules["groups"] for rule in group["rules"]
                 for name, matchers in rule_selectors(rule["expr"])}
    assert {name for _, name, _ in selectors} >= {"http_requests_total", "shunya_api_errors_total",
                                                  "tasks_finished_total", "celery_queue_depth", "db_pool_active"}
    app = reference_app(task_workers=0)
    samples = list(text_string_to_metric_families(httpx.get(f"{app.url}/metrics", timeout=10).text))
    series = [(s.name, s.labels) for family in samples for s in family.samples]
    missing = []
    for alert, name, matchers in sorted(selectors):
        def matches(labels: dict[str, str]) -> bool:
            for label, op, value in matchers:
                got = labels.get(label, "")
                ok = {"=": got == value, "!=": got != value, "=~": re.fullmatch(value, got) is not None,
                      "!~": re.fullmatch(value, got) is None}[op]
                if not ok:
                    return False
            return True
        if not any(n == name and matches(labels) for n, labels in series):
            missing.append(f"{alert}: {name}{{{', '.join(''.join(m) for m in matchers)}}}")
    assert not missing, f"series an alert rule uses are absent from a fresh /metrics: {missing}"


def test_rule_selectors_are_read_from_the_expressions() -> None:
    expr = 'sum(increase(tasks_finished_total{outcome="dead_lettered"}[10m])) by (task) > 0'
    assert rule_selectors(expr) == [("tasks_finished_total", [("outcome", "=", "dead_lettered")])]
    assert [n for n, _ in rule_selectors("db_pool_active >= (db_pool_size + db_pool_max_overflow)")] == [
        "db_pool_active", "db_pool_size", "db_pool_max_overflow"]


def test_rule_tests_catch_a_broken_outbox_rule(tmp_path: Path) -> None:
    """An outbox age threshold of an hour would never fire in the test: the unit test must say so."""
    rules = (RULES / "alerts.yml").read_text()
    assert "max(outbox_oldest_unpublished_age_seconds) > 60" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("outbox_oldest_unpublished_age_seconds) > 60",
                                                       "outbox_oldest_unpublished_age_seconds) > 3600"))
    shutil.copy(RULES / "alerts_test.yml", tmp_path / "alerts_test.yml")
    test = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert test.returncode != 0
    assert "OutboxRelayStalled" in test.stdout + test.stderr
