"""Every series an alert rule reads exists from start-up (plan E2), judged for metrics-agree.

A counter created lazily, at its first increment, appears already holding
that increment: ``increase()`` and ``rate()`` need two samples, so the first
burst of errors after a start (the one that matters after a deploy) never
moves an alert built on it. The promise is therefore about the scrape taken
before the load: for every selector of every alert rule (a metric name and
its label matchers, read from the rules file), some series matching it must
already be there.

Judged only where the run shows the app *has* the series: a selector with a
matching series in the final scrape but none in the baseline is
``series-absent-at-start-up``. A selector that matches nothing even at the
end (an app without that metric at all) is counted as not judged, never as
a violation: this rule is about when a series appears, not which exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.metrics import split_metric_key

__all__ = ["ALERT_RULES", "Selector", "check_alert_series", "rule_selectors"]

#: The reference app's alert rules (deploy/prometheus/alerts.yml in the repository).
ALERT_RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"

#: (alert, metric name, ((label, operator, value), ...))
Selector = tuple[str, str, tuple[tuple[str, str, str], ...]]

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = frozenset(("and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan"))


def _selectors(alert: str, expr: str) -> list[Selector]:
    """The metric selectors of one PromQL expression: names not called as functions, with their matchers."""
    text = _RANGE.sub(" ", _GROUPING.sub(" ", expr))
    found: list[Selector] = []
    pos = 0
    while (match := _NAME.search(text, pos)) is not None:
        name, end = match.group(), match.end()
        pos = end
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the tail of a number such as 1e3
        rest = text[end:].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if name.lower() in _KEYWORDS:
            continue
        matchers: tuple[tuple[str, str, str], ...] = ()
        if rest.startswith("{"):
            close = text.index("}", end)
            matchers = tuple((m.group(1), m.group(2), m.group(3)) for m in _MATCHER.finditer(text[end:close]))
            pos = close + 1
        found.append((alert, name, matchers))
    return found


@lru_cache(maxsize=4)
def rule_selectors(path: Path = ALERT_RULES) -> tuple[Selector, ...]:
    """Every selector of every alert rule in a Prometheus rules file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    found: list[Selector] = []
    for group in data.get("groups") or ():
        for rule in group.get("rules") or ():
            if "alert" in rule and "expr" in rule:
                found.extend(_selectors(str(rule["alert"]), str(rule["expr"])))
    return tuple(dict.fromkeys(found))


def _matches(labels: Iterable[tuple[str, str]], matchers: tuple[tuple[str, str, str], ...]) -> bool:
    have = dict(labels)
    for label, op, value in matchers:
        actual = have.get(label, "")
        if op == "=" and actual != value or op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual) or op == "!~" and re.fullmatch(value, actual):
            return False
    return True


def _present(samples: Mapping[str, float], name: str, matchers: tuple[tuple[str, str, str], ...]) -> bool:
    for key in samples:
        if key.startswith(name):
            sample, labels = split_metric_key(key)
            if sample == name and _matches(labels, matchers):
                return True
    return False


def _show(name: str, matchers: tuple[tuple[str, str, str], ...]) -> str:
    inner = ",".join(f'{label}{op}"{value}"' for label, op, value in matchers)
    return f"{name}{{{inner}}}" if inner else name


def check_alert_series(log: ViolationLog, baseline: Mapping[str, float], final: Mapping[str, float],
                       rules: Path = ALERT_RULES) -> dict[str, int]:
    """Flag each alert selector the app serves at the end but did not serve at the start; returns counts."""
    if not baseline or not rules.is_file():
        return {"judged": 0, "not_judged": 0}
    judged = not_judged = 0
    for alert, name, matchers in rule_selectors(rules):
        if not _present(final, name, matchers):
            not_judged += 1
            continue
        judged += 1
        if not _present(baseline, name, matchers):
            log.add("series-absent-at-start-up",
                    f"{_show(name, matchers)}, read by the alert {alert}, had no series in the scrape before the "
                    "load but has one after it: created at its first event, so increase() and rate() miss the "
                    "first burst after a start", (), alert=alert, series=_show(name, matchers))
    return {"judged": judged, "not_judged": not_judged}
