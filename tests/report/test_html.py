"""report.html from recorded runs: verdict, invariant rows, evidence with anchors, fault bands, offline."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from stormproof.harness.history import History, Op
from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.report import load_result, render_report, time_series
from tests.report.runs import DUP_APPOINTMENT, DUP_KEY, DUP_SESSIONS, RecordedRun


class _Page(HTMLParser):
    """Ids, fragment links, other links and resource-bearing attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fragments: list[str] = []
        self.links: list[str] = []
        self.resources: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.add(value)
            elif name == "href":
                (self.fragments if value.startswith("#") else self.links).append(value)
            elif name in ("src", "srcset", "data", "poster", "action", "formaction", "xlink:href"):
                self.resources.append(value)


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def assert_offline(text: str, page: _Page) -> None:
    """Nothing in the page can make a request: no scripts, no external links or resources."""
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower() and "<iframe" not in text.lower()
    assert not re.search(r"@import|url\(\s*['\"]?(?!#)", text), "CSS may only reference in-page patterns"
    assert not page.resources, page.resources
    for link in page.links:
        assert "://" not in link and not link.startswith(("/", "javascript:", "data:")), link


def test_violation_report_shows_verdict_invariants_and_evidence(recorded: dict[str, RecordedRun]) -> None:
    run = recorded["violation"]
    text, page = _parse(run.run_dir / "report.html")
    result = load_result(run.run_dir)

    assert "VIOLATION" in text and 'id="verdict"' in text
    assert "stormproof run session-start-storm --seed 7 --weaken session-lock" in text  # the replay command
    assert "appointment.read 50, session.start 20" in text  # the load mix, heaviest first
    assert "session-lock" in text and "0123456789abcdef" in text and "2025-06-10T02:00:00Z" in text
    for verdict in result.verdicts:
        assert f'id="inv-{verdict.invariant}"' in text
    assert re.search(r'id="inv-single-active-session">.*?st-invalid', text)
    assert re.search(r'id="inv-job-applied-once">.*?st-unknown', text)
    assert re.search(r'id="inv-slo-latency-p95">.*?st-valid', text)

    # Evidence: the two acknowledged starts, with ids, the key and their answers, anchored and cross-linked.
    single = next(v for v in result.verdicts if v.invariant == "single-active-session")
    history_ops = sorted({i for v in single.violations for i in v.ops})
    assert len(history_ops) == 2
    for index in history_ops:
        assert f'id="v-single-active-session-1-op-{index}"' in text
    for needle in (DUP_APPOINTMENT, DUP_KEY, *DUP_SESSIONS, "feedaaaa"):
        assert needle in text
    for fragment in page.fragments:
        assert fragment[1:] in page.ids, f"dangling link {fragment}"
    timeline_rows = [i for i in page.ids if re.fullmatch(r"v-single-active-session-1-tl-\d+", i)]
    # The cited starts plus the neighbours on the same appointment: the read and the refused stop.
    assert len(timeline_rows) == 4
    assert "session.stop" in text and "fail 409" in text

    # Fault bands, labelled, in every chart, and listed in the fault log.
    assert "F1 latency on app" in text and "F2 pause on worker" in text
    assert text.count("F1 latency on app") >= 3
    assert 'id="fault-1"' in text and 'id="fault-2"' in text
    assert "never healed" not in text  # the final heal closed F2

    # Load, SLO table and links to the run's own files.
    assert "Requests, refusals and errors per second" in text and "latency (ms)" in text
    assert "p95 latency of ok operations" in text
    for path in ("locust/stats.json", "logs/app.log", "history.jsonl", "junit.xml", "result.json"):
        assert f'href="{path}"' in text
    assert_offline(text, page)


def test_passing_report(recorded: dict[str, RecordedRun]) -> None:
    text, page = _parse(recorded["pass"].run_dir / "report.html")
    assert "PASS" in text and "VIOLATION" not in text
    assert "None: every invariant checked held." in text
    assert "F1 latency on app" in text
    assert_offline(text, page)
    assert len(text) < 600_000


def test_untrusted_history_is_escaped(recorded: dict[str, RecordedRun]) -> None:
    base = load_result(recorded["pass"].run_dir)
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    ops = [
        Op(0, "invoke", "user-<b>1</b>", "session.start", "c1\x00", {"appointment_id": evil, "idempotency_key": evil},
           time_ns=1_000_000),
        Op(1, "ok", "user-<b>1</b>", "session.start", "c1\x00", {"appointment_id": evil, "idempotency_key": evil},
           201, {"id": evil, "company_ids_seen": frozenset({evil})}, None, 5_000_000, 0.0, 0),
        Op(2, "invoke", "nemesis", "fault", None, {"fault": evil, "phase": "start", "target": evil, "params": {}},
           time_ns=6_000_000),
    ]
    history = History(ops)
    verdict = Verdict("single-active-session", "invalid", "safety",
                      (Violation("single-active-session", evil, (0, 1), {"type": evil, "appointment_id": evil}),),
                      {"violations": 1, "by_type": {evil: {"count": 1}}})
    from stormproof.harness.report import build_result

    result = build_result(base.scenario, base.run, [verdict], history)
    text = render_report(result, history, time_series(history))
    page = _Page()
    page.feed(text)
    assert "<script" not in text and "<img" not in text and "<b>" not in text and "\x00" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.tags.isdisjoint({"script", "img", "b"})


def test_report_without_history_still_has_verdict_and_tables(recorded: dict[str, RecordedRun]) -> None:
    result = load_result(recorded["violation"].run_dir)
    text = render_report(result, None, None, history_problem="no history file history.jsonl")
    assert "VIOLATION" in text and "no history file history.jsonl" in text
    assert "no history to show them" in text
    assert 'id="inv-single-active-session"' in text
    json.dumps(text)  # one plain string
