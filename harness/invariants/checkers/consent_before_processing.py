"""consent-before-processing: nothing is recorded or analysed for an appointment without consent (plan F3).

Judged on the final state. Every recording session needs a ``recording``
consent of its appointment granted no later than the session was created;
every call analysis of a call made for an appointment needs an ``analysis``
consent granted no later than the call was submitted. Consent granted after
the fact does not count: processing had already happened without it. A call
named by its recording session alone is a call of that session's appointment
(an app that checked consent only when the body named the appointment analysed
such calls unconsented, 2026-12-04). Calls tied to no appointment, directly or
through a session, are not tied to a person's consent and are skipped.

Each violation cites the request that created the session or the call, when the
history holds it (a probe's or the load's), so that the report shows it and
``stormproof reproduce`` has a request to replay.

The other way round, judged on the answers: a start or a call submission with an
``appointment_id`` refused 409 ``consent-required`` though that appointment's
consent of the scope was there before the request was first sent
(``refused-with-consent``; docs/API.md keeps that refusal for an appointment
without one). "There" is strict: the consent row is in the final state (rows
are deleted only with their appointment), and it was either seeded before the
load began or granted by a request answered 2xx before this one was first sent
under its key. A replayed answer is the stored one of an earlier request, so it
is not judged. Found 2026-12-04 with a check that read the appointment's latest
consent whatever its scope: half the seeded appointments were refused recording
for good, and every scenario passed.

The evidence a consent keeps (its IP and user agent from the connection, its
text verbatim, its time) and the answers to consent grants are judged by
``_consent_evidence``.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_SUBMIT, CONSENT_GRANT, STARTS
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Row, Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._common import INF, first_sent
from ._consent_evidence import check_consent_evidence

__all__ = ["NAME", "check_consent_before_processing"]

NAME = "consent-before-processing"

#: (company id, appointment id, scope) -> the earliest grant (None when its time was not captured).
_Grants = dict[tuple[object, object, str], float | None]


def _grants(consents: tuple[Row, ...]) -> _Grants:
    grants: _Grants = {}
    for row in consents:
        key = (row.get("company_id"), row.get("appointment_id"), str(row.get("scope")))
        at = row.get("granted_at")
        if key not in grants:
            grants[key] = at
        else:
            known = grants[key]
            grants[key] = None if known is None or at is None else min(known, at)
    return grants


def _created_by(history: History, *fs: str) -> dict[object, tuple[int, ...]]:
    """Id of what a request created -> (its invoke, its completion): the requests to cite."""
    found: dict[object, tuple[int, ...]] = {}
    for invoke, completion in history.pairs_of(*fs):
        if completion is not None and (made := completion.result.get("id")) is not None:
            found.setdefault(made, (invoke.index, completion.index))
    return found


def _missing(grants: _Grants, key: tuple[object, object, str], processed_at: object) -> str | None:
    """Why processing at ``processed_at`` lacked consent, or None when it had it."""
    if key not in grants:
        return "no consent"
    granted = grants[key]
    if granted is not None and isinstance(processed_at, (int, float)) and granted > processed_at:
        return f"consent granted {granted - processed_at:.3f}s after processing began"
    return None


@checker(NAME, "safety")
def check_consent_before_processing(history: History, snapshot: Snapshot) -> Verdict:
    """Every session and every analysis of an appointment has that appointment's consent, granted first."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    consents = snapshot.table("consents")
    sessions = snapshot.table("recording_sessions")
    calls = snapshot.table("calls")
    analyses = snapshot.table("call_analyses")
    if consents is None:
        log.cannot("consents not captured: processing without consent not checked")
        return log.verdict(sessions=0, analyses=0)
    grants = _grants(consents)
    evidence = check_consent_evidence(log, history, consents, snapshot.table("appointments"))
    checked_sessions = checked_analyses = 0
    if sessions is None:
        log.cannot("recording_sessions not captured")
    else:
        started = _created_by(history, *STARTS)
        for row in sessions:
            checked_sessions += 1
            why = _missing(grants, (row.get("company_id"), row.get("appointment_id"), "recording"),
                           row.get("created_at"))
            if why is not None:
                log.add("recorded-without-consent",
                        f"recording session {row.get('id')} of appointment {row.get('appointment_id')}: {why}",
                        started.get(row.get("id"), ()), session_id=row.get("id"),
                        appointment_id=row.get("appointment_id"))
    if calls is None or analyses is None:
        log.cannot("calls or call_analyses not captured")
    else:
        by_id = {row.get("id"): row for row in calls}
        session_of = {row.get("id"): row.get("appointment_id") for row in sessions or ()}
        submitted = _created_by(history, CALL_SUBMIT)
        for analysis in analyses:
            call = by_id.get(analysis.get("call_id"))
            if call is None:
                continue
            appointment = call.get("appointment_id")
            via = ""
            if appointment is None and call.get("recording_session_id") is not None:
                appointment = session_of.get(call.get("recording_session_id"))
                via = f" (through its recording session {call.get('recording_session_id')})"
            if appointment is None:
                continue
            checked_analyses += 1
            why = _missing(grants, (call.get("company_id"), appointment, "analysis"), call.get("created_at"))
            if why is not None:
                log.add("analysed-without-consent",
                        f"analysis {analysis.get('id')} of call {call.get('id')} for appointment "
                        f"{appointment}{via}: {why}",
                        submitted.get(call.get("id"), ()), call_id=call.get("id"), appointment_id=appointment)
    refusals, wrongful = _judge_refusals(log, history, grants)
    return log.verdict(sessions=checked_sessions, analyses=checked_analyses, consents=len(consents),
                       consent_grants=evidence, consent_refusals_judged=refusals, refused_with_consent=wrongful)


def _judge_refusals(log: ViolationLog, history: History, grants: _Grants) -> tuple[int, int]:
    """Refusals 409 ``consent-required`` of a request whose appointment had that consent (``refused-with-consent``).

    Returns (refusals judged, violations).
    """
    refusals = [(invoke, completion) for invoke, completion in history.pairs_of(*STARTS, CALL_SUBMIT)
                if completion is not None and completion.status == 409
                and completion.result.get("problem") == "consent-required" and not completion.result.get("replayed")
                and invoke.args.get("appointment_id") is not None]
    if not refusals:
        return 0, 0
    present = {(str(company), str(appointment), scope): at for (company, appointment, scope), at in grants.items()}
    acknowledged: dict[tuple[str, str, str], float] = {}
    for invoke, completion in history.acknowledged_of(CONSENT_GRANT):
        assert completion is not None
        key = (str(invoke.tenant), str(invoke.args.get("appointment_id")), str(invoke.args.get("scope")))
        acknowledged[key] = min(acknowledged.get(key, INF), completion.time_ns)
    began = history[0].wall if len(history) else None  # when the run began (unix seconds; ops in time order)
    first = first_sent(history, *STARTS, CALL_SUBMIT)
    wrongful = 0
    for invoke, completion in refusals:
        scope = "analysis" if invoke.f == CALL_SUBMIT else "recording"
        appointment = str(invoke.args["appointment_id"])
        key = (str(invoke.tenant), appointment, scope)
        if key not in present:
            continue  # no consent at the end: the refusal may be right
        token = invoke.args.get("idempotency_key")
        sent = min(invoke.time_ns, first.get((invoke.tenant, token), INF)) if token is not None else invoke.time_ns
        granted = present[key]
        seeded = granted is not None and began is not None and isinstance(granted, (int, float)) and granted < began
        if acknowledged.get(key, INF) >= sent and not seeded:
            continue  # granted during the run, perhaps after this request: not known to be there
        wrongful += 1
        how = "seeded before the load began" if seeded else "granted by a request answered before this one was sent"
        log.add("refused-with-consent",
                f"{invoke.f} of appointment {appointment} refused 409 consent-required, though its {scope} consent "
                f"was there ({how})", (invoke.index, completion.index), appointment_id=appointment, scope=scope)
    return len(refusals), wrongful
