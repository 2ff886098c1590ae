"""The index of runs: every run newest first, and trends per scenario.

A reviewer compares tonight with last week: the table lists runs newest
first with their verdict and headline numbers and a link to each report;
per scenario, sparklines show requests per second, p95 latency and
violations over the runs, with the latest value beside the previous run's
and the last run at least a week older. It reads only result.json files,
so it stays fast over months of nightly runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from stormproof.harness.report.charts import sparkline
from stormproof.harness.report.escape import esc, slug
from stormproof.harness.report.html import REPORT_FILE, stylesheet
from stormproof.harness.report.result import RESULT_FILE, ResultError, RunResult, load_result

__all__ = ["INDEX_FILE", "RunEntry", "find_runs", "render_index", "write_index"]

INDEX_FILE = "index.html"

#: Runs drawn in a sparkline (the newest ones).
TREND_RUNS = 60

_WORD = {"pass": ("✔", "pass", "valid"), "violation": ("✖", "violation", "invalid"), "error": ("⚠", "error", "unknown")}

# One look for every page: the report's stylesheet (templates/style.css), inlined.
_CSS = stylesheet()


@dataclass(frozen=True, slots=True)
class RunEntry:
    """A run directory and its result."""

    run_dir: Path
    result: RunResult

    @property
    def started(self) -> datetime:
        return _parse_time(self.result.run.started_at)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def find_runs(dirs: Iterable[str | os.PathLike[str]]) -> tuple[list[RunEntry], list[str]]:
    """Runs in ``dirs``: each a run directory or a directory of run directories.

    Returns the runs (newest first) and one problem line per unreadable
    result.json, so one corrupt run does not hide all the others.
    """
    entries: list[RunEntry] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for given in dirs:
        directory = Path(given)
        if (directory / RESULT_FILE).is_file():
            candidates = [directory]
        elif directory.is_dir():
            candidates = sorted(p for p in directory.iterdir() if (p / RESULT_FILE).is_file())
        else:
            problems.append(f"{directory}: not a directory")
            continue
        if not candidates:
            problems.append(f"{directory}: no run directory (no {RESULT_FILE}) here")
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            try:
                entries.append(RunEntry(candidate, load_result(candidate)))
            except ResultError as exc:
                problems.append(str(exc))
    entries.sort(key=lambda e: (e.started, e.result.run.id), reverse=True)
    return entries, problems


def _href(out_dir: Path, target: Path) -> str:
    relative = os.path.relpath(target.resolve(), out_dir.resolve())
    return quote(Path(relative).as_posix())


def _num(value: object, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:,.{digits}f}"


def _badge(verdict: str, not_run: bool = False) -> str:
    symbol, word, status = _WORD.get(verdict, ("?", verdict, "unknown"))
    if not_run:  # the system could not be set up: there is no result to read
        word = "not run"
    return f'<span class="st st-{status}"><span aria-hidden="true">{symbol}</span> {esc(word)}</span>'


def _runs_table(entries: Sequence[RunEntry], out_dir: Path) -> str:
    rows = []
    for entry in entries:
        result, stats = entry.result, entry.result.stats
        report = entry.run_dir / REPORT_FILE
        target = report if report.is_file() else entry.run_dir / RESULT_FILE
        link = f'<a href="{esc(_href(out_dir, target))}">{"report" if target is report else "result.json"}</a>'
        rows.append(
            f"<tr><td>{esc(result.run.started_at)}</td><td><strong>{esc(result.scenario.name)}</strong></td>"
            f"<td>{_badge(result.verdict, result.not_run is not None)}</td><td class='n'>{result.violation_count:,}</td>"
            f"<td class='n'>{_num(stats.get('rps'))}</td><td class='n'>{_num(stats.get('p95_ms'))}</td>"
            f"<td class='n'>{_num((stats.get('error_rate') or 0) * 100, 2)}%</td>"
            f"<td class='n'>{_num(result.run.duration_s)}</td><td class='n'>{esc(result.scenario.seed)}</td>"
            f"<td>{esc(', '.join(result.run.weakenings) or '–')}</td>"
            f"<td><code>{esc((result.run.commit or '–')[:10])}</code></td><td>{link}</td></tr>")
    head = ("started (UTC)", "scenario", "verdict", "violations", "req/s", "p95 ms", "errors", "duration s", "seed",
            "weakenings", "commit", "")
    numeric = {"violations", "req/s", "p95 ms", "errors", "duration s", "seed"}
    header = "".join(f'<th scope="col"{" class=n" if h in numeric else ""}>{h}</th>' for h in head)
    body = "".join(rows) or '<tr><td colspan="12">no runs found</td></tr>'
    return f'<table id="runs"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _week_before(runs: Sequence[RunEntry]) -> RunEntry | None:
    """The newest run at least seven days older than the latest one."""
    cutoff = runs[-1].started - timedelta(days=7)
    older = [run for run in runs[:-1] if run.started <= cutoff]
    return older[-1] if older else None


def _trend_cell(runs: Sequence[RunEntry], value, label: str, unit: str, digits: int) -> str:
    values = [value(run) for run in runs[-TREND_RUNS:]]
    latest = _num(values[-1], digits)
    previous = _num(values[-2], digits) if len(values) > 1 else "–"
    week = _week_before(runs)
    week_text = _num(value(week), digits) if week is not None else "–"
    return (f"<td>{sparkline(values, label=label, unit=unit)} <strong>{latest}</strong> {esc(unit)}"
            f"<br><span class='note'>previous {previous} · a week before {week_text}</span></td>")


def _trends(entries: Sequence[RunEntry]) -> str:
    by_scenario: dict[str, list[RunEntry]] = {}
    for entry in sorted(entries, key=lambda e: (e.started, e.result.run.id)):
        by_scenario.setdefault(entry.result.scenario.name, []).append(entry)
    rows = []
    for name in sorted(by_scenario):
        runs = by_scenario[name]
        strip = "".join(_WORD.get(run.result.verdict, ("?",))[0] for run in runs[-TREND_RUNS:])
        rows.append(
            f'<tr id="trend-{esc(slug(name))}"><th scope="row">{esc(name)}</th><td class="n">{len(runs)}</td>'
            f'<td><span class="strip" aria-label="verdicts oldest first: {esc(strip)}">{esc(strip)}</span></td>'
            + _trend_cell(runs, lambda r: r.result.stats.get("rps"), f"{name} requests per second", "req/s", 1)
            + _trend_cell(runs, lambda r: r.result.stats.get("p95_ms"), f"{name} p95 latency", "ms", 1)
            + _trend_cell(runs, lambda r: r.result.violation_count, f"{name} violations", "violations", 0)
            + "</tr>")
    body = "".join(rows) or '<tr><td colspan="6">no runs</td></tr>'
    return ('<table id="trends"><thead><tr><th scope="col">scenario</th><th scope="col" class="n">runs</th>'
            '<th scope="col">verdicts, oldest first</th><th scope="col">requests per second</th>'
            '<th scope="col">p95 latency</th><th scope="col">violations</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def render_index(entries: Sequence[RunEntry], out_path: Path, problems: Sequence[str] = (),
                 generated_at: datetime | None = None) -> str:
    """The index page; links are relative to where it will be written (``out_path``)."""
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    issues = "".join(f"<li>{esc(p)}</li>" for p in problems)
    issues = f'<h2>Runs that could not be read</h2><ul class="note">{issues}</ul>' if problems else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Stormproof runs ({len(entries)})</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Stormproof runs</h1><p class='note'>{len(entries)} runs, newest first · generated {esc(when)}</p>"
        f'<h2 id="trends-title">Trends per scenario</h2>{_trends(entries)}'
        f'<h2 id="runs-title">Runs</h2>{_runs_table(entries, out_path.parent)}{issues}'
        "</main></body></html>\n"
    )


def write_index(out_path: str | os.PathLike[str], dirs: Iterable[str | os.PathLike[str]]) -> tuple[Path, list[str]]:
    """Find the runs under ``dirs`` and write the index to ``out_path``; returns it and the problems."""
    out = Path(out_path)
    if out.is_dir():
        out = out / INDEX_FILE
    entries, problems = find_runs(dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_index(entries, out, problems), encoding="utf-8")
    os.replace(tmp, out)
    return out, problems
