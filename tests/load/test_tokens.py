"""The tokens the load signs to expire during a run: verified by the app's own library, phases in order."""

from __future__ import annotations

import jwt
import pytest

from stormproof.harness.load.tokens import LEEWAY_S, PRIME_MARGIN_S, PRIMES, forged, lapse_for, lapsing_token
from stormproof.reference_app.settings import DEV_JWT_SECRET

COMPANY, USER = "0c8a3e9e-5b1f-4d39-9f39-1b5a3f1e0a01", "5a0d7c55-2b6c-4f0e-8a57-6f0f2b9f7d02"


def _manager_token() -> str:
    return jwt.encode({"sub": USER, "cid": COMPANY, "role": "manager", "iat": 0, "exp": 3600}, DEV_JWT_SECRET,
                      algorithm="HS256")  # as the seed signs it


def test_a_lapsing_token_carries_the_managers_claims_and_its_own_life() -> None:
    lapsing = lapsing_token(_manager_token(), DEV_JWT_SECRET, 30.0, now=1_000_000.0)
    assert lapsing is not None
    claims = jwt.decode(lapsing.token, DEV_JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert (claims["sub"], claims["cid"], claims["role"]) == (USER, COMPANY, "manager")
    assert (claims["iat"], claims["exp"], claims["jti"]) == (1_000_000, 1_000_030, lapsing.token_id)
    with pytest.raises(jwt.ExpiredSignatureError):  # long expired by now: the app's library refuses it
        jwt.decode(lapsing.token, DEV_JWT_SECRET, algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(lapsing.token, "another key", algorithms=["HS256"], options={"verify_exp": False})


def test_phases_prime_then_wait_then_lapsed() -> None:
    lapsing = lapsing_token(_manager_token(), DEV_JWT_SECRET, 10.0, now=0.0)
    assert lapsing is not None and lapsing.exp == 10.0
    assert lapsing.phase(0.0) == "prime"
    assert lapsing.phase(10.0 - PRIME_MARGIN_S) == "wait"      # too close to exp to be answered while live
    assert lapsing.phase(10.0 + LEEWAY_S - 0.01) == "wait"     # within the clock allowance
    assert lapsing.phase(10.0 + LEEWAY_S) == "lapsed"
    lapsing.primed = PRIMES
    assert lapsing.phase(0.0) == "wait"                        # primed enough
    assert lapsing.args(13.5) == {"token_id": lapsing.token_id, "token_exp": 10.0, "past_exp_s": 3.5}


def test_no_lapsing_token_for_what_the_load_cannot_sign() -> None:
    assert lapsing_token("not-a-jwt", DEV_JWT_SECRET, 5.0) is None
    rs = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"  # {"alg":"RS256"}: signed with a key pair, not ours
    assert lapsing_token(rs, DEV_JWT_SECRET, 5.0) is None


def test_the_life_leaves_most_of_any_run_for_lapsed_probes() -> None:
    assert lapse_for(8) == 3.0 and lapse_for(15) == 5.0 and lapse_for(600) == 15.0


def test_a_forged_token_keeps_the_claims_but_not_the_key() -> None:
    token = _manager_token()
    fake = forged(token)
    assert fake.split(".")[:2] == token.split(".")[:2] and fake != token
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(fake, DEV_JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False})
