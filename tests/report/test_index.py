"""The index of runs: newest first, links that resolve, trends per scenario."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from stormproof.harness.report import write_index
from tests.report.runs import RecordedRun
from tests.report.test_html import _parse, assert_offline


def test_index_lists_runs_newest_first_with_links_and_trends(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    root = recorded["violation"].run_dir.parent
    out, problems = write_index(tmp_path / "site" / "index.html", [root])
    assert not problems
    text, page = _parse(out)
    assert_offline(text, page)

    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\dT[^<]+)</td><td><strong>([^<]+)</strong>", text)
    assert rows == [("2025-06-10T02:00:00Z", "session-start-storm"), ("2025-06-09T02:00:00Z", "webhook-duplicates"),
                    ("2025-06-03T02:00:00Z", "session-start-storm")]
    links = [link for link in page.links if link.endswith("report.html")]
    assert len(links) == 3
    for link in links:
        assert (out.parent / unquote(link)).resolve().is_file()
    assert links[0].endswith("20250610-storm-7/report.html")
    assert '<span aria-hidden="true">✖</span> violation' in text and '<span aria-hidden="true">✔</span> pass' in text

    trends = text[text.index('id="trends"'):text.index('id="runs-title"')]
    assert 'id="trend-session-start-storm"' in trends and 'id="trend-webhook-duplicates"' in trends
    storm = trends[trends.index('id="trend-session-start-storm"'):trends.index('id="trend-webhook-duplicates"')]
    assert storm.count('class="spark"') == 3  # rps, p95, violations
    assert "✔✖" in storm  # verdicts oldest first
    # Tonight against a week before: the violations cell shows 3 now and 0 a week earlier.
    assert re.search(r"<strong>3</strong> violations<br><span class='note'>previous 0 · a week before 0", storm)


def test_index_reports_unreadable_runs(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / "result.json").write_text("{not json", encoding="utf-8")
    out, problems = write_index(tmp_path, [recorded["pass"].run_dir, broken, tmp_path / "missing"])
    assert out == tmp_path / "index.html"
    assert len(problems) == 2 and any("broken-run" in p for p in problems)
    text = out.read_text(encoding="utf-8")
    assert "Runs that could not be read" in text and "session-start-storm" in text
