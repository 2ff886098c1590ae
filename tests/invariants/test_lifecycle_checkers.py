"""deletion-audited and retention-enforced on hand-made histories and final states: bad flagged, good valid."""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import DELETION_CONFIRM, RETENTION_RUN
from stormproof.harness.invariants import Snapshot, check_all

from .builders import HistoryBuilder

DAY = 86_400.0


def _one(name: str, history: History, tables: dict) -> object:
    (verdict,) = check_all(history, Snapshot.build(tables), [name])
    return verdict


def _confirmed(*deletions: str) -> History:
    b = HistoryBuilder()
    for n, deletion in enumerate(deletions):
        b.call(DELETION_CONFIRM, 10 * n, 10 * n + 5, 200, result={"id": deletion}, deletion_id=deletion)
    return b.build()


def _audit(deletion: str, target: str, scope: str = "appointment", counts: dict | None = None) -> dict:
    counts = {"appointments": 1} if counts is None else counts
    return {"id": deletion, "company_id": "c1", "scope": scope, "target_id": target, "counts": counts,
            "executed_at": 1.0}


EMPTY = {"appointments": [], "consents": [], "appointment_assignments": [], "recording_sessions": [], "calls": []}


def test_deletion_audited_passes_an_audited_complete_deletion() -> None:
    verdict = _one("deletion-audited", _confirmed("d1"), {**EMPTY, "deletion_audit": [_audit("d1", "a1")]})
    assert verdict.status == "valid", verdict
    assert verdict.summary["confirmed"] == 1


def test_deletion_audited_flags_a_confirmed_deletion_without_audit_row() -> None:
    verdict = _one("deletion-audited", _confirmed("d1", "d2"), {**EMPTY, "deletion_audit": [_audit("d1", "a1")]})
    assert verdict.status == "invalid"
    assert [v.details["deletion_id"] for v in verdict.violations] == ["d2"]


def test_deletion_audited_flags_rows_left_behind() -> None:
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")],
              "recording_sessions": [{"id": "s1", "company_id": "c1", "appointment_id": "a1", "status": "stopped"}]}
    verdict = _one("deletion-audited", _confirmed("d1"), tables)
    assert verdict.status == "invalid"
    assert verdict.violations[0].details["tables"] == ("recording_sessions",)


def test_deletion_audited_without_the_audit_table_is_unknown() -> None:
    assert _one("deletion-audited", _confirmed("d1"), EMPTY).status == "unknown"


def _ran(company: str = "c1") -> History:
    b = HistoryBuilder()
    b.call(RETENTION_RUN, 10, 20, 200, tenant=company, result={"company_id": company})
    return b.build()


def _call(call_id: str, days_old: float, run_wall: float, company: str = "c1") -> dict:
    return {"id": call_id, "company_id": company, "created_at": run_wall - days_old * DAY}


def _appointment(appointment_id: str, days_ended: float, run_wall: float, company: str = "c1") -> dict:
    return {"id": appointment_id, "company_id": company, "ends_at": run_wall - days_ended * DAY}


def test_retention_enforced_passes_when_only_young_rows_remain() -> None:
    history = _ran()
    wall = history[0].wall
    tables = {"calls": [_call("k1", 89, wall), _call("k2", 200, wall, company="c2")],
              "appointments": [_appointment("a1", 364, wall)]}
    verdict = _one("retention-enforced", history, tables)
    assert verdict.status == "valid", verdict


def test_retention_enforced_flags_expired_rows_under_the_defaults() -> None:
    history = _ran()
    wall = history[0].wall
    tables = {"calls": [_call("k1", 91, wall)], "appointments": [_appointment("a1", 366, wall)]}
    verdict = _one("retention-enforced", history, tables)
    assert verdict.status == "invalid"
    assert sorted(v.details["row_id"] for v in verdict.violations) == ["a1", "k1"]
    # each cites the run that had to delete it (its invoke and answer), for the report and `stormproof reproduce`
    assert all(v.ops == (0, 1) for v in verdict.violations)


def test_retention_enforced_reads_the_tenants_policy() -> None:
    history = _ran()
    wall = history[0].wall
    tables = {"calls": [_call("k1", 100, wall)], "appointments": [],
              "retention_policies": [{"id": "c1", "company_id": "c1", "call_days": 120, "appointment_days": 400}]}
    assert _one("retention-enforced", history, tables).status == "valid"
    tables["retention_policies"] = [{"id": "c1", "company_id": "c1", "call_days": 30, "appointment_days": 400}]
    assert _one("retention-enforced", history, tables).status == "invalid"


def test_retention_enforced_judges_nothing_without_a_run() -> None:
    verdict = _one("retention-enforced", History(()), {"calls": [_call("k1", 1000, 1e9)], "appointments": []})
    assert verdict.status == "valid" and verdict.summary["runs"] == 0


def test_deletion_audited_flags_a_call_of_the_appointment_that_survived_unlinked() -> None:
    b = HistoryBuilder()
    b.call("call.submit", 0, 5, 202, result={"id": "k1"}, appointment_id="a1")
    b.call(DELETION_CONFIRM, 10, 15, 200, result={"id": "d1"}, deletion_id="d1")
    unlinked = {"id": "k1", "company_id": "c1", "appointment_id": None, "created_at": 1.0}
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")], "calls": [unlinked]}
    verdict = _one("deletion-audited", b.build(), tables)
    assert verdict.status == "invalid"
    assert verdict.violations[0].details["tables"] == ("calls",)
    assert _one("deletion-audited", b.build(), {**tables, "calls": []}).status == "valid"


def _two_step(*, wrong_status: int, confirm: bool, kept: bool, audited: bool) -> tuple[History, dict]:
    """Request d1 for a1, confirm with a wrong token (answered ``wrong_status``), then maybe with the right one."""
    from stormproof.harness.history.vocabulary import DELETION_REQUEST

    b = HistoryBuilder()
    b.call(DELETION_REQUEST, 0, 5, 201, result={"id": "d1"}, scope="appointment", target_id="a1")
    b.call(DELETION_CONFIRM, 10, 15, wrong_status, result={"id": "d1"} if wrong_status < 300 else
           {"problem": "confirmation-token-invalid"}, deletion_id="d1", wrong_token=True)
    if confirm:
        b.call(DELETION_CONFIRM, 20, 25, 200, result={"id": "d1"}, deletion_id="d1")
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")] if audited else [],
              "appointments": [{"id": "a1", "company_id": "c1"}] if kept else []}
    return b.build(), tables


def test_deletion_audited_passes_a_wrong_token_refused_then_confirmed_or_left_pending() -> None:
    for confirm in (True, False):
        history, tables = _two_step(wrong_status=422, confirm=confirm, kept=not confirm, audited=confirm)
        verdict = _one("deletion-audited", history, tables)
        assert verdict.status == "valid", (confirm, verdict.violations)
        assert verdict.summary["left_pending"] == (0 if confirm else 1)


def test_deletion_audited_flags_a_wrong_token_accepted() -> None:
    history, tables = _two_step(wrong_status=200, confirm=False, kept=False, audited=True)
    verdict = _one("deletion-audited", history, tables)
    assert verdict.status == "invalid"
    assert [v.details["type"] for v in verdict.violations] == ["wrong-token-accepted"]


def test_deletion_audited_flags_an_audit_row_no_right_token_explains() -> None:
    """The wrong-token confirmation timed out, yet the deletion ran: only the wrong token can have run it."""
    history, tables = _two_step(wrong_status=422, confirm=False, kept=False, audited=True)
    ops = [op for op in history]
    wrong = next(op for op in ops if op.type != "invoke" and op.args.get("wrong_token"))
    timed_out = History([op if op is not wrong else type(op)(op.index, "info", op.process, op.f, op.tenant, op.args,
                                                            None, {}, "timeout", op.time_ns, op.wall, op.invoke_index)
                         for op in ops])
    verdict = _one("deletion-audited", timed_out, tables)
    assert verdict.status == "invalid"
    assert [v.details["type"] for v in verdict.violations] == ["executed-without-token"]


def test_deletion_audited_flags_an_unconfirmed_request_whose_target_is_gone() -> None:
    """Deleted on request (no audit row, no confirmation): the final state shows it."""
    history, tables = _two_step(wrong_status=422, confirm=False, kept=False, audited=False)
    verdict = _one("deletion-audited", history, tables)
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "deleted-unconfirmed" and violation.details["appointment_id"] == "a1"


def _late(status: int | None, *, audited: bool, in_time: bool = False) -> tuple[History, dict]:
    """Request d1 for a1, confirmed with its token after it expired (answered ``status``, None: no answer),
    and maybe once before (``in_time``, answered 200)."""
    from stormproof.harness.history.vocabulary import DELETION_REQUEST

    b = HistoryBuilder()
    b.call(DELETION_REQUEST, 0, 5, 201, result={"id": "d1"}, scope="appointment", target_id="a1")
    if in_time:
        b.call(DELETION_CONFIRM, 10, 15, 200, result={"id": "d1"}, deletion_id="d1", past_expiry_s=-3.5,
               expired=False)
    args = {"deletion_id": "d1", "late": True, "past_expiry_s": 0.6, "expired": True}
    if status is None:
        b.invoke(DELETION_CONFIRM, 40, **args)
    else:
        b.call(DELETION_CONFIRM, 40, 45, status, result={"id": "d1"} if status < 300 else
               {"problem": "deletion-not-pending"}, **args)
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")] if audited else [],
              "appointments": [] if audited else [{"id": "a1", "company_id": "c1"}]}
    return b.build(), tables


def test_deletion_audited_flags_a_confirmation_after_expiry_that_deleted() -> None:
    """Answered 200 after expires_at, or unanswered with the deletion executed and no confirmation in time."""
    for status in (200, None):
        verdict = _one("deletion-audited", *_late(status, audited=True))
        assert verdict.status == "invalid", status
        assert {v.details["type"] for v in verdict.violations} == {"confirmed-expired"}, verdict.violations


def test_deletion_audited_passes_a_late_confirmation_refused_or_one_in_time() -> None:
    assert _one("deletion-audited", *_late(409, audited=False)).status == "valid"
    assert _one("deletion-audited", *_late(None, audited=False)).status == "valid"
    # Executed by the confirmation in time; the late one got 409 (or, being a second, no answer).
    assert _one("deletion-audited", *_late(409, audited=True, in_time=True)).status == "valid"
    assert _one("deletion-audited", *_late(None, audited=True, in_time=True)).status == "valid"


def test_deletion_audited_judges_a_delete_route_like_a_request() -> None:
    """DELETE /appointments/{id} is a deletion request (args.route "delete"): answered 204 with the appointment
    gone at once (a hard delete, no token, no audit) it is flagged; answered 202 and left pending with the
    appointment kept, or confirmed with the token, it is valid."""
    from stormproof.harness.history.vocabulary import DELETION_REQUEST

    def run(status: int, *, confirm: bool, kept: bool) -> object:
        b = HistoryBuilder()
        b.call(DELETION_REQUEST, 0, 5, status, result={"id": "d1"} if status == 202 else {},
               scope="appointment", target_id="a1", route="delete")
        if confirm:
            b.call(DELETION_CONFIRM, 10, 15, 200, result={"id": "d1"}, deletion_id="d1")
        tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")] if confirm else [],
                  "appointments": [{"id": "a1", "company_id": "c1"}] if kept else []}
        return _one("deletion-audited", b.build(), tables)

    direct = run(204, confirm=False, kept=False)
    assert direct.status == "invalid"
    assert [v.details["type"] for v in direct.violations] == ["deleted-unconfirmed"]
    assert run(202, confirm=False, kept=True).status == "valid"
    assert run(202, confirm=True, kept=False).status == "valid"


def _runs(*runs: tuple[str, int | None], rows: list[dict]) -> History:
    """Retention runs by tenant with their answers; every invoke names the seeded ``rows``."""
    b = HistoryBuilder()
    for n, (tenant, status) in enumerate(runs):
        b.call(RETENTION_RUN, 10 * n, 10 * n + 5, status, tenant=tenant,
               result={"company_id": tenant} if status == 200 else None, rows=rows)
    return b.build()


def _seeded(kind: str, row_id: str, company: str, days: float, wall: float) -> dict:
    return {"kind": kind, "id": row_id, "company_id": company, "at": wall - days * DAY}


def test_retention_enforced_passes_when_rows_within_their_tenants_policy_survive() -> None:
    wall = 1e9
    rows = [_seeded("call", "old1", "c1", 100, wall), _seeded("call", "mid1", "c1", 60, wall),
            _seeded("call", "mid2", "c2", 60, wall), _seeded("appointment", "a2", "c2", 200, wall)]
    history = _runs(("c1", 200), ("c2", 200), ("c1", 429), ("c2", None), rows=rows)
    # c1 has a 30-day policy: its 60-day call went with its 100-day one; c2's (defaults) stay.
    tables = {"calls": [_call("mid2", 60, wall, company="c2")],
              "appointments": [_appointment("a2", 200, wall, company="c2")],
              "retention_policies": [{"id": "c1", "company_id": "c1", "call_days": 30, "appointment_days": 100}]}
    verdict = _one("retention-enforced", history, tables)
    assert verdict.status == "valid", [v.message for v in verdict.violations]


def test_retention_enforced_flags_rows_deleted_within_their_tenants_policy_and_refused_runs() -> None:
    wall = 1e9
    rows = [_seeded("call", "mid1", "c1", 60, wall), _seeded("call", "mid2", "c2", 60, wall),
            _seeded("appointment", "a2", "c2", 200, wall)]
    # c1's short policy applied to everyone: c2's rows, within c2's default retention, are gone; a run refused.
    history = _runs(("c1", 200), ("c2", 403), rows=rows)
    tables = {"calls": [], "appointments": [],
              "retention_policies": [{"id": "c1", "company_id": "c1", "call_days": 30, "appointment_days": 100}]}
    verdict = _one("retention-enforced", history, tables)
    assert sorted(v.details["type"] for v in verdict.violations) == [
        "retained-appointment-deleted", "retained-call-deleted", "retention-run-refused"]


def _counted(*runs: tuple[int, int, int, int], rows: list, tenant: str = "c1", wall: float = 1e9):
    """Runs of ``tenant`` (invoke ms, answer ms, calls counted, appointments counted) naming ``rows``."""
    b = HistoryBuilder()
    for start, end, calls, appointments in runs:
        b.call(RETENTION_RUN, start, end, 200, tenant=tenant, rows=rows,
               result={"company_id": tenant, "counts": {"calls": calls, "appointments": appointments}})
    return b.build()


def _expired_seed(wall: float) -> list:
    # Two calls and two appointments past the defaults (by well over the slack), one of each within them.
    return [_seeded("call", "k1", "c1", 100, wall), _seeded("call", "k2", "c1", 95, wall),
            _seeded("appointment", "a1", "c1", 400, wall), _seeded("appointment", "a2", "c1", 407, wall),
            _seeded("call", "k3", "c1", 60, wall), _seeded("appointment", "a3", "c1", 200, wall)]


def _wall_of(history: History) -> float:
    return next(op.wall for op in history if op.f == RETENTION_RUN)


def test_retention_enforced_flags_a_run_that_left_expired_rows_a_later_run_cleared() -> None:
    """The first run deleted one call of two (a loop that stopped after one full batch); the second deleted
    the other, so the final state is clean: only the first run's counts show it."""
    wall = _wall_of(_counted((10, 20, 0, 0), rows=[]))
    rows = _expired_seed(wall)
    history = _counted((10, 20, 1, 2), (30, 40, 1, 0), rows=rows)
    tables = {"calls": [_call("k3", 60, wall)], "appointments": [_appointment("a3", 200, wall)]}
    verdict = _one("retention-enforced", history, tables)
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "run-left-expired"
    assert (violation.details["kind"], violation.details["deleted"], violation.details["expired"]) == ("call", 1, 2)
    assert verdict.summary["runs_counted_judged"] == 2


def test_retention_enforced_passes_runs_whose_counts_cover_what_was_left() -> None:
    """A first run deleting everything, a second deleting nothing; overlapping runs that split the rows; a row a
    request named (it may have been held); and a run after an unacknowledged one: none flagged."""
    wall = _wall_of(_counted((10, 20, 0, 0), rows=[]))
    rows = _expired_seed(wall)
    tables = {"calls": [_call("k3", 60, wall)], "appointments": [_appointment("a3", 200, wall)]}
    clean = _one("retention-enforced", _counted((10, 20, 2, 2), (30, 40, 0, 0), rows=rows), tables)
    assert clean.status == "valid" and clean.summary["runs_counted_judged"] == 2, clean
    split = _one("retention-enforced", _counted((10, 30, 1, 1), (15, 25, 1, 1), rows=rows), tables)
    assert split.status == "valid" and split.summary["runs_counted_judged"] == 0, split
    b = HistoryBuilder()
    b.call(RETENTION_RUN, 10, 20, 503, tenant="c1", rows=rows, result=None)
    b.call(RETENTION_RUN, 30, 40, 200, tenant="c1", rows=rows,
           result={"company_id": "c1", "counts": {"calls": 0, "appointments": 0}})
    after_failed = _one("retention-enforced", b.build(), tables)
    assert "run-left-expired" not in {v.details["type"] for v in after_failed.violations}, after_failed
    assert after_failed.summary["runs_counted_judged"] == 0
    b = HistoryBuilder()
    b.call(DELETION_CONFIRM, 1, 5, 200, deletion_id="d1", target_id="a2")
    b.call(RETENTION_RUN, 10, 20, 200, tenant="c1", rows=rows,
           result={"company_id": "c1", "counts": {"calls": 2, "appointments": 1}})
    named = _one("retention-enforced", b.build(), {**tables, "deletion_audit": []})
    assert "run-left-expired" not in {v.details["type"] for v in named.violations}, named


def test_retention_enforced_counts_nothing_when_a_periodic_run_deleted_unanswered() -> None:
    wall = _wall_of(_counted((10, 20, 0, 0), rows=[]))
    tables = {"calls": [_call("k3", 60, wall)], "appointments": [_appointment("a3", 200, wall)],
              "task_records": [{"task_id": "t1", "name": "lifecycle.enforce_retention", "state": "succeeded"}]}
    verdict = _one("retention-enforced", _counted((10, 20, 0, 0), rows=_expired_seed(wall)), tables)
    assert verdict.status == "valid" and verdict.summary["runs_counted_judged"] == 0, verdict


def test_deletion_audited_flags_an_audit_row_there_before_the_run_and_gone() -> None:
    rows = [{"kind": "audit", "id": "old1", "company_id": "c1", "at": 1.0},
            {"kind": "audit", "id": "old2", "company_id": "c1", "at": 1.0}]
    history = _runs(("c1", 200), rows=rows)
    tables = {**EMPTY, "deletion_audit": [_audit("old1", "t1")]}
    verdict = _one("deletion-audited", history, tables)
    assert [v.details["type"] for v in verdict.violations] == ["audit-row-deleted"]
    assert verdict.violations[0].details["deletion_id"] == "old2"
    tables["deletion_audit"].append(_audit("old2", "t2"))
    assert _one("deletion-audited", history, tables).status == "valid"


def test_retention_enforced_excuses_an_expired_row_held_by_a_request_during_every_run() -> None:
    """A run skips the rows live traffic holds (SKIP LOCKED): a probe granting a consent on an old appointment
    (learnt from a list answer) while the run went left it for the next run. A row no request held during some
    run that found it expired should have gone with that run."""
    def history(*held: tuple[float, float]) -> History:
        b = HistoryBuilder()
        b.call(RETENTION_RUN, 10, 20, 200, result={"company_id": "c1"})
        b.call(RETENTION_RUN, 40, 50, 200, result={"company_id": "c1"})
        for start, end in held:
            b.call("probe.idempotency", start, end, 201, method="POST", path="/api/v1/appointments/a1/consents")
        return b.build()

    def tables(h: History) -> dict:
        return {"calls": [], "appointments": [_appointment("a1", 400, h[0].wall)]}

    both = history((5, 25), (45, 55))
    verdict = _one("retention-enforced", both, tables(both))
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["expired_held"] == 1
    once = history((5, 25))  # free during the second run
    assert [v.details["row_id"] for v in _one("retention-enforced", once, tables(once)).violations] == ["a1"]
    before = history((0, 5), (30, 35))  # held only between runs
    assert [v.details["row_id"] for v in _one("retention-enforced", before, tables(before)).violations] == ["a1"]


def _reconfirmed(second: int, second_body: str, *, fault: bool = False, overlapping: bool = False) -> History:
    """d1 confirmed (200, body "first"), then confirmed again: after that answer, or while it was in flight."""
    b = HistoryBuilder()
    if fault:
        b.call("fault", 0, 1, None, process="nemesis", tenant=None, fault="latency", phase="start", target="postgres")
    b.call(DELETION_CONFIRM, 10, 15, 200, result={"id": "d1", "body_sha256": "first"}, deletion_id="d1")
    start = 12 if overlapping else 20
    b.call(DELETION_CONFIRM, start, 25, second, process="p2",
           result={"body_sha256": second_body, **({"problem": "deletion-not-pending"} if second == 409 else {})},
           deletion_id="d1", again=True)
    return b.build()


def test_deletion_audited_flags_a_deletion_run_again_or_failing_when_confirmed_again() -> None:
    """A second confirmation that ran again (2xx, another body: its audit row rewritten) or answered 5xx with no
    fault active (the retrying client cannot learn it is done) breaks "a deletion runs once" (plan F2)."""
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")]}
    again = _one("deletion-audited", _reconfirmed(200, "second"), tables)
    assert again.status == "invalid"
    assert [v.details["type"] for v in again.violations] == ["deletion-executed-again"]
    failed = _one("deletion-audited", _reconfirmed(500, "error"), tables)
    assert [v.details["type"] for v in failed.violations] == ["reconfirm-failed"]


def test_deletion_audited_flags_a_double_click_that_failed_or_ran_twice() -> None:
    """Two confirmations in flight together (a double click): whichever the app ran, the other must get a
    refusal or the same answer. A 5xx with no fault active (it found the request pending too and failed on the
    audit row) and a second 2xx with another body (it ran twice) break "a deletion runs once" (plan F2)."""
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")]}
    failed = _one("deletion-audited", _reconfirmed(500, "error", overlapping=True), tables)
    assert [v.details["type"] for v in failed.violations] == ["concurrent-confirm-failed"]
    assert failed.summary["confirmed_together"] == 1 and failed.summary["confirmed_again"] == 0
    twice = _one("deletion-audited", _reconfirmed(200, "second", overlapping=True), tables)
    assert [v.details["type"] for v in twice.violations] == ["deletion-executed-again"]


def test_deletion_audited_passes_a_second_confirmation_refused_or_answered_the_same() -> None:
    """409 deletion-not-pending, the first answer again and a 5xx under a fault all keep the promise, whether the
    second confirmation was sent after the first answer or in flight with it (a double click: the app serialised
    them in an order the history cannot see)."""
    tables = {**EMPTY, "deletion_audit": [_audit("d1", "a1")]}
    for overlapping in (False, True):
        for history in (_reconfirmed(409, "refused", overlapping=overlapping),
                        _reconfirmed(200, "first", overlapping=overlapping),
                        _reconfirmed(404, "gone", overlapping=overlapping),
                        _reconfirmed(503, "error", fault=True, overlapping=overlapping)):
            verdict = _one("deletion-audited", history, tables)
            assert verdict.status == "valid", verdict
    assert _one("deletion-audited", _reconfirmed(409, "refused"), tables).summary["confirmed_again"] == 1
    together = _one("deletion-audited", _reconfirmed(409, "refused", overlapping=True), tables)
    assert together.summary["confirmed_together"] == 1


def test_deletion_audited_flags_an_audit_that_counts_less_than_was_erased() -> None:
    """An audit that wrote zeros passed lifecycle-under-load: the appointment's two consents and its call, seen
    acknowledged before the confirmation, must be counted (and the appointment itself)."""
    from stormproof.harness.history.vocabulary import CONSENT_GRANT, DELETION_REQUEST

    def run(counts: dict) -> object:
        b = HistoryBuilder()
        for n, scope in enumerate(("recording", "analysis")):
            b.call(CONSENT_GRANT, n, n + 1, 201, result={"id": f"g{n}"}, appointment_id="a1", scope=scope)
        b.call("call.submit", 3, 4, 202, result={"id": "k1"}, appointment_id="a1")
        b.call(DELETION_REQUEST, 5, 6, 201, result={"id": "d1"}, scope="appointment", target_id="a1")
        b.call(DELETION_CONFIRM, 10, 15, 200, result={"id": "d1"}, deletion_id="d1")
        return _one("deletion-audited", b.build(), {**EMPTY, "deletion_audit": [_audit("d1", "a1", counts=counts)]})

    full = run({"appointments": 1, "consents": 2, "calls": 1, "shunya_jobs": 1})
    assert full.status == "valid", full.violations
    for counts in ({"appointments": 0, "consents": 0, "calls": 0}, {"appointments": 1, "consents": 2}, {}):
        short = run(counts)
        assert short.status == "invalid", counts
        assert [v.details["type"] for v in short.violations] == ["audit-counts-short"]


def test_retention_enforced_judges_the_policy_route() -> None:
    """A PUT answered 200 for days the final row does not hold (policy-lost), or answered other days
    (policy-misanswered), a manager's PUT refused (policy-refused), a GET sent after the PUT was answered that
    reads other days (policy-misread), a GET of a tenant without a policy that does not read the defaults:
    flagged. The same answers with the row stored as sent, and a GET sent before any PUT was answered: valid."""
    def judged(stored: dict | None, *, put_answer: dict | None = None, read_c1: tuple = (30, 100),
               read_c2: tuple = (90, 365), read_at: float = 5):
        b = HistoryBuilder()
        b.call("retention.policy.put", 0, 1, 200, call_days=30, appointment_days=100,
               result=put_answer or {"call_days": 30, "appointment_days": 100})
        b.call("retention.policy.read", read_at, read_at + 1, 200, process="p2",
               result={"call_days": read_c1[0], "appointment_days": read_c1[1]})
        b.call("retention.policy.read", 0, 1, 200, process="p3", tenant="c2",
               result={"call_days": read_c2[0], "appointment_days": read_c2[1], "default": True})
        b.call("retention.policy.put", 2, 3, 403, process="p4", tenant="c3", call_days=5, appointment_days=5)
        tables = {"calls": [], "appointments": [],
                  "retention_policies": [] if stored is None else [{"id": "c1", "company_id": "c1", **stored}]}
        verdict = _one("retention-enforced", b.build(), tables)
        return sorted(v.details["type"] for v in verdict.violations)

    right = {"call_days": 30, "appointment_days": 100}
    assert judged(right) == ["policy-refused"]  # c3's manager refused 403
    assert judged({"call_days": 30, "appointment_days": 30}) == ["policy-lost", "policy-refused"]
    assert judged(None) == ["policy-lost", "policy-refused"]
    assert judged(right, put_answer={"call_days": 30, "appointment_days": 30}) == ["policy-misanswered",
                                                                                   "policy-refused"]
    assert judged(right, read_c1=(90, 365)) == ["policy-misread", "policy-refused"]
    assert judged(right, read_c1=(90, 365), read_at=0.5) == ["policy-refused"]  # sent before the PUT's answer
    assert judged(right, read_c2=(None, None)) == ["policy-misread", "policy-refused"]


_SEEDED = {"appointments": 1, "consents": 2, "users": 1, "dead_letters": 1}


def _company_deleted(status: int = 200) -> History:
    b = HistoryBuilder()
    b.call(DELETION_CONFIRM, 0, 5, status, tenant="dz", result={"id": "dc"}, deletion_id="dc", scope="company",
           target_id="dz", rows=_SEEDED, managers=["mz"], kept_users=["m1", "r1"])
    return b.build()


def _users(*ids: tuple[str, str, str]) -> list[dict]:
    return [{"id": user, "company_id": company, "role": role} for user, company, role in ids]


def _company_state(*, left: dict | None = None, users: list[dict] | None = None, counts: dict | None = None) -> dict:
    kept = _users(("mz", "dz", "manager"), ("m1", "c1", "manager"), ("r1", "c1", "rep"))
    return {**EMPTY, "dead_letters": [], "task_records": [], "retention_policies": [], "shunya_jobs": [],
            "call_analyses": [], **(left or {}), "users": kept if users is None else users,
            "deletion_audit": [_audit("dc", "dz", "company", _SEEDED if counts is None else counts)]}


def test_deletion_audited_passes_a_company_deleted_whole_and_alone() -> None:
    verdict = _one("deletion-audited", _company_deleted(), _company_state())
    assert verdict.status == "valid", verdict
    assert verdict.summary["companies_deleted"] == 1
    # Another company's rows in every table are none of its business; a refused confirmation judges nothing.
    others = {"consents": [{"id": "k1", "company_id": "c1", "appointment_id": "a1"}],
              "dead_letters": [{"id": "l1", "company_id": "c1"}]}
    assert _one("deletion-audited", _company_deleted(), _company_state(left=others)).status == "valid"
    leftover = {"dead_letters": [{"id": "l9", "company_id": "dz"}]}
    assert _one("deletion-audited", _company_deleted(409), _company_state(left=leftover)).status == "valid"


def test_deletion_audited_flags_a_company_deletion_that_left_rows_or_took_too_much() -> None:
    left = {"dead_letters": [{"id": "l9", "company_id": "dz"}],
            "retention_policies": [{"id": "dz", "company_id": "dz", "call_days": 1, "appointment_days": 1}]}
    verdict = _one("deletion-audited", _company_deleted(), _company_state(left=left))
    assert [v.details["type"] for v in verdict.violations] == ["company-not-deleted"]
    assert verdict.violations[0].details["left"] == {"dead_letters": 1, "retention_policies": 1}
    rep_left = _one("deletion-audited", _company_deleted(),
                    _company_state(users=_users(("mz", "dz", "manager"), ("rz", "dz", "rep"), ("m1", "c1", "manager"),
                                                ("r1", "c1", "rep"))))
    assert rep_left.violations[0].details["left"] == {"users": 1}
    took = _one("deletion-audited", _company_deleted(), _company_state(users=_users(("m1", "c1", "manager"))))
    assert sorted(v.details["type"] for v in took.violations) == ["company-managers-deleted",
                                                                  "other-company-users-deleted"]
    over = _one("deletion-audited", _company_deleted(), _company_state(counts={**_SEEDED, "consents": 30}))
    assert [v.details["type"] for v in over.violations] == ["company-deletion-overreach"]
    assert over.violations[0].details["over"] == {"consents": [30, 2]}


def test_deletion_audited_reads_the_tables_counted_per_company() -> None:
    """The outbox and the idempotency keys are counted per company (``rows_by_company``): the deleted company's
    left there is company-not-deleted; another company's, or none counted (an app without an outbox), judge
    nothing more."""
    def judged(counts: dict | None) -> list:
        snap = Snapshot.build(_company_state(), rows_by_company=counts)
        (verdict,) = check_all(_company_deleted(), snap, ["deletion-audited"])
        return [(v.details["type"], v.details["left"]) for v in verdict.violations]

    assert judged({"outbox": {"dz": 1, "c1": 4}, "idempotency_keys": {"dz": 2}}) == [
        ("company-not-deleted", {"outbox": 1, "idempotency_keys": 2})]
    assert judged({"outbox": {"c1": 4}, "idempotency_keys": {"dz": 0}}) == []
    assert judged(None) == [] and judged({}) == []

    def pending_work_judged(counts: dict | None) -> int:
        (verdict,) = check_all(_company_deleted(), Snapshot.build(_company_state(), rows_by_company=counts),
                               ["deletion-audited"])
        return verdict.summary["company_pending_work_judged"]

    # the row F2.company-pending-work-deleted is exercised only where the tables were counted
    assert (pending_work_judged({"outbox": {}}), pending_work_judged({}), pending_work_judged(None)) == (1, 0, 0)


def _refused_first(status: int, *, before: str | None = None) -> tuple[History, dict]:
    """Request d1 for a1 confirmed with its token in time, first, answered ``status``; ``before``: something
    sent before that answer that may have made it moot (``double``: a second confirmation of d1; ``delete``:
    an appointment DELETE of a1; ``company``: a confirmed deletion of the tenant's company)."""
    from stormproof.harness.history.vocabulary import APPOINTMENT_DELETE, DELETION_REQUEST

    b = HistoryBuilder()
    b.call(DELETION_REQUEST, 0, 5, 201, result={"id": "d1"}, scope="appointment", target_id="a1")
    b.call(DELETION_REQUEST, 1, 6, 201, result={"id": "d9"}, scope="company", target_id="c1")
    if before == "double":
        b.call(DELETION_CONFIRM, 10, 14, 200, result={"id": "d1"}, deletion_id="d1", past_expiry_s=-4.0)
    elif before == "delete":
        b.call(APPOINTMENT_DELETE, 10, 14, 204, appointment_id="a1")
    elif before == "company":
        b.call(DELETION_CONFIRM, 10, 14, 200, result={"id": "d9"}, deletion_id="d9", past_expiry_s=-4.0)
    b.call(DELETION_CONFIRM, 8 if before == "double" else 12, 20, status,
           result={"id": "d1"} if status < 300 else {"problem": "deletion-not-pending"},
           deletion_id="d1", past_expiry_s=-4.0, expired=False)
    executed = status < 300 or before in ("double", "company")
    audits = ([_audit("d1", "a1")] if executed and before != "company" else []) + (
        [_audit("d9", "c1", scope="company", counts={})] if before == "company" else [])
    tables = {**EMPTY, "deletion_audit": audits,
              "appointments": [] if executed or before else [{"id": "a1", "company_id": "c1"}]}
    return b.build(), tables


def test_deletion_audited_flags_a_first_confirmation_in_time_refused() -> None:
    """The pending check inverted (a mutation sweep's survivor): the only confirmation, with its token and in
    time, answered 409 "already executed", and nothing was erased."""
    for status in (409, 404, 422):
        verdict = _one("deletion-audited", *_refused_first(status))
        assert [v.details["type"] for v in verdict.violations] == ["confirm-refused"], (status, verdict)
        assert verdict.summary["first_confirms_judged"] == 1


def test_deletion_audited_passes_a_first_confirmation_refused_when_something_may_have_made_it_moot() -> None:
    assert _one("deletion-audited", *_refused_first(200)).status == "valid"
    assert _one("deletion-audited", *_refused_first(429)).status == "valid"
    for before in ("double", "delete", "company"):
        verdict = _one("deletion-audited", *_refused_first(409, before=before))
        assert "confirm-refused" not in {v.details["type"] for v in verdict.violations}, (before, verdict)
    # sent too near its expiry to be certainly in time: a refusal may be the expiry's
    history, tables = _refused_first(409)
    near = History([op if op.args.get("past_expiry_s") is None else type(op)(
        op.index, op.type, op.process, op.f, op.tenant, {**op.args, "past_expiry_s": -1.0}, op.status, op.result,
        op.error, op.time_ns, op.wall, op.invoke_index) for op in history])
    assert "confirm-refused" not in {v.details["type"] for v in _one("deletion-audited", near, tables).violations}


# -- deletion requests kept (F2.deletion-requests-scoped, F2.executed-request-kept) ---------------------------

def _requests_and_company_deletion(*, company_confirm: int | None = 200) -> tuple[History, dict[str, int]]:
    """c1 asks to delete appointment a1 (never confirmed) and a2 (confirmed); then the disposable company dz asks
    for its own deletion, and confirms it (``company_confirm``: its answer, None for no answer)."""
    from stormproof.harness.history.vocabulary import DELETION_REQUEST

    b = HistoryBuilder()
    at = {}
    at["pending"] = b.call(DELETION_REQUEST, 0, 5, 201, tenant="c1", result={"id": "p1"}, scope="appointment",
                           target_id="a1")[1]
    b.call(DELETION_REQUEST, 10, 15, 201, tenant="c1", result={"id": "e1"}, scope="appointment", target_id="a2")
    b.call(DELETION_CONFIRM, 20, 25, 200, tenant="c1", result={"id": "e1"}, deletion_id="e1", scope="appointment",
           target_id="a2")
    b.call(DELETION_REQUEST, 30, 35, 201, tenant="dz", result={"id": "dc"}, scope="company", target_id="dz")
    b.call(DELETION_REQUEST, 32, 36, 201, tenant="dz", result={"id": "dp"}, scope="appointment", target_id="az")
    if company_confirm is None:
        b.invoke(DELETION_CONFIRM, 40, tenant="dz", deletion_id="dc", scope="company", target_id="dz")
    else:
        b.call(DELETION_CONFIRM, 40, 45, company_confirm, tenant="dz", result={"id": "dc"}, deletion_id="dc",
               scope="company", target_id="dz")
    history = b.build()
    return history, {name: b.at(index) for name, index in at.items()}


def _requests(*rows: tuple[str, str, str]) -> list[dict]:
    return [{"id": deletion, "company_id": company, "scope": "appointment", "target_id": None, "status": status}
            for deletion, company, status in rows]


_KEPT = (("p1", "c1", "pending"), ("e1", "c1", "executed"), ("dc", "dz", "executed"))


def test_deletion_audited_passes_requests_kept_but_the_deleted_companys_pending_ones() -> None:
    """The company's own pending request goes with it; every other request stays, the executed ones executed."""
    history, _ = _requests_and_company_deletion()
    state = {**EMPTY, "deletion_audit": [], "deletion_requests": _requests(*_KEPT)}
    verdict = _one("deletion-audited", history, state)
    assert not [v for v in verdict.violations if v.details["type"].startswith(("deletion-request", "executed-req"))]
    assert verdict.summary["deletion_requests_kept_judged"] == 3
    assert verdict.summary["deletion_requests_at_risk"] == 2  # c1's two, acknowledged before dz's deletion
    assert verdict.summary["company_requests_judged"] == 1
    # A company deletion that may have run (no answer) excuses its pending requests too; no table, no claim.
    unsure, _ = _requests_and_company_deletion(company_confirm=None)
    state = {**EMPTY, "deletion_audit": [], "deletion_requests": _requests(*_KEPT[:2])}
    assert not [v for v in _one("deletion-audited", unsure, state).violations
                if v.details["type"].startswith("deletion-request")]
    bare = _one("deletion-audited", history, {**EMPTY, "deletion_audit": []})
    assert bare.summary["deletion_requests_kept_judged"] == 0


def test_deletion_audited_flags_another_tenants_request_lost_to_a_company_deletion() -> None:
    """company-deletion-requests-scope: dz's deletion erased c1's pending request."""
    history, at = _requests_and_company_deletion()
    state = {**EMPTY, "deletion_audit": [], "deletion_requests": _requests(*_KEPT[1:])}
    lost = [v for v in _one("deletion-audited", history, state).violations
            if v.details["type"] == "deletion-request-lost"]
    assert [v.details["deletion_id"] for v in lost] == ["p1"]
    assert at["pending"] in lost[0].ops and lost[0].details["executed"] is False


def test_deletion_audited_flags_an_executed_request_gone_or_still_pending() -> None:
    """company-deletion-keeps-own-request: the executed company deletion's request gone; a confirmed request
    left pending (its token could run it again)."""
    history, _ = _requests_and_company_deletion()
    gone = {**EMPTY, "deletion_audit": [], "deletion_requests": _requests(*_KEPT[:2])}
    lost = [v for v in _one("deletion-audited", history, gone).violations if v.details["type"] == "deletion-request-lost"]
    assert [(v.details["deletion_id"], v.details["executed"]) for v in lost] == [("dc", True)]
    pending = {**EMPTY, "deletion_audit": [],
               "deletion_requests": _requests(("p1", "c1", "pending"), ("e1", "c1", "pending"), ("dc", "dz", "executed"))}
    flagged = [v for v in _one("deletion-audited", history, pending).violations
               if v.details["type"] == "executed-request-pending"]
    assert [v.details["deletion_id"] for v in flagged] == ["e1"]


def _periodic(began: float, finished: float, state: str = "succeeded") -> dict:
    """A task record of the app's periodic retention (beat, every company), its last try begun at ``began``."""
    return {"task_id": f"p{began}", "name": "lifecycle.enforce_retention", "company_id": None, "state": state,
            "tries": [{"event": "start", "at": began - 5}, {"event": "start", "at": began}], "finished_at": finished}


def _scheduled(history: History, *records: dict, calls: list, appointments: list = ()) -> object:
    policy = {"company_id": "c2", "call_days": 30, "appointment_days": 400}
    return _one("retention-enforced", history, {"calls": calls, "appointments": list(appointments),
                                                "retention_policies": [policy], "task_records": list(records)})


def test_retention_enforced_flags_rows_the_periodic_retention_left() -> None:
    """No request ran retention; the app's schedule did. Its latest successful run is judged, for every tenant:
    c1 on the defaults (90 days), c2 with a 30/400-day policy of its own."""
    now = 1e9 + 100.0
    calls = [_call("k1", 91, now), _call("k2", 89, now), _call("k3", 40, now, company="c2"),
             _call("k4", 29, now, company="c2")]
    appointments = [_appointment("a1", 399, now, company="c2"), _appointment("a2", 366, now)]
    verdict = _scheduled(History(()), _periodic(now - 50, now - 49), _periodic(now, now + 1), calls=calls,
                         appointments=appointments)
    assert sorted((v.details["type"], v.details["row_id"]) for v in verdict.violations) == [
        ("scheduled-appointment-kept", "a2"), ("scheduled-call-kept", "k1"), ("scheduled-call-kept", "k3")]
    assert verdict.summary["scheduled_runs_judged"] == 2
    # The same rows gone: valid.
    kept = [_call("k2", 89, now), _call("k4", 29, now, company="c2")]
    verdict = _scheduled(History(()), _periodic(now, now + 1), calls=kept,
                         appointments=[_appointment("a1", 399, now, company="c2")])
    assert verdict.status == "valid" and verdict.summary["scheduled_runs_judged"] == 2, verdict.violations


def test_retention_enforced_judges_no_periodic_run_still_going_or_that_read_an_older_policy() -> None:
    """A run that has not ended judges nothing; nor one that began before its tenant's policy PUT was answered
    (it may have read the policy before), nor a tenant whose PUT was never answered. A row a request held while
    the run went is left for the next run (SKIP LOCKED)."""
    now = 1e9 + 100.0
    calls = [_call("k1", 91, now), _call("k3", 40, now, company="c2")]
    running = _periodic(now, now + 1, state="retrying")
    running["finished_at"] = None  # not ended yet: it may still delete them
    assert _scheduled(History(()), running, calls=calls).summary["scheduled_runs_judged"] == 0
    b = HistoryBuilder()  # wall = 1e9 + ms / 1000: the PUT answered at now + 0.5, after the run began
    b.call("retention.policy.put", 99_000, 100_500, 200, tenant="c2", result={"call_days": 30, "appointment_days": 400},
           call_days=30, appointment_days=400)
    b.call("appointment.read", 99_000, 101_500, 200, tenant="c1", appointment_id="x", call_id="k1")
    verdict = _scheduled(b.build(), _periodic(now, now + 1), calls=calls)
    assert verdict.status == "valid" and verdict.summary["scheduled_runs_judged"] == 1, verdict.violations
    unanswered = HistoryBuilder()
    unanswered.invoke("retention.policy.put", 10, tenant="c2", call_days=30, appointment_days=400)
    verdict = _scheduled(unanswered.build(), _periodic(now, now + 1), calls=calls)
    assert [v.details["row_id"] for v in verdict.violations] == ["k1"]  # c2 unjudged, c1 judged


def test_retention_enforced_leaves_a_row_created_after_the_periodic_run_began_to_the_next() -> None:
    """An appointment the load created (dated long past) while the schedule's last run went is not that run's."""
    now = 1e9 + 100.0
    late, early = HistoryBuilder(), HistoryBuilder()
    late.call("appointment.create", 100_200, 100_300, 201, result={"id": "a9"})
    early.call("appointment.create", 10, 20, 201, result={"id": "a9"})
    old = [_appointment("a9", 500, now)]
    assert _scheduled(late.build(), _periodic(now, now + 1), calls=[], appointments=old).status == "valid"
    assert _scheduled(early.build(), _periodic(now, now + 1), calls=[], appointments=old).status == "invalid"


def test_retention_enforced_flags_rows_a_failing_schedule_left() -> None:
    """Every periodic run failed (a crash in the run, dead-lettered): the schedule enforced nothing, and the rows
    past their retention when its last run began are flagged as a successful run's would be."""
    now = 1e9 + 100.0
    verdict = _scheduled(History(()), _periodic(now - 2, now - 1, state="dead_lettered"),
                         _periodic(now, now + 1, state="dead_lettered"), calls=[_call("k1", 91, now)])
    assert [(v.details["type"], v.details["run_state"]) for v in verdict.violations] == [
        ("scheduled-call-kept", "dead_lettered")]
