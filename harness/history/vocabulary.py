"""The operation names and the argument/result keys the checkers read.

One place, so that the load generator (which writes ops) and the invariant
checkers (which read them) cannot drift apart. Ids are strings (UUIDs as
their canonical text).

Per operation, ``args`` carries what was asked and ``result`` what the
response said:

=======================  ==========================================  ===========================================
f                        args                                        result (on a response)
=======================  ==========================================  ===========================================
session.start            appointment_id, idempotency_key, payload_fp id (session id), appointment_id, status
legacy.start             appointment_id, [idempotency_key]           id (the ``recording_id``), appointment_id
session.stop             session_id, idempotency_key, payload_fp     id, status
legacy.stop              session_id                                  id, status
appointment.assign       appointment_id, rep_id, idempotency_key     id (assignment id), appointment_id, rep_id
appointment.unassign     appointment_id                              id (appointment id)
appointment.delete       appointment_id
appointment.read         appointment_id
session.read             session_id
call.submit              appointment_id, ...                         id (call id)
webhook.deliver          job_id (Shunya job id), payload_fp,
                         [call_id, superseded]
probe.cross_tenant       target_tenant, target_id, method, path,     status, body_masked (digest of the body with
                         [route, probe_id, control]                  the asked-for ids masked)
probe.idempotency        route, probe, step, method, path,           like any keyed write
                         [idempotency_key], payload_fp
probe.authz              route, role, required_roles, method, path   status, problem
probe.malformed          route, case, field, method, path, probe_id  status, problem (a write's body broken as
                                                                     its own schema refuses: harness/load/malformed.py)
probe.filter             route, query_field, value, method, path     like the read's own answer (a list read
                                                                     filtered by one of its enumerated values)
probe.setup              route, kind, method, path                   like the route's own answer (a tenant
                                                                     creating its own row of a kind no
                                                                     answer named yet, for the probes)
appointment.create       (none)                                      id (appointment id)
retention.policy.put     call_days, appointment_days                 call_days, appointment_days
retention.policy.read    (none)                                      call_days, appointment_days, default
consent.grant            appointment_id, scope                       id (consent id), appointment_id
deletion.request         scope, target_id                            id (deletion request id)
deletion.confirm         deletion_id, [wrong_token]                  id (the audit row, same id)
retention.run            [rows] (seeded old rows)                    company_id, counts (calls, appointments)
fault (nemesis)          fault, phase ("start"/"stop"), target, params
=======================  ==========================================  ===========================================

Every request of the load also has in ``args`` its ``trace_id`` (the
``X-Trace-Id`` it sent). Every response may also carry in ``result``: ``replayed`` (the
``Idempotent-Replayed`` header), ``body_sha256`` (of the raw body),
``company_ids_seen`` (every company id found anywhere in the body, a set) and
``trace`` (the answer's ``X-Trace-Id`` against the one the request sent:
``echoed``, ``other`` or ``missing``).
"""

from __future__ import annotations

__all__ = [
    "APPOINTMENT_CREATE",
    "APPOINTMENT_DELETE",
    "APPOINTMENT_LIST",
    "APPOINTMENT_READ",
    "ASSIGN",
    "CALL_READ",
    "CALL_REFRESH",
    "CALL_SUBMIT",
    "CONSENT_GRANT",
    "DEAD_LETTER_LIST",
    "DEAD_LETTER_RETRY",
    "DELETION_CONFIRM",
    "DELETION_REQUEST",
    "FAULT",
    "LEGACY_START",
    "LEGACY_STOP",
    "LOAD_STOPPED",
    "NEMESIS",
    "PROBE",
    "PROBE_AUTHZ",
    "PROBE_FILTER",
    "PROBE_IDEMPOTENCY",
    "PROBE_MALFORMED",
    "PROBE_SETUP",
    "RETENTION_POLICY_PUT",
    "RETENTION_POLICY_READ",
    "RETENTION_RUN",
    "SESSION_READ",
    "SESSION_START",
    "SESSION_STOP",
    "STARTS",
    "STOPS",
    "UNASSIGN",
    "WEBHOOK_DELIVER",
    "WRITES",
]

SESSION_START = "session.start"
SESSION_STOP = "session.stop"
LEGACY_START = "legacy.start"
LEGACY_STOP = "legacy.stop"
ASSIGN = "appointment.assign"
UNASSIGN = "appointment.unassign"
APPOINTMENT_DELETE = "appointment.delete"
APPOINTMENT_READ = "appointment.read"
SESSION_READ = "session.read"
CALL_SUBMIT = "call.submit"
WEBHOOK_DELIVER = "webhook.deliver"
PROBE = "probe.cross_tenant"
PROBE_IDEMPOTENCY = "probe.idempotency"
PROBE_AUTHZ = "probe.authz"
PROBE_SETUP = "probe.setup"
PROBE_FILTER = "probe.filter"
PROBE_MALFORMED = "probe.malformed"
FAULT = "fault"
APPOINTMENT_CREATE = "appointment.create"
CONSENT_GRANT = "consent.grant"
DELETION_REQUEST = "deletion.request"
DELETION_CONFIRM = "deletion.confirm"
RETENTION_RUN = "retention.run"
RETENTION_POLICY_PUT = "retention.policy.put"
RETENTION_POLICY_READ = "retention.policy.read"
CALL_REFRESH = "call.refresh"
CALL_READ = "call.read"
APPOINTMENT_LIST = "appointment.list"
DEAD_LETTER_RETRY = "dead_letter.retry"
DEAD_LETTER_LIST = "dead_letter.list"

#: The process name of fault injections and heals.
NEMESIS = "nemesis"

#: How an ``info`` completion's error begins when the load itself cut the request: its user
#: was stopped mid-request at the end of the load (or by Ctrl-C). The answer is unknown, as
#: for any info, but no fault and no part of the app caused it: the SLOs do not count it.
LOAD_STOPPED = "load stopped"

#: Both ways of starting, and of stopping, a recording session.
STARTS: frozenset[str] = frozenset((SESSION_START, LEGACY_START))
STOPS: frozenset[str] = frozenset((SESSION_STOP, LEGACY_STOP))

#: Operations that change state.
WRITES: frozenset[str] = frozenset(
    (SESSION_START, SESSION_STOP, LEGACY_START, LEGACY_STOP, ASSIGN, UNASSIGN, APPOINTMENT_DELETE, CALL_SUBMIT,
     WEBHOOK_DELIVER)
)
