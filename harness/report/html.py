"""report.html: one self-contained page per run, for a release reviewer in a hurry.

Reading order follows the reviewer's questions: did it hold (the verdict
and how to replay it), what held and what broke (invariants, SLOs), under
what load and faults (charts with fault bands), and why (each violation's
operations, linked to a timeline of the calls around them). The page has
no script and loads nothing: styles and SVG charts are inline, links are
fragments or relative paths to files of the run directory that exist.

Everything from the history or result.json is escaped with ``esc``: the
history is what a possibly broken server answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stormproof.harness.history import History
from stormproof.harness.invariants.verdict import Verdict, Violation
from stormproof.harness.report.charts import Band, Bar, Line, gantt, line_chart
from stormproof.harness.report.escape import esc, slug
from stormproof.harness.report.evidence import EvidenceOp, Neighbourhood, cited_pairs, neighbourhoods
from stormproof.harness.report.result import RESULT_FILE, RunResult
from stormproof.harness.promises.run import NOT_EXERCISED
from stormproof.harness.report.stats import ALL_OPS, Series

__all__ = ["JUNIT_FILE", "REPORT_FILE", "TIMELINES_PER_INVARIANT", "render_report"]

REPORT_FILE = "report.html"
JUNIT_FILE = "junit.xml"

#: Timelines drawn per invariant (every kept violation still gets its evidence table).
TIMELINES_PER_INVARIANT = 25

_NS = 1_000_000_000
_VERDICT_TEXT = {"pass": ("✔", "PASS"), "violation": ("✖", "VIOLATION"), "error": ("⚠", "ERROR")}
_STATUS_TEXT = {"valid": ("✔", "valid"), "invalid": ("✖", "invalid"), "unknown": ("?", "unknown")}
_ID_FIELDS = ("id", "appointment_id", "session_id", "rep_id", "job_id", "shunya_job_id", "call_id", "target_id",
              "target_tenant", "assignment_id")
_TRUNCATE = 160


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
    return "–" if not isinstance(value, (int, float)) else f"{value:.2%}"


def _status_badge(status: str) -> str:
    symbol, word = _STATUS_TEXT.get(status, ("?", status))
    return f'<span class="st st-{esc(status)}"><span aria-hidden="true">{symbol}</span> {esc(word)}</span>'


_CSS = """
:root{--ok:#009E73;--bad:#D55E00;--unk:#E69F00;--ink:#1b1b1b;--mute:#555;--line:#d0d0d0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--ink);
background:#fafafa}
main,header.top,nav{max-width:1200px;margin:0 auto;padding:0 20px}
header.top{padding-top:18px}
h1{font-size:26px;margin:4px 0}h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid var(--line)}
h3{font-size:17px;margin:18px 0 6px}h4{font-size:15px;margin:12px 0 4px}
.banner{border:3px solid;border-radius:8px;padding:12px 16px;background:#fff}
.banner.pass{border-color:var(--ok)}.banner.violation{border-color:var(--bad)}.banner.error{border-color:var(--unk)}
.verdict{display:inline-block;font-size:22px;font-weight:800;letter-spacing:.04em;padding:2px 12px;border-radius:6px;
color:#fff}
.verdict.pass{background:#00664a}.verdict.violation{background:#a33f00}.verdict.error{background:#8a5a00}
.lead{font-size:16px;margin:6px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 14px;margin:10px 0}
dl.facts dt{font-weight:600;color:var(--mute)}dl.facts dd{margin:0;overflow-wrap:anywhere}
pre.cmd{background:#1e1e1e;color:#f4f4f4;padding:10px 12px;border-radius:6px;white-space:pre-wrap;
overflow-wrap:anywhere;font-size:13px}
pre.cmd code{background:none;color:inherit;font-size:13px;padding:0}
.error-box{border-left:5px solid var(--unk);background:#fff7e6;padding:8px 12px;white-space:pre-wrap}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;margin:14px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13.5px;margin:6px 0 10px}
th,td{border:1px solid var(--line);padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eee}tbody tr:nth-child(even){background:#f6f6f6}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}
.st{font-weight:700;padding:1px 6px;border-radius:4px;white-space:nowrap;border:1px solid}
.st-valid{color:#00563f;background:#e3f4ec}.st-invalid{color:#8f3500;background:#fbe3d6}
.st-unknown{color:#6b4700;background:#fdf0d5}.st-none{color:#444;background:#eee}
code{font-size:12.5px;background:#f0f0f0;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
td code{display:inline-block;margin:1px 0}code.f{white-space:nowrap;overflow-wrap:normal}
article.violation{background:#fff;border:1px solid var(--line);border-left:5px solid var(--bad);padding:6px 12px;
margin:10px 0}
tr.cited:target,tr:target{outline:3px solid #0072B2}
.chart{max-width:100%;height:auto;background:#fff;border:1px solid var(--line);margin:6px 0}
.grid{display:grid;grid-template-columns:1fr;gap:6px}
.note{color:var(--mute);font-size:13px}
footer{max-width:1200px;margin:30px auto;padding:0 20px;color:var(--mute);font-size:12px}
a{color:#0060a0}
@media print{body{background:#fff}.chart{break-inside:avoid}}
"""


# -- header -------------------------------------------------------------------------------
def _header(result: RunResult) -> str:
    scenario, run = result.scenario, result.run
    symbol, word = _VERDICT_TEXT[result.verdict]
    correctness = [v for v in result.verdicts if v.kind != "slo"]
    counts = {status: sum(1 for v in correctness if v.status == status) for status in ("valid", "invalid", "unknown")}
    slo_text = {"valid": "all SLOs met", "invalid": "SLO breached", "unknown": "SLOs unknown"}.get(
        result.overall.slo_status, result.overall.slo_status)
    if not any(v.kind == "slo" for v in result.verdicts):
        slo_text = "no SLO checked"
    lead = (f"{len(correctness)} invariants: {counts['valid']} valid, {counts['invalid']} invalid, "
            f"{counts['unknown']} unknown · {result.violation_count} violations · {slo_text}")
    stats = result.stats
    facts = [
        ("Duration", f"{_num(run.duration_s, 1)} s (scenario {_num(scenario.duration_s, 0)} s)"),
        ("Seed", str(scenario.seed)),
        ("Backend", run.backend),
        ("Weakenings", ", ".join(run.weakenings) or "none (all fixes on)"),
        ("Load", f"{scenario.users} users, spawn {_num(scenario.spawn_rate, 1)}/s"),
        ("Mix", ", ".join(f"{f} {_short(w, 12)}" for f, w in sorted(scenario.weights.items(),
                                                                   key=lambda item: -item[1])) or "–"),
        ("Requests", f"{_num(stats.get('requests'))} at {_num(stats.get('rps'), 1)}/s, "
                     f"errors {_pct(stats.get('error_rate'))}, p95 {_num(stats.get('p95_ms'), 1, ' ms')}"),
        ("Faults", f"{len(result.faults)} injected ({len(scenario.faults)} scheduled)"),
        ("Quiescence", result.quiescence.summary() if result.quiescence is not None else "not reached"),
        ("Started", run.started_at),
        ("Finished", run.finished_at),
        ("Version", run.version),
        ("Commit", run.commit or "unknown"),
        ("Host", run.host),
        ("Run id", run.id),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    error = (f'<p class="error-box" role="alert"><strong>The run stopped with an error:</strong> '
             f"{esc(result.error)}</p>" if result.error else "")
    if result.not_run:
        error = (f'<p class="error-box" role="alert"><strong>Not run: the system under test could not be set '
                 f"up, so nothing was checked:</strong> {esc(result.not_run)}</p>")
    return (
        f'<header class="top"><div class="banner {esc(result.verdict)}" id="verdict">'
        f'<span class="verdict {esc(result.verdict)}" id="verdict-word"><span aria-hidden="true">{symbol}</span> '
        f'{word}</span> <span class="note">exit code {result.exit_code}</span>'
        f"<h1>{esc(scenario.name)}</h1><p>{esc(scenario.description)}</p>"
        f'<p class="lead"><strong>{esc(lead)}</strong></p>{error}'
        f'<dl class="facts">{dl}</dl>'
        f'<h4 id="replay">Replay this run</h4><pre class="cmd"><code>{esc(run.command)}</code></pre>'
        f"</div></header>"
    )


def _nav() -> str:
    items = [("invariants", "Invariants"), ("slo", "SLOs"), ("charts", "Load and latency"),
             ("violations", "Violations"), ("operations", "Per operation"), ("coverage", "Promise coverage"),
             ("faults", "Fault log"), ("files", "Files")]
    links = "".join(f'<li><a href="#{key}">{label}</a></li>' for key, label in items)
    return f'<nav aria-label="Sections"><ul>{links}</ul></nav>'


# -- invariants and SLOs -------------------------------------------------------------------
def _count(verdict: Verdict) -> int:
    counted = verdict.summary.get("violations")
    return counted if isinstance(counted, int) and not isinstance(counted, bool) else len(verdict.violations)


def _summary_text(verdict: Verdict) -> str:
    skip = {"violations", "by_type", "traceback", "missing", "latency_ms", "by_f"}
    items = [f"{key} {_short(value, 40)}" for key, value in verdict.summary.items()
             if key not in skip and isinstance(value, (int, float, str)) and not isinstance(value, bool)]
    return ", ".join(items[:6])


def _invariants(result: RunResult, ids: Mapping[str, str]) -> str:
    rows = []
    for verdict in sorted(result.verdicts, key=lambda v: (v.kind == "slo", v.invariant)):
        count = _count(verdict)
        anchor = ids[verdict.invariant]
        count_cell = (f'<a href="#viol-{anchor}">{count:,}</a>' if count and verdict.violations else f"{count:,}")
        notes = esc(verdict.error) if verdict.error else esc(_summary_text(verdict))
        badge = (_status_badge(verdict.status) if not (verdict.error or "").startswith(NOT_EXERCISED)
                 else '<span class="st st-unknown"><span aria-hidden="true">?</span> not exercised</span>')
        rows.append(f'<tr id="inv-{anchor}"><td><strong>{esc(verdict.invariant)}</strong></td>'
                    f"<td>{esc(verdict.kind)}</td><td>{badge}</td>"
                    f'<td class="n">{count_cell}</td><td>{notes}</td></tr>')
    checked = {v.invariant for v in result.verdicts}
    for name in result.scenario.invariants:
        if name not in checked:
            rows.append(f"<tr><td><strong>{esc(name)}</strong></td><td>–</td>"
                        f'<td><span class="st st-none">not checked</span></td><td class="n">–</td>'
                        f"<td>the run ended before this invariant was checked</td></tr>")
    body = "".join(rows) or '<tr><td colspan="5">no invariant was checked</td></tr>'
    return ('<section id="invariants"><h2>Invariants</h2><table><thead><tr><th scope="col">invariant</th>'
            '<th scope="col">kind</th><th scope="col">status</th><th scope="col" class="n">violations</th>'
            f'<th scope="col">notes</th></tr></thead><tbody>{body}</tbody></table>'
            f"{_covered_note(result)}"
            '<p class="note">Safety and liveness invariants decide the verdict; SLOs are reported apart. '
            "Unknown means the checker crashed, lacked evidence or had nothing to judge (not exercised): "
            "it never counts as a pass.</p></section>")


def _covered_note(result: RunResult) -> str:
    if not result.coverage:
        return ""
    exercised = sum(1 for entry in result.coverage if entry.get("status") == "exercised")
    judged = sum(1 for entry in result.coverage if entry.get("status") == "exercised" and entry.get("judged"))
    return (f'<p class="note"><a href="#coverage">Promise coverage</a>: this run covered <strong>{exercised}</strong> '
            f"of {len(result.coverage)} promises ({judged} of them judged by a checker it ran).</p>")


def _coverage(result: RunResult) -> str:
    if not result.coverage:
        return ('<section id="coverage"><h2>Promise coverage</h2><p>No coverage recorded '
                "(no history, or a result written before the promise table).</p></section>")
    rows = []
    for entry in result.coverage:
        exercised = entry.get("status") == "exercised"
        status = ('<span class="st st-valid">exercised</span>' if exercised
                  else '<span class="st st-none">not exercised</span>')
        judged = "yes" if entry.get("judged") else "no"
        rows.append(f"<tr><td>{esc(entry.get('promise'))}</td><td>{esc(entry.get('plan_item'))}</td>"
                    f"<td>{esc(entry.get('invariant'))}</td><td>{judged}</td>"
                    f"<td class='n'>{int(entry.get('count') or 0):,}</td><td>{status}</td></tr>")
    return ('<section id="coverage"><h2>Promise coverage</h2>'
            '<p class="note">Per promise of docs/PROMISES.md: the completed operations of this run that '
            "exercised it. A promise not exercised was not at risk in this run; its checker's pass says "
            "nothing about it.</p>"
            '<table><thead><tr><th scope="col">promise</th><th scope="col">plan</th><th scope="col">invariant</th>'
            '<th scope="col">checked</th><th scope="col" class="n">operations</th><th scope="col">status</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _slo(result: RunResult) -> str:
    slo, stats = result.scenario.slo, result.stats
    by_name = {v.invariant: v for v in result.verdicts if v.kind == "slo"}

    def status(name: str) -> str:
        verdict = by_name.pop(name, None)
        return _status_badge(verdict.status) if verdict else '<span class="st st-none">not checked</span>'

    rows = [
        ("error rate (info, 5xx or no answer)", f"≤ {_pct(slo.error_rate_max)}", _pct(stats.get("error_rate")),
         status("slo-error-rate")),
        ("p95 latency of ok operations", f"≤ {_num(slo.latency_p95_ms, 0, ' ms')}",
         _num(stats.get("p95_ms"), 1, " ms"), status("slo-latency-p95")),
    ]
    body = "".join(f"<tr><td>{esc(a)}</td><td class='n'>{esc(b)}</td><td class='n'>{esc(c)}</td><td>{d}</td></tr>"
                   for a, b, c, d in rows)
    for name, verdict in sorted(by_name.items()):
        body += (f"<tr><td>{esc(name)}</td><td class='n'>–</td><td class='n'>{esc(_summary_text(verdict))}</td>"
                 f"<td>{_status_badge(verdict.status)}</td></tr>")
    return ('<section id="slo"><h2>Service-level objectives</h2><table><thead><tr><th scope="col">objective</th>'
            '<th scope="col" class="n">target</th><th scope="col" class="n">measured</th><th scope="col">status</th>'
            f"</tr></thead><tbody>{body}</tbody></table></section>")


# -- charts --------------------------------------------------------------------------------
def _bands(result: RunResult) -> list[Band]:
    return [Band(f"F{n}", f"{w.get('fault')} on {w.get('target')}", float(w.get("start_s") or 0.0),
                 None if w.get("stop_s") is None else float(w["stop_s"]), f"#fault-{n}")
            for n, w in enumerate(result.faults, start=1)]


def _charts(result: RunResult, series: Series | None) -> str:
    if series is None:
        return ('<section id="charts"><h2>Load and latency over time</h2>'
                '<p class="note">No history: no charts.</p></section>')
    bands = _bands(result)
    x = series.t
    bucket = f"{series.bucket_s:g} s buckets"
    parts = [line_chart(
        "chart-throughput", f"Requests and errors per second ({bucket})", x,
        [Line("requests/s", series.rps, 0), Line("errors/s", series.errors_per_s, 1)],
        x_end=series.end_s, x_label="time since start of run (s)", y_label="operations per second",
        bands=bands, description="Completed client operations per second, and errors (info, 5xx or no "
        "answer) per second, with fault windows shaded and labelled.")]
    latency = series.latency
    order = ([ALL_OPS] if ALL_OPS in latency else []) + sorted(f for f in latency if f != ALL_OPS)
    for number, f in enumerate(order):
        name = "all operations" if f == ALL_OPS else f
        lines = latency[f]
        parts.append(line_chart(
            f"chart-latency-{number}", f"Latency of ok {name}: p50, p95, p99 ({bucket})", x,
            [Line("p50", lines["p50"], 2), Line("p95", lines["p95"], 0), Line("p99", lines["p99"], 1)],
            x_end=series.end_s, x_label="time since start of run (s)", y_label="latency (ms)", bands=bands,
            height=250 if f == ALL_OPS else 170,
            description=f"Latency percentiles of successful {name} per time bucket, in milliseconds."))
    legend = ("Fault windows are the hatched yellow bands, labelled F1, F2, … as in the "
              '<a href="#faults">fault log</a>. Lines differ by colour, dash and marker shape.')
    return (f'<section id="charts"><h2>Load and latency over time</h2><p class="note">{legend}</p>'
            f'<div class="grid">{"".join(parts)}</div></section>')


# -- violations ----------------------------------------------------------------------------
def _kv(mapping: Mapping[str, Any], keys: Iterable[str], prefix: str = "") -> list[str]:
    return [f"<code>{esc(prefix)}{esc(k)}={esc(_short(mapping[k]))}</code>" for k in keys if k in mapping]


def _evidence_row(call: EvidenceOp, vid: str, in_timeline: bool) -> str:
    invoke, completion = call.invoke, call.completion
    start = invoke.time_ns / _NS
    row_id = f"{vid}-op-{invoke.index}"
    link = f' <a href="#{vid}-tl-{invoke.index}" title="on the timeline">⤓ timeline</a>' if in_timeline else ""
    op_cell = f"<strong>#{invoke.index}</strong>"
    if completion is not None:
        op_cell += f' → <strong id="{vid}-op-{completion.index}">#{completion.index}</strong>'
    op_cell += link
    if completion is None:
        time_cell = f"{start:.3f} → never"
        outcome = '<span class="st st-unknown">no answer</span>'
    else:
        latency = (completion.time_ns - invoke.time_ns) / 1e6
        time_cell = f"{start:.3f} → {completion.time_ns / _NS:.3f}<br><span class='note'>{latency:,.1f} ms</span>"
        kind = {"ok": "valid", "fail": "invalid", "info": "unknown"}[completion.type]
        outcome = (f'<span class="st st-{kind}">{esc(completion.type)}</span> '
                   f"{esc(completion.status if completion.status is not None else '')}")
        if completion.error:
            outcome += f"<br><code>{esc(_short(completion.error))}</code>"
    ids = _kv(invoke.args, [k for k in _ID_FIELDS if k != "id"])
    if completion is not None:
        ids += _kv(completion.result, _ID_FIELDS, "answer.")
    key = invoke.args.get("idempotency_key")
    key_cell = f"<code>{esc(_short(key))}</code>" if key is not None else "–"
    body_keys = [k for k in invoke.args if k not in _ID_FIELDS and k != "idempotency_key"]
    body = _kv(invoke.args, body_keys)
    if completion is not None:
        answer = [k for k in completion.result if k not in _ID_FIELDS]
        body += _kv(completion.result, answer, "answer.")
    cited = ", ".join(f"#{i}" for i in call.cited)
    return (f'<tr id="{row_id}" class="cited"><td>{op_cell}<br><span class="note">cited {esc(cited)}</span></td>'
            f"<td class='n'>{time_cell}</td><td>{esc(invoke.process)}</td><td>{esc(invoke.tenant or '–')}</td>"
            f"<td><code class='f'>{esc(invoke.f)}</code></td><td>{outcome}</td><td>{' '.join(ids) or '–'}</td>"
            f"<td>{key_cell}</td><td>{' '.join(body) or '–'}</td></tr>")


def _timeline(vid: str, hood: Neighbourhood, cited: set[int], bands: Sequence[Band]) -> str:
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
    chart = gantt(f"{vid}-timeline", f"Operations on {hood.subject}", bars, t0=hood.t0, t1=hood.t1, bands=near)
    note = (f'<p class="note">★ marks the operations the violation cites (bold, linked to the table above). '
            f"Bars run from invoke to completion: solid ok, striped fail, hollow dashed info or no answer."
            f"{f' {hood.truncated} more operations on the same subject are not drawn.' if hood.truncated else ''}"
            "</p>")
    return chart + note


def _violation(verdict: Verdict, number: int, violation: Violation, history: History | None, anchor: str,
               hood: Neighbourhood | None, bands: Sequence[Band]) -> str:
    vid = f"v-{anchor}-{number}"
    details = {k: v for k, v in violation.details.items() if k != "type"}
    detail = " ".join(f"<code>{esc(k)}={esc(_short(v))}</code>" for k, v in details.items())
    head = (f'<article class="violation" id="{vid}"><h4>{esc(verdict.invariant)} #{number}'
            f" <span class='note'>({esc(violation.details.get('type', 'violation'))})</span></h4>"
            f"<p>{esc(violation.message)}</p>{f'<p>{detail}</p>' if detail else ''}")
    if not violation.ops:
        return head + '<p class="note">This violation cites no operation (it is about the final state).</p></article>'
    if history is None:
        cited = ", ".join(f"#{i}" for i in violation.ops)
        return head + f'<p class="note">Cited operations {esc(cited)}; no history to show them.</p></article>'
    calls, missing = cited_pairs(history, violation)
    in_timeline = hood is not None
    rows = "".join(_evidence_row(call, vid, in_timeline) for call in calls)
    table = ('<table><thead><tr><th scope="col">op</th><th scope="col" class="n">time (s)</th>'
             '<th scope="col">process</th><th scope="col">tenant</th><th scope="col">operation</th>'
             '<th scope="col">outcome</th><th scope="col">ids</th><th scope="col">idempotency key</th>'
             f'<th scope="col">request and answer</th></tr></thead><tbody>{rows}</tbody></table>')
    gone = (f'<p class="error-box">Cited operations not in this history: {esc(", ".join(map(str, missing)))}</p>'
            if missing else "")
    timeline = _timeline(vid, hood, {c.invoke.index for c in calls}, bands) if hood is not None else ""
    return head + table + gone + timeline + "</article>"


def _by_type(verdict: Verdict) -> str:
    by_type = verdict.summary.get("by_type")
    if not isinstance(by_type, Mapping) or not by_type:
        return ""
    rows = []
    for kind, info in by_type.items():
        if not isinstance(info, Mapping):
            continue
        cells = []
        for which in ("first", "worst", "last"):
            brief = info.get(which)
            if isinstance(brief, Mapping):
                ops = ", ".join(f"#{i}" for i in brief.get("ops") or ())
                cells.append(f"<td>{esc(_short(brief.get('message', ''), 200))}"
                             f"{f' <span class=note>({esc(ops)})</span>' if ops else ''}</td>")
            else:
                cells.append("<td>–</td>")
        rows.append(f"<tr><td>{esc(kind)}</td><td class='n'>{esc(info.get('count', '–'))}</td>{''.join(cells)}</tr>")
    return ('<table><thead><tr><th scope="col">type</th><th scope="col" class="n">count</th><th scope="col">first'
            '</th><th scope="col">worst</th><th scope="col">last</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _violations(result: RunResult, history: History | None, ids: Mapping[str, str]) -> str:
    broken = [v for v in sorted(result.verdicts, key=lambda v: (v.kind == "slo", v.invariant))
              if v.violations or v.status != "valid"]
    if not broken:
        return ('<section id="violations"><h2>Violations</h2><p>None: every invariant checked held.</p>'
                "</section>")
    bands = _bands(result)
    drawn: list[tuple[Verdict, int]] = []
    for verdict in broken:
        drawn += [(verdict, n) for n in range(min(TIMELINES_PER_INVARIANT, len(verdict.violations)))]
    hoods: dict[tuple[str, int], Neighbourhood] = {}
    if history is not None and drawn:
        found = neighbourhoods(history, [v.violations[n] for v, n in drawn])
        hoods = {(v.invariant, n): hood for (v, n), hood in zip(drawn, found)}
    parts = ['<section id="violations"><h2>Violations</h2>']
    for verdict in broken:
        anchor = ids[verdict.invariant]
        count = _count(verdict)
        parts.append(f'<h3 id="viol-{anchor}">{esc(verdict.invariant)} {_status_badge(verdict.status)} '
                     f'<span class="note">{count:,} violation{"s" if count != 1 else ""}</span></h3>')
        if verdict.error:
            parts.append(f'<p class="error-box">{esc(verdict.error)}</p>')
        traceback = verdict.summary.get("traceback")
        if isinstance(traceback, str):
            parts.append(f"<details><summary>checker traceback</summary><pre>{esc(traceback)}</pre></details>")
        if count > len(verdict.violations):
            parts.append(f'<p class="note">{count:,} violations in all; the first {len(verdict.violations)} are '
                         "kept. The first, worst and last of each type:</p>")
        parts.append(_by_type(verdict))
        if len(verdict.violations) > TIMELINES_PER_INVARIANT:
            parts.append(f'<p class="note">Timelines are drawn for the first {TIMELINES_PER_INVARIANT} '
                         "violations; every kept violation has its evidence table.</p>")
        for n, violation in enumerate(verdict.violations):
            parts.append(_violation(verdict, n + 1, violation, history, anchor, hoods.get((verdict.invariant, n)),
                                    bands))
    parts.append("</section>")
    return "".join(parts)


# -- tables --------------------------------------------------------------------------------
def _operations(result: RunResult) -> str:
    by_f = result.stats.get("by_f") or {}
    total = result.stats.get("requests") or 0
    target = result.scenario.slo.latency_p95_ms
    rows = []
    for f, row in sorted(by_f.items()):
        p95 = row.get("p95_ms")
        mark = ("–" if not isinstance(p95, (int, float)) else
                _status_badge("valid") if p95 <= target else _status_badge("invalid"))
        count = row.get("count") or 0
        cells = [_num(count), _pct(count / total if total else None), _num(row.get("ok")), _num(row.get("fail")),
                 _num(row.get("info")), _num(row.get("errors")),
                 _pct((row.get("errors") or 0) / count if count else None)]
        cells += [_num(row.get(k), 1) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")]
        rows.append(f"<tr><td><code>{esc(f)}</code></td>" + "".join(f"<td class='n'>{esc(c)}</td>" for c in cells)
                    + f"<td>{mark}</td></tr>")
    head = "".join(f'<th scope="col" class="n">{h}</th>' for h in (
        "count", "share", "ok", "fail", "info", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms", "max ms",
        "mean ms"))
    body = "".join(rows) or '<tr><td colspan="14">no client operations</td></tr>'
    return ('<section id="operations"><h2>Per operation</h2><table><thead><tr><th scope="col">operation</th>'
            f'{head}<th scope="col">p95 ≤ {esc(_num(target, 0))} ms</th></tr></thead><tbody>{body}</tbody></table>'
            '<p class="note">Latency is completion minus invoke time of ok operations (nearest-rank percentiles); '
            "errors are info answers, 5xx statuses and calls never answered.</p></section>")


def _params(params: Any) -> str:
    if not params:
        return "–"
    try:
        return _short(json.dumps(params, sort_keys=True, default=str), 200)
    except (TypeError, ValueError):
        return _short(params, 200)


def _faults(result: RunResult) -> str:
    rows = []
    for n, w in enumerate(result.faults, start=1):
        start, stop = w.get("start_s"), w.get("stop_s")
        length = stop - start if isinstance(start, (int, float)) and isinstance(stop, (int, float)) else None
        rows.append(f'<tr id="fault-{n}"><td><strong>F{n}</strong></td><td>{esc(w.get("fault"))}</td>'
                    f'<td>{esc(w.get("target"))}</td><td><code>{esc(_params(w.get("params")))}</code></td>'
                    f"<td class='n'>{_num(start, 3)}</td><td class='n'>"
                    f"{_num(stop, 3) if stop is not None else 'never healed'}</td><td class='n'>{_num(length, 3)}</td>"
                    f"<td>{esc(w.get('outcome', 'ok'))}</td></tr>")
    observed = "".join(rows) or '<tr><td colspan="8">no fault was injected</td></tr>'
    planned = "".join(
        f"<tr><td class='n'>{_num(p.at_s, 3)}</td><td class='n'>{_num(p.duration_s, 3)}</td><td>{esc(p.fault)}</td>"
        f"<td>{esc(p.target)}</td><td><code>{esc(_params(dict(p.params)))}</code></td></tr>"
        for p in result.scenario.faults) or '<tr><td colspan="5">no fault scheduled</td></tr>'
    return ('<section id="faults"><h2>Fault log</h2><h3>Injected (from the history)</h3><table><thead><tr>'
            '<th scope="col">band</th><th scope="col">fault</th><th scope="col">target</th><th scope="col">params</th>'
            '<th scope="col" class="n">start (s)</th><th scope="col" class="n">stop (s)</th>'
            '<th scope="col" class="n">length (s)</th><th scope="col">injection</th></tr></thead>'
            f"<tbody>{observed}</tbody></table><h3>Scheduled (the scenario)</h3><table><thead><tr>"
            '<th scope="col" class="n">at (s)</th><th scope="col" class="n">for (s)</th><th scope="col">fault</th>'
            f'<th scope="col">target</th><th scope="col">params</th></tr></thead><tbody>{planned}</tbody></table>'
            "</section>")


def _file_link(run_dir: Path | None, path: str | None, label: str) -> str:
    if not path:
        return f"<li>{esc(label)}: none recorded</li>"
    inside = run_dir is not None and not Path(path).is_absolute() and ".." not in Path(path).parts
    if inside and (run_dir / path).is_file():  # type: ignore[operator]
        return f'<li>{esc(label)}: <a href="{esc(quote(path))}">{esc(path)}</a></li>'
    return f"<li>{esc(label)}: <code>{esc(path)}</code> <span class='note'>(not in the run directory)</span></li>"


def _files(result: RunResult, run_dir: Path | None) -> str:
    items = [
        _file_link(run_dir, RESULT_FILE, "result (JSON, schema version 1)"),
        _file_link(run_dir, JUNIT_FILE, "JUnit XML"),
        _file_link(run_dir, result.files.history, "history (JSON lines, one op per line)"),
        _file_link(run_dir, result.files.locust_stats, "Locust's own statistics"),
    ]
    items += [_file_link(run_dir, log, f"service log {Path(log).stem}") for log in result.files.logs]
    if not result.files.logs:
        items.append("<li>service logs: none recorded</li>")
    return f'<section id="files"><h2>Files of this run</h2><ul>{"".join(items)}</ul></section>'


def render_report(result: RunResult, history: History | None, series: Series | None, *,
                  run_dir: Path | None = None, generated_at: datetime | None = None,
                  history_problem: str | None = None) -> str:
    """The whole report page as a string.

    ``history`` and ``series`` may be None (a run that failed before it
    recorded anything): the page then says so instead of drawing. File
    links are checked against ``run_dir`` and only made for files there.
    """
    ids: dict[str, str] = {}
    for verdict in result.verdicts:
        base = slug(verdict.invariant)
        name = base
        while name in ids.values():
            name = f"{base}-{len(ids)}"
        ids[verdict.invariant] = name
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    word = _VERDICT_TEXT[result.verdict][1]
    history_note = "" if history is not None else (
        f'<p class="error-box">No history ({esc(history_problem or "not given")}): evidence shows op indices '
        "only and there are no charts.</p>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(word)}: {esc(result.scenario.name)} (seed {esc(result.scenario.seed)}) · Stormproof</title>"
        f"<style>{_CSS}</style></head><body>"
        + _header(result) + _nav() + "<main>" + history_note
        + _invariants(result, ids) + _slo(result) + _charts(result, series) + _violations(result, history, ids)
        + _operations(result) + _coverage(result) + _faults(result) + _files(result, run_dir)
        + f"</main><footer>Stormproof {esc(result.run.version)} · report generated {esc(when)} · "
        f"run {esc(result.run.id)}</footer></body></html>\n"
    )
