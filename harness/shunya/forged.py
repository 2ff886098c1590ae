"""A job's completion webhook as a client sends it: signed as Shunya signs it, or as an impostor would.

Why one place: the load sends these deliveries (a small share without a valid
signature, each carrying a forged result) and ``stormproof reproduce`` sends
them again; the checkers judge a delivery by what it says it was
(``bad_signature``, ``payload_fp``). A replay that signed a forged delivery
properly, or sent Shunya's result under a forged fingerprint, would break
plan A1 against a correct app, so both senders build the bytes here.

``bad`` is one of :data:`BAD_SIGNATURES`: ``missing`` (no signature headers),
``stale`` (signed :data:`STALE_S` seconds ago, far past the contract's 300 s
tolerance), ``future`` (dated :data:`STALE_S` seconds ahead: the window holds both
ways, or a delivery signed ahead of time stays valid for as long as its
sender chose), ``malformed`` (a timestamp that is no unix seconds, ``nan`` or
``yesterday``, signed over as sent: an app that parses it unguarded answers
500, one that takes it as a float lets ``nan`` through every window) or
``wrong`` (signed with another secret). All but ``wrong`` are signed with
Shunya's secret, so only the timestamp's check refuses them. A forged delivery's
result differs from the job's (its summary names the forger), so its
``output_hash`` shows in the final state if the app applied it.

``incomplete`` is one of :data:`INCOMPLETE`: a delivery signed as Shunya signs
it, saying ``completed`` but without its ``result`` (``no-result``) or without
its ``output_hash`` (``no-hash``), as a truncated or half-built sender's. It
must be refused and apply nothing: an app that took it in would record an
empty analysis, or mark the job processed under no hash (so the job's real
result is applied a second time, or never).
"""

from __future__ import annotations

import json

import time
import uuid
from dataclasses import dataclass
from typing import Any

from .results import canonical_json, expected_result, output_hash
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["BAD_SIGNATURES", "DELAYED_S", "INCOMPLETE", "MALFORMED_TIMESTAMPS", "STALE_S", "Delivery",
           "job_delivery"]

BAD_SIGNATURES = ("missing", "stale", "future", "malformed", "wrong")
#: The ``malformed`` timestamps: one a float parser takes (and no window refuses), one nothing parses.
MALFORMED_TIMESTAMPS = ("nan", "yesterday")
INCOMPLETE = ("no-result", "no-hash")
#: How old a stale delivery's timestamp is: far past any tolerance the contract allows (docs/API.md: 300 s).
STALE_S = 3600
#: How old a delayed (signed, valid) delivery's timestamp is: well within the contract's 300 s tolerance.
DELAYED_S = 120


@dataclass(frozen=True)
class Delivery:
    """The body and headers to POST to the app's webhook, and the fingerprint of the result it carries."""

    raw: bytes
    headers: dict[str, str]
    payload_fp: str


def job_delivery(job_id: str, call_id: Any, company: Any, secret: str, *, bad: str | None = None,
                 forger: str = "", spaced: bool = False, incomplete: str | None = None, age_s: int = 0) -> Delivery:
    """Job ``job_id``'s completion for ``call_id``; with ``bad``, unsigned/stale/wrongly signed and forged.

    ``spaced``: the body laid out with indentation and its keys in another order, signed as sent. The
    signature covers the raw bytes, so any layout of a valid JSON body must be accepted; an app that
    checks it against its own re-serialisation of the parsed body refuses every sender but one.

    ``age_s``: signed that many seconds ago, as a delivery Shunya queued a while (:data:`DELAYED_S`, within
    the contract's tolerance): it must be accepted, or the window refuses Shunya's own late deliveries.
    """
    if bad is not None and bad not in BAD_SIGNATURES:
        raise ValueError(f"bad signature {bad!r}: one of {', '.join(BAD_SIGNATURES)}")
    if incomplete is not None and incomplete not in INCOMPLETE:
        raise ValueError(f"incomplete {incomplete!r}: one of {', '.join(INCOMPLETE)}")
    result: dict[str, Any] = dict(expected_result(job_id))
    if bad is not None:
        result["summary"] = f"forged by {forger}: {bad} signature"
    fingerprint = output_hash(result)
    payload = {"event": "job.completed", "delivery_id": f"dlv_{uuid.uuid4().hex}", "job_id": job_id,
               "company_id": company, "call_id": call_id, "status": "completed", "result": result,
               "output_hash": fingerprint, "error": None}
    if incomplete == "no-result":
        payload["result"] = None
    elif incomplete == "no-hash":
        payload["output_hash"] = None
    raw = json.dumps(dict(reversed(payload.items())), indent=2).encode() if spaced else canonical_json(payload)
    ts: int | str = int(time.time()) - age_s + {"stale": -STALE_S, "future": STALE_S}.get(bad or "", 0)
    if bad == "malformed":  # which one: by the job, so that a replay sends the same
        ts = MALFORMED_TIMESTAMPS[sum(job_id.encode()) % len(MALFORMED_TIMESTAMPS)]
    signer = uuid.uuid4().hex if bad == "wrong" else secret
    headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(signer, ts, raw)}
    if bad == "missing":
        headers = {}
    return Delivery(raw, headers, fingerprint)
