"""Schemathesis fuzzing of the app's own OpenAPI document: no input makes a 5xx, answers match the document.

Every operation is fuzzed with a manager's token and a fresh Idempotency-Key
(so bodies get past the key check), a bounded number of examples each,
derandomized so a run is reproducible. The Shunya webhook needs signatures a
fuzzer cannot make; it is fuzzed apart, without credentials, and must refuse
everything with a 4xx.

Checks: ``not_a_server_error`` and ``response_schema_conformance`` (a body
must match the schema declared for its status, where one is declared; the
app declares its problem documents, see ``reference_app/api/openapi.py``).
``status_code_conformance`` is not used: the ``/healthz``-style routes
outside ``/api/`` do not list every status a proxy in front could add.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections import Counter

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

WEBHOOK = "/api/v1/shunya/webhook"
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def app(reference_app_module):
    # The rate limit would turn a fuzzer's burst into 429s and hide what the inputs do.
    return reference_app_module(tenants=2, appointments=3, env={"STORMPROOF_RATE_API_PER_SECOND": "0"})


@pytest.fixture(scope="module")
def schema(app):
    return schemathesis.openapi.from_dict(httpx.get(f"{app.url}/openapi.json").json())


def _fuzz(operation, base_url: str, headers_for, statuses: Counter[int]) -> None:
    """Valid inputs (positive) and inputs that break the schema (negative), half the examples each."""
    strategy = (operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(base_url=base_url, headers=headers_for(), timeout=10)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_input_makes_a_server_error_and_answers_match_the_schema(app, schema) -> None:
    token = app.tenants[0].manager_token
    started = time.monotonic()
    failures: dict[str, str] = {}
    fuzzed = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == WEBHOOK:
            continue
        fuzzed.append(operation.label)
        try:
            _fuzz(operation, app.url, lambda: {"Authorization": f"Bearer {token}",
                                               "Idempotency-Key": uuid.uuid4().hex}, statuses)
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; failures are reported together
            failures[operation.label] = str(exc)[:2000]
    elapsed = time.monotonic() - started
    print(f"\n[fuzz] {len(fuzzed)} operations x {EXAMPLES_PER_OPERATION} examples in {elapsed:.1f}s: "
          f"{dict(sorted(statuses.items()))}")
    assert len(fuzzed) >= 25, fuzzed
    # The inputs reached the handlers: successes and every kind of refusal, not only 4xx at the door.
    assert {200, 201, 404, 422} <= set(statuses), statuses
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_checks_can_fail(app) -> None:
    """A document that promises a field the app never sends must be reported: the checks are not vacuous."""
    doc = httpx.get(f"{app.url}/openapi.json").json()
    doc["components"]["schemas"]["RepOut"]["required"].append("promised_but_missing")
    operation = schemathesis.openapi.from_dict(doc)["/api/v1/reps"]["GET"]
    token = app.tenants[0].manager_token
    with pytest.raises(BaseException) as caught:
        _fuzz(operation, app.url, lambda: {"Authorization": f"Bearer {token}"}, Counter())
    assert "promised_but_missing" in "".join(traceback.format_exception(caught.value))


def test_the_webhook_refuses_every_unsigned_input_with_a_4xx(app, schema) -> None:
    operation = schema[WEBHOOK]["POST"]
    seen: set[int] = set()

    @given(case=operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=50, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(base_url=app.url, timeout=10)
        case.validate_response(response, checks=CHECKS)
        assert 400 <= response.status_code < 500, response.text
        seen.add(response.status_code)

    run()
    assert 401 in seen, seen
