"""The report for a reviewer's minute: one set of counts, violations first, refusals apart, offline, escaped.

Each test reads a page rendered from a recorded run (real checkers, see
``runs.py``) or from a small history built here with a known answer.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from stormproof.harness.history import History, Op
from stormproof.harness.invariants import Verdict, Violation
from stormproof.harness.report import build_result, load_result, render_report, render_run, time_series, write_index
from stormproof.harness.report.charts import Line, line_chart
from stormproof.harness.report.html import FAIL_NOTE, counts_of
from stormproof.harness.report.stats import summarise_history
from tests.report.runs import DUP_APPOINTMENT, RecordedRun
from tests.report.test_html import _Page, assert_offline


class _Rows(HTMLParser):
    """The text of each cell of each row of the table inside ``section#<section>``, and the ids seen in order."""

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section, self.inside, self.depth = section, False, 0
        self.rows: list[list[str]] = []
        self.in_body = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            if dict(attrs).get("id") == self.section:
                self.inside, self.depth = True, 0
            elif self.inside:
                self.depth += 1
        if not self.inside:
            return
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag in ("td", "th") and self.in_body:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "section":
            if self.depth == 0:
                self.inside = False
            else:
                self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _table(text: str, section: str) -> list[list[str]]:
    parser = _Rows(section)
    parser.feed(text)
    return parser.rows


def _int(cell: str) -> int:
    return int(cell.replace(",", ""))


# -- one source for every count ---------------------------------------------------------------------------
def test_headline_table_nav_and_index_counts_agree(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    run = recorded["violation"]
    text = (run.run_dir / "report.html").read_text(encoding="utf-8")
    result = load_result(run.run_dir)
    counts = counts_of(result)
    rows = _table(text, "invariants")
    lead = re.search(r'id="lead"><strong>(.*?)</strong>', text).group(1)

    # "N checks" is the number of rows; the invariants and SLOs it names add up to it.
    checks = int(re.match(r"(\d+) checks", lead).group(1))
    assert checks == len(rows) == len(result.verdicts) == counts.checks
    invariants = int(re.search(r"· (\d+) invariants?:", lead).group(1))
    slos = int(re.search(r"· (\d+) SLOs?:", lead).group(1))
    assert invariants + slos == checks
    assert invariants == sum(1 for row in rows if row[1] != "slo")
    # Statuses in the headline are the badges in the rows.
    for status in ("valid", "invalid", "unknown"):
        named = int(re.search(rf"(\d+) {status}\b", lead).group(1))
        assert named == sum(1 for row in rows if row[1] != "slo" and row[2].split()[-1] == status), status
    # Violations: headline, section title, nav, the table's safety/liveness rows and the index all say one number.
    violations = int(re.search(r"· ([\d,]+) violations? ·", lead).group(1).replace(",", ""))
    assert violations == result.violation_count > 0
    assert violations == sum(_int(row[3]) for row in rows if row[1] != "slo")
    assert f"Violations: {violations} violation" in text
    assert f'href="#violations">Violations ({violations})' in text
    assert f'href="#invariants">Invariants and SLOs ({checks})' in text
    index, _ = write_index(tmp_path / "index.html", [run.run_dir])
    index_text = index.read_text(encoding="utf-8")
    assert re.search(rf">{violations}</td>", index_text), "the index shows another violation count"


def test_scenario_invariants_never_checked_are_counted(recorded: dict[str, RecordedRun]) -> None:
    base = load_result(recorded["violation"].run_dir)
    scenario = replace(base.scenario, invariants=(*base.scenario.invariants, "tenant-isolation"))
    result = replace(base, scenario=scenario)
    text = render_report(result, None, None)
    rows = _table(text, "invariants")
    lead = re.search(r'id="lead"><strong>(.*?)</strong>', text).group(1)
    assert int(re.match(r"(\d+) checks", lead).group(1)) == len(rows) == len(base.verdicts) + 1
    assert "1 not checked" in lead and any(row[0] == "tenant-isolation" for row in rows)


# -- violations first -----------------------------------------------------------------------------------
def test_violations_come_right_under_the_verdict_before_any_chart(recorded: dict[str, RecordedRun]) -> None:
    text = (recorded["violation"].run_dir / "report.html").read_text(encoding="utf-8")
    body = text[text.index("<body>"):]
    first_violation = body.index('<article class="violation"')
    first_load_chart = body.index('id="chart-throughput"')
    assert body.index('id="verdict"') < body.index('id="violations"') < first_violation < first_load_chart
    assert first_violation < body.index('id="invariants"')
    # Only the header (verdict, counts, facts, replay) and the nav come before it: a few kilobytes.
    assert first_violation < 6_000, first_violation
    # Its evidence (the cited calls) comes with it, before anything else.
    assert body.index(DUP_APPOINTMENT, first_violation) < first_load_chart


def test_only_the_first_violation_of_an_invariant_is_open(recorded: dict[str, RecordedRun]) -> None:
    run = recorded["violation"]
    result = load_result(run.run_dir)
    verdict = next(v for v in result.verdicts if v.invariant == "idempotent-replay")
    many = replace(verdict, violations=verdict.violations * 5)
    result = replace(result, verdicts=tuple(many if v is verdict else v for v in result.verdicts))
    text = render_report(result, None, None)
    section = text[text.index('id="viol-idempotent-replay"'):]
    folded = section.index('<details id="more-idempotent-replay">')
    assert section[:folded].count('<article class="violation"') == 1
    assert f"{len(many.violations) - 1} more violations of idempotent-replay" in section


def test_reproduce_command_is_shown_under_the_evidence(recorded: dict[str, RecordedRun]) -> None:
    result = load_result(recorded["violation"].run_dir)
    command = "stormproof reproduce runs/x --violation single-active-session:1 <&>"
    verdicts = tuple(
        replace(v, violations=(replace(v.violations[0], details={**v.violations[0].details, "reproduce": command}),
                               *v.violations[1:]))
        if v.invariant == "single-active-session" else v for v in result.verdicts)
    text = render_report(replace(result, verdicts=verdicts), None, None)
    article = text[text.index('id="v-single-active-session-1"'):]
    article = article[:article.index("</article>")]
    assert ('<p class="repro" id="v-single-active-session-1-reproduce"><strong>Reproduce:</strong> '
            "<code>stormproof reproduce runs/x --violation single-active-session:1 &lt;&amp;&gt;</code></p>") in article
    assert "reproduce=" not in article  # not repeated among the details


# -- charts ---------------------------------------------------------------------------------------------
def test_whole_run_charts_open_and_uncited_operations_folded(recorded: dict[str, RecordedRun]) -> None:
    text = (recorded["violation"].run_dir / "report.html").read_text(encoding="utf-8")
    charts = text[text.index('<section id="charts">'):text.index('<section id="operations">')]
    folded = charts.index('<details id="charts-rest">')
    open_part, rest = charts[:folded], charts[folded:]
    assert 'id="chart-throughput"' in open_part and "Latency of ok operations, all together" in open_part
    # session.start is cited by the violations, webhook.deliver timed out under the fault: open;
    # session.stop neither (its one 409 is a refusal, not an error): folded.
    assert "Latency of ok session.start: p50, p95, p99 (cited by a violation" in open_part
    assert re.search(r"Latency of ok webhook.deliver: p50, p95, p99 \(\d+ errors", open_part)
    assert "Latency of ok session.stop" in rest and "Latency of ok session.stop" not in open_part


def test_equal_percentile_lines_stay_distinguishable() -> None:
    same = [10.0, 12.0, 11.0]
    svg = line_chart("c", "t", [0.0, 1.0, 2.0],
                     [Line("p99", same, 1, width=4.5, opacity=0.45), Line("p95", same, 0, width=2.0),
                      Line("p50", [5.0, 6.0, 5.5], 2)], x_end=3.0, x_label="s", y_label="ms")
    paths = re.findall(r'<path d="M[^"]*" fill="none" stroke="(#[0-9A-F]+)" ([^>]*)><title>(p\d\d)</title>', svg)
    looks = {label: (colour, attrs) for colour, attrs, label in paths}
    assert set(looks) == {"p99", "p95", "p50"}
    assert len({colour for colour, _ in looks.values()}) == 3
    dashes = {label: re.search(r'stroke-dasharray="([^"]*)"', attrs) for label, (_, attrs) in looks.items()}
    assert dashes["p95"] is None and dashes["p99"] and dashes["p50"]  # solid vs two different dash patterns
    assert dashes["p99"].group(1) != dashes["p50"].group(1)
    assert 'stroke-width="4.5" stroke-opacity="0.45"' in looks["p99"][1]  # wide and pale under p95
    # The wide line is drawn first, so the thin one over it shows where they are equal.
    assert svg.index("<title>p99</title>") < svg.index("<title>p95</title>")
    for label in ("p99", "p95", "p50"):
        assert f">{label}</text>" in svg  # named in the legend


# -- fail is not error ---------------------------------------------------------------------------------
def _answers() -> History:
    ops: list[Op] = []
    answers = [201] * 5 + [409] * 7 + [422] * 2 + [429] * 3 + [404] * 4 + [500] * 2 + [None]
    for n, status in enumerate(answers):
        invoke = len(ops)
        t = 1_000_000 * (1 + 10 * n)
        args = {"appointment_id": f"a{n}"}
        ops.append(Op(invoke, "invoke", "u1", "session.start", "c1", args, time_ns=t))
        kind = "ok" if status == 201 else "fail" if status in (404, 409, 422, 429) else "info"
        error = "ReadTimeout" if status is None else None
        ops.append(Op(invoke + 1, kind, "u1", "session.start", "c1", args, status, {}, error, t + 2_000_000, 0.0,
                      invoke))
    return History(ops)


def test_fail_is_split_into_refusals_other_4xx_and_errors(recorded: dict[str, RecordedRun]) -> None:
    history = _answers()
    stats = summarise_history(history)
    row = stats["by_f"]["session.start"]
    assert row["fail"] == 16 and row["fail_by_status"] == {"404": 4, "409": 7, "422": 2, "429": 3}
    assert row["errors"] == 3 and stats["error_rate"] == 3 / 24

    base = load_result(recorded["pass"].run_dir)
    result = build_result(base.scenario, base.run, base.verdicts, history)
    text = render_report(result, history, time_series(history))
    header = [cell for cell in re.findall(r'<th scope="col" class="n">([^<]*)</th>',
                                          text[text.index('<section id="operations">'):])]
    cells = dict(zip(header, _table(text, "operations")[0][1:]))
    assert cells["count"] == "24" and cells["ok"] == "5"
    assert cells["refused 409/422/429"] == "12" and cells["other 4xx"] == "4" and cells["errors"] == "3"
    assert cells["error rate"] == "12.50%"
    assert FAIL_NOTE in text.replace("&#39;", "'")
    assert "5 ok, 12 refused by design (409/422/429), 4 other 4xx, 3 errors" in text


def test_an_old_result_without_the_split_says_fail(recorded: dict[str, RecordedRun]) -> None:
    result = load_result(recorded["pass"].run_dir)
    by_f = {f: {k: v for k, v in row.items() if k != "fail_by_status"} for f, row in result.stats["by_f"].items()}
    text = render_report(replace(result, stats={**result.stats, "by_f": by_f}), None, None)
    assert "(fail)" in text and "fail (4xx, no effect)" in text


# -- offline and escaped --------------------------------------------------------------------------------
def test_pages_have_no_script_and_no_external_url(recorded: dict[str, RecordedRun], tmp_path: Path) -> None:
    for run in recorded.values():
        path = run.run_dir / "report.html"
        page = _Page()
        text = path.read_text(encoding="utf-8")
        page.feed(text)
        assert_offline(text, page)
    index, _ = write_index(tmp_path / "index.html", [run.run_dir.parent for run in recorded.values()])
    page = _Page()
    text = index.read_text(encoding="utf-8")
    page.feed(text)
    assert_offline(text, page)


def test_hostile_strings_everywhere_are_escaped(recorded: dict[str, RecordedRun]) -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>\x07'
    base = load_result(recorded["violation"].run_dir)
    history = _answers()
    scenario = replace(base.scenario, name=evil, description=evil, weights={evil: 1.0, "session.start": 0.0})
    run = replace(base.run, command=f"stormproof run {evil}", weakenings=(evil,), host=evil)
    verdict = Verdict(evil, "invalid", "safety",
                      (Violation(evil, evil, (0, 1), {"type": evil, "reproduce": evil, evil: evil}),),
                      {"violations": 1, "by_type": {evil: {"count": 1, "first": {"message": evil, "ops": [0]}}}},
                      error=evil)
    result = replace(build_result(scenario, run, [verdict], history, plan={"scenario": evil}), error=evil)
    text = render_report(result, history, time_series(history), history_problem=evil)
    page = _Page()
    page.feed(text)
    assert page.tags.isdisjoint({"script", "img"}) and "onerror=alert" not in text.replace("onerror=alert(2)&gt;", "")
    assert "<script" not in text and "<img" not in text and "\x07" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'id="inv-script-alert-1-script-img-src-x-onerror-alert-2"' in text  # ids are slugs


# -- no second load ------------------------------------------------------------------------------------
def test_render_run_uses_the_history_and_result_it_is_given(recorded: dict[str, RecordedRun],
                                                            tmp_path: Path) -> None:
    source = recorded["violation"].run_dir
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    from stormproof.harness.history import load_history

    history = load_history(run_dir / "history.jsonl")
    result = load_result(run_dir)
    (run_dir / "history.jsonl").unlink()
    (run_dir / "result.json").unlink()
    rendered = render_run(run_dir, history=history, result=result)
    assert rendered.history_problem is None
    text = rendered.report.read_text(encoding="utf-8")
    assert DUP_APPOINTMENT in text and 'id="chart-throughput"' in text
    # The same page as from disk, but for the generation time and the links to files that are gone.
    expected = (source / "report.html").read_text(encoding="utf-8")
    strip = re.compile(r"report generated [^ ]+|<li>[^<]*(result|history)[^<]*: .*?</li>")
    assert strip.sub("", text) == strip.sub("", expected)


def test_the_slo_row_says_which_requests_an_outage_of_the_api_left_out(recorded: dict[str, RecordedRun]) -> None:
    """The row shows the rate the SLO judged; when the schedule took the API away, it says what was left out."""
    base = load_result(recorded["pass"].run_dir)
    judged = Verdict("slo-error-rate", "valid", "slo", (), {"rate": 0.0012, "errors": 1, "total": 830,
                                                              "api_outages": 2, "outage_ops": 73})
    verdicts = tuple(judged if v.invariant == "slo-error-rate" else v for v in base.verdicts)
    result = replace(base, verdicts=verdicts, stats={**base.stats, "error_rate": 0.0817})
    text = render_report(result, None, None)
    row = next(r for r in _table(text, "slo") if r[0].startswith("error rate"))
    assert "0.12% (73 requests during 2 outage(s) of the API left out; 8.17% with them)" in row
    plain = replace(result, verdicts=tuple(
        replace(v, summary={"rate": 0.02, "errors": 2, "total": 100}) if v.invariant == "slo-error-rate" else v
        for v in base.verdicts))
    assert "2.00%" in next(r for r in _table(render_report(plain, None, None), "slo") if r[0].startswith("error rate"))
