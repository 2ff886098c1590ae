"""A replayed request says what the run's said: a forged webhook stays forged (no stack needed)."""

from __future__ import annotations

import json

import pytest

from stormproof.harness.reproduce.case import Step
from stormproof.harness.reproduce.requests import ReplayContext, build_request
from stormproof.harness.shunya.forged import BAD_SIGNATURES
from stormproof.harness.shunya.results import expected_result, output_hash
from stormproof.harness.shunya.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = "whsec-test"
TENANT = "11111111-2222-3333-4444-555555555555"
JOB = "shj_" + "ab" * 16


def _ctx() -> ReplayContext:
    return ReplayContext(tenants=[], by_company={}, webhook_secret=SECRET, openapi=dict, bodies={}, created_by={})


def _deliver(**extra: str) -> Step:
    args = {"job_id": JOB, "call_id": "c" * 8 + "-0000-0000-0000-" + "0" * 12, "payload_fp": "the-run's", **extra}
    return Step(7, 0, "u1", "webhook.deliver", TENANT, args)


def _signed(headers: dict[str, str], raw: bytes) -> bool:
    return SIGNATURE_HEADER in headers and verify(SECRET, headers[TIMESTAMP_HEADER], raw, headers[SIGNATURE_HEADER])


def test_a_delivery_shunya_signed_is_signed_again_with_the_jobs_result() -> None:
    step = _deliver()
    request = build_request(step, step.args, _ctx())
    assert _signed(dict(request.headers), request.raw_body or b"")
    body = json.loads(request.raw_body or b"{}")
    assert body["result"] == expected_result(JOB)
    assert request.args is not None and request.args["payload_fp"] == output_hash(expected_result(JOB))


@pytest.mark.parametrize("bad", BAD_SIGNATURES)
def test_a_forged_delivery_is_sent_forged_and_recorded_with_what_it_carried(bad: str) -> None:
    """Sent properly signed, a forged delivery is accepted by the fixed app: forged-delivery-accepted, a false
    alarm (webhook-signature's reproducer failed 5/5 with every fix on)."""
    step = _deliver(bad_signature=bad)
    request = build_request(step, step.args, _ctx())
    raw = request.raw_body or b""
    assert not _signed(dict(request.headers), raw)
    body = json.loads(raw)
    assert body["output_hash"] != output_hash(expected_result(JOB))  # a forged result, not the job's
    assert request.args is not None and request.args["payload_fp"] == body["output_hash"]
    assert request.args["bad_signature"] == bad

