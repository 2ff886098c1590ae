"""Webhook signatures: ``v1=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>``.

Why: the app must reject forged or replayed webhooks. The stub signs every
delivery with this scheme; ``verify`` is the reference implementation the
app's own verifier is tested against.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Shunya-Signature"
TIMESTAMP_HEADER = "X-Shunya-Timestamp"
SIGNATURE_VERSION = "v1"


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """Return the ``X-Shunya-Signature`` header value for ``body`` sent at ``timestamp``.

    A string is signed as it stands, the header's text: a malformed timestamp (``nan``) gets a signature
    valid for its bytes, so that only the timestamp's own check can refuse it."""
    stamp = timestamp if isinstance(timestamp, str) else str(int(timestamp))
    mac = hmac.new(_key(secret), f"{stamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(
    secret: str | bytes,
    timestamp: int | str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Return True only if ``signature`` is valid for ``body`` and ``timestamp`` is fresh.

    ``timestamp`` may be the raw header string. It is stale when it differs
    from ``now`` (default: the current Unix time) by more than ``tolerance_s``
    seconds in either direction, which bounds replay of captured deliveries.
    The comparison is constant-time.
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(secret, ts, body).encode("ascii"), signature.strip().encode("ascii", "replace"))
