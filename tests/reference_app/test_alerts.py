"""Plan E5: the alert rules are valid Prometheus rules and their unit tests pass in promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
