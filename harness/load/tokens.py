"""Tokens the load signs itself: forged ones, and one per tenant that expires while the run goes on (plan D2).

An app may verify a bearer token once and keep the answer (a cache keyed by the token, an ``lru_cache``
on the decode). A token that expired before its first use, as the seed's does, is refused by such an app
as by a correct one: only a token that was served and then expired shows whether the expiry is checked
on every request. So each load process signs, per tenant, a copy of the tenant's manager token with a
short life, sends it while it is live (``lapsing``: primes whatever cache the app keeps) and again once
it is well past its ``exp`` (``lapsed``: 401 is promised).

The load signs with the key the stack signs the seeded tokens with (``STORMPROOF_LOAD_JWT_SECRET``, set
by the runner); without it, or for a token of another algorithm than HS256, no such token exists and the
promise is not exercised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["LEEWAY_S", "LapsingToken", "PRIMES", "PRIME_MARGIN_S", "forged", "lapse_for", "lapsing_token"]

#: How long past its ``exp`` a token is first sent as ``lapsed``: an app may allow that much clock skew
#: (PyJWT allows none by default). Every lapsed probe is sent at least this long after the token expired.
LEEWAY_S = 3.0
#: A priming request is sent at least this long before the token expires, so that it is answered while the
#: token is live even when the request waits in a queue.
PRIME_MARGIN_S = 1.5
#: Priming requests per token (each app process keeps its own cache: several requests reach several).
PRIMES = 4


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signed(signing_input: str, key: bytes) -> str:
    """``header.claims`` with its HS256 signature under ``key`` appended."""
    return f"{signing_input}.{_b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def forged(token: str) -> str:
    """The same header and claims signed with a key the app never had (HS256): a 401 is promised."""
    head, claims = token.split(".")[:2]
    return _signed(f"{head}.{claims}", uuid.uuid4().bytes)


@dataclass
class LapsingToken:
    """A tenant's manager token with a short life, and how far this process got with it."""

    token: str
    #: The token's ``jti``: ties each lapsed probe to the priming requests that sent the same token.
    token_id: str
    #: The token's ``exp`` (unix seconds).
    exp: float
    primed: int = 0

    def phase(self, now: float) -> str:
        """``prime`` (live, primes left to send), ``wait`` (too close to ``exp`` either way) or ``lapsed``."""
        if now >= self.exp + LEEWAY_S:
            return "lapsed"
        if now < self.exp - PRIME_MARGIN_S and self.primed < PRIMES:
            return "prime"
        return "wait"

    def args(self, now: float) -> dict[str, Any]:
        """What a probe sent with this token records: which token, when it expired, how long ago."""
        return {"token_id": self.token_id, "token_exp": round(self.exp, 3), "past_exp_s": round(now - self.exp, 3)}


def lapsing_token(manager_token: str, secret: str, life_s: float, now: float | None = None) -> LapsingToken | None:
    """The claims of ``manager_token`` signed again with ``secret`` (HS256), expiring ``life_s`` from now.

    None when the token is not an HS256 JWT: the load cannot sign what the app would verify.
    """
    try:
        head, claims, _signature = manager_token.split(".")
        header = json.loads(_unb64(head))
        payload = json.loads(_unb64(claims))
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(payload, dict):
        return None
    issued = time.time() if now is None else now
    token_id = uuid.uuid4().hex
    payload = {**payload, "iat": int(issued), "exp": int(issued + life_s), "jti": token_id}
    signing = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
              f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    return LapsingToken(_signed(signing, secret.encode()), token_id, float(payload["exp"]))


def lapse_for(duration_s: float) -> float:
    """The life of a run's lapsing tokens: a third of the load (at least 3 s, at most 15 s), so that priming
    falls early in the run and most of it is left for lapsed probes, however short the run."""
    return min(15.0, max(3.0, duration_s / 3))
