"""Weakened ``read-cache``: single-row reads served from a per-process cache that writes never invalidate.

The original kept GET /appointments/{id} and GET /recordings/sessions/{id} answers for a few seconds, per
tenant and id, to spare the database the hot reads. A write answered before a read is then not seen by it:
a stopped session reads as recording, an unassigned appointment as still assigned. With the fix on (the
default) nothing here is used and every read goes to the database.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

__all__ = ["cached_read", "remember_read"]

#: How long an answer is served again.
TTL_S = 5.0
_MAX = 4096
_answers: dict[tuple[str, uuid.UUID, str], tuple[float, dict[str, Any]]] = {}


def cached_read(kind: str, company_id: uuid.UUID, ident: str) -> dict[str, Any] | None:
    """The answer cached for this tenant's ``kind`` row ``ident``, while it is fresh."""
    hit = _answers.get((kind, company_id, ident))
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def remember_read(kind: str, company_id: uuid.UUID, ident: str, answer: dict[str, Any]) -> dict[str, Any]:
    if len(_answers) >= _MAX:
        _answers.clear()
    _answers[(kind, company_id, ident)] = (time.monotonic() + TTL_S, answer)
    return answer
