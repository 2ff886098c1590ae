"""input-validated: a malformed-body probe is refused 4xx; a 2xx ran it, a 5xx with no fault crashed on it."""

from __future__ import annotations

from stormproof.harness.history.vocabulary import PROBE_MALFORMED
from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

NAME = "input-validated"
_CREATE = "POST /api/v1/appointments"


def _probe(b: HistoryBuilder, at: float, status: int | None, case: str = "nul", field: str = "title",
           route: str = _CREATE, **result: object) -> tuple[int, int]:
    return b.call(PROBE_MALFORMED, at, at + 20, status, process=f"m{at}", route=route, case=case, field=field,
                  method=route.split()[0], path=route.split()[1], result=dict(result) or None)


def _fault(b: HistoryBuilder, start: float, stop: float) -> None:
    b.call("fault", start, start + 1, None, process="nemesis", tenant=None, fault="kill", phase="start",
           target="postgres")
    b.call("fault", stop, stop + 1, None, process="nemesis", tenant=None, fault="kill", phase="stop",
           target="postgres")


def test_refusals_of_every_kind_pass() -> None:
    b = HistoryBuilder()
    for i, (status, case) in enumerate(((422, "nul"), (400, "not-object"), (422, "inverted-window"),
                                        (404, "missing"), (413, "too-long"))):
        _probe(b, i * 100, status, case)
    _probe(b, 900, 429)  # rate-limited: counted, not judged
    _probe(b, 1_000, None, error="timeout")  # no answer
    _probe(b, 1_100, 503, retry_after="1")  # shedding load
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["malformed_judged"] == 5
    assert verdict.summary["per_case"]["nul"] == 1
    assert verdict.summary["outcomes"] == {"judged": 5, "limited": 2, "none": 1}


def test_a_malformed_body_run_or_crashed_on_is_a_violation() -> None:
    b = HistoryBuilder()
    _probe(b, 0, 422)
    _, accepted = _probe(b, 100, 201, "inverted-window", "starts_at,ends_at")
    _, crashed = _probe(b, 200, 500, "nul", "evidence", route="POST /api/v1/appointments/{appointment_id}/consents",
                        problem="internal-error")
    (verdict,) = check_all(b.build(), Snapshot(), [NAME])
    assert verdict.status == "invalid" and verdict.kind == "safety"
    by_type = verdict.summary["by_type"]
    assert by_type["malformed-accepted"]["count"] == 1 and by_type["malformed-crashed"]["count"] == 1
    crash = next(v for v in verdict.violations if "broke the app" in v.message)
    assert b.at(crashed) in crash.ops and "internal-error" in crash.message and "nul (evidence)" in crash.message
    assert b.at(accepted) in next(v for v in verdict.violations if "201" in v.message).ops


def test_a_5xx_under_a_fault_or_just_after_it_is_excused_as_server_errors_explained_excuses_it() -> None:
    b = HistoryBuilder()
    _fault(b, 1_000, 2_000)
    _probe(b, 1_500, 500)  # during the fault
    _probe(b, 3_500, 502)  # 1.5 s after its stop
    _probe(b, 4_000, 422)
    (verdict,) = check_all(b.build(), Snapshot(), [NAME, "server-errors-explained"])[:1]
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["outcomes"]["excused"] == 2
    _probe(b, 9_000, 500)  # long after: the app's own
    verdicts = check_all(b.build(), Snapshot(), [NAME, "server-errors-explained"])
    assert [v.status for v in verdicts] == ["invalid", "invalid"]


def test_no_probe_answered_judges_nothing_and_is_not_exercised_where_asked() -> None:
    """Every run adds the check (run_plan.ALWAYS_CHECKS): a run that sent no malformed body judged nothing, and is
    held to it ("not exercised", unknown) only where its scenario asked for the check."""
    from stormproof.harness.promises.run import run_coverage

    b = HistoryBuilder()
    b.call("appointment.read", 0, 10, 200)
    _probe(b, 100, None, error="timeout")
    history = b.build()
    (verdict,) = check_all(history, Snapshot(), [NAME])
    assert verdict.status == "valid" and verdict.summary["malformed_judged"] == 0
    (added,) = run_coverage(history, [verdict], asked=())
    assert added.status == "valid"
    (asked,) = run_coverage(history, [verdict], asked=(NAME,))
    assert asked.status == "unknown" and "not exercised" in (asked.error or "")
