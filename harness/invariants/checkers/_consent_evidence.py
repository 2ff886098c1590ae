"""Consent evidence, judged for consent-before-processing (plan F3: store timestamp, IP and user agent).

A consent is evidence only if the client cannot write it. The load grants
consents with spoofed addresses in every header a client can set (``X-Forwarded-For``,
``X-Real-IP``, ``Forwarded`` and the CDN ones: ``args.client_ips``; the first,
``X-Forwarded-For``'s, also in ``args.forwarded_for``), its own
``User-Agent`` (``args.user_agent``) and an evidence text (``args.evidence``).
Every answer is judged:

- a 2xx whose row is in the final state must hold what the connection said:
  an ``ip`` that is set and is none of the addresses the client put in
  those headers (``evidence-ip-from-client``, ``evidence-ip-missing``),
  the ``User-Agent`` sent (``evidence-user-agent``), the evidence text
  verbatim (``evidence-altered``) and a ``granted_at`` within the request's
  time, give or take :data:`CLOCK_SLACK_S` (``evidence-granted-at``);
- a refusal of a well-formed grant on the tenant's own appointment is
  ``consent-grant-wrong-status``: 404 only when the appointment is gone from the
  final state (deleted), never 400, 401, 403, 409 or 422, nor a 5xx outside a fault.

No answer and 429 are counted, not judged (see ``_probes``). A granted row
missing from the final state (its appointment deleted since) is not judged here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CONSENT_GRANT
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

from ._probes import FaultWindows, answer_class

__all__ = ["CLOCK_SLACK_S", "check_consent_evidence"]

#: How far granted_at may lie outside [invoke, completion] by the load's wall clock: the app's clock may differ a
#: little (another host, a container); a grant backdated or postdated by more is not evidence of that request.
CLOCK_SLACK_S = 60.0


def _forwarded(value: object) -> set[str]:
    return {part.strip() for part in str(value).split(",") if part.strip()} if value else set()


def _listed(value: object) -> set[str]:
    return {str(ip) for ip in value} if isinstance(value, (list, tuple)) else set()


def check_consent_evidence(log: ViolationLog, history: History, consents: Iterable[Row],
                           appointments: Iterable[Row] | None) -> int:
    """Judge every consent grant of the history and the row it made; returns how many grants were judged."""
    rows: Mapping[object, Row] = {row.get("id"): row for row in consents}
    present = None if appointments is None else {row.get("id") for row in appointments}
    faults: FaultWindows | None = None
    judged = 0
    for invoke, completion in history.pairs_of(CONSENT_GRANT):
        if completion is None:
            continue
        faults = faults or FaultWindows(history)
        kind = answer_class(invoke, completion, faults)
        ops = (invoke.index, completion.index)
        appointment = invoke.args.get("appointment_id")
        facts = dict(tenant=invoke.tenant, appointment_id=appointment, status=completion.status)
        if kind in ("4xx", "5xx"):
            judged += 1
            gone = present is not None and appointment not in present
            if not (completion.status == 404 and gone):
                log.add("consent-grant-wrong-status",
                        f"a consent grant on appointment {appointment} answered {completion.status}"
                        + (" although the appointment exists" if completion.status == 404 else
                           ": a well-formed grant on the tenant's own appointment is 201"), ops, **facts)
            continue
        if kind != "2xx":
            continue
        judged += 1
        row = rows.get(completion.result.get("id"))
        if row is None:
            continue
        facts["consent_id"] = row.get("id")
        ip = row.get("ip")
        spoofed = _forwarded(invoke.args.get("forwarded_for")) | _listed(invoke.args.get("client_ips"))
        if not ip:
            log.add("evidence-ip-missing", f"consent {row.get('id')} keeps no IP of the caller", ops, **facts)
        elif str(ip) in spoofed:
            log.add("evidence-ip-from-client", f"consent {row.get('id')} keeps IP {ip}, an address the client "
                    "wrote in a request header, not the connection's", ops, ip=str(ip), **facts)
        sent_ua = invoke.args.get("user_agent")
        if sent_ua is not None and row.get("user_agent") != sent_ua:
            log.add("evidence-user-agent", f"consent {row.get('id')} keeps user agent {row.get('user_agent')!r}, "
                    f"not the {sent_ua!r} the request sent", ops, **facts)
        text = invoke.args.get("evidence")
        if text is not None and row.get("evidence") != text:
            log.add("evidence-altered", f"consent {row.get('id')} keeps evidence {row.get('evidence')!r}, not the "
                    f"text sent verbatim ({text!r})", ops, **facts)
        at = row.get("granted_at")
        if isinstance(at, (int, float)) and invoke.wall and completion.wall and not (
                invoke.wall - CLOCK_SLACK_S <= at <= completion.wall + CLOCK_SLACK_S):
            log.add("evidence-granted-at", f"consent {row.get('id')} was granted at {at:.3f}, outside its request "
                    f"({invoke.wall:.3f} to {completion.wall:.3f}, +/- {CLOCK_SLACK_S:.0f} s)", ops, **facts)
    return judged
