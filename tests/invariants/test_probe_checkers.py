"""Every answer to a probe judged: tenant-isolation, idempotent-replay (probe situations) and authorization.

One known-bad history per wrong-answer kind (each must be flagged with its
type), known-good ones that must pass, and the "not exercised" verdict.
"""

from __future__ import annotations

import pytest

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder


def _run(name: str, b: HistoryBuilder, **fields: object):
    (verdict,) = check_all(b.build(), Snapshot(**fields), [name])  # type: ignore[arg-type]
    return verdict


def _types(verdict) -> list[str]:
    return sorted(v.details["type"] for v in verdict.violations)


def _fault(b: HistoryBuilder, start: float, stop: float) -> None:
    for phase, at in (("start", start), ("stop", stop)):
        i = b.invoke("fault", at, process="nemesis", tenant=None, fault="down", phase=phase, target="postgres")
        b.complete(i, at, type="ok")


# -- tenant-isolation: a foreign id answers exactly like a missing one -----------------------------------------
_TABLES = dict(appointments=({"id": "b1", "company_id": "c2", "title": "Visit"},
                             {"id": "a1", "company_id": "c1", "title": "Visit"}))


def _probe(b: HistoryBuilder, at: float, status: int | None, masked: str = "m404", *, control: int | None = 404,
           control_masked: str = "m404", method: str = "GET", route: str = "GET /api/v1/appointments/{appointment_id}",
           target: str = "b1", pid: str = "p") -> None:
    common = dict(method=method, route=route, probe_id=pid + str(at))
    b.call("probe.cross_tenant", at, at + 1, status, result={"body_masked": masked} if status else None,
           target_tenant="c2", target_id=target, control=False, path=f"/x/{target}", **common)
    if control is not None:
        b.call("probe.cross_tenant", at + 2, at + 3, control, result={"body_masked": control_masked},
               target_tenant=None, target_id="zz", control=True, path="/x/zz", **common)


def _filter_probe(b: HistoryBuilder, at: float, status: int, masked: str, control: int, control_masked: str,
                  seen: frozenset[str] = frozenset(("c1",))) -> None:
    """A read of c1's list filtered by c2's rep (``query_field``), then by a missing rep."""
    common = dict(method="GET", route="GET /api/v1/appointments", probe_id=f"q{at}", query_field="assigned_rep_id")
    b.call("probe.cross_tenant", at, at + 1, status, result={"body_masked": masked, "company_ids_seen": seen},
           target_tenant="c2", target_id="r2", control=False, path="/x?assigned_rep_id=r2", **common)
    b.call("probe.cross_tenant", at + 2, at + 3, control, result={"body_masked": control_masked},
           target_tenant=None, target_id="zz", control=True, path="/x?assigned_rep_id=zz", **common)


def test_a_probe_of_the_probers_own_row_names_the_answer_that_leaked_it_not_the_probe() -> None:
    """c2's load held a1, c1's own row: an answer to c2 named it (a list without its tenant filter, rows without
    company_id). c1's probe of "c2's" a1 got the 200 its own row deserves: that is ``foreign-id-learned``,
    not a leak of the probed route; a target the final state gives c2 is still a ``probe-leak``; a row the
    final state no longer holds is judged as before."""
    b = HistoryBuilder()
    _probe(b, 0, 200, "m200", target="a1")
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert _types(verdict) == ["foreign-id-learned"]
    assert "an answer" in verdict.violations[0].message or "answers" in verdict.violations[0].message
    b = HistoryBuilder()
    _probe(b, 0, 200, "m200", target="b1")
    assert _types(_run("tenant-isolation", b, **_TABLES)) == ["probe-leak"]
    b = HistoryBuilder()
    _probe(b, 0, 404, target="gone")
    assert _run("tenant-isolation", b, **_TABLES).status == "valid"


def test_a_refusal_whose_missing_id_twin_got_no_answer_is_unpaired_not_a_violation() -> None:
    """A 409 for the foreign id whose control was cut by the end of the load (no answer) cannot be told from a
    refusal before the id mattered (a false alarm in a plain-Locust smoke run, 2026-12-02); with a control that
    answered 404, the same 409 is flagged."""
    b = HistoryBuilder()
    _probe(b, 0, 409, "consent", control=None, method="POST", route="POST /api/v1/calls")
    b.call("probe.cross_tenant", 2, 3, None, target_tenant=None, target_id="zz", control=True, path="/x/zz",
           method="POST", route="POST /api/v1/calls", probe_id="p0")
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "valid" and verdict.summary["probe_outcomes"] == {"unpaired": 1}, verdict.violations
    b = HistoryBuilder()
    _probe(b, 0, 409, "consent", control=404, method="POST", route="POST /api/v1/calls")
    assert _types(_run("tenant-isolation", b, **_TABLES)) == ["probe-wrong-status"]


def test_a_reps_probe_refused_403_like_the_missing_id_is_the_routes_role() -> None:
    """A rep on a route its app keeps for managers without saying so in the document: 403 for the foreign id
    and for the missing one alike is the role's refusal, not the id's; the same from a manager is flagged."""
    b = HistoryBuilder()
    common = dict(method="DELETE", route="DELETE /api/v1/appointments/{appointment_id}")
    for at, role in ((0, "rep"), (10, "manager")):
        b.call("probe.cross_tenant", at, at + 1, 403, result={"body_masked": "m403"}, target_tenant="c2",
               target_id="b1", control=False, path="/x/b1", probe_id=f"r{at}", as_role=role, **common)
        b.call("probe.cross_tenant", at + 2, at + 3, 403, result={"body_masked": "m403"}, target_tenant=None,
               target_id="zz", control=True, path="/x/zz", probe_id=f"r{at}", as_role=role, **common)
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert _types(verdict) == ["probe-wrong-status"]
    assert verdict.violations[0].details["tenant"] is not None and verdict.summary["probe_outcomes"]["inconclusive"] == 1


def test_a_conflict_of_the_body_alike_for_the_missing_id_is_inconclusive() -> None:
    """A call naming another tenant's session beside our own appointment, which has no analysis consent: 409
    consent-required, and exactly the same for a missing session id: refused before the id mattered (seen as
    a false alarm in tenant-probe, 2026-12-02). A 409 only the foreign id got is still flagged."""
    b = HistoryBuilder()
    _probe(b, 0, 409, "consent", control=409, control_masked="consent", method="POST", route="POST /api/v1/calls")
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "valid" and verdict.summary["probe_outcomes"] == {"inconclusive": 1}
    b = HistoryBuilder()
    _probe(b, 0, 409, "conflict", control=409, control_masked="consent", method="POST", route="POST /api/v1/calls")
    assert _types(_run("tenant-isolation", b, **_TABLES)) == ["probe-wrong-status"]


def test_a_filter_by_a_foreign_id_answered_like_a_missing_one_passes() -> None:
    """An empty list for another tenant's rep, as for a rep nobody has: nothing found, nothing told."""
    b = HistoryBuilder()
    _filter_probe(b, 0, 200, "[]", 200, "[]", seen=frozenset())
    _filter_probe(b, 10, 422, "bad", 422, "bad", seen=frozenset())
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["probe_outcomes"] == {"filter-alike": 2}


def test_a_filter_that_reaches_another_tenants_rows_is_flagged() -> None:
    """The list filtered by c2's rep came back with c2's appointments (the tenant filter dropped when the rep
    filter is given): its answer differs from the missing rep's empty list, and carries c2's company id."""
    b = HistoryBuilder()
    _filter_probe(b, 0, 200, "[{b1}]", 200, "[]", seen=frozenset(("c2",)))
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "invalid"
    assert "probe-distinguishable" in _types(verdict)


@pytest.mark.parametrize(("status", "masked", "control", "expected"), [
    (200, "m200", 404, "probe-leak"),                  # a 2xx: the row was served
    (403, "m403", 404, "probe-wrong-status"),          # "forbidden": tells the id exists
    (409, "m409", 404, "probe-wrong-status"),          # a conflict on someone else's row
    (500, "m500", 404, "probe-wrong-status"),          # crashed on the foreign row (no fault active)
    (422, "m422", 404, "probe-wrong-status"),          # refused differently from the missing id
    (404, "other", 404, "probe-distinguishable"),      # 404, but not the missing id's 404
    (403, "m403", 403, "probe-wrong-status"),          # 403 even if the missing id got it too
])
def test_cross_tenant_wrong_answers_are_flagged(status: int, masked: str, control: int, expected: str) -> None:
    b = HistoryBuilder()
    alike = control == status and expected != "probe-distinguishable"
    _probe(b, 0, status, masked, control=control, control_masked=masked if alike else "m404")
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "invalid" and _types(verdict) == [expected]


def test_foreign_rows_changed_or_deleted_in_the_final_state_are_flagged() -> None:
    b = HistoryBuilder()
    _probe(b, 0, 404, method="PATCH", route="PATCH /api/v1/appointments/{appointment_id}")
    changed = dict(appointments=({"id": "b1", "company_id": "c2", "title": "sp-probe-c1"},))
    assert _types(_run("tenant-isolation", b, **changed)) == ["foreign-row-changed"]
    b = HistoryBuilder()
    _probe(b, 0, 404, method="DELETE", route="DELETE /api/v1/appointments/{appointment_id}")
    gone = dict(appointments=({"id": "a1", "company_id": "c1"},))
    assert _types(_run("tenant-isolation", b, **gone)) == ["foreign-row-deleted"]
    # deleted by its own tenant: not the probe's doing
    b.call("appointment.delete", 10, 11, 204, tenant="c2", appointment_id="b1")
    assert _run("tenant-isolation", b, **gone).status == "valid"


def test_a_foreign_rows_deletion_is_excused_only_by_its_owner_deleting_it() -> None:
    """The row of a DELETE probe (404) gone from the final state: its owner's retention run that named it
    deleted it (the probes learn old appointments from list answers), not the probe. A deletion request the
    owner never confirmed, or an owner's DELETE refused, deleted nothing: the row's end is still the probe's."""
    gone = dict(appointments=({"id": "a1", "company_id": "c1"},))
    old = [{"kind": "appointment", "id": "b1", "company_id": "c2", "at": 0.0}]

    def deleting(*owner: tuple) -> HistoryBuilder:
        b = HistoryBuilder()
        _probe(b, 0, 404, method="DELETE", route="DELETE /api/v1/appointments/{appointment_id}")
        for f, status, args in owner:
            b.call(f, 10, 11, status, tenant="c2", result={"id": "d1"} if f == "deletion.request" else None, **args)
        return b

    assert _run("tenant-isolation", deleting(("retention.run", 200, {"rows": old})), **gone).status == "valid"
    assert _run("tenant-isolation", deleting(("retention.run", None, {"rows": old})), **gone).status == "valid"
    for owner in [(("retention.run", 403, {"rows": old}),),                       # refused: deleted nothing
                  (("deletion.request", 201, {"scope": "appointment", "target_id": "b1"}),),  # never confirmed
                  (("appointment.delete", 404, {"appointment_id": "b1"}),)]:
        assert _types(_run("tenant-isolation", deleting(*owner), **gone)) == ["foreign-row-deleted"], owner
    confirmed = deleting(("deletion.request", 201, {"scope": "appointment", "target_id": "b1"}),
                         ("deletion.confirm", 200, {"deletion_id": "d1"}))
    assert _run("tenant-isolation", confirmed, **gone).status == "valid"


def test_cross_tenant_right_answers_pass() -> None:
    b = HistoryBuilder()
    _probe(b, 0, 404)                                           # exactly the missing id's answer
    _probe(b, 10, 422, "m422", control=422, control_masked="m422")  # refused before the id mattered, alike
    _probe(b, 20, None)                                         # no answer: counted, not judged
    _probe(b, 30, 429, "m429")                                  # rate limited: counted
    _fault(b, 39, 45)
    _probe(b, 40, 503, "m503")                                  # a 5xx under an injected fault is excused
    own = dict(appointments=({"id": "b1", "company_id": "c2", "title": "Visit"},
                             {"id": "a1", "company_id": "c1", "title": "sp-probe-c1"}))  # our own row: fine
    verdict = _run("tenant-isolation", b, **own)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["probe_outcomes"] == {"404": 1, "inconclusive": 1, "none": 1, "limited": 1, "excused": 1}


def _body_probe(b: HistoryBuilder, at: float, status: int, control: int = 404) -> None:
    """Another tenant's appointment in a session start's body (plan D2, ids in bodies), then a missing one."""
    common = dict(method="POST", route="POST /api/v1/recordings/sessions/start", probe_id=f"b{at}",
                  path="/api/v1/recordings/sessions/start", body_field="appointment_id")
    b.call("probe.cross_tenant", at, at + 1, status, result={"body_masked": f"m{status}"}, target_tenant="c2",
           target_id="b1", control=False, **common)
    b.call("probe.cross_tenant", at + 2, at + 3, control, result={"body_masked": f"m{control}"}, target_tenant=None,
           target_id="zz", control=True, **common)


def test_foreign_id_in_a_body_is_judged_like_one_in_a_path() -> None:
    b = HistoryBuilder()
    _body_probe(b, 0, 201)  # the session was started on another tenant's appointment
    # ... and the final state shows it: our session names their appointment, whatever was answered
    taken = dict(_TABLES, recording_sessions=({"id": "s1", "company_id": "c1", "appointment_id": "b1"},))
    assert _types(_run("tenant-isolation", b, **taken)) == ["foreign-reference", "probe-leak"]
    b = HistoryBuilder()
    _body_probe(b, 0, 404)  # answered like the missing id, yet written
    assert _types(_run("tenant-isolation", b, **taken)) == ["foreign-reference"]
    b = HistoryBuilder()
    _body_probe(b, 0, 404)  # right: 404 like the missing id, and our own session on our own appointment only
    own = dict(_TABLES, recording_sessions=({"id": "s1", "company_id": "c1", "appointment_id": "a1"},))
    verdict = _run("tenant-isolation", b, **own)
    assert verdict.status == "valid", [v.message for v in verdict.violations]


def _malformed(b: HistoryBuilder, at: float, status: int | None, role: str = "manager") -> None:
    """A probe whose path id is no id at all, sent alone (its own probe_id, as a control)."""
    b.call("probe.cross_tenant", at, at + 1, status, result={"body_masked": "m"} if status else None,
           target_tenant=None, target_id="not-an-id", malformed_id=True, control=True, path="/x/not-an-id",
           method="GET", route="GET /api/v1/appointments/{appointment_id}", probe_id=f"m{at}", as_role=role)


@pytest.mark.parametrize(("status", "role", "expected"), [
    (200, "manager", "malformed-id-served"), (500, "manager", "malformed-id-crashed"),
    (403, "manager", "malformed-id-wrong-status"), (409, "rep", "malformed-id-wrong-status")])
def test_a_malformed_path_id_served_crashed_or_misnamed_is_flagged(status: int, role: str, expected: str) -> None:
    b = HistoryBuilder()
    _malformed(b, 0, 404)
    _malformed(b, 10, status, role)
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert _types(verdict) == [expected]
    assert verdict.summary["probe_outcomes"] == {"malformed-refused": 1, "malformed-violation": 1}


def test_a_malformed_path_id_refused_as_malformed_or_missing_passes() -> None:
    b = HistoryBuilder()
    for i, (status, role) in enumerate([(404, "manager"), (400, "manager"), (422, "rep"), (403, "rep"),
                                        (None, "rep"), (429, "manager")]):
        _malformed(b, 10 * i, status, role)
    _fault(b, 100, 110)
    _malformed(b, 104, 500)  # a crash while the database was down is the fault's
    verdict = _run("tenant-isolation", b, **_TABLES)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["probe_outcomes"] == {"malformed-refused": 4, "malformed-none": 1, "malformed-limited": 1,
                                                 "malformed-excused": 1}


def test_tenant_isolation_with_nothing_answered_is_not_exercised() -> None:
    verdict = _run("tenant-isolation", HistoryBuilder(), **_TABLES)
    assert verdict.status == "unknown" and verdict.error.startswith("not exercised: ")


# -- idempotent-replay: every answer to an idempotency probe ---------------------------------------------------
def _idem(b: HistoryBuilder, situation: str, answers: list[tuple[float, float, int | None, dict]], *,
          tenants: tuple[str, ...] = ("c1", "c1"), fps: tuple[str, ...] = ("f1", "f1"), key: str | None = "k1") -> None:
    for step, ((start, end, status, result), tenant, fp) in enumerate(zip(answers, tenants, fps), start=1):
        args = dict(route="POST /api/v1/recordings/sessions/start", probe=situation, step=step, payload_fp=fp)
        if key is not None:
            args["idempotency_key"] = key
        b.call("probe.idempotency", start, end, status, process=f"p{step}", tenant=tenant, result=result, **args)


_CREATED = {"id": "s1", "body_sha256": "h1"}
_REPLAYED = {"id": "s1", "body_sha256": "h1", "replayed": True}
_NOT_FOUND = {"body_sha256": "h404", "problem": "not-found"}


@pytest.mark.parametrize(("situation", "answers", "extra", "expected"), [
    ("replay", [(0, 1, 404, _NOT_FOUND), (2, 3, 201, {"id": "s9", "body_sha256": "h9"})], {}, "replay-differs"),
    ("replay", [(0, 1, 404, _NOT_FOUND), (2, 3, 404, {"body_sha256": "other"})], {}, "replay-differs"),
    ("replay", [(0, 1, 201, _CREATED), (2, 3, 201, _CREATED)], {}, "executed-twice"),  # not marked replayed
    ("replay", [(0, 1, 201, _CREATED), (2, 3, 201, {"id": "s2", "body_sha256": "h2"})], {},
     "duplicate-side-effect"),  # a new effect
    ("replay", [(0, 1, 201, _CREATED), (2, 3, 500, {})], {}, "server-error"),
    ("mismatch", [(0, 1, 201, _CREATED), (2, 3, 409, {"problem": "active-session-exists"})],
     {"fps": ("f1", "f2")}, "mismatch-not-refused"),
    ("mismatch", [(0, 1, 201, _CREATED), (2, 3, 201, {"id": "s2"})], {"fps": ("f1", "f2")}, "mismatch-accepted"),
    ("concurrent", [(0, 5, 201, _CREATED), (1, 4, 409, {"problem": "active-session-exists"})], {},
     "concurrent-differs"),  # ran twice: the second hit the first one's session
    ("concurrent", [(0, 5, 201, _CREATED), (1, 4, 422, {"problem": "idempotency-key-mismatch"})], {},
     "concurrent-differs"),
    ("missing", [(0, 1, 201, _CREATED)], {"key": None}, "missing-key-accepted"),
    ("missing", [(0, 1, 422, {"problem": "invalid"})], {"key": None}, "missing-key-wrong-status"),
    ("malformed", [(0, 1, 201, _CREATED)], {"key": "sp key 1"}, "malformed-key-accepted"),  # ran under it
    ("malformed", [(0, 1, 409, {"problem": "active-session-exists"})], {"key": "sp\tkey-1"},
     "malformed-key-wrong-status"),  # taken for a valid key: the start ran into the active session
    ("malformed", [(0, 1, 400, {"problem": "idempotency-key-missing"})], {"key": "k" * 256},
     "malformed-key-wrong-status"),  # a 400, but not the one the contract names
    ("other-tenant", [(0, 1, 201, _CREATED), (2, 3, 201, _REPLAYED)], {"tenants": ("c1", "c2"), "fps": ("f1", "f2")},
     "key-crossed-tenants"),  # got the first tenant's stored answer
    ("other-tenant", [(0, 1, 201, _CREATED), (2, 3, 422, {"problem": "idempotency-key-mismatch"})],
     {"tenants": ("c1", "c2"), "fps": ("f1", "f2")}, "key-crossed-tenants"),
])
def test_idempotency_probe_wrong_answers_are_flagged(situation, answers, extra, expected) -> None:
    b = HistoryBuilder()
    _idem(b, situation, answers, **extra)
    verdict = _run("idempotent-replay", b)
    assert verdict.status == "invalid" and _types(verdict) == [expected], _types(verdict)


def test_idempotency_probe_right_answers_pass() -> None:
    b = HistoryBuilder()
    _idem(b, "replay", [(0, 1, 201, _CREATED), (2, 3, 201, _REPLAYED)])
    _idem(b, "replay", [(0, 1, 404, _NOT_FOUND), (2, 3, 404, _NOT_FOUND)], key="k2")
    _idem(b, "mismatch", [(0, 1, 201, {"id": "s3", "body_sha256": "h3"}), (2, 3, 422, {"problem": "x"})],
          fps=("f1", "f2"), key="k3")
    _idem(b, "concurrent", [(0, 5, 201, {"id": "s4"}), (1, 2, 409, {"problem": "idempotency-key-in-flight"})],
          key="k4")
    _idem(b, "missing", [(0, 1, 400, {"problem": "idempotency-key-missing"})], key=None)
    _idem(b, "malformed", [(0, 1, 400, {"problem": "idempotency-key-invalid"})], key="sp key 1")
    _idem(b, "malformed", [(0, 1, 429, {"problem": "rate-limited"})], key="k" * 256)  # limited: not judged
    _idem(b, "other-tenant", [(0, 1, 201, {"id": "s5"}), (2, 3, 201, {"id": "s6"})], tenants=("c1", "c2"),
          fps=("f1", "f2"), key="k5")
    _fault(b, 9, 20)
    _idem(b, "replay", [(10, 11, 503, {}), (12, 13, 201, {"id": "s7"})], key="k6")  # key released after a 5xx
    verdict = _run("idempotent-replay", b)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["probes"]["replay"] == 6


def test_idempotent_replay_without_keys_is_not_exercised() -> None:
    b = HistoryBuilder()
    b.call("appointment.read", 0, 1, 200, appointment_id="a1")
    verdict = _run("idempotent-replay", b)
    assert verdict.status == "unknown" and verdict.error.startswith("not exercised: ")


# -- authorization: 401 without a valid token, 403 for a rep on manager routes, never 2xx or 5xx -------------
def _authz(b: HistoryBuilder, at: float, role: str, status: int | None, *, roles: tuple[str, ...] = ("manager",),
           route: str = "DELETE /api/v1/appointments/{appointment_id}") -> None:
    b.call("probe.authz", at, at + 1, status, role=role, required_roles=list(roles), route=route,
           result={"problem": "x"} if status else None)


@pytest.mark.parametrize(("role", "status", "expected"), [
    ("none", 200, "unauthenticated-success"),
    ("expired", 204, "unauthenticated-success"),
    ("forged", 201, "unauthenticated-success"),
    ("expired", 403, "wrong-refusal"),       # judged the role of a token it should not have trusted
    ("forged", 404, "wrong-refusal"),        # looked the row up for an unknown caller
    ("none", 500, "server-error"),
    ("rep", 200, "forbidden-success"),
    ("rep", 401, "wrong-refusal"),
    ("rep", 500, "server-error"),
    ("manager", 403, "rightful-caller-refused"),
    ("manager", 502, "server-error"),
])
def test_authorization_wrong_answers_are_flagged(role: str, status: int, expected: str) -> None:
    b = HistoryBuilder()
    _authz(b, 0, role, status)
    verdict = _run("authorization", b)
    assert verdict.status == "invalid" and _types(verdict) == [expected]


def test_authorization_right_answers_pass() -> None:
    b = HistoryBuilder()
    for n, role in enumerate(("none", "expired", "forged")):
        _authz(b, n * 10, role, 401)
    _authz(b, 30, "rep", 403)
    _authz(b, 40, "rep", 404, roles=())       # any role may: not a refusal the contract names
    _authz(b, 50, "manager", 200, route="GET /api/v1/appointments")
    _authz(b, 60, "manager", 404)
    _authz(b, 70, "none", None)               # no answer: counted
    _authz(b, 80, "none", 429)                # rate limited: counted
    _fault(b, 89, 95)
    _authz(b, 90, "forged", 503)              # under an injected fault
    verdict = _run("authorization", b)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["per_role"] == {"none": 3, "expired": 1, "forged": 2, "rep": 2, "manager": 2}


def test_authorization_without_probes_is_not_exercised() -> None:
    verdict = _run("authorization", HistoryBuilder())
    assert verdict.status == "unknown" and verdict.error.startswith("not exercised: ")


def _lapse(b: HistoryBuilder, at: float, role: str, status: int | None, token: str = "t1") -> None:
    b.call("probe.authz", at, at + 1, status, role=role, required_roles=[], route="GET /api/v1/appointments",
           token_id=token, token_exp=100.0, past_exp_s=3.5 if role == "lapsed" else -2.0,
           result={"problem": "x"} if status and status >= 400 else None)


def test_a_token_served_then_expired_and_served_again_is_flagged() -> None:
    """Known bad: the lapsing token served while live (200), then served again past its exp (200): the app kept
    its first verification. The priming answer itself is never judged, even a 401 (it may expire on the way)."""
    b = HistoryBuilder()
    _lapse(b, 0, "lapsing", 200)
    _lapse(b, 2, "lapsing", 401)
    _lapse(b, 10, "lapsed", 200)
    _lapse(b, 12, "lapsed", 401)
    verdict = _run("authorization", b)
    assert verdict.status == "invalid" and _types(verdict) == ["unauthenticated-success"]
    assert "past its exp" in verdict.violations[0].message and verdict.violations[0].details["past_exp_s"] == 3.5
    assert verdict.summary["lapsed_after_served"] == 2


def test_a_lapsed_token_refused_passes_and_counts_only_after_it_was_served() -> None:
    """Known good: every lapsed probe answered 401. Only lapsed probes of a token served (2xx) before they were
    sent put its expiry at risk: another token's, or one sent before the priming answer came, count nothing."""
    b = HistoryBuilder()
    _lapse(b, 0, "lapsing", 200)
    _lapse(b, 0.5, "lapsed", 401)             # sent before the priming request was answered (at 1)
    _lapse(b, 10, "lapsed", 401)
    _lapse(b, 12, "lapsed", 401, token="t2")  # a token never served
    _lapse(b, 14, "lapsing", 503)             # a 5xx is judged whatever the role: here none, so
    verdict = _run("authorization", b)
    assert verdict.status == "invalid" and _types(verdict) == ["server-error"]
    b = HistoryBuilder()
    _lapse(b, 0, "lapsing", 200)
    _lapse(b, 0.5, "lapsed", 401)
    _lapse(b, 10, "lapsed", 401)
    _lapse(b, 12, "lapsed", 401, token="t2")
    verdict = _run("authorization", b)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["lapsed_after_served"] == 1


# -- tenant-isolation: a request naming only its own tenant's rows is never answered 404 ---------------------------
_OWN_TABLES = {
    "appointments": ({"id": "a1", "company_id": "c1"}, {"id": "b1", "company_id": "c2"}),
    "calls": ({"id": "k1", "company_id": "c1"},),
    "recording_sessions": (),
    "users": ({"id": "r1", "company_id": "c1", "role": "rep"}, {"id": "m1", "company_id": "c1", "role": "manager"}),
}


def _own(b: HistoryBuilder, at: float, f: str, status: int, result: dict | None = None, **args: object) -> None:
    b.call(f, at, at + 2, status, result=result or ({"problem": "not-found"} if status == 404 else {}), **args)


def test_a_404_for_the_tenants_own_rows_is_flagged() -> None:
    """Known bad: a start, an assign (appointment and rep both c1's), a call read and a refresh of c1's rows, all
    still there at the end, answered 404: the request refused its own tenant."""
    b = HistoryBuilder()
    _own(b, 0, "session.start", 404, appointment_id="a1", idempotency_key="k-1", trace_id="t-1")
    _own(b, 10, "appointment.assign", 404, appointment_id="a1", rep_id="r1")
    _own(b, 20, "call.read", 404, call_id="k1")
    _own(b, 30, "call.refresh", 404, call_id="k1")
    verdict = _run("tenant-isolation", b, **_OWN_TABLES)
    assert verdict.status == "invalid" and _types(verdict) == ["own-row-not-found"] * 4
    assert verdict.summary["own_rows_not_found"] == 4 and verdict.violations[0].details["appointment_id"] == "a1"


def test_a_404_that_may_be_right_passes() -> None:
    """Known good: a row gone at the end (deleted), another tenant's row, a manager given as a rep, an unknown id,
    a deletion request's where its table was not captured, a replayed 404, a stop (stop-refused judges it), and
    a 404 whose row is not captured at all."""
    b = HistoryBuilder()
    _own(b, 0, "session.start", 404, appointment_id="gone")
    _own(b, 5, "session.start", 404, appointment_id="b1")
    _own(b, 10, "appointment.assign", 404, appointment_id="a1", rep_id="m1")
    _own(b, 15, "appointment.read", 404, appointment_id="a9")
    _own(b, 20, "deletion.confirm", 404, deletion_id="d1")
    _own(b, 25, "call.read", 404, result={"problem": "not-found", "replayed": True}, call_id="k1")
    _own(b, 30, "session.stop", 404, session_id="s1")
    _own(b, 35, "call.submit", 404, appointment_id="a1", recording_session_id="s-missing")
    _own(b, 40, "appointment.read", 200, appointment_id="a1")
    verdict = _run("tenant-isolation", b, **_OWN_TABLES)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["own_rows_not_found"] == 0 and verdict.summary["own_row_404s"] == 6


def test_a_confirmation_of_the_tenants_own_deletion_request_answered_404_is_flagged() -> None:
    """Known bad: a confirmation of c1's request d1, still there at the end (executed, or expired: 409
    deletion-not-pending is the answer), answered 404 (a refusal sweep's mutant). Known good: a request gone
    at the end (its company's deletion took it), another tenant's."""
    tables = {**_OWN_TABLES, "deletion_requests": ({"id": "d1", "company_id": "c1", "status": "executed"},
                                                  {"id": "d2", "company_id": "c2", "status": "pending"})}
    b = HistoryBuilder()
    _own(b, 0, "deletion.confirm", 404, deletion_id="d1")
    _own(b, 5, "deletion.confirm", 404, deletion_id="d2")
    _own(b, 10, "deletion.confirm", 404, deletion_id="gone")
    _own(b, 15, "deletion.confirm", 409, result={"problem": "deletion-not-pending"}, deletion_id="d1")
    verdict = _run("tenant-isolation", b, **tables)
    assert _types(verdict) == ["own-row-not-found"] and verdict.violations[0].details["deletion_id"] == "d1"


def test_a_deletion_request_of_the_tenants_own_appointment_answered_404_is_flagged() -> None:
    """Known bad: a deletion request (POST /deletions or DELETE /appointments/{id}) of scope appointment naming
    c1's appointment a1, still there at the end, answered 404 (an app that took each scope for the other).
    And one of c1's own company, whose users are still there. Known good: one whose appointment is gone, one
    naming another tenant's, another company (not the caller's), a company nobody of which is left."""
    b = HistoryBuilder()
    _own(b, 0, "deletion.request", 404, scope="appointment", target_id="a1")
    _own(b, 5, "deletion.request", 404, scope="appointment", target_id="a1", route="delete")
    _own(b, 10, "deletion.request", 404, scope="company", target_id="c1", rows={}, managers=["m1"])
    verdict = _run("tenant-isolation", b, **_OWN_TABLES)
    assert _types(verdict) == ["own-row-not-found"] * 3 and verdict.violations[0].details["target_id"] == "a1"
    assert verdict.violations[2].details["target_id"] == "c1"
    good = HistoryBuilder()
    _own(good, 0, "deletion.request", 404, scope="appointment", target_id="gone")
    _own(good, 5, "deletion.request", 404, scope="appointment", target_id="b1")
    _own(good, 10, "deletion.request", 404, scope="company", target_id="c2", rows={}, managers=["m1"])
    _own(good, 12, "deletion.request", 404, scope="company", target_id="c9", rows={}, managers=["m9"], tenant="c9")
    _own(good, 15, "deletion.request", 202, scope="appointment", target_id="a1")
    # c1 deleted (confirmed 2xx), then asked again by another load process: refused as gone, not judged
    good.call("deletion.confirm", 20, 22, 200, scope="company", target_id="c1", deletion_id="dc")
    _own(good, 30, "deletion.request", 404, scope="company", target_id="c1", rows={}, managers=["m1"])
    verdict = _run("tenant-isolation", good, **_OWN_TABLES)
    assert verdict.status == "valid", [v.message for v in verdict.violations]
    assert verdict.summary["own_row_404s"] == 5


def test_probe_5xx_excuses_match_server_errors_explained() -> None:
    """A probe's 5xx within AFTER_FAULT_S after a fault stops, and a 503 with a Retry-After (load shed), are
    excused in every probe checker as in server-errors-explained (a pooled connection the fault broke is found
    broken when next used: on a slow machine a second after the fault healed). A 5xx later than that is not."""
    from stormproof.harness.invariants.checkers._probes import AFTER_FAULT_S

    after_ms = AFTER_FAULT_S * 1_000
    b = HistoryBuilder()
    b.call("fault", 0, 1, None, process="nemesis", tenant=None, fault="reset_peer", phase="start", target="postgres")
    b.call("fault", 1_000, 1_001, None, process="nemesis", tenant=None, fault="reset_peer", phase="stop",
           target="postgres")
    _authz(b, 1_000 + after_ms / 2, "none", 500)  # just after the fault healed: excused
    b.call("probe.authz", 5_000, 5_001, 503, role="none", required_roles=["manager"],
           route="DELETE /api/v1/appointments/{appointment_id}", result={"problem": "x", "retry_after": "1"})
    assert _run("authorization", b).status != "invalid"
    assert _run("server-errors-explained", b).status != "invalid"
    _authz(b, 1_001 + 2 * after_ms, "none", 500)  # well after it: a server error
    assert _types(_run("authorization", b)) == ["server-error"]
    assert _types(_run("server-errors-explained", b)) == ["unexplained-server-error"]
