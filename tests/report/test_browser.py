"""The reports in a real browser, offline: they render, show the evidence, ask for nothing, log nothing.

Headless Chromium (Debian package ``chromium``) loads each page from
``file://`` with all networking cut off and records every request, console
message and uncaught exception (see ``browser.py``). Screenshots are saved
in the test's temporary directory for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stormproof.harness.report import write_index
from tests.report.browser import BINARIES, Browser, find_chromium
from tests.report.runs import DUP_APPOINTMENT, DUP_KEY, DUP_SESSIONS, RecordedRun
from tests.report.screenshot import layout


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.fail(f"no headless browser ({', '.join(BINARIES)}) on PATH: install the Debian package "
                    "'chromium' (apt-get install -y chromium)")
    chromium = Browser(binary, tmp_path_factory.mktemp("chromium"))
    yield chromium
    chromium.close()


def _assert_quiet(browser: Browser, page, path: Path) -> None:
    assert page.requests == [path.resolve().as_uri()], f"the page asked for more than itself: {page.requests}"
    assert not page.console, page.console
    assert not page.errors, page.errors
    log = browser.log_since(page)
    assert "Uncaught" not in log and "CONSOLE" not in log, log


def test_violation_report_in_chromium(browser: Browser, recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    path = recorded["violation"].run_dir / "report.html"
    page = browser.load(path)
    _assert_quiet(browser, page, path)
    assert "VIOLATION" in page.text
    assert "single-active-session" in page.text and "job-applied-once" in page.text
    for needle in (DUP_APPOINTMENT, DUP_KEY, *DUP_SESSIONS, "F1 latency on app"):
        assert needle in page.text, needle
    # The charts are drawn: SVGs with a real size and their band labels.
    charts = browser.evaluate("Array.from(document.querySelectorAll('svg.chart'))"
                              ".filter(s => !s.closest('details:not([open])')).map(s => s.getBBox().width)")
    assert len(charts) >= 5 and min(charts) > 100
    shot = browser.screenshot(tmp_path / "report.png")
    top = browser.evaluate("document.getElementById('violations').getBoundingClientRect().top + window.scrollY")
    evidence = browser.screenshot(tmp_path / "violations.png", y=top, height=2400)
    assert shot.stat().st_size > 20_000 and evidence.stat().st_size > 20_000
    print(f"screenshots: {shot} {evidence}")


def test_first_violation_is_above_the_fold_at_1400x900(browser: Browser, recorded: dict[str, RecordedRun],
                                                       tmp_path: Path) -> None:
    """A reviewer opening a weakened run's report sees its first violation without scrolling."""
    path = recorded["violation"].run_dir / "report.html"
    try:
        found = layout(browser, path, width=1400, height=900)
        shot = browser.screenshot(tmp_path / "fold.png", height=900)
        heading, message = found["violation_heading"], found["violation_message"]
        assert heading is not None and message is not None, found
        assert message["bottom"] <= 900 and found["above_fold"], found
        # Before any chart of the run: the first drawn chart is the violation's own timeline or below the fold.
        assert found["first_chart"]["top"] > heading["top"], found
        # The check can fail: a page whose violation is further down is reported as below the fold.
        low = layout(browser, path, width=1400, height=int(heading["top"]) - 1)
        assert not low["above_fold"], low
        print(f"screenshot: {shot} {found}")
    finally:
        browser.viewport(1400, 2400)


def test_passing_report_and_index_in_chromium(browser: Browser, recorded: dict[str, RecordedRun],
                                              tmp_path: Path) -> None:
    path = recorded["pass"].run_dir / "report.html"
    page = browser.load(path)
    _assert_quiet(browser, page, path)
    assert "PASS" in page.text and "every invariant checked held" in page.text
    browser.screenshot(tmp_path / "pass.png")

    index, _ = write_index(tmp_path / "index.html", [recorded["pass"].run_dir.parent])
    page = browser.load(index)
    _assert_quiet(browser, page, index)
    assert "session-start-storm" in page.text and "webhook-duplicates" in page.text
    browser.screenshot(tmp_path / "index.png", height=900)
    print(f"screenshots: {tmp_path}")


def test_the_browser_check_catches_requests_and_console_errors(browser: Browser, tmp_path: Path) -> None:
    """The harness itself can fail: a page that fetches and logs is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>hi</p><img src="http://203.0.113.9/x.png">'
                   '<script>console.error("boom"); undefined_function();</script></body></html>', encoding="utf-8")
    page = browser.load(bad)
    assert any(url.startswith("http://203.0.113.9/") for url in page.requests)
    assert any("boom" in line for line in page.console)
    assert page.errors
    assert "CONSOLE" in browser.log_since(page) or page.console  # chromium may log asynchronously
    with pytest.raises(AssertionError):
        _assert_quiet(browser, page, bad)
