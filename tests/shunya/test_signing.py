"""sign/verify: round trip, wrong secret, tampering, staleness, malformed input."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stormproof.harness.shunya import sign, verify

NOW = 1_750_000_000
BODY = b'{"event":"job.completed","job_id":"shj_00"}'


def test_signature_matches_the_documented_scheme() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", NOW, BODY) == f"v1={expected}"
    assert sign(b"s3cret", NOW, BODY) == sign("s3cret", NOW, BODY)


def test_valid_signature_verifies_and_header_string_timestamp_is_accepted() -> None:
    sig = sign("s3cret", NOW, BODY)
    assert verify("s3cret", NOW, BODY, sig, tolerance_s=300, now=NOW)
    assert verify("s3cret", str(NOW), BODY, sig, tolerance_s=300, now=NOW + 299)


def test_wrong_secret_is_rejected() -> None:
    assert not verify("other", NOW, BODY, sign("s3cret", NOW, BODY), tolerance_s=300, now=NOW)


def test_tampered_body_is_rejected() -> None:
    sig = sign("s3cret", NOW, BODY)
    assert not verify("s3cret", NOW, BODY.replace(b"00", b"01"), sig, tolerance_s=300, now=NOW)
    assert not verify("s3cret", NOW, BODY + b" ", sig, tolerance_s=300, now=NOW)


def test_timestamp_is_bound_into_the_signature() -> None:
    sig = sign("s3cret", NOW, BODY)
    assert not verify("s3cret", NOW + 1, BODY, sig, tolerance_s=300, now=NOW)


def test_stale_and_future_timestamps_are_rejected() -> None:
    sig = sign("s3cret", NOW, BODY)
    assert not verify("s3cret", NOW, BODY, sig, tolerance_s=300, now=NOW + 301)
    assert not verify("s3cret", NOW, BODY, sig, tolerance_s=300, now=NOW - 301)


def test_malformed_inputs_are_rejected_not_raised() -> None:
    sig = sign("s3cret", NOW, BODY)
    assert not verify("s3cret", "not-a-number", BODY, sig, tolerance_s=300, now=NOW)
    assert not verify("s3cret", NOW, BODY, sig.removeprefix("v1="), tolerance_s=300, now=NOW)
    assert not verify("s3cret", NOW, BODY, "v0=" + sig[3:], tolerance_s=300, now=NOW)
    assert not verify("s3cret", NOW, BODY, "v1=ünïcode", tolerance_s=300, now=NOW)
    assert not verify("s3cret", NOW, BODY, "", tolerance_s=300, now=NOW)


@settings(max_examples=100, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=256),
    ts=st.integers(min_value=0, max_value=2**40),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_round_trip_and_single_byte_tamper(secret: str, body: bytes, ts: int, flip: int) -> None:
    sig = sign(secret, ts, body)
    assert verify(secret, ts, body, sig, tolerance_s=60, now=ts)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify(secret, ts, tampered, sig, tolerance_s=60, now=ts)
    other = secret + "x"
    assume(other != secret)
    assert not verify(other, ts, body, sig, tolerance_s=60, now=ts)
