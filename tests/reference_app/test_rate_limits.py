"""Plan C3: a flooding tenant gets 429 with Retry-After while another tenant is served."""

from __future__ import annotations

import asyncio

import pytest

from .helpers import auth, fire_together

# A rate the flood exceeds however slowly a loaded machine serves it: at most 10 + 2 per second of
# the 120 get through (under 25 s, at least 60 are refused); the quiet tenant's 8 fit in the burst.
ENV = {"STORMPROOF_RATE_API_PER_SECOND": "2", "STORMPROOF_RATE_API_BURST": "10"}


def _flood(app) -> tuple[list, list]:
    noisy, quiet = app.tenants
    requests = [("GET", "/api/v1/appointments", auth(noisy.manager_token), None)] * 120
    requests += [("GET", "/api/v1/appointments", auth(quiet.manager_token), None)] * 8
    responses = asyncio.run(fire_together(app.url, requests))
    return responses[:120], responses[120:]


def test_noisy_tenant_is_limited_and_the_quiet_one_is_not(reference_app) -> None:
    app = reference_app(env=ENV)
    noisy, quiet = _flood(app)
    limited = [r for r in noisy if r.status_code == 429]
    print(f"\n[rate limit] noisy: {len(limited)}/120 got 429; quiet: {[r.status_code for r in quiet]}")
    assert len(limited) >= 60
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all(r.json()["type"].endswith("/rate-limited") for r in limited)
    assert all(r.status_code == 200 for r in quiet)


def test_weakened_rate_limit_lets_the_flood_through(reference_app) -> None:
    app = reference_app(("rate-limit",), env=ENV)
    noisy, _ = _flood(app)
    assert not [r for r in noisy if r.status_code == 429]
