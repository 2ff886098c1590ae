"""Screenshot a report at a reviewer's window (1400x900) and say where its first violation is.

    .venv/bin/python -m tests.report.screenshot RUN_DIR/report.html OUT.png [--width 1400] [--height 900]

Headless Chromium (offline, see ``browser.py``) loads the page in a window
of the given size, saves what a reviewer sees without scrolling to OUT.png
and the whole page to OUT-full.png, and prints one JSON line: the page's
height and the top and bottom of the first violation (``article.violation``)
and of the first chart, in CSS pixels. ``above_fold`` is true when the first
violation's heading and message are inside the window. ``layout`` is the
function the browser test asserts on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.report.browser import Browser, find_chromium

__all__ = ["layout", "main"]

_MEASURE = """(() => {
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY}; };
  const v = document.querySelector('article.violation');
  const head = v ? v.querySelector('h4') : null;
  const message = v ? v.querySelector('p') : null;
  return {height: document.documentElement.scrollHeight, violation: box(v), violation_heading: box(head),
          violation_message: box(message), first_chart: box(document.querySelector('svg.chart'))};
})()"""


def layout(browser: Browser, page: Path, *, width: int = 1400, height: int = 900) -> dict[str, Any]:
    """Load ``page`` in a ``width`` x ``height`` window and measure it (see the module docstring)."""
    browser.viewport(width, height)
    browser.load(page)
    found = browser.evaluate(_MEASURE)
    message = found.get("violation_message")
    found["window"] = [width, height]
    found["above_fold"] = bool(message) and message["bottom"] <= height
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    options = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("screenshot: error: no chromium on PATH; install the Debian package 'chromium'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sp-shot-") as work:
        browser = Browser(binary, Path(work))
        try:
            found = layout(browser, options.page, width=options.width, height=options.height)
            browser.screenshot(options.out, height=options.height, width=options.width)
            full = options.out.with_name(options.out.stem + "-full.png")
            browser.screenshot(full, height=min(found["height"], 16000), width=options.width)
        finally:
            browser.close()
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
