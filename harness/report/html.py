"""report.html: one self-contained page per run, for a release reviewer with one minute.

Reading order follows the reviewer's questions: did it hold (the verdict,
one line of counts, how to replay it), what broke and the operations that
show it (violations come right under the verdict, before any chart), what
held (invariants, SLOs), under what load and faults (the whole run's charts
and the charts of the operations that matter; the rest folded), then the
reference tables. The page has no script and loads nothing: styles and SVG
charts are inline, links are fragments or relative paths to files of the
run directory that exist.

Every number shown is read from the ``RunResult`` (result.json) through one
``Counts`` or from ``result.stats``, never recounted from the history, so
the headline, the tables and the index agree. The history only supplies
evidence (the cited calls and their neighbours) and the time series.

The page is a Jinja2 template with autoescaping (``templates/report.html.j2``):
every string from the history or result.json is escaped by the template,
and control characters are dropped by ``escape.printable``. The SVG charts
are drawn by ``charts.py``, which escapes its own text, and reach the
template as ``Markup``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from stormproof.harness.history import History
from stormproof.harness.invariants.verdict import Verdict, Violation
from stormproof.harness.promises.run import NOT_EXERCISED
from stormproof.harness.report.charts import Band, Bar, Line, gantt, line_chart
from stormproof.harness.report.escape import printable, slug
from stormproof.harness.report.evidence import EvidenceOp, Neighbourhood, cited_pairs, neighbourhoods
from stormproof.harness.report.result import RESULT_FILE, RunResult
from stormproof.harness.report.stats import ALL_OPS, REFUSAL_STATUSES, Series

__all__ = [
    "JUNIT_FILE",
    "REPORT_FILE",
    "SHOWN_PER_INVARIANT",
    "TEMPLATES",
    "TIMELINES_PER_INVARIANT",
    "Counts",
    "counts_of",
    "environment",
    "render_report",
]

REPORT_FILE = "report.html"
JUNIT_FILE = "junit.xml"

#: Where the page templates and the shared stylesheet live.
TEMPLATES = Path(__file__).with_name("templates")

#: Violations drawn open per invariant (the first ones); the others of the kept ones are folded.
SHOWN_PER_INVARIANT = 1

#: Timelines drawn per invariant (every kept violation still gets its evidence table).
TIMELINES_PER_INVARIANT = 25

#: Operation latency charts drawn open besides the whole run's; the rest are folded.
MATTER_CHARTS = 4

_NS = 1_000_000_000
_VERDICT_TEXT = {"pass": ("✔", "PASS"), "violation": ("✖", "VIOLATION"), "error": ("⚠", "ERROR")}
_STATUS_SYMBOL = {"valid": "✔", "invalid": "✖", "unknown": "?", "none": "–"}
_ID_FIELDS = ("id", "appointment_id", "session_id", "rep_id", "job_id", "shunya_job_id", "call_id", "target_id",
              "target_tenant", "assignment_id")
_TRUNCATE = 160
_REFUSALS = "/".join(str(s) for s in sorted(REFUSAL_STATUSES))

FAIL_NOTE = (
    "A fail is an answer that certainly had no effect (a 4xx the API defines, see harness/history/classify.py). "
    f"Refused ({_REFUSALS}) are the refusals the hardening gives by design: 409 an active session or a key still in "
    "flight, 422 a key reused with another payload, 429 a rate limit. Other 4xx are 400/401/403/404 "
    "(a 404 answers a cross-tenant probe). Neither is an error: errors are 5xx, timeouts and calls never "
    "answered, and only they make the error rate."
)


# -- counts: one owner for every number of the headline ----------------------------------------
@dataclass(frozen=True, slots=True)
class Counts:
    """The run's counts, from its result only: the headline, table titles and the index use these."""

    invariants: int
    valid: int
    invalid: int
    unknown: int
    not_exercised: int
    not_checked: int
    slos: int
    slos_met: int
    slos_breached: int
    slos_unknown: int
    violations: int

    @property
    def checks(self) -> int:
        """Rows of the invariants table: every verdict, and every scenario invariant never checked."""
        return self.invariants + self.not_checked + self.slos

    @property
    def lead(self) -> str:
        parts = [f"{self.valid} valid", f"{self.invalid} invalid", f"{self.unknown} unknown"]
        if self.not_exercised:
            parts[-1] += f" ({self.not_exercised} not exercised)"
        if self.not_checked:
            parts.append(f"{self.not_checked} not checked")
        named = self.invariants + self.not_checked
        invariants = f"{named} invariant{'s' if named != 1 else ''}"
        if self.slos:
            slo = (f"{self.slos} SLO{'s' if self.slos != 1 else ''}: {self.slos_met} met, "
                   f"{self.slos_breached} breached" + (f", {self.slos_unknown} unknown" if self.slos_unknown else ""))
        else:
            slo = "no SLO checked"
        return (f"{self.checks} checks · {invariants}: {', '.join(parts)} · {self.violations_text} · {slo}")

    @property
    def violations_text(self) -> str:
        return f"{self.violations:,} violation{'s' if self.violations != 1 else ''}"


def _is_not_exercised(verdict: Verdict) -> bool:
    return (verdict.error or "").startswith(NOT_EXERCISED)


def counts_of(result: RunResult) -> Counts:
    """Count the result's verdicts once (violations: ``RunResult.violation_count``, as the index and suite)."""
    correctness = [v for v in result.verdicts if v.kind != "slo"]
    slos = [v for v in result.verdicts if v.kind == "slo"]
    checked = {v.invariant for v in result.verdicts}
    return Counts(
        invariants=len(correctness),
        valid=sum(v.status == "valid" for v in correctness),
        invalid=sum(v.status == "invalid" for v in correctness),
        unknown=sum(v.status == "unknown" for v in correctness),
        not_exercised=sum(v.status == "unknown" and _is_not_exercised(v) for v in correctness),
        not_checked=sum(1 for name in result.scenario.invariants if name not in checked),
        slos=len(slos),
        slos_met=sum(v.status == "valid" for v in slos),
        slos_breached=sum(v.status == "invalid" for v in slos),
        slos_unknown=sum(v.status == "unknown" for v in slos),
        violations=result.violation_count,
    )


# -- formatting ---------------------------------------------------------------------------------
def _short(value: Any, limit: int = _TRUNCATE) -> str:
    if isinstance(value, (frozenset, set)):
        text = "{" + ", ".join(sorted(_short(v, 60) for v in value)) + "}"
    elif isinstance(value, (tuple, list)):
        text = "[" + ", ".join(_short(v, 60) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_short(v, 60)}" for k, v in value.items()) + "}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return text + unit


def _pct(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.2%}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- the fail split --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Split:
    """A row's completions: ok, refused by design, other 4xx, errors (None: result.json predates the split)."""

    count: int
    ok: int
    refused: int | None
    other_4xx: int | None
    fail: int
    errors: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> "_Split":
        fail = _int(row.get("fail"))
        by_status = row.get("fail_by_status")
        refused = other = None
        if isinstance(by_status, Mapping):
            refused = sum(_int(n) for s, n in by_status.items() if s.isdigit() and int(s) in REFUSAL_STATUSES)
            other = fail - refused
        return cls(_int(row.get("count")), _int(row.get("ok")), refused, other, fail, _int(row.get("errors")))

    @classmethod
    def total(cls, rows: Sequence["_Split"]) -> "_Split":
        known = all(r.refused is not None for r in rows)
        return cls(sum(r.count for r in rows), sum(r.ok for r in rows),
                   sum(r.refused or 0 for r in rows) if known else None,
                   sum(r.other_4xx or 0 for r in rows) if known else None,
                   sum(r.fail for r in rows), sum(r.errors for r in rows))

    def text(self) -> str:
        if self.refused is None:
            middle = f"{self.fail:,} fail (4xx, no effect)"
        else:
            middle = f"{self.refused:,} refused by design ({_REFUSALS}), {self.other_4xx:,} other 4xx"
        return f"{self.ok:,} ok, {middle}, {self.errors:,} errors"


# -- header --------------------------------------------------------------------------------
def _facts(result: RunResult, split: _Split) -> list[tuple[str, str]]:
    scenario, run, stats = result.scenario, result.run, result.stats
    weights = sorted(scenario.weights.items(), key=lambda item: -item[1])
    return [
        ("Weakenings", ", ".join(run.weakenings) or "none (all fixes on)"),
        ("Load", f"{scenario.users} users, spawn {_num(scenario.spawn_rate, 1)}/s, "
                 f"{_num(run.duration_s, 1)} s (scenario {_num(scenario.duration_s, 0)} s), backend {run.backend}"),
        ("Requests", f"{_num(stats.get('requests'))} at {_num(stats.get('rps'), 1)}/s: {split.text()}"),
        ("Latency", f"p95 {_num(stats.get('p95_ms'), 1, ' ms')}, p99 {_num(stats.get('p99_ms'), 1, ' ms')}; "
                    f"error rate {_pct(stats.get('error_rate'))}"),
        ("Mix", ", ".join(f"{f} {_short(w, 12)}" for f, w in weights if w) or "–"),
        ("Faults", f"{len(result.faults)} injected ({len(scenario.faults)} scheduled)"),
        ("Quiescence", result.quiescence.summary() if result.quiescence is not None else "not reached"),
        ("Run", f"{run.id} · {run.started_at} → {run.finished_at} · {run.host} · "
                f"stormproof {run.version} · commit {run.commit or 'unknown'}"),
    ]


# -- invariants and SLOs -------------------------------------------------------------------
def _count(verdict: Verdict) -> int:
    counted = verdict.summary.get("violations")
    return counted if isinstance(counted, int) and not isinstance(counted, bool) else len(verdict.violations)


def _summary_text(verdict: Verdict) -> str:
    skip = {"violations", "by_type", "traceback", "missing", "latency_ms", "by_f"}
    items = [f"{key} {_short(value, 40)}" for key, value in verdict.summary.items()
             if key not in skip and isinstance(value, (int, float, str)) and not isinstance(value, bool)]
    return ", ".join(items[:6])


def _ordered(result: RunResult) -> list[Verdict]:
    return sorted(result.verdicts, key=lambda v: (v.kind == "slo", v.invariant))


def _invariant_rows(result: RunResult, ids: Mapping[str, str], broken: set[str]) -> list[dict[str, Any]]:
    rows = []
    for verdict in _ordered(result):
        count = _count(verdict)
        not_exercised = _is_not_exercised(verdict)
        rows.append({
            "anchor": ids[verdict.invariant], "name": verdict.invariant, "kind": verdict.kind,
            "status_class": verdict.status, "status_word": "not exercised" if not_exercised else verdict.status,
            "count": f"{count:,}",
            "href": f"#viol-{ids[verdict.invariant]}" if verdict.invariant in broken and count else None,
            "notes": verdict.error if verdict.error else _summary_text(verdict),
        })
    checked = {v.invariant for v in result.verdicts}
    for name in result.scenario.invariants:
        if name not in checked:
            rows.append({"anchor": None, "name": name, "kind": "–", "status_class": "none",
                         "status_word": "not checked", "count": "–", "href": None,
                         "notes": "the run ended before this invariant was checked"})
    return rows


def _coverage_note(result: RunResult) -> dict[str, int]:
    exercised = sum(1 for entry in result.coverage if entry.get("status") == "exercised")
    judged = sum(1 for entry in result.coverage if entry.get("status") == "exercised" and entry.get("judged"))
    return {"exercised": exercised, "total": len(result.coverage), "judged": judged}


def _coverage(result: RunResult) -> list[dict[str, Any]]:
    return [{"promise": e.get("promise"), "plan_item": e.get("plan_item"), "invariant": e.get("invariant"),
             "judged": "yes" if e.get("judged") else "no", "count": f"{_int(e.get('count')):,}",
             "exercised": e.get("status") == "exercised"} for e in result.coverage]


def _slo_rows(result: RunResult) -> list[dict[str, Any]]:
    slo, stats = result.scenario.slo, result.stats
    by_name = {v.invariant: v for v in result.verdicts if v.kind == "slo"}

    def status(name: str) -> str | None:
        verdict = by_name.pop(name, None)
        return verdict.status if verdict else None

    # The checker's rate when it judged one: it leaves out what the load's end cut and, when the
    # schedule took the API itself away, the requests of those outages (said here, with the raw rate).
    judged = by_name["slo-error-rate"].summary if "slo-error-rate" in by_name else {}
    measured = _pct(judged.get("rate", stats.get("error_rate")))
    if judged.get("api_outages"):
        measured += (f" ({_int(judged.get('outage_ops')):,} requests during {_int(judged.get('api_outages'))} "
                     f"outage(s) of the API left out; {_pct(stats.get('error_rate'))} with them)")
    rows = [
        {"name": "error rate (5xx, timeouts, no answer; refusals are not errors)",
         "target": f"≤ {_pct(slo.error_rate_max)}", "measured": measured,
         "status": status("slo-error-rate")},
        {"name": "p95 latency of ok operations", "target": f"≤ {_num(slo.latency_p95_ms, 0, ' ms')}",
         "measured": _num(stats.get("p95_ms"), 1, " ms"), "status": status("slo-latency-p95")},
    ]
    rows += [{"name": name, "target": "–", "measured": _summary_text(verdict), "status": verdict.status}
             for name, verdict in sorted(by_name.items())]
    return rows


# -- charts --------------------------------------------------------------------------------
def _bands(result: RunResult) -> list[Band]:
    return [Band(f"F{n}", f"{w.get('fault')} on {w.get('target')}", float(w.get("start_s") or 0.0),
                 None if w.get("stop_s") is None else float(w["stop_s"]), f"#fault-{n}")
            for n, w in enumerate(result.faults, start=1)]


def _latency_lines(lines: Mapping[str, Sequence[float | None]]) -> list[Line]:
    """p99 wide and pale first, p95 dashed over it, p50 dotted on top: equal lines stay visible."""
    return [Line("p99", lines["p99"], 1, width=4.5, opacity=0.45), Line("p95", lines["p95"], 0, width=2.0),
            Line("p50", lines["p50"], 2, width=1.6)]


def _matter(result: RunResult, series: Series, cited_fs: set[str]) -> tuple[list[str], dict[str, str]]:
    """The operations whose latency chart is drawn open, and why each matters (cited, errors, over p95)."""
    by_f = result.stats.get("by_f") or {}
    target = result.scenario.slo.latency_p95_ms
    reasons: dict[str, str] = {}
    for f in sorted(series.latency):
        if f == ALL_OPS:
            continue
        row = by_f.get(f) or {}
        p95 = row.get("p95_ms")
        why = []
        if f in cited_fs:
            why.append("cited by a violation")
        if _int(row.get("errors")):
            why.append(f"{_int(row.get('errors')):,} errors")
        if isinstance(p95, (int, float)) and p95 > target:
            why.append(f"p95 {p95:,.0f} ms over {target:,.0f}")
        if why:
            reasons[f] = ", ".join(why)
    ranked = sorted(reasons, key=lambda f: (f not in cited_fs, -_int((by_f.get(f) or {}).get("errors")),
                                           -float((by_f.get(f) or {}).get("p95_ms") or 0)))
    return ranked[:MATTER_CHARTS], reasons


def _charts(result: RunResult, series: Series | None, cited_fs: set[str]) -> dict[str, Any] | None:
    if series is None:
        return None
    bands = _bands(result)
    x = series.t
    bucket = f"{series.bucket_s:g} s buckets"
    axis = "time since start of run (s)"
    load_lines = [Line("requests/s", series.rps, 0, width=2.0)]
    if series.refused_per_s:
        load_lines.append(Line("refused/s", series.refused_per_s, 2))
    load_lines.append(Line("errors/s", series.errors_per_s, 1, width=2.0))
    main = [Markup(line_chart(
        "chart-throughput", f"Requests, refusals and errors per second ({bucket})", x, load_lines,
        x_end=series.end_s, x_label=axis, y_label="operations per second", bands=bands, height=210,
        description="Completed client operations per second, refusals by design and errors (5xx, timeouts, no "
        "answer) per second, with fault windows shaded and labelled."))]
    latency = series.latency
    if ALL_OPS in latency:
        main.append(Markup(line_chart(
            "chart-latency-0", f"Latency of ok operations, all together: p50, p95, p99 ({bucket})", x,
            _latency_lines(latency[ALL_OPS]), x_end=series.end_s, x_label=axis, y_label="latency (ms)",
            bands=bands, height=210,
            description="Latency percentiles of all successful operations per time bucket, in milliseconds.")))
    chosen, reasons = _matter(result, series, cited_fs)
    others = [f for f in sorted(latency) if f != ALL_OPS and f not in chosen]

    def chart(number: int, f: str) -> Markup:
        why = f" ({reasons[f]})" if f in reasons else ""
        return Markup(line_chart(
            f"chart-latency-{number}", f"Latency of ok {f}: p50, p95, p99{why}", x, _latency_lines(latency[f]),
            x_end=series.end_s, x_label=axis, y_label="latency (ms)", bands=bands, height=150,
            description=f"Latency percentiles of successful {f} per time bucket, in milliseconds."))

    matter = [chart(n, f) for n, f in enumerate(chosen, start=1)]
    rest = [chart(n, f) for n, f in enumerate(others, start=1 + len(chosen))]
    return {"main": main, "matter": matter, "rest": rest, "rest_names": ", ".join(others),
            "matter_note": "Drawn open because they were cited by a violation, had errors or were over the p95 "
                           "target: " + "; ".join(f"{f}: {reasons[f]}" for f in chosen) + "."}


# -- violations ----------------------------------------------------------------------------
def _pairs(mapping: Mapping[str, Any], keys: Sequence[str], prefix: str = "") -> list[tuple[str, str]]:
    return [(f"{prefix}{k}", _short(mapping[k])) for k in keys if k in mapping]


def _evidence_row(call: EvidenceOp, vid: str, in_timeline: bool) -> dict[str, Any]:
    invoke, completion = call.invoke, call.completion
    start = invoke.time_ns / _NS
    row: dict[str, Any] = {
        "row_id": f"{vid}-op-{invoke.index}", "invoke_index": invoke.index,
        "completion_index": None if completion is None else completion.index,
        "completion_id": None if completion is None else f"{vid}-op-{completion.index}",
        "timeline_href": f"#{vid}-tl-{invoke.index}" if in_timeline else None,
        "cited": ", ".join(f"#{i}" for i in call.cited), "process": invoke.process, "tenant": invoke.tenant or "–",
        "f": invoke.f, "outcome": None, "outcome_class": "none", "status": "", "error": None, "latency": None,
    }
    if completion is None:
        row["time"] = f"{start:.3f} → never"
    else:
        row["time"] = f"{start:.3f} → {completion.time_ns / _NS:.3f}"
        row["latency"] = f"{(completion.time_ns - invoke.time_ns) / 1e6:,.1f} ms"
        row["outcome"] = completion.type
        row["outcome_class"] = {"ok": "valid", "fail": "invalid", "info": "unknown"}[completion.type]
        row["status"] = "" if completion.status is None else str(completion.status)
        row["error"] = _short(completion.error) if completion.error else None
    ids = _pairs(invoke.args, [k for k in _ID_FIELDS if k != "id"])
    body = _pairs(invoke.args, [k for k in invoke.args if k not in _ID_FIELDS and k != "idempotency_key"])
    if completion is not None:
        ids += _pairs(completion.result, _ID_FIELDS, "answer.")
        body += _pairs(completion.result, [k for k in completion.result if k not in _ID_FIELDS], "answer.")
    key = invoke.args.get("idempotency_key")
    row.update(ids=ids, body=body, key=None if key is None else _short(key))
    return row


def _timeline(vid: str, hood: Neighbourhood, cited: set[int], bands: Sequence[Band]) -> Markup:
    bars = []
    for invoke, completion in hood.pairs:
        outcome = "info" if completion is None else completion.type
        status = "" if completion is None or completion.status is None else f" {completion.status}"
        answer = "" if completion is None else completion.result.get("id")
        text = ("no answer" if completion is None else f"{outcome}{status}") + (f" id={answer}" if answer else "")
        label = f"#{invoke.index} {invoke.f} · {invoke.process} · {invoke.tenant or '–'}"
        is_cited = invoke.index in cited
        bars.append(Bar(label, invoke.time_ns / _NS, None if completion is None else completion.time_ns / _NS,
                        outcome, text, f"{vid}-tl-{invoke.index}",
                        f"#{vid}-op-{invoke.index}" if is_cited else None, is_cited))
    near = [b for b in bands if b.start <= hood.t1 and (b.stop is None or b.stop >= hood.t0)]
    return Markup(gantt(f"{vid}-timeline", f"Operations on {hood.subject}", bars, t0=hood.t0, t1=hood.t1,
                        bands=near))


def reproduce_of(violation: Violation) -> str | None:
    """The command that replays this violation, if the run recorded one (result.json ``violations[].reproduce``)."""
    command = getattr(violation, "reproduce", None) or violation.details.get("reproduce")
    return command if isinstance(command, str) and command.strip() else None


def _violation(verdict: Verdict, number: int, violation: Violation, history: History | None, anchor: str,
               hood: Neighbourhood | None, bands: Sequence[Band]) -> dict[str, Any]:
    vid = f"v-{anchor}-{number}"
    view: dict[str, Any] = {
        "vid": vid, "invariant": verdict.invariant, "number": number,
        "type": violation.details.get("type", "violation"), "message": violation.message,
        "details": [(k, _short(v)) for k, v in violation.details.items() if k not in ("type", "reproduce")],
        "cites": bool(violation.ops), "cited_text": ", ".join(f"#{i}" for i in violation.ops),
        "rows": None, "missing": None, "timeline": None, "truncated": 0, "reproduce": reproduce_of(violation),
    }
    if violation.ops and history is not None:
        calls, missing = cited_pairs(history, violation)
        view["rows"] = [_evidence_row(call, vid, hood is not None) for call in calls]
        view["missing"] = ", ".join(map(str, missing)) or None
        if hood is not None:
            view["timeline"] = _timeline(vid, hood, {c.invoke.index for c in calls}, bands)
            view["truncated"] = hood.truncated
    return view


def _by_type(verdict: Verdict) -> list[dict[str, Any]]:
    by_type = verdict.summary.get("by_type")
    if not isinstance(by_type, Mapping):
        return []
    rows = []
    for kind, info in by_type.items():
        if not isinstance(info, Mapping):
            continue
        cells = []
        for which in ("first", "worst", "last"):
            brief = info.get(which)
            cells.append({"message": _short(brief.get("message", ""), 200),
                          "ops": ", ".join(f"#{i}" for i in brief.get("ops") or ())}
                         if isinstance(brief, Mapping) else None)
        rows.append({"kind": kind, "count": info.get("count", "–"), "cells": cells})
    return rows


def _broken(result: RunResult, history: History | None, ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """The invariants that did not hold, safety and liveness before SLOs, with their violations' views."""
    broken = [v for v in _ordered(result) if v.violations or v.status != "valid"]
    bands = _bands(result)
    drawn = [(v, n) for v in broken for n in range(min(TIMELINES_PER_INVARIANT, len(v.violations)))]
    hoods: dict[tuple[str, int], Neighbourhood] = {}
    if history is not None and drawn:
        found = neighbourhoods(history, [v.violations[n] for v, n in drawn])
        hoods = {(v.invariant, n): hood for (v, n), hood in zip(drawn, found)}
    out = []
    for verdict in broken:
        anchor = ids[verdict.invariant]
        count = _count(verdict)
        views = [_violation(verdict, n + 1, violation, history, anchor, hoods.get((verdict.invariant, n)), bands)
                 for n, violation in enumerate(verdict.violations)]
        kept_note = None
        if count > len(verdict.violations):
            kept_note = (f"{count:,} violations in all; the first {len(verdict.violations)} are kept in result.json "
                         "(first, worst and last of each type below).")
        if len(verdict.violations) > TIMELINES_PER_INVARIANT:
            kept_note = (kept_note or "") + (f" Timelines are drawn for the first {TIMELINES_PER_INVARIANT}; "
                                             "every kept violation has its evidence table.")
        traceback = verdict.summary.get("traceback")
        out.append({
            "invariant": verdict.invariant, "anchor": anchor, "status": verdict.status,
            "count_text": f"{count:,} violation{'s' if count != 1 else ''}",
            "error": verdict.error, "traceback": traceback if isinstance(traceback, str) else None,
            "shown": views[:SHOWN_PER_INVARIANT], "folded": views[SHOWN_PER_INVARIANT:], "kept_note": kept_note,
            "by_type": _by_type(verdict),
        })
    return out


def _cited_fs(result: RunResult, history: History | None) -> set[str]:
    """The operations a safety or liveness violation cites (their latency charts are drawn open)."""
    if history is None:
        return set()
    size = len(history)
    return {history[i].f for v in result.verdicts if v.kind != "slo"  # an SLO's ops are its errors or slow calls
            for violation in v.violations[:TIMELINES_PER_INVARIANT] for i in violation.ops if 0 <= i < size}


# -- tables --------------------------------------------------------------------------------
_OP_HEAD = ("count", "share", "ok", f"refused {_REFUSALS}", "other 4xx", "errors", "error rate", "p50 ms", "p95 ms",
            "p99 ms", "max ms")


def _op_cells(split: _Split, row: Mapping[str, Any], total: int) -> list[str]:
    count = split.count
    return [_num(count), _pct(count / total if total else None), _num(split.ok),
            _num(split.refused) if split.refused is not None else f"{split.fail:,} (fail)",
            _num(split.other_4xx) if split.other_4xx is not None else "–",
            _num(split.errors), _pct(split.errors / count if count else None)] + [
        _num(row.get(k), 1) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]


def _operations(result: RunResult) -> tuple[list[dict[str, Any]], list[str], _Split]:
    by_f = result.stats.get("by_f") or {}
    total = _int(result.stats.get("requests"))
    target = result.scenario.slo.latency_p95_ms
    rows, splits = [], []
    for f, row in sorted(by_f.items()):
        split = _Split.of(row)
        splits.append(split)
        p95 = row.get("p95_ms")
        mark = None if not isinstance(p95, (int, float)) else ("valid" if p95 <= target else "invalid")
        rows.append({"f": f, "cells": _op_cells(split, row, total), "mark": mark})
    everything = _Split.total(splits)
    overall = {"p50_ms": result.stats.get("p50_ms"), "p95_ms": result.stats.get("p95_ms"),
               "p99_ms": result.stats.get("p99_ms"), "max_ms": None}
    return rows, _op_cells(everything, overall, total), everything


def _params(params: Any) -> str:
    if not params:
        return "–"
    try:
        return _short(json.dumps(params, sort_keys=True, default=str), 200)
    except (TypeError, ValueError):
        return _short(params, 200)


def _faults(result: RunResult) -> list[dict[str, Any]]:
    rows = []
    for n, w in enumerate(result.faults, start=1):
        start, stop = w.get("start_s"), w.get("stop_s")
        length = stop - start if isinstance(start, (int, float)) and isinstance(stop, (int, float)) else None
        rows.append({"n": n, "fault": w.get("fault"), "target": w.get("target"), "params": _params(w.get("params")),
                     "start": _num(start, 3), "stop": _num(stop, 3) if stop is not None else "never healed",
                     "length": _num(length, 3), "outcome": w.get("outcome", "ok")})
    return rows


def _file(run_dir: Path | None, path: str | None, label: str) -> dict[str, Any]:
    if not path:
        return {"label": label, "path": None, "href": None}
    inside = run_dir is not None and not Path(path).is_absolute() and ".." not in Path(path).parts
    href = quote(path) if inside and (run_dir / path).is_file() else None  # type: ignore[operator]
    return {"label": label, "path": path, "href": href}


def _files(result: RunResult, run_dir: Path | None) -> list[dict[str, Any]]:
    files = [_file(run_dir, RESULT_FILE, "result (JSON, schema version 1)"),
             _file(run_dir, JUNIT_FILE, "JUnit XML"),
             _file(run_dir, result.files.history, "history (JSON lines, one op per line)"),
             _file(run_dir, result.files.locust_stats, "Locust's own statistics")]
    files += [_file(run_dir, log, f"service log {Path(log).stem}") for log in result.files.logs]
    if not result.files.logs:
        files.append({"label": "service logs", "path": None, "href": None})
    return files


# -- the page --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja environment of every Stormproof page: autoescaped, strict, control characters dropped."""
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                       finalize=printable, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@lru_cache(maxsize=1)
def stylesheet() -> Markup:
    """The stylesheet every page inlines (report, index): one look, no file to fetch."""
    return Markup((TEMPLATES / "style.css").read_text(encoding="utf-8"))


def render_report(result: RunResult, history: History | None, series: Series | None, *,
                  run_dir: Path | None = None, generated_at: datetime | None = None,
                  history_problem: str | None = None) -> str:
    """The whole report page as a string.

    ``history`` and ``series`` may be None (a run that failed before it
    recorded anything, or a history that cannot be read): the page then
    says so instead of drawing. File links are checked against ``run_dir``
    and only made for files there.
    """
    ids: dict[str, str] = {}
    for verdict in result.verdicts:
        base = slug(verdict.invariant)
        name = base
        while name in ids.values():
            name = f"{base}-{len(ids)}"
        ids[verdict.invariant] = name
    symbol, word = _VERDICT_TEXT[result.verdict]
    counts = counts_of(result)
    op_rows, op_total, split = _operations(result)
    broken = _broken(result, history, ids)
    zero = sorted(f for f, w in result.scenario.weights.items() if not w)
    nav = [("violations", f"Violations ({counts.violations:,})"),
           ("invariants", f"Invariants and SLOs ({counts.checks})"),
           ("charts", "Load and latency"), ("operations", "Per operation"), ("coverage", "Promise coverage"),
           ("faults", "Fault log"), ("plan", "Run plan"), ("files", "Files")]
    page = environment().get_template("report.html.j2").render(
        css=stylesheet(), result=result, scenario=result.scenario, run=result.run, counts=counts,
        verdict_symbol=symbol, verdict_word=word, STATUS_SYMBOL=_STATUS_SYMBOL,
        facts=_facts(result, split), nav=nav, history_problem=(history_problem or "not given") if history is None
        else None, broken=broken, invariant_rows=_invariant_rows(result, ids, {b["invariant"] for b in broken}),
        coverage_note=_coverage_note(result) if result.coverage else None, coverage=_coverage(result),
        coverage_open=False, slo_rows=_slo_rows(result), charts=_charts(result, series, _cited_fs(result, history)),
        fail_note=FAIL_NOTE, op_head=_OP_HEAD, op_rows=op_rows, op_total=op_total,
        p95_target=_num(result.scenario.slo.latency_p95_ms, 0), zero_weight=", ".join(zero),
        faults=_faults(result),
        planned=[{"at": _num(p.at_s, 3), "duration": _num(p.duration_s, 3), "fault": p.fault, "target": p.target,
                  "params": _params(dict(p.params))} for p in result.scenario.faults],
        plan_json=json.dumps(result.plan, indent=1, sort_keys=True, default=str) if result.plan else None,
        files=_files(result, run_dir),
        generated=(generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return page
