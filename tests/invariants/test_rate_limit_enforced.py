"""rate-limit-enforced: a tenant answered beyond rate + burst in one second is flagged."""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history import HistoryRecorder, load_history
from stormproof.harness.invariants import CheckConfig, Snapshot, check_all


def _history(tmp_path: Path, per_second: dict[str, list[int]]) -> object:
    """per_second: tenant -> statuses answered within second 0 (all the same second)."""
    clock = iter(range(1, 10_000))
    recorder = HistoryRecorder(tmp_path / "h.jsonl", origin_ns=0, clock=lambda: next(clock) * 1000)
    for tenant, statuses in per_second.items():
        for status in statuses:
            invoke = recorder.invoke("u1", "appointment.read", tenant=tenant, args={"appointment_id": "a"})
            recorder.complete(invoke, status=status)
    recorder.close()
    return load_history(tmp_path / "h.jsonl")


def _verdict(history, config: CheckConfig):
    (verdict,) = check_all(history, Snapshot.build({}, config=config), ["rate-limit-enforced"])
    return verdict


LIMIT = CheckConfig(rate_limit_per_s=20, rate_limit_burst=10)  # at most 40 accepted per second


def test_a_limited_tenant_passes(tmp_path: Path) -> None:
    history = _history(tmp_path, {"a": [200] * 35 + [429] * 60, "b": [200] * 30})
    verdict = _verdict(history, LIMIT)
    assert verdict.status == "valid"
    assert verdict.summary["answered_429"] == 60


def test_an_unlimited_tenant_is_a_violation(tmp_path: Path) -> None:
    history = _history(tmp_path, {"a": [200] * 90 + [404] * 10, "b": [200] * 10})
    verdict = _verdict(history, LIMIT)
    assert verdict.status == "invalid"
    assert [v.details["tenant"] for v in verdict.violations] == ["a"]
    assert verdict.violations[0].details["accepted"] == 100


def test_no_limit_configured_is_not_checked(tmp_path: Path) -> None:
    verdict = _verdict(_history(tmp_path, {"a": [200] * 500}), CheckConfig())
    assert verdict.status == "valid" and verdict.summary["checked"] is False


def _timed(tmp_path: Path, requests: list[tuple[float, str, str, int]]) -> object:
    """requests: (seconds into the run, tenant, operation, status); each answered 20 ms after it was sent."""
    now = [0]
    recorder = HistoryRecorder(tmp_path / "t.jsonl", origin_ns=0, clock=lambda: now[0])
    for at, tenant, f, status in sorted(requests):
        now[0] = int(at * 1e9)
        invoke = recorder.invoke(f"u-{tenant}", f, tenant=tenant, args={"appointment_id": "a"})
        now[0] = int((at + 0.02) * 1e9)
        recorder.complete(invoke, status=status)
    recorder.close()
    return load_history(tmp_path / "t.jsonl")


def _flood(seconds: int) -> list[tuple[float, str, str, int]]:
    """Tenant a far over its limit for ``seconds``: 100 requests a second, its burst then one in five accepted."""
    return [(k / 100, "a", "appointment.read", 200 if k < 10 or k % 5 == 0 else 429) for k in range(seconds * 100)]


def test_a_quiet_tenant_refused_for_anothers_flood_is_a_violation(tmp_path: Path) -> None:
    """b sends two requests a second (limit 20/s): its 429 can only come from a's traffic (one shared allowance)."""
    quiet = [(0.5 * k + 0.003, "b", "appointment.read", 429 if k == 7 else 200) for k in range(10)]
    verdict = _verdict(_timed(tmp_path, _flood(5) + quiet), LIMIT)
    assert verdict.status == "invalid"
    assert [(v.details["type"], v.details["tenant"]) for v in verdict.violations] == [("quiet-tenant-limited", "b")]
    assert verdict.summary["quiet_tenant_429"] == 1


def test_a_tenant_refused_after_its_own_burst_passes(tmp_path: Path) -> None:
    """b sends 30 requests in 0.3 s (over burst 10 at 20/s): its own traffic explains the 429s."""
    burst = [(1 + k / 100, "b", "appointment.read", 429 if k >= 25 else 200) for k in range(30)]
    verdict = _verdict(_timed(tmp_path, _flood(3) + burst), LIMIT)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["api_429_judged"] > 5


def test_a_quiet_tenants_call_refused_is_not_judged(tmp_path: Path) -> None:
    """A call submission may meet the Shunya or task limit, which is lower: its 429 is not the API limit's."""
    quiet = [(0.5 * k + 0.003, "b", "call.submit", 429 if k == 7 else 202) for k in range(10)]
    verdict = _verdict(_timed(tmp_path, _flood(5) + quiet), LIMIT)
    assert verdict.status == "valid", verdict.violations


def _with_authz(tmp_path: Path, accepted: int, unauthenticated: int, rep: int = 0) -> object:
    """Tenant a in one second: ``accepted`` reads let through by its limit, then the rest 429, and
    authorization probes answered 401 (no, expired or forged token) or 403 (a rep on a manager route)."""
    clock = iter(range(1, 10_000))
    recorder = HistoryRecorder(tmp_path / "z.jsonl", origin_ns=0, clock=lambda: next(clock) * 1000)
    sent = [("appointment.read", {"appointment_id": "x"}, 200)] * accepted
    sent += [("appointment.read", {"appointment_id": "x"}, 429)] * 20
    roles = ("none", "expired", "forged")
    sent += [("probe.authz", {"role": roles[k % 3], "method": "GET", "path": "/api/v1/me"}, 401)
             for k in range(unauthenticated)]
    sent += [("probe.authz", {"role": "rep", "required_roles": ["manager"], "method": "GET",
                              "path": "/api/v1/deletions"}, 403)] * rep
    for f, args, status in sent:
        invoke = recorder.invoke("u1", f, tenant="a", args=args)
        recorder.complete(invoke, status=status)
    recorder.close()
    return load_history(tmp_path / "z.jsonl")


def test_unauthenticated_probes_do_not_spend_the_tenants_allowance(tmp_path: Path) -> None:
    """The limit applies once the token names the tenant: the 401s of callers with no valid token are not the
    tenant's accepted requests (a false over-limit when authorization probes joined a limited tenant's load)."""
    verdict = _verdict(_with_authz(tmp_path, accepted=38, unauthenticated=15), LIMIT)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["busiest_second"] == 38


def test_an_authenticated_refusal_still_spends_the_allowance(tmp_path: Path) -> None:
    """A rep's 403 passed the limit (the token was good): with it, the tenant is over its bound."""
    verdict = _verdict(_with_authz(tmp_path, accepted=38, unauthenticated=15, rep=5), LIMIT)
    assert verdict.status == "invalid"
    assert verdict.violations[0].details["accepted"] == 43


# -- the task-enqueue limit (plan C3: "task enqueueing") ---------------------------------------------

TASKS = CheckConfig(task_rate_per_s=1, task_rate_burst=1)  # at most 1 x L x 1.5 + 1 in a window of L s


def _calls(tmp_path: Path, requests: list[tuple[float, float, str, int, bool]]) -> object:
    """requests: (sent at s, answered after s, operation, status, replayed)."""
    events: list[tuple[int, int, str, int, bool, int]] = []  # (ns, order, f, status, replayed, request no.)
    for k, (at, latency, f, status, replayed) in enumerate(requests):
        events.append((int(at * 1e9), 0, f, status, replayed, k))
        events.append((int((at + latency) * 1e9), 1, f, status, replayed, k))
    now = [0]
    recorder = HistoryRecorder(tmp_path / "c.jsonl", origin_ns=0, clock=lambda: now[0])
    invokes = {}
    for ns, order, f, status, replayed, k in sorted(events):
        now[0] = ns
        if order == 0:
            invokes[k] = recorder.invoke("u-a", f, tenant="a", args={"call_id": "c"})
        else:
            recorder.complete(invokes[k], status=status, result={"replayed": True} if replayed else None)
    recorder.close()
    return load_history(tmp_path / "c.jsonl")


def test_task_enqueues_within_their_limit_pass(tmp_path: Path) -> None:
    """One accepted a second (plus the first burst), the rest 429: within 1/s burst 1 in every window."""
    calls = [(k / 10, 0.02, "call.submit" if k % 2 else "call.refresh", 202 if k % 10 == 0 else 429, False)
             for k in range(100)]
    verdict = _verdict(_calls(tmp_path, calls), TASKS)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["task_enqueues_judged"] == 10


def test_answers_bunched_by_latency_do_not_read_as_over_limit(tmp_path: Path) -> None:
    """Accepted at 1/s, but three answers delayed into one second: a window holds a request only whole."""
    calls = [(0.0, 2.9, "call.submit", 202, False), (1.0, 1.95, "call.submit", 202, False),
             (2.0, 0.96, "call.submit", 202, False), (3.0, 0.02, "call.submit", 202, False)]
    verdict = _verdict(_calls(tmp_path, calls), TASKS)
    assert verdict.status == "valid", verdict.violations


def test_replayed_answers_spend_no_task_allowance(tmp_path: Path) -> None:
    calls = [(k / 10, 0.02, "call.submit", 202, k > 0) for k in range(30)]
    verdict = _verdict(_calls(tmp_path, calls), TASKS)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["task_enqueues_judged"] == 1


def test_unlimited_task_enqueues_are_a_violation(tmp_path: Path) -> None:
    """Five submissions and refreshes accepted a second: the task limit was not there."""
    calls = [(k / 5, 0.05, "call.submit" if k % 2 else "call.refresh", 202, False) for k in range(40)]
    verdict = _verdict(_calls(tmp_path, calls), TASKS)
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "task-over-limit" and violation.details["tenant"] == "a"
    assert violation.details["accepted"] > 1 * violation.details["window_s"] * 1.5 + 1
    assert violation.ops  # the requests admitted inside the window, for reproduce


def test_task_limit_judged_without_an_api_limit(tmp_path: Path) -> None:
    calls = [(k / 5, 0.05, "call.submit", 202, False) for k in range(40)]
    assert _verdict(_calls(tmp_path, calls), CheckConfig()).summary["checked"] is False
    assert _verdict(_calls(tmp_path, calls), TASKS).status == "invalid"


# -- a 429 says when to come back, and is never a stored answer --------------------------------------

def _refusals(tmp_path: Path, answers: list[tuple[int, dict]]) -> object:
    """answers: (status, result) of keyed call submissions, one after the other."""
    clock = iter(range(1, 10_000))
    recorder = HistoryRecorder(tmp_path / "r.jsonl", origin_ns=0, clock=lambda: next(clock) * 1_000_000)
    for status, result in answers:
        invoke = recorder.invoke("u1", "call.submit", tenant="a", args={"idempotency_key": "k1"})
        recorder.complete(invoke, status=status, result=result)
    recorder.close()
    return load_history(tmp_path / "r.jsonl")


def test_a_429_with_retry_after_then_a_fresh_answer_passes(tmp_path: Path) -> None:
    history = _refusals(tmp_path, [(429, {"retry_after": "1", "replayed": False}),
                                   (429, {"retry_after": "Wed, 21 Oct 2026 07:28:00 GMT", "replayed": False}),
                                   (202, {"replayed": False})])
    verdict = _verdict(history, CheckConfig())
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["limits_429_judged"] == 2


def test_a_429_without_retry_after_is_a_violation(tmp_path: Path) -> None:
    history = _refusals(tmp_path, [(429, {"retry_after": "", "replayed": False}),
                                   (429, {"retry_after": "soon", "replayed": False}),
                                   (429, {"replayed": False})])  # not recorded: not judged
    verdict = _verdict(history, CheckConfig())
    assert [v.details["type"] for v in verdict.violations] == ["limit-without-retry-after"] * 2


def test_a_retry_after_far_longer_than_the_limits_can_mean_is_a_violation(tmp_path: Path) -> None:
    """Limits of 20/s (burst 10) and 1/s: no refusal can mean more than 5 s. A Retry-After of 200 (milliseconds
    sent as seconds), or an HTTP-date an hour ahead, keeps a client that honours it out: flagged. Without a
    known limit (an app already running) the length is not judged."""
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    soon = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    history = _refusals(tmp_path, [(429, {"retry_after": "1", "replayed": False}),
                                   (429, {"retry_after": "5", "replayed": False}),
                                   (429, {"retry_after": soon, "replayed": False}),
                                   (429, {"retry_after": "200", "replayed": False}),
                                   (429, {"retry_after": later, "replayed": False})])
    limits = CheckConfig(rate_limit_per_s=20, rate_limit_burst=10, task_rate_per_s=1, task_rate_burst=1)
    verdict = _verdict(history, limits)
    assert [v.details["type"] for v in verdict.violations] == ["retry-after-too-long"] * 2
    assert [round(v.details["retry_after_s"], -2) for v in verdict.violations] == [200, 3600]
    assert _verdict(history, CheckConfig()).status == "valid"


def test_a_stored_429_replayed_to_the_keys_retry_is_a_violation(tmp_path: Path) -> None:
    history = _refusals(tmp_path, [(429, {"retry_after": "1", "replayed": False}),
                                   (429, {"retry_after": "1", "replayed": True})])
    verdict = _verdict(history, CheckConfig())
    assert verdict.status == "invalid"
    (violation,) = verdict.violations
    assert violation.details["type"] == "limit-replayed" and violation.ops


# -- answers bunched by latency against a limit that held ------------------------------------------

def _flights(tmp_path: Path, requests: list[tuple[float, float, int]]) -> object:
    """requests: (sent at s, answered after s, status) of tenant a's reads."""
    events = sorted([(int(at * 1e9), 0, k, status) for k, (at, _, status) in enumerate(requests)]
                    + [(int((at + latency) * 1e9), 1, k, status) for k, (at, latency, status) in enumerate(requests)])
    now = [0]
    recorder = HistoryRecorder(tmp_path / "f.jsonl", origin_ns=0, clock=lambda: now[0])
    invokes = {}
    for ns, order, k, status in events:
        now[0] = ns
        if order == 0:
            invokes[k] = recorder.invoke("u-a", "appointment.read", tenant="a", args={"appointment_id": "x"})
        else:
            recorder.complete(invokes[k], status=status)
    recorder.close()
    return load_history(tmp_path / "f.jsonl")


SLOW_LIMIT = CheckConfig(rate_limit_per_s=2, rate_limit_burst=10)  # 2 x 1.25 + 10 = 12.5 a second


def test_answers_bunched_by_a_stall_do_not_read_as_over_limit(tmp_path: Path) -> None:
    """Sent and admitted at 2 a second for 9 s, but the app stalled: every answer arrives in second 10.
    Counted by arrival, 18 answers in one second (bound 12.5); no window held that many whole flights,
    so the limit held."""
    requests = [(k / 2, 10.2 - k / 2, 200) for k in range(18)]
    verdict = _verdict(_flights(tmp_path, requests), SLOW_LIMIT)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["busiest_second"] > 12.5 and verdict.summary["bunched_seconds"] == 1


def test_an_unlimited_tenant_with_slow_answers_is_still_a_violation(tmp_path: Path) -> None:
    """No limit: 20 requests a second accepted, each answered 1.5 s later: no 1 s window holds a whole
    flight, a 2 s window 10 (bound 15), but a 4 s window 50 (bound 2 x 4 x 1.25 + 10 = 20)."""
    requests = [(k / 20, 1.5, 200) for k in range(100)]
    verdict = _verdict(_flights(tmp_path, requests), SLOW_LIMIT)
    assert verdict.status == "invalid"
    violation = verdict.violations[0]
    assert violation.details["type"] == "over-limit" and violation.details["window_s"] == 4.0
    assert violation.details["accepted"] > 20



FLOOD = CheckConfig(rate_limit_per_s=5, rate_limit_burst=5)  # a refusal's window: max(4, 20/5) = 4 s either side


def _lists(accepted_until: float, seconds: float, f: str = "appointment.list") -> list[tuple[float, str, str, int]]:
    """Tenant "n" sends 40 requests a second: its burst, then 5 a second accepted up to ``accepted_until``, the
    others 429."""
    return [(k / 40, "n", f, 200 if k / 40 < accepted_until and (k < 6 or k % 8 == 0) else 429)
            for k in range(int(seconds * 40))]


def test_a_limit_that_keeps_a_flooding_tenant_out_for_good_is_flagged(tmp_path: Path) -> None:
    """A limiter that counts refusals (GCRA storing the arrival time of refused requests too): after the first
    second the flooding tenant gets nothing through while it keeps sending. Its refusals more than 4 s after
    its last acceptance are limit-starves."""
    verdict = _verdict(_timed(tmp_path, _lists(accepted_until=1.0, seconds=12.0)), FLOOD)
    starved = [v for v in verdict.violations if v.details["type"] == "limit-starves"]
    assert verdict.status == "invalid" and starved
    assert {v.details["tenant"] for v in starved} == {"n"}
    assert 6.5 * 40 < verdict.summary["starved_429"] < 7.5 * 40  # from 5 s to 12 s


def test_a_flood_kept_to_its_rate_passes(tmp_path: Path) -> None:
    verdict = _verdict(_timed(tmp_path, _lists(accepted_until=13.0, seconds=12.0)), FLOOD)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["starved_429"] == 0


def test_a_refusal_near_a_request_that_may_have_passed_or_among_refused_calls_is_not_judged(tmp_path: Path) -> None:
    """A list never answered at 8 s (perhaps admitted) excuses the refusals within 4 s of it; and where the tenant's
    refused calls outnumber its lists, the API limit may have let only calls through (the task limit refused
    them), so a silence there proves nothing."""
    lists = _lists(accepted_until=1.0, seconds=12.0)
    alone = _verdict(_timed(tmp_path, lists), FLOOD).summary["starved_429"]
    now = [0]
    recorder = HistoryRecorder(tmp_path / "u.jsonl", origin_ns=0, clock=lambda: now[0])
    for at, tenant, f, status in lists:
        now[0] = int(at * 1e9)
        invoke = recorder.invoke(f"u-{tenant}", f, tenant=tenant, args={"appointment_id": "a"})
        now[0] = int((at + 0.02) * 1e9)
        if at == 8.0:
            recorder.complete(invoke, error="ReadTimeout")
        else:
            recorder.complete(invoke, status=status)
    recorder.close()
    unanswered = _verdict(load_history(tmp_path / "u.jsonl"), FLOOD).summary
    assert unanswered["starved_429"] < alone - 4 * 40
    calls = [(at + 0.01, tenant, "call.submit", 429) for at, tenant, _, _ in lists] + \
        [(at + 0.015, tenant, "call.refresh", 429) for at, tenant, _, _ in lists if at >= 10.0]
    mixed = _verdict(_timed(tmp_path, lists + calls), FLOOD).summary
    assert 0 < mixed["starved_429"] < alone and mixed["starved_not_judged_mostly_calls"] > 0


# -- the Shunya limit: the stub's own log of the calls it served -----------------------------------------

SHUNYA = CheckConfig(shunya_rate_per_s=3, shunya_rate_burst=3)  # at most 7.5 in 1 s, 12 in 2 s, 21 in 4 s


def _shunya(calls: list[tuple[float, str]], config: CheckConfig = SHUNYA, fault: tuple[float, float] | None = None):
    """calls: (seconds into the run, tenant) as the stub logged them; a fault active over ``fault`` (s)."""
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()  # its clock: wall = 1e9 s + the run's ms
    b.call("appointment.read", 0, 5, 200, appointment_id="a")
    if fault is not None:
        for phase, at in zip(("start", "stop"), fault):
            b.call("fault", at * 1000, at * 1000 + 1, None, process="nemesis", tenant=None, fault="pause",
                   phase=phase, target="worker")
    snapshot = Snapshot.build({}, upstream_calls=[(1e9 + at, tenant) for at, tenant in calls], config=config)
    (verdict,) = check_all(b.build(), snapshot, ["rate-limit-enforced"])
    return verdict


def test_shunya_calls_kept_to_the_limit_pass() -> None:
    """3 a second after a burst of 3, for each of two tenants: within the bound in every window."""
    calls = [(0.01 * k, t) for k in range(3) for t in ("a", "b")]
    calls += [(1 + k / 3, t) for k in range(30) for t in ("a", "b")]
    verdict = _shunya(calls)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["shunya_calls_judged"] == len(calls)
    assert verdict.summary["shunya_busiest_second"] <= 6


def test_shunya_calls_over_the_limit_are_a_violation() -> None:
    """One tenant's calls at 10 a second for 5 s (the limit off): flagged, for that tenant only."""
    calls = [(k / 10, "a") for k in range(50)] + [(1 + k / 3, "b") for k in range(15)]
    verdict = _shunya(calls)
    assert verdict.status == "invalid"
    assert {v.details["type"] for v in verdict.violations} == {"shunya-over-limit"}
    assert {v.details["tenant"] for v in verdict.violations} == {"a"}
    assert all(v.details["calls"] > v.details["window_s"] * 4.5 + 3 for v in verdict.violations)


def test_shunya_over_limit_cites_the_tenants_calls_in_flight_then() -> None:
    """A crowded window names the requests that made the app call Shunya then (the tenant's submissions and
    refreshes in flight from a second before it to its end), so that stormproof reproduce has a case to send;
    other tenants' and earlier ones are not cited."""
    from tests.invariants.builders import HistoryBuilder

    b = HistoryBuilder()
    early = b.call("call.submit", 0, 50, 202, tenant="a", appointment_id="x")
    mine = [b.call("call.submit", 5000 + 10 * k, 5200 + 10 * k, 202, tenant="a", appointment_id=f"p{k}")
            for k in range(12)]
    refresh = b.call("call.refresh", 5300, 5400, 202, tenant="a", call_id="c1")
    other = b.call("call.submit", 5010, 5100, 202, tenant="b", appointment_id="q")
    calls = [(5.2 + k / 100, "a") for k in range(13)]
    snapshot = Snapshot.build({}, upstream_calls=[(1e9 + at, tenant) for at, tenant in calls], config=SHUNYA)
    (verdict,) = check_all(b.build(), snapshot, ["rate-limit-enforced"])
    assert verdict.status == "invalid"
    cited = set(verdict.violations[0].ops)
    assert {b.at(invoke) for invoke, _ in mine} | {b.at(refresh[0])} <= cited
    assert b.at(early[0]) not in cited and b.at(other[0]) not in cited


def test_shunya_calls_bunched_by_a_fault_or_without_a_limit_are_not_judged() -> None:
    """Calls bunched while a fault was active (a paused worker releases them together) are not judged; nor is
    anything without the app's Shunya limit or without the stub's log."""
    bunched = [(5 + k / 100, "a") for k in range(30)]
    assert _shunya(bunched).status == "invalid"
    paused = _shunya(bunched, fault=(4.0, 5.2))
    assert paused.status == "valid" and paused.summary["shunya_windows_not_judged_near_fault"] >= 1
    assert "shunya_calls_judged" not in _shunya(bunched, config=CheckConfig()).summary
    snapshot = Snapshot.build({}, config=SHUNYA)  # no log of the stub's (an external Shunya)
    from tests.invariants.builders import HistoryBuilder

    (verdict,) = check_all(HistoryBuilder().build(), snapshot, ["rate-limit-enforced"])
    assert "shunya_calls_judged" not in verdict.summary
