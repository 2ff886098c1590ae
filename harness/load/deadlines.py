"""When a deadline the server stamped is certainly past, judged from the server's own clock.

A deletion request answers its ``expires_at`` (plan F2: a confirmation counts only before it). The load
sends some confirmations after it on purpose and marks every confirmation it sends with how far past that
moment it was (``past_expiry_s``, ``expired``), so that ``deletion-audited`` judges each one. The load's clock
and the app's need not agree: the bound is taken from the answer's own ``Date`` header.
"""

from __future__ import annotations

import email.utils
import time
from datetime import datetime
from typing import Any

__all__ = ["LATE_MARGIN_S", "LATE_WAIT_MAX_S", "deletion_life_bound_s", "expiry_args"]

#: A deletion request whose life is at most this long (the app's confirmation TTL) gets late confirmations.
LATE_WAIT_MAX_S = 8.0
#: How long after the request's life is certainly over a late confirmation is sent.
LATE_MARGIN_S = 0.5


def deletion_life_bound_s(expires_at: object, date: str | None) -> float | None:
    """At most how long a deletion request lives after its answer arrived, from the server's own clock.

    ``expires_at`` and the answer's ``Date`` header are both the server's: their difference needs no
    agreement between the load's clock and the app's (an app on another host). ``Date`` is cut down to the
    second, or cached by the server for up to one, so it is never later than the answer: ``expires_at -
    Date`` already bounds what was left; a second more covers a server clock stepped in between. None when
    either is missing or unreadable (no late confirmation is then sent, and none is judged late).
    """
    if not isinstance(expires_at, str) or not date:
        return None
    try:
        expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        sent = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if expires.tzinfo is None or sent.tzinfo is None:
        return None
    return (expires - sent).total_seconds() + 1.0


def expiry_args(life: float | None, answered: float) -> dict[str, Any]:
    """A confirmation's ``past_expiry_s`` (seconds since its request's life was certainly over, negative before)
    and ``expired`` (that life was over when it was sent); nothing when the life is unknown."""
    if life is None:
        return {}
    past = round(time.monotonic() - answered - life, 3)
    return {"past_expiry_s": past, "expired": past > 0}
