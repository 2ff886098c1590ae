"""``verify.html``: the matrix as one self-contained page, linking each try's run report.

No script and no network, like every page of ours: it is read from a CI
artifact or a mail attachment. Names come from files users write (scenario
and weakening names, failure reasons quoting server answers), so every
string goes through the report's ``esc``; the look follows the run index's
conventions (same palette and badges), so the pages read as one product.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from stormproof.harness.report.escape import esc
from stormproof.harness.verify.outcome import VERIFY_FILE, Matrix, Try, exit_code
from stormproof.harness.verify.table import first_violation_text

__all__ = ["PAGE_FILE", "render_page", "write_page"]

PAGE_FILE = "verify.html"

_CSS = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1b1b1b;
background:#fafafa}main{max-width:1300px;margin:0 auto;padding:10px 20px}h1{font-size:24px}
h2{font-size:19px;border-bottom:2px solid #d0d0d0;margin-top:26px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13.5px}
th,td{border:1px solid #d0d0d0;padding:4px 7px;text-align:left;vertical-align:top}th{background:#eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#f6f6f6}
.st{font-weight:700;padding:1px 6px;border-radius:4px;white-space:nowrap;border:1px solid}
.st-valid{color:#00563f;background:#e3f4ec}.st-invalid{color:#8f3500;background:#fbe3d6}
.st-unknown{color:#6b4700;background:#fdf0d5}.note{color:#555;font-size:13px}a{color:#0060a0}
ul.tries{margin:0;padding-left:18px}
"""


def _badge(good: bool, yes: str, no: str) -> str:
    status, symbol, word = ("valid", "✔", yes) if good else ("invalid", "✖", no)
    return f'<span class="st st-{status}"><span aria-hidden="true">{symbol}</span> {esc(word)}</span>'


def _href(run_dir: str) -> str:
    report = Path(run_dir) / "report.html"
    return quote(report.as_posix())


def _tries(tries: tuple[Try, ...], yes: str, no: str) -> str:
    if not tries:
        return '<span class="note">not run</span>'
    items = []
    for t in tries:
        link = f' <a href="{esc(_href(t.run_dir))}">report</a>' if t.run_dir else ""
        first = f", first violation at {t.first_violation_s:.1f} s" if t.first_violation_s is not None else ""
        reason = "" if t.reason == yes or t.reason == "pass" else f' <span class="note">{esc(t.reason)}</span>'
        items.append(f"<li>seed {esc(t.seed)}: {esc(yes if t.ok else no)}{esc(first)}{link}{reason}</li>")
    return f'<ul class="tries">{"".join(items)}</ul>'


def _tries_text(tries: int) -> str:
    return "1 try" if tries == 1 else f"{tries} tries"


def render_page(matrix: Matrix) -> str:
    """The page; run links are relative to the directory verify.json is written to."""
    ok = exit_code(matrix) == 0
    rows = []
    for result in matrix.cells:
        cell = result.cell
        score = f"{result.caught}/{len(result.tries)}"
        problem = f'<p class="note">{esc(cell.problem)}</p>' if cell.problem else ""
        rows.append(
            f"<tr><td><strong>{esc(' + '.join(cell.weaken))}</strong></td><td>{esc(cell.scenario)}</td>"
            f"<td>{esc(', '.join(cell.expect))}</td>"
            f"<td>{_badge(not result.escaped, score, f'{score} escaped')}</td>"
            f"<td class='n'>{esc(first_violation_text(result))}</td>"
            f"<td>{problem}{_tries(result.tries, 'caught', 'escaped')}</td>"
            f"<td class='note'>{esc(', '.join(cell.sources))}</td></tr>")
    cells = ('<table id="cells"><thead><tr><th scope="col">weakening</th><th scope="col">scenario</th>'
             '<th scope="col">must break</th><th scope="col">caught</th>'
             '<th scope="col" class="n">first violation (median)</th><th scope="col">tries</th>'
             f'<th scope="col">from</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    on_rows = "".join(
        f"<tr><td><strong>{esc(a.scenario)}</strong></td>"
        f"<td>{_badge(not a.failed, f'{a.passed}/{len(a.tries)}', f'{a.passed}/{len(a.tries)} failed')}</td>"
        f"<td>{_tries(a.tries, 'pass', 'failed')}</td>"
        f"<td class='note'>{esc(', '.join(a.idle)) or 'none'}</td></tr>" for a in matrix.all_on)
    all_on = ('<table id="all-on"><thead><tr><th scope="col">scenario</th><th scope="col">passed</th>'
              '<th scope="col">tries</th><th scope="col">rows at risk here, never exercised</th></tr></thead>'
              f'<tbody>{on_rows}</tbody></table>')
    uncovered = ""
    if matrix.uncovered_promises:
        uncovered = ('<h2>Promises no run verifies</h2><p class="note">No weakening breaks them, no scenario puts '
                     'them at risk, or the promise table marks a known gap (docs/PROMISES.md, last column): '
                     f'{esc(", ".join(matrix.uncovered_promises))}</p>')
    duration = "each scenario's own duration" if matrix.duration_s is None else f"{matrix.duration_s:g} s per run"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Stormproof verify: {'pass' if ok else 'fail'}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Sensitivity matrix {_badge(ok, 'pass', 'fail')}</h1>"
        f"<p class='note'>Each weakening switches fixes off; its scenario must then break the named invariants in "
        f"every try, and the same scenario must pass with every fix on. {esc(_tries_text(matrix.tries))} per cell, "
        f"{esc(duration)}, backend {esc(matrix.backend)}; started {esc(matrix.started_at)}, "
        f"{esc(f'{matrix.wall_s / 60:.1f}')} min. <code>{esc(matrix.command)}</code> · "
        f'<a href="{VERIFY_FILE}">{VERIFY_FILE}</a></p>'
        f"<h2>Weakened</h2>{cells}<h2>Every fix on</h2>{all_on}{uncovered}"
        "</main></body></html>\n"
    )


def write_page(matrix: Matrix, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``verify.html`` into ``out_dir``; returns its path."""
    path = Path(out_dir) / PAGE_FILE
    path.write_text(render_page(matrix))
    return path
