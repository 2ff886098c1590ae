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
