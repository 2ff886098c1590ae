"""Bearer tokens: HS256 JWTs carrying the company, the user and the role.

The tenant of a request comes from the verified token and nothing else (plan D2);
the ``tenant-from-header`` weakening restores the original bug of trusting a
client-chosen ``X-Company-Id`` header.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from .problems import Problem
from .settings import Settings

__all__ = ["Principal", "mint_token", "decode_token"]

_ROLES = {"manager", "rep"}


@dataclass(frozen=True, slots=True)
class Principal:
    company_id: uuid.UUID
    user_id: uuid.UUID
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


def mint_token(
    settings: Settings,
    *,
    company_id: uuid.UUID | str,
    user_id: uuid.UUID | str,
    role: str,
    ttl_seconds: int = 7 * 24 * 3600,
    now: float | None = None,
) -> str:
    if role not in _ROLES:
        raise ValueError(f"role must be one of {sorted(_ROLES)}, not {role!r}")
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "cid": str(company_id),
        "role": role,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


#: Tokens verified lately: token -> (principal, expiry, secret it was verified with). Bounded.
_VERIFIED: dict[str, tuple[Principal, float, str]] = {}
_VERIFIED_MAX = 4096


def decode_token(settings: Settings, token: str) -> Principal:
    """Verify a token; any defect is a 401 that says which, never a 500.

    A client sends the same token on every request: a token verified before
    answers from a small cache until its ``exp`` (checked on every use, with
    the key it was verified with), instead of a base64, JSON and HMAC pass each
    time. Only verified tokens are cached; a forged one is checked every time.
    """
    hit = _VERIFIED.get(token)
    if hit is not None:
        principal, expires, secret = hit
        # Weakened ``token-cache-expiry``: a token verified once is served from the cache for good, its exp
        # never looked at again (an lru_cache on the decode), so a token that expires during use stays live.
        if (time.time() < expires or settings.weakened("token-cache-expiry")) and secret == settings.jwt_secret:
            return principal
        _VERIFIED.pop(token, None)
    principal, expires = _verify(settings, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[token] = (principal, expires, settings.jwt_secret)
    return principal


def _verify(settings: Settings, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            # Weakened ``token-expiry``: exp is required but not verified, an expired token is served.
            options={"require": ["sub", "cid", "role", "exp"], "verify_exp": not settings.weakened("token-expiry")},
        )
    except jwt.ExpiredSignatureError:
        raise Problem("unauthenticated", "token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Problem("unauthenticated", f"invalid token: {exc}") from None
    try:
        principal = Principal(
            company_id=uuid.UUID(str(claims["cid"])),
            user_id=uuid.UUID(str(claims["sub"])),
            role=str(claims["role"]),
        )
    except ValueError:
        raise Problem("unauthenticated", "invalid token claims") from None
    if principal.role not in _ROLES:
        raise Problem("unauthenticated", "invalid token role")
    return principal, float(claims["exp"])
