"""The promise table: every testable promise of the plan (A1 to F3) and of the brief's invariants.

One row per promise, each a falsifiable sentence with the checker that judges
it, the operations that exercise it, the seed data it needs, the scenarios
where it is at risk and the weakening that breaks exactly it. ``GAPS`` says,
for the rows that lack something (no checker judges the sentence yet, no
weakening shows its teeth, no load exercises it), what is missing and whose
it is. ``docs/PROMISES.md`` is generated from this module
(``python -m stormproof.harness.promises --markdown``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from stormproof.harness.history import vocabulary as v
from stormproof.harness.promises import counting as c
from stormproof.harness.promises.promise import Promise
from stormproof.harness.invariants.checkers.authorization import lapsed_after_served

__all__ = ["COUNTERS", "GAPS", "PROMISES"]

_rows: list[Promise] = []
_counters: dict[str, c.Counter] = {}
_gaps: dict[str, str] = {}

# Seed data, in words, shared by many rows.
TENANTS = "two or more tenants, each with a manager, reps and appointments"
CONSENTED = TENANTS + "; every appointment has its recording and analysis consents"
HOT = CONSENTED + "; a few hot appointments that every user hits at once"
JOBS = CONSENTED + "; the Shunya stub completing jobs and delivering signed webhooks"

# Who owns the missing piece of a gap (see /work/coord/CONTRACT.md).
PROBES = "probes (load derived from the OpenAPI document)"
QUIESCE = "quiesce (metrics and task checkers)"


def _row(id: str, plan_item: str, sentence: str, invariant: str, operations: tuple[str, ...], seed: str,
         scenarios: tuple[str, ...], weaken: tuple[str, ...] = (), *, count: c.Counter | None = None,
         gap: str | None = None, judged_by: str | None = None) -> None:
    _rows.append(Promise(id, plan_item, sentence, invariant, operations, seed, scenarios, weaken, judged_by))
    _counters[id] = count or c.by_operations(operations)
    if gap:
        _gaps[id] = gap


# -- A1 webhook vs polling -----------------------------------------------------------------------
_JOB_OPS = (v.CALL_SUBMIT, v.WEBHOOK_DELIVER, v.CALL_REFRESH)
_row("A1.job-applied-once", "A1",
     "Whatever mix of webhook deliveries, duplicate deliveries and polls a Shunya job sees, its result is "
     "applied exactly once: one call_analyses row per job.",
     # Not smoke: its mix rarely sends a job's webhook and poll together. Measured (verify --tries 3 --only
     # job-db-guard,job-lock --scenario smoke, 2026-12-01, load 10): caught 2/3, 2 violations in each caught run,
     # against 93 (webhook-poll-storm) and 133 (redis-flap) in one try each.
     "job-applied-once", _JOB_OPS, JOBS, ("webhook-poll-storm", "redis-flap"),
     ("job-lock", "job-db-guard"))
_row("A1.db-guard-last-word", "A1",
     "A worker paused past its lock's TTL cannot apply a result a second time: the conditional update on "
     "processed_output_hash refuses the late writer.",
     "job-applied-once", _JOB_OPS, JOBS, ("pause-past-lock-ttl",), ("job-db-guard",))
_row("A1.right-result", "A1",
     "The result applied to a call is the one Shunya produced for its job (the applied output_hash equals "
     "the stub's), never a stale or another job's result.",
     # Only webhook-poll-storm's load delivers results of superseded jobs (webhook.superseded).
     "job-applied-once", _JOB_OPS, JOBS + "; signed deliveries of jobs superseded for the same call",
     ("webhook-poll-storm",), ("job-match-by-call",), count=c.with_arg((v.WEBHOOK_DELIVER,), "superseded"))
# Found 2026-12-03 with an app that applied a failed job as an empty result: shunya-outage caught it only through
# the failure counter (an app counting failures right would have passed); no rule read the stub's failed jobs.
_row("A1.failed-not-analysed", "A1",
     "A job Shunya failed is recorded as failed (its call analysis_failed), never applied as an analysis: "
     "the app never invents a result Shunya did not produce.",
     "job-applied-once", (v.CALL_SUBMIT,), JOBS + "; Shunya failing a share of its jobs", ("shunya-outage",),
     ("failed-job-analysed",), count=c.by_operations((v.CALL_SUBMIT,)), judged_by="failed_jobs_judged")
# Found 2026-12-03 with an app that answered a duplicate delivery "applied": webhook-poll-storm passed.
_row("A1.duplicate-answered-duplicate", "A1",
     "A delivery of a job already applied is answered duplicate, never applied: of one job's deliveries at most "
     "one is answered applied, and none when the poll applied it.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS + "; the same job's result delivered several times",
     ("webhook-poll-storm",), ("duplicate-answered-applied",), judged_by="applied_answers_judged")
# Found 2026-12-05 with an app that refused a duplicate delivery 409 conflict (REST's habit): webhook-poll-storm
# passed; no rule judged a delivery's refusal. Shunya takes a 409 for a failed delivery and sends it again.
_row("A1.duplicate-not-refused", "A1",
     "A signed delivery of a job already applied is answered 200 duplicate, never refused (a 409 or 422 tells "
     "Shunya the delivery failed, and it sends again a result that took effect).",
     "refusals-explained", (v.WEBHOOK_DELIVER,), JOBS + "; the same job's result delivered several times",
     ("webhook-poll-storm",), ("duplicate-delivery-conflict",), count=c.redelivered((v.WEBHOOK_DELIVER,)))
# Found 2026-12-03 with an app that recorded a failed job on the job only: shunya-outage passed.
_row("A1.call-reads-outcome", "A1",
     "A call whose job was taken in reads its outcome: analysis_failed when Shunya failed the job, analyzed when "
     "its result was applied.",
     "job-applied-once", (v.CALL_SUBMIT,), JOBS + "; Shunya failing a share of its jobs", ("shunya-outage",),
     ("failed-call-status",), judged_by="call_statuses_judged")
_row("A1.applied-eventually", "A1",
     "Every job Shunya completed is applied by the end of the run (after the grace period), by the webhook "
     "or by polling.",
     # Only where webhooks are lost and Shunya is slower than a poll is polling the last resort (webhook-outage);
     # elsewhere a webhook or the first poll applies every result. Measured (verify --tries 1 --only poll-until-done,
     # 2026-12-01): weakened, 97 completed jobs never applied; all fixes on, 187 of 187 applied.
     "job-applied-eventually", (v.CALL_SUBMIT,), JOBS + "; webhooks lost while Shunya works slowly",
     ("webhook-outage",), ("poll-until-done",))
# Found 2026-12-05 by a mutation sweep (boolop): a client that refused every answer (the refusal check's `and`
# made `or`) dead-lettered every submission and shunya-stuck-jobs passed: the jobs it never recorded were excluded
# as "not the app's to apply". job-applied-eventually's job-never-recorded reads every job the stub created.
_row("A1.created-jobs-recorded", "A1",
     "Every call Shunya created a job for (answered 2xx with its id) has a job recorded by the app: a good answer "
     "is never refused or dropped, so the call can be analysed.",
     "job-applied-eventually", (v.CALL_SUBMIT,), JOBS + "; Shunya answering every creation promptly, no fault but "
     "on the webhook link", ("shunya-stuck-jobs",), ("shunya-created-refused",), judged_by="created_calls_judged")
# One webhook.deliver in ten is forged (missing, stale or wrong signature, forged result; or dated ahead, or a
# malformed timestamp, the next two rows); job-applied-once judges
# it (_forged_deliveries). Measured (verify --tries 1 --only webhook-signature --scenario webhook-poll-storm,
# 2026-12-01): weakened, 17 forged deliveries answered 200 and 7 forged results applied; all fixes on, 12 of 12 401.
_row("A1.webhook-signed", "A1",
     "A webhook with a missing, stale or wrong signature is refused (401) and applies nothing.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",),
     ("webhook-signature",), count=c.with_arg((v.WEBHOOK_DELIVER,), "bad_signature"))
# Found 2026-12-06 by reading the coverage of every scenario: no delivery ever carried a timestamp ahead of now or
# one that is no integer, so a window checked one way (now - ts > tolerance) and a timestamp parsed unguarded (a 500)
# passed. Forged deliveries are now also dated an hour ahead (``future``) or carry ``nan``/``yesterday``
# (``malformed``), signed with Shunya's secret over the header as sent: only the timestamp's check refuses them.
_row("A1.webhook-window-both-ways", "A1",
     "A webhook signed with Shunya's secret but dated beyond the tolerance ahead of now is refused (401) and "
     "applies nothing, as one dated beyond it in the past.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",), ("webhook-window-past-only",),
     count=c.with_arg_value((v.WEBHOOK_DELIVER,), "bad_signature", "future"))
# Found 2026-12-06 by reading: every signed delivery was sent the moment it was signed, so a window far tighter than
# the contract's 300 s (a hard-coded minute) passed. One whole signed delivery in four is now dated two minutes back.
_row("A1.delayed-delivery-accepted", "A1",
     "A delivery signed with Shunya's secret two minutes before it arrives (within the contract's 300 s tolerance) "
     "is accepted: the window refuses replays, never Shunya's own queued deliveries.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",), ("webhook-window-tight",),
     count=c.with_arg((v.WEBHOOK_DELIVER,), "delayed_s"))
_row("A1.webhook-timestamp-malformed", "A1",
     "A webhook whose timestamp is no unix seconds (nan, a word) is refused 401 like any bad signature, never "
     "a 5xx, and applies nothing.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",), ("webhook-timestamp-unguarded",),
     # Every answer counts, a 5xx too: the unguarded parse's 500 is the very answer this row judges.
     count=c.with_arg_value((v.WEBHOOK_DELIVER,), "bad_signature", "malformed", definite=False))
# Found 2026-12-02 with a signature checked over the re-serialised body: webhook-poll-storm passed, every delivery
# was laid out exactly as the app re-serialised it. Half of the signed deliveries are now laid out another way.
_row("A1.signed-accepted", "A1",
     "A delivery signed with Shunya's secret over its raw body is accepted whatever the layout of its JSON: "
     "the signature check refuses only senders without the secret, never Shunya.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",), ("webhook-raw-body",),
     count=c.with_arg((v.WEBHOOK_DELIVER,), "spaced"))
# Found by the source-mutation sweeps of sessions 31 and 33: the completeness check removed passed every scenario,
# every delivery being whole. One signed delivery in ten now says completed without a result or a hash. Measured
# (verify --tries 2 --only webhook-complete-result, 2026-12-06, at 6 %): weakened, 4 and 4 answered applied; all fixes
# on, 7 of 8 answered 422 (one 401, inside a fault).
_row("A1.incomplete-delivery-refused", "A1",
     "A signed delivery that says completed but carries no result or no output hash is refused (400/422) and "
     "applies nothing: the job's result still comes from a whole delivery or the poll.",
     "job-applied-once", (v.WEBHOOK_DELIVER,), JOBS, ("webhook-poll-storm",), ("webhook-complete-result",),
     count=c.with_arg((v.WEBHOOK_DELIVER,), "incomplete"))
# Found by session 36's dropwhere sweep (mutant 304: the count's subquery lost its call): every call read counted
# every tenant's analyses and passed, reads-current taking any count above 0 for an applied result. Measured
# (verify --tries 2 --only call-read-count-scoped, 2026-12-06): caught 4/4 (84 to 577 violations); all fixes on,
# 4/4 passed, judging 170 and 184 reads (smoke), 754 and 566 (webhook-poll-storm).
_row("A1.call-read-counts-own", "A1",
     "A call read counts the call's own analyses: never more than the call holds at the end of the run.",
     "job-applied-once", (v.CALL_SUBMIT, v.CALL_READ), "calls whose jobs complete", ("smoke", "webhook-poll-storm"),
     ("call-read-count-scoped",), judged_by="call_read_counts_judged")
# Found 2026-12-05 by a sweep that rewrote one field of random 2xx answers: no rule read a call's lead score or
# outcome, in an answer or in the final state.
_row("A1.call-carries-result", "A1",
     "A call with one analysis has that analysis's lead score and outcome, in the final state and in every call "
     "read that answers the analysis.",
     "job-applied-once", (v.CALL_SUBMIT, v.WEBHOOK_DELIVER, v.CALL_READ), "calls whose jobs complete",
     ("smoke", "webhook-poll-storm"), ("lead-score-field",),
     # exercised by a call analysed: a delivery answered applied (its row judged), a read showing one analysis
     count=c.plus(c.with_result_value((v.WEBHOOK_DELIVER,), "status", "applied"),
                  c.with_result_value((v.CALL_READ,), "analyses", 1)))

# -- A2 recording sessions ------------------------------------------------------------------------
_SESSION_OPS = (v.SESSION_START, v.LEGACY_START, v.SESSION_STOP, v.LEGACY_STOP)
_row("A2.one-active-session", "A2",
     "An appointment never has two active (pending or recording) sessions, in the history (two starts "
     "acknowledged with different ids, neither stopped in between) or in the final state.",
     "single-active-session", _SESSION_OPS, HOT,
     ("session-start-storm", "db-latency", "redis-flap", "idempotency-replay-storm", "smoke"),
     ("session-lock", "session-unique-index"))
_row("A2.legacy-start-same-rule", "A2",
     "The legacy POST /recordings/start obeys the same one-active-session rule as /recordings/sessions/start, "
     "and mixing the two routes never yields two active sessions.",
     "single-active-session", (v.LEGACY_START,), HOT, ("session-start-storm",),
     # The legacy route alone unlocked; the index dropped too, or it would have the last word for both routes.
     ("legacy-start-lock", "session-unique-index"))
_row("A2.conflict-names-active", "A2",
     "A start refused because a session is active answers 409 active-session-exists naming the active "
     "session's id, and that session is active.",
     "single-active-session", (v.SESSION_START,), HOT, ("session-start-storm",), ("conflict-names-active",),
     count=c.answered_problem((v.SESSION_START,), "active-session-exists"))
# Found 2026-12-06 by a mutation sweep: a start that took its own insert for the index's refusal answered 409
# naming the session it had just rolled back; every start refused, nothing recorded, and every scenario passed
# (a 409 was judged only against sessions that exist). single-active-session: a named session the final state
# lacks, of an appointment it has, never existed.
_row("A2.conflict-names-real", "A2",
     "The session a 409 active-session-exists names exists: an id the appointment's sessions hold, never one "
     "that was not stored.",
     "single-active-session", (v.SESSION_START,), HOT, ("session-start-storm",), ("conflict-names-own-id",),
     count=c.answered_problem((v.SESSION_START,), "active-session-exists"))
# Found 2026-12-04 with an app whose stop looked up active sessions only: session-start-storm passed, a 404 being
# a stop's answer for no such session (another tenant's, a deleted one), never judged by its status alone.
_row("A2.stop-finds-stopped", "A2",
     "A stop of a stopped session of one's own tenant finds it: answered its state, never 404 as if the session "
     "did not exist.",
     "single-active-session", (v.SESSION_STOP, v.LEGACY_STOP), HOT, ("session-start-storm",),
     ("stop-finds-active-only",), count=c.stopped_again((v.SESSION_STOP, v.LEGACY_STOP)))
# Found 2026-12-04 with an app that answered a second start the active session (201): session-start-storm passed,
# one session was active throughout, and no rule asked whether a 2xx start had started anything.
_row("A2.start-starts-its-own", "A2",
     "A start answered 2xx started a session of its own: no two starts (other than replays of one key) are "
     "answered the same session, so two clients never both believe the recording is theirs.",
     "single-active-session", (v.SESSION_START, v.LEGACY_START), HOT, ("session-start-storm",),
     ("start-answers-active",))
_row("A2.stop-idempotent", "A2",
     "Stopping a stopped session answers 200 with its state unchanged (stopped, same stopped_at), never an "
     "error and never a second stop.",
     "single-active-session", (v.SESSION_STOP, v.LEGACY_STOP), HOT, ("session-start-storm", "smoke"),
     ("stop-idempotent",))
# Found 2026-12-05 with a stop whose ownership check compared the session's starter with the caller: every scenario
# passed, since the load started, stopped and read every session as the tenant's manager. It acts as any user now.
_row("A2.stop-by-any-user", "A2",
     "A recording session is its tenant's: any user of the tenant (its manager, any rep) stops it, not only the "
     "user who started it; another user's stop answers 200, never 404.",
     "single-active-session", (v.SESSION_START, v.SESSION_STOP, v.LEGACY_STOP), HOT + "; a manager and reps per tenant",
     ("session-start-storm",), ("session-owner-scope",),
     count=c.stopped_by_another_user((v.SESSION_START, v.LEGACY_START), (v.SESSION_STOP, v.LEGACY_STOP)))
# Found 2026-12-05 by injecting refusals over the fault scenarios: 0 of 14 stops answered 403 were judged (a stop's
# 401 and 403 were taken for the token's or role's refusals, but the load's token is always a tenant user's).
_row("A2.stop-not-forbidden", "A2",
     "A stop with a valid token of any user of the session's tenant is never refused 401 or 403: no role or "
     "starter check stands between a tenant's user and its sessions.",
     "single-active-session", (v.SESSION_START, v.SESSION_STOP, v.LEGACY_STOP), HOT + "; a manager and reps per "
     "tenant", ("session-start-storm",), ("stop-starter-only",),
     count=c.stopped_by_another_user((v.SESSION_START, v.LEGACY_START), (v.SESSION_STOP, v.LEGACY_STOP)))
# Found 2026-12-05 by a sweep that rewrote one field of random 2xx answers: a stop answered "recording" (or
# another session's id, or another appointment's) passed every rule; only stopped_at was read.
_row("A2.answers-describe", "A2",
     "A 2xx start answers an active session of the appointment asked for; a 2xx stop answers the session "
     "stopped (its id, its appointment) as stopped, never as still recording.",
     "single-active-session", _SESSION_OPS, HOT, ("session-start-storm", "smoke"), ("stop-answers-stale",))

# -- A3 assignment --------------------------------------------------------------------------------
_ASSIGN_OPS = (v.ASSIGN, v.UNASSIGN)
_row("A3.one-assignee", "A3",
     "An appointment is acknowledged as assigned to one rep at most at any time, and has at most one active "
     "assignment in the final state.",
     "single-assignment", _ASSIGN_OPS, HOT, ("assignment-storm", "db-latency", "smoke"),
     ("assignment-lock", "assignment-guard"))
# The seed (at_risk) gives each tenant four unassigned overlapping pairs; appointment.double_book assigns one rep
# to both of a pair at once. The Redis lock is per appointment, so only the guard stands between them.
# Measured (verify --tries 1 --only assignment-guard --scenario assignment-storm, 2026-12-01): weakened, 31 double
# bookings in the history and 8 in the final state; all fixes on, 63 pair assigns refused 409 rep-double-booked, 0.
_row("A3.no-double-booking", "A3",
     "No rep holds two active assignments whose windows overlap: the second answers 409 rep-double-booked.",
     "single-assignment", (v.ASSIGN,), HOT + "; appointments of one tenant whose windows overlap",
     ("assignment-storm",), ("assignment-guard",), count=c.with_arg((v.ASSIGN,), "overlap_pair"))
_row("A3.denormalised-rep", "A3",
     "An appointment's assigned_rep_id names the rep of its active assignment, or nobody.",
     "single-assignment", _ASSIGN_OPS, HOT, ("assignment-storm", "smoke"), ("assignment-lock", "assignment-guard"))
# Found 2026-12-03 with a double-booking check that counted released assignments, and one that took touching windows
# for overlapping: assignment-storm passed both (a refusal was never judged). Touching pairs are seeded now.
_row("A3.refusal-explained", "A3",
     "A rep is refused 409 rep-double-booked only while an assignment of that rep to an appointment whose window "
     "overlaps may be in place: a released assignment, or a window that only touches, never refuses a free rep.",
     "single-assignment", (v.ASSIGN, v.UNASSIGN),
     TENANTS + "; overlapping pairs and touching pairs of unassigned appointments", ("assignment-storm",),
     ("rep-overlap-released",), count=c.plus(c.answered_problem((v.ASSIGN,), "rep-double-booked"),
                                              c.with_arg((v.ASSIGN,), "adjacent_pair")))
# Found 2026-12-04 with an already-assigned check that read the appointment's latest assignment whatever its status:
# once released, an appointment could never be assigned to another rep; assignment-storm and smoke passed (1,882
# such refusals in assignment-storm), no rule judged that refusal.
_row("A3.already-assigned-explained", "A3",
     "An assign is refused 409 appointment-already-assigned only while another rep's assignment of the "
     "appointment may be in place: an appointment whose last acknowledged write unassigned it is assigned.",
     "single-assignment", (v.ASSIGN, v.UNASSIGN), HOT, ("assignment-storm",), ("appointment-released-counted",),
     count=c.by_operations((v.ASSIGN,)))
_row("A3.reassign-same-rep", "A3",
     "Assigning the appointment's current rep again answers the existing assignment (200, same id), not a "
     "new assignment and not a conflict.",
     "single-assignment", (v.ASSIGN,), HOT, ("assignment-storm",), ("reassign-idempotent",))

# -- A4/B2 tasks ----------------------------------------------------------------------------------
_TASK_OPS = (v.CALL_SUBMIT, v.CALL_REFRESH, v.WEBHOOK_DELIVER)
_row("A4.task-dedupe", "A4",
     "The same work item is never queued twice at once: one task per (name, dedupe key) in flight.",
     "task-deduplicated", _TASK_OPS, JOBS, ("task-dedupe-storm",), ("task-dedupe",))
_row("A4.refresh-deduplicated", "A4",
     "POST /calls/{id}/refresh while a poll of that call is queued answers deduplicated: true and enqueues "
     "nothing.",
     "task-deduplicated", (v.CALL_REFRESH,), JOBS, ("task-dedupe-storm",), ("task-dedupe",))
# Found 2026-12-05 with a de-duplication by the task ledger (task_exists_by_unique_key without the task's state):
# no rule read a refresh's answer, and a refresh after the call's poll ended answered deduplicated with that finished
# task and queued nothing (the manual nudge dead for every call whose first poll ended).
_row("A4.refresh-queues-when-idle", "A4",
     "POST /calls/{id}/refresh answers deduplicated: false naming the poll it queued while no poll of the call's "
     "job is in flight, and deduplicated: true only naming a poll of that job in flight while it ran.",
     "task-deduplicated", (v.CALL_REFRESH,), JOBS, ("task-dedupe-storm",), ("task-dedupe-ledger",),
     count=c.answered((v.CALL_REFRESH,), 202))
_row("B2.redelivered-task-once", "B2",
     "A task delivered twice (its worker died before acknowledging) applies its effect once.",
     "job-applied-once", (v.CALL_SUBMIT,), JOBS, ("pause-past-lock-ttl",), ("job-db-guard",))

# -- B1 Idempotency-Key, per endpoint of the plan's table ----------------------------------------
_B1 = (
    (v.SESSION_START, "POST /recordings/sessions/start", True),
    (v.SESSION_STOP, "POST /recordings/sessions/{id}/stop", True),
    (v.ASSIGN, "POST /appointments/{id}/assign", True),
    (v.LEGACY_START, "POST /recordings/start", False),
    (v.LEGACY_STOP, "POST /recordings/{id}/stop", False),
)
# assignment-storm sends no same-key requests (fresh keys only), and session-start-storm too few for a
# 20 s run: both measured escaping for replay, mismatch and concurrent (verify --source promises
# --scenario assignment-storm / session-start-storm, one try each, 2026-11-30).
_B1_SCENARIOS = ("idempotency-replay-storm", "smoke")
# The other routes are exercised by the idempotency probe alone, one (situation, route) pair per probe in turn: smoke
# sends too few probes for the cycle (measured 2026-12-02: every per-route row but session start unexercised in a smoke
# run), so only idempotency-replay-storm puts them at risk.
_B1_PROBED_SCENARIOS = ("idempotency-replay-storm",)
# The same key while its first request runs: only where the load sends concurrent same-key requests on
# purpose. In smoke the idempotency probe draws its situation at random and may send none (measured
# escaping, verify --source promises --scenario smoke --only idempotency-in-flight, 2026-11-30).
_B1_CONCURRENT_SCENARIOS = ("idempotency-replay-storm",)
for _op, _route, _required in _B1:
    _slug = _op.replace(".", "-")
    _row(f"B1.replay.{_slug}", "B1",
         f"{_route}: the same Idempotency-Key with the same payload, once the first finished, replays the stored "
         "status and body byte for byte with Idempotent-Replayed: true, and the effect happens once.",
         "idempotent-replay", (_op,), HOT, _B1_SCENARIOS if _op == v.SESSION_START else _B1_PROBED_SCENARIOS,
         ("idempotency-keys",),
         count=c.plus(c.key_repeat((_op,)), c.probe_situation(_route, "replay")))
    _row(f"B1.mismatch.{_slug}", "B1",
         f"{_route}: the same key with another payload (or on another endpoint) answers 422 "
         "idempotency-key-mismatch and runs nothing.",
         "idempotent-replay", (_op,), HOT, _B1_SCENARIOS if _op == v.SESSION_START else _B1_PROBED_SCENARIOS,
         ("idempotency-fingerprint",),
         count=c.plus(c.key_mismatch((_op,)), c.probe_situation(_route, "mismatch")))
    _row(f"B1.concurrent.{_slug}", "B1",
         f"{_route}: the same key sent while its first request runs answers 409 idempotency-key-in-flight, or "
         "the first request's result; the effect happens once.",
         # Not "with Retry-After": docs/API.md gives one (1 s), but neither the brief nor the IETF draft asks
         # for it, so an app without it keeps this promise (an in-flight 409 without it passed, 2026-12-02).
         "idempotent-replay", (_op,), HOT, _B1_CONCURRENT_SCENARIOS, ("idempotency-in-flight",),
         count=c.plus(c.key_concurrent((_op,)), c.probe_situation(_route, "concurrent")))
    if _required:
        _row(f"B1.key-required.{_slug}", "B1",
             f"{_route}: a request without an Idempotency-Key answers 400 idempotency-key-missing and runs "
             "nothing.",
             "idempotent-replay", (_op, v.PROBE_IDEMPOTENCY), HOT, ("idempotency-replay-storm",),
             ("idempotency-key-required",), count=c.key_missing((_op,), _route))
# Found 2026-12-02 with a key store that kept the id and re-read the session on a replay: idempotency-replay-storm
# passed, every replay.same was sent right after its first request. Half of them now stop the session in between.
_row("B1.replay-stored-answer", "B1",
     "A replay gives back the answer stored when the key was first used, not the resource as it is now: a "
     "session start replayed after that session was stopped still answers the session as started.",
     "idempotent-replay", (v.SESSION_START, v.SESSION_STOP), HOT, _B1_SCENARIOS, ("replay-rerender",),
     count=c.with_arg((v.SESSION_START,), "changed_between"))
# Every keyed write (the five of the plan's table, and calls, whose body can be identical across tenants).
_B1_KEYED = tuple(op for op, _, _ in _B1) + (v.CALL_SUBMIT, v.PROBE_IDEMPOTENCY)
_row("B1.key-per-tenant", "B1",
     "Keys are scoped per tenant: tenant B using a key tenant A used gets its own result, never A's stored "
     "response.",
     # probe.idempotency's other-tenant case (the same key sent by another tenant for its own request) runs in
     # idempotency-replay-storm, where idempotent-replay judges it (key-crossed-tenants); tenant-probe measured
     # escaping (one try, 2026-11-30). Measured (verify --tries 1 --only idempotency-tenant-scope, 2026-12-01):
     # weakened, 19 of 19 other-tenant probes crossed tenants; all fixes on, 28 probes, none.
     "idempotent-replay", _B1_KEYED, HOT, ("idempotency-replay-storm",), ("idempotency-tenant-scope",),
     count=c.key_shared_across_tenants(_B1_KEYED))
# idempotency-replay-storm gives the app a 3 s TTL; probe.idempotency's "expired" situation replays 5.5 s after the
# first answer, and idempotent-replay judges it with the plan's TTL (a margin of 0.6 s each side is not judged).
# Measured (verify --tries 1 --only idempotency-expiry --scenario idempotency-replay-storm, 2026-12-01): weakened, 39 of
# 39 expired keys replayed; all fixes on, 19 of 19 ran as new, no other use of a key skipped for the TTL.
_row("B1.key-expires", "B1",
     "A key older than the TTL (STORMPROOF_IDEMPOTENCY_TTL_SECONDS, 24 h by default) is forgotten: the same "
     "key and payload runs again as new.",
     "idempotent-replay", (v.PROBE_IDEMPOTENCY,), HOT, ("idempotency-replay-storm",), ("idempotency-expiry",),
     count=c.probe_case(v.PROBE_IDEMPOTENCY, "expired"))
_row("B1.conflict-stored", "B1",
     "A definite 4xx (404, 409 conflict) under a key is stored and replayed like a success.",
     # redis-flap measured escaping (one try, 2026-11-30); idempotency-replay-storm repeats keys on purpose.
     "idempotent-replay", tuple(op for op, _, _ in _B1), HOT, ("idempotency-replay-storm",),
     ("idempotency-keys",), count=c.key_repeat(tuple(op for op, _, _ in _B1)))
# Found 2026-12-02: nothing sent a key again after a 5xx, so a key store that kept errors passed every scenario. The
# load now resends a keyed write answered 5xx (args.resend_after), as after a lost answer; db-latency's slow database
# answers some writes 500 while it still takes the store of one.
_row("B1.error-not-stored", "B1",
     "A 5xx under a key stores nothing: the same request sent again under the key runs, and is never answered "
     "the error as a replay.",
     "idempotent-replay", _B1_KEYED, HOT, ("db-latency",), ("idempotency-store-errors",),
     # a resend answered 5xx again exercised it too (a stored 5xx would have come back as a replay)
     count=c.with_arg_value(_B1_KEYED, "resend_after", "5xx", definite=False))
# probe.idempotency's "malformed" situation (a space, a tab, 264 characters) on every keyed write. Measured (verify
# --tries 1 --only idempotency-key-format --scenario idempotency-replay-storm, 2026-12-01): weakened, 44 malformed
# probes, 21 answered 2xx, 9 another refusal, 14 a 500; all fixes on, 43 of 43 answered 400 idempotency-key-invalid.
_row("B1.malformed-key", "B1",
     "A malformed key (not 1 to 255 printable ASCII characters) answers 400 idempotency-key-invalid and runs "
     "nothing.",
     "idempotent-replay", (v.PROBE_IDEMPOTENCY,), HOT, ("idempotency-replay-storm",),
     ("idempotency-key-format",), count=c.probe_case(v.PROBE_IDEMPOTENCY, "malformed"))

# -- B3 database constraints ----------------------------------------------------------------------
_row("B3.active-session-index", "B3",
     "With the Redis lock out of play (Redis down, lock lost), the partial unique index on active sessions "
     "still refuses a second active session, answered 409 active-session-exists, never 500.",
     # Only where the lock is out of play. db-latency keeps Redis up and its lock outlives the link's
     # latency: its cell escaped (verify --source promises --scenario db-latency, 2026-12-01, seed 8).
     "single-active-session", (v.SESSION_START, v.LEGACY_START), HOT, ("redis-flap",),
     ("session-unique-index",))
# Found 2026-12-03 with the index's refusal left unhandled (a plain insert): redis-flap passed, 129 starts answered
# 500 showing only in its error rate (2.7 % against 2 %), which is reported apart from the verdict.
_row("B3.index-refusal-answered", "B3",
     "A start the partial unique index refuses is answered 409 active-session-exists, never 5xx: with no fault "
     "in place but on Redis, no session start or stop is answered an error.",
     "single-active-session", (v.SESSION_START, v.LEGACY_START), HOT, ("redis-flap",),
     ("session-index-unhandled",), count=c.under_fault((v.SESSION_START, v.LEGACY_START), "redis"))
_row("B3.assignment-constraints", "B3",
     "The database refuses a second active assignment of an appointment and overlapping active assignments "
     "of a rep (unique index and exclusion constraint), whatever the application checks did.",
     "single-assignment", (v.ASSIGN,), HOT, ("assignment-storm",), ("assignment-guard",))
_row("B3.one-analysis-per-job", "B3",
     "The unique index on call_analyses per job refuses a second analysis row for one Shunya job.",
     # The index is the last word only where the lock is outlived: webhook-poll-storm keeps its lock and
     # measured escaping with the guard alone weakened (one try, 2026-11-30).
     "job-applied-once", _JOB_OPS, JOBS, ("pause-past-lock-ttl",), ("job-db-guard",))

# -- C1 to C3 queues and backpressure -------------------------------------------------------------
# task_records.tries keeps each try's start and each retry's chosen wait; dead-letter-accounting (_backoff) judges
# the chosen waits (the scheduling lag only adds to them) and that no retry ran before its wait. Measured (verify
# --tries 1 --only retry-backoff --scenario shunya-outage, 2026-12-01): weakened, all 425 level-0 and 219 level-1
# waits 0.050 s (fixed-delay); all fixes on, 543 waits spread over 0 to 0.050 s and 0.001 to 0.100 s, none over the
# bound, none early (scheduling lag median 15 s: the paused worker's backlog).
_row("C1.backoff-jitter", "C1",
     "A failing task's n-th retry waits uniform(0, min(cap, base * 2**n)): exponential backoff with full "
     "jitter, never a fixed delay.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya failing or slow",
     ("shunya-outage",), ("retry-backoff",), judged_by="backoff_retries_judged")
# Found 2026-12-03 with a relay that published retries before they were due: shunya-outage passed, rightly on that
# run (its backlog delayed every retry some 16 s beyond waits of at most 0.1 s). retry-timing keeps the queue idle
# and the waits long; the rule counts only waits long enough for an early start to show (retry_waits_judged).
_row("C1.retry-waits-kept", "C1",
     "A retry never runs before the wait its backoff chose is over: the outbox holds it until it is due.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya failing, the queue idle",
     ("retry-timing",), ("outbox-due",), judged_by="retry_waits_judged")
# Plan C1 item 3, "add retry budget per tenant", had no row (and the app no budget) until 2026-12-03.
# dead-letter-accounting (_tenant_retry_budget) reads each tenant's failure-driven retries and refusals from the ledger.
_row("C1.tenant-retry-budget", "C1",
     "One tenant's failing tasks retry at most at its retry budget (STORMPROOF_RETRY_BUDGET_PER_SECOND after a burst "
     "of STORMPROOF_RETRY_BUDGET_BURST): a retry over it is refused and its task dead-lettered, never dropped.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya failing most calls; tenants "
     "submitting far faster than their retry budget", ("retry-budget",), ("tenant-retry-budget",),
     judged_by="retry_budget_retries_judged")
_row("C1.retry-budget-per-tenant", "C1",
     "A retry is refused only when its own tenant's budget is spent: one tenant's failures never cost another "
     "tenant its retries.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya failing most calls; noisy tenants "
     "spending their retry budgets beside a quiet one", ("retry-budget",), ("tenant-retry-budget-shared",),
     judged_by="retry_budget_refusals_judged")
# Found 2026-12-03 with a retry count read as 0: shunya-outage passed with every failed call dead-lettered at its
# first error (the budget rule bounds tries from above only).
_row("C1.retried-before-dead-letter", "C1",
     "A task that fails transiently (a Shunya 5xx, a timeout) is retried STORMPROOF_TASK_MAX_RETRIES times before "
     "it is dead-lettered: its dead letter records 1 + that many failures (an upstream refusal, a 4xx, is not retried).",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya failing", ("shunya-outage",),
     ("retries-skipped",), judged_by="failed_tasks_judged")
# Found 2026-12-04 with an app whose workers took their own Shunya limit's refusal for a failure no retry mends:
# shunya-quota passed with 73 of its tasks dead-lettered after one throttled try (gave-up-early did not read a
# rate limit as transient), though the scenario says a limited call waits and is retried.
_row("C3.throttled-work-kept", "C3",
     "A task throttled by a rate limit (the app's per-tenant Shunya or task limit, or Shunya's own 429) waits for "
     "its allowance and is retried: never dead-lettered for being throttled before its retries are spent.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; tenants calling Shunya above their limit",
     ("shunya-quota",), ("throttle-retried",), judged_by="throttles_judged")
# Found 2026-12-05 by a source-mutation sweep of the reference app (Shunya's 429 handled as any other 4xx): every
# scenario passed, as no Shunya stub answered 429 (its injected faults were 5xx only). shunya-quota's stub now
# answers one call in ten 429 with Retry-After, and dead-letter-accounting's gave-up-early reads the letters.
_row("C3.shunya-quota-throttles", "C3",
     "A 429 from Shunya (its own quota) is a throttle: the task waits its Retry-After and is retried, never "
     "dead-lettered or failed for it before its retries are spent.",
     "dead-letter-accounting", (v.CALL_SUBMIT,), JOBS + "; Shunya answering a share of its calls 429 with a "
     "Retry-After", ("shunya-quota",), ("shunya-429-refused",), judged_by="throttles_judged")
_row("C1.retry-budget", "C1",
     "A task is tried at most 1 + STORMPROOF_TASK_MAX_RETRIES times, then dead-lettered; never retried forever.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya down for longer than the budget",
     # dead-letter-accounting compares each task's tries (task_records.attempts) with the budget the scenario gives.
     # Measured (verify --tries 1 --only retry-budget, 2026-12-01): weakened, 54 submissions tried 4 to 9 times for a
     # budget of 3; all fixes on, none over.
     ("shunya-outage",), ("retry-budget",), judged_by="failed_tasks_judged")
_row("C2.exhausted-to-dead-letter", "C2",
     "A task that exhausts its retries lands in the dead-letter table (a dead_letters row, state "
     "dead_lettered), never silently dropped.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya down for longer than the budget",
     ("shunya-outage",), ("dead-letter-queue",), judged_by="failed_tasks_judged")
_row("C2.survives-broker-restart", "C2",
     "A task written with the business write that caused it survives a restart of the broker (Redis without "
     "persistence): it is published again and ends, succeeded or dead-lettered, and every job Shunya "
     "completed is applied.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; the broker restarted under load",
     ("redis-flap-tasks", "redis-flap"), ("outbox",))
# Found 2026-12-04 with a relay that never swept: redis-flap-tasks ended in an "error" (nothing moved for 15 s), never
# a violation. Quiescence now holds each outbox row whose task has no broker message to its sweep time (docs/API.md).
_row("C2.lost-message-published-again", "C2",
     "A task whose message the broker lost before any worker began it is published again within the redeliver "
     "bound (doubled for each publication in a row that no worker began, at most 8 times) and one sweep: it "
     "runs and ends, and never stays in the outbox for good.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; the broker restarted under load",
     ("redis-flap-tasks",), ("outbox-sweep",))
# Measured (verify --tries 5 --source scenarios --scenario relay-worker-kill, 2026-12-01, a shared 2-core machine):
# weakened 5/5 caught (2 to 6 tasks each: queued in the ledger with no broker message, or never queued at all);
# every fix on 5/5 PASS, 16 to 32 s of quiescence.
_row("C2.survives-process-kill", "C2",
     "A task survives a kill -9 of the process that publishes it (between the business commit and the "
     "publication), of the worker's pool in the middle of running it and of the whole worker holding its "
     "messages: every acknowledged call's job is submitted or dead-lettered, every task ends, none is applied "
     "twice.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.WEBHOOK_DELIVER),
     JOBS + "; the API, the worker's pool and the worker killed and restarted under call load",
     ("relay-worker-kill",), ("outbox",))
# dead_letter.retry retries a letter twice (in turn or at once); dead-letter-accounting judges every answer
# (_manual_retry). Measured (verify --tries 1 --only dead-letter-retry-once, 2026-12-01): weakened, 72 retries all
# 200 (2 letters retried 36 times each); all fixes on, 50 retries: 3 letters 200 once, 47 answers 409.
# Found 2026-12-05 by a source-mutation sweep (bench/mutation_sweep.py): the poll budget's check removed, every
# scenario passed; Shunya finished every job, so no poll ever spent its budget. shunya-stuck-jobs' Shunya now loses
# one job in four (the stub's stuck_rate: pending for good, no webhook).
_row("C2.stuck-job-dead-lettered", "C2",
     "A job Shunya never finishes is polled at most STORMPROOF_POLL_BUDGET times, then its poll task is "
     "dead-lettered (poll budget exhausted): never polled forever, never dropped quietly.",
     "dead-letter-accounting", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya losing jobs (pending for good, no "
     "webhook); a small poll budget", ("shunya-stuck-jobs",), ("poll-budget-dead-letter",),
     judged_by="stuck_jobs_judged")
_row("C2.manual-retry", "C2",
     "POST /dead-letters/{id}/retry runs the task again (a new task record that is accounted for), and "
     "retrying the same dead letter again answers 409.",
     "dead-letter-accounting", (v.DEAD_LETTER_RETRY,), JOBS + "; dead letters to retry", ("shunya-outage",),
     ("dead-letter-retry-once",))
# Found 2026-12-03 with a retry that carried the letter's failure count into the new task: shunya-outage passed (the
# letter it wrote again claimed every failure; gave-up-early now counts the tries the ledger saw begin), and still
# did with that rule: its load retried only the seeded letters (the app's appear after the load ends). retry-timing
# makes the app's letters within seconds and retries them while Shunya still fails. Measured (verify --tries 2
# --only outbox-due,dead-letter-retry-failures --scenario retry-timing, 2026-12-03): caught 2/2 (4 and 2 letters).
_row("C2.manual-retry-full-budget", "C2",
     "A dead letter retried by hand runs as a new task with the whole retry budget: a transient failure of it is "
     "retried STORMPROOF_TASK_MAX_RETRIES times before it is dead-lettered again.",
     "dead-letter-accounting", (v.DEAD_LETTER_RETRY,), JOBS + "; dead letters the app wrote, retried by hand while "
     "Shunya still fails", ("retry-timing",), ("dead-letter-retry-failures",),
     judged_by="hand_retries_judged")
# Found 2026-12-05 by a source-mutation sweep of the reference app (the list's status filter inverted): every
# scenario passed; the load picked letters from the list, and retried ones answered their retry 409 as promised.
_row("C2.dead-letters-listed-by-status", "C2",
     "GET /dead-letters?status=dead lists dead letters only: a letter already retried is not among them.",
     "dead-letter-accounting", (v.DEAD_LETTER_LIST,), JOBS + "; dead letters, some retried by hand",
     ("shunya-outage",), ("dead-letter-status-filter",), judged_by="dead_letter_lists_judged")
# Found 2026-12-03 with a retry that read the letter unlocked: shunya-outage passed (one seeded letter per tenant,
# retried in the first seconds; every later retry answered 409). Eight letters a tenant are seeded now, and most
# retries of one go three at once.
_row("C2.retry-once-concurrent", "C2",
     "Several retries of one dead letter sent at once run its task once: one answers 200, every other 409.",
     "dead-letter-accounting", (v.DEAD_LETTER_RETRY,), JOBS + "; dead letters to retry, several per tenant",
     ("shunya-outage",), ("dead-letter-retry-lock",),
     count=c.with_arg_value((v.DEAD_LETTER_RETRY,), "together", True))
# Exercised only where a tenant sent more than its allowance: a run too slow to reach the limit judged nothing. Measured (stormproof run noisy-tenant, 2026-12-02, load 11 from other work): 58 requests in 15 s, no 429.
_API_LIMITED = (v.SESSION_START, v.APPOINTMENT_READ, v.APPOINTMENT_LIST, v.SESSION_READ, v.ASSIGN)
_row("C3.tenant-limited", "C3",
     "A tenant over its API rate gets 429 with Retry-After: in no second are more of its requests accepted "
     "than rate + burst allow.",
     "rate-limit-enforced", _API_LIMITED, TENANTS + "; one tenant sending far above its limit", ("noisy-tenant",),
     ("rate-limit",), count=c.over_allowance(_API_LIMITED, "api"))
# Found 2026-12-03 with a GCRA read and written from Python (GET, then SET): every scenario passed but noisy-tenant,
# which caught it only in its first second, when a tenant's users all raced for its burst (verify --tries 2: caught
# 1 of 2). Later the few requests that read the key in the same millisecond exceed the limit by less than the
# checker's rate tolerance. limit-race sends all of a tenant's users on one clock tick, so every slot is raced.
_row("C3.limit-atomic", "C3",
     "A tenant's requests racing each other cannot pass the limit together: its check and update are one atomic "
     "step, so however many arrive at once, no more than rate + burst are accepted in a second.",
     "rate-limit-enforced", _API_LIMITED, TENANTS + "; each tenant's users sending on one clock tick, all at once",
     ("limit-race",), ("rate-limit-atomic",), count=c.over_allowance(_API_LIMITED, "api"))
_row("C3.others-served", "C3",
     "While other tenants are limited, a tenant within its own allowance is served: the API limit never "
     "answers it 429, whatever the others send.",
     "rate-limit-enforced", _API_LIMITED, TENANTS + "; noisy tenants and a quiet one (load.quiet_tenants)",
     ("noisy-tenant",), ("rate-limit-per-tenant",), count=c.served_beside_limited(_API_LIMITED))
# Found 2026-12-03 with limiters that refused (429) while Redis was down: redis-flap passed with two thirds of its
# 5,569 requests refused, as no rule judged its 429s (its API limit was the app's default, not known to the checker).
# redis-flap now gives the app its API limit and judges rate-limit-enforced: every 429 is quiet-tenant-limited.
_row("C3.limit-fails-open", "C3",
     "A rate limit that cannot reach Redis lets the request through (fails open): a Redis restart never answers a "
     "tenant within its allowance 429.",
     "rate-limit-enforced", _API_LIMITED, TENANTS + "; Redis killed under load, the app's API limit known",
     ("redis-flap",), ("rate-limit-fail-closed",), count=c.under_fault(_API_LIMITED, "redis"))
# Found 2026-12-02 with a GCRA that stored the arrival time of refused requests too: noisy-tenant passed, though its
# flooding tenants got nothing through after their first second. rate-limit-enforced now judges each API 429 by the
# tenant's requests let through near it (limit-starves). Measured (rate-limit-enforced on the histories of verify
# --tries 3 --only rate-limit-counts-refusals, 2026-12-02): weakened, 2,357 to 3,314 refusals starved per try; all
# fixes on, none of the same scenario's.
_row("C3.allowance-kept", "C3",
     "A limit is a rate, not a ban: a tenant that keeps sending over its API rate still gets requests through "
     "at that rate, never seconds on end of nothing but 429s (a refusal comes only after an acceptance within "
     "1/rate seconds, whatever it sends).",
     "rate-limit-enforced", _API_LIMITED, TENANTS + "; one tenant sending far above its limit for many seconds",
     ("noisy-tenant",), ("rate-limit-counts-refusals",), count=c.over_allowance(_API_LIMITED, "api"))
# Found 2026-12-02 with a limiter keyed by the token's user: noisy-tenant passed, because every request of a tenant
# came from its manager's token. The bursts now come from each of the tenant's users in turn.
_row("C3.limit-per-tenant-not-user", "C3",
     "A tenant's API allowance is shared by all its users: requests from several users of one tenant together "
     "get no more accepted than rate + burst allow.",
     "rate-limit-enforced", (v.APPOINTMENT_LIST,), TENANTS + "; one tenant's bursts sent by its manager and its "
     "reps together", ("noisy-tenant",), ("rate-limit-per-user",),
     count=c.with_arg((v.APPOINTMENT_LIST,), "burst"))
# Found 2026-12-02: the reference app's Redis pool (redis-py's default) failed a command at once when its 100
# connections were in use, and the limiter failed open on that error as during an outage: 20 to 30 of a burst of
# 120 simultaneous requests got through at 2/s, burst 10. A steady flood never met it (24 users keep at most 24
# requests in flight); the load's bursts (appointment.list_burst, args.burst) do, against a pool of 4 per process.
_row("C3.limit-under-burst", "C3",
     "The API limit holds when a tenant's requests arrive at once: a burst larger than the app's connections "
     "to Redis gets no more accepted than rate + burst allow; while Redis is up, the limiter waits for a "
     "connection instead of failing open.",
     "rate-limit-enforced", (v.APPOINTMENT_LIST,), TENANTS + "; one tenant sending bursts of simultaneous "
     "requests, more than the app's pooled Redis connections", ("noisy-tenant",), ("redis-pool-wait",),
     count=c.with_arg((v.APPOINTMENT_LIST,), "burst"))
# Until 2026-12-02 noisy-tenant sent no call submission or refresh and the checker judged only the API limit: this
# row's cell was "caught" by C3.tenant-limited's violations. Now the load submits and refreshes (a third of its mix)
# under a task limit far below the API's, and the checker judges the task limit (task-over-limit).
_row("C3.task-limit", "C3",
     "Task enqueues are limited per tenant: a tenant over its task allowance gets 429 on POST /calls and "
     "/calls/{id}/refresh, and in no window are more of its submissions and refreshes accepted than the task "
     "rate and burst allow.",
     "rate-limit-enforced", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; one tenant submitting far above its limit",
     ("noisy-tenant",), ("rate-limit-tasks",),
     count=c.over_allowance((v.CALL_SUBMIT, v.CALL_REFRESH), "tasks"))
# The worker's per-tenant limit on Shunya API calls (plan C3) is invisible to the client: a task over it is
# retried later. The stub logs each call's time and tenant (GET /admin/calls), the snapshot carries the log, and
# rate-limit-enforced counts each tenant's calls per window (shunya-over-limit). shunya-quota's tasks would call
# Shunya some ten times a second per tenant against a limit of 3.
_row("C3.shunya-limit", "C3",
     "Shunya API calls are limited per tenant: in no window does the stub receive more of one tenant's job "
     "creations and polls than the app's Shunya rate and burst allow.",
     "rate-limit-enforced", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; tenants whose tasks would call Shunya "
     "far above its limit", ("shunya-quota",), ("shunya-limit",),
     count=c.over_allowance((v.CALL_SUBMIT, v.CALL_REFRESH), "shunya"))

# A busy lock's 409 is "retry" too. Found 2026-12-06 by reading the key store: every keyed refusal under 500 was
# stored, resource-busy included, and no scenario met a busy lock (the app waits 5 s for one). lock-contention holds
# each lock longer than its app waits; the load sends a keyed write refused busy again with its key a second later
# (args.after_busy). A busy lock answered with another 409 is refusals-explained's (refusal-outside-contract).
_row("B1.busy-not-stored", "B1",
     "A write refused 409 resource-busy (a lock held past the app's wait: retry) ran nothing and is not stored "
     "under its Idempotency-Key: the same request sent again with its key runs anew, never answered the "
     "stored 409 as a replay.",
     "idempotent-replay", (v.SESSION_START, v.ASSIGN),
     HOT + "; each lock held longer than the app waits for one", ("lock-contention",), ("busy-stored",),
     count=c.with_arg((v.SESSION_START, v.ASSIGN), "after_busy"))

# A limit's 429 is "not now": the load sends a keyed write refused 429 again with its key a second later
# (args.after_429), as a client does after Retry-After. Found 2026-12-02: the reference app stored the task limit's
# 429 under the key like a 404, so the retry was refused again (replayed, and without Retry-After) for the key's
# lifetime; fixed, and the old behaviour kept as the weakening rate-limit-not-stored.
_row("C3.limit-retryable", "C3",
     "A 429 carries a Retry-After (delay-seconds or an HTTP-date), and is never stored under an "
     "Idempotency-Key: the same request sent again with its key after Retry-After is answered anew, never "
     "a replayed 429.",
     "rate-limit-enforced", tuple(sorted(v.WRITES - {v.WEBHOOK_DELIVER})),
     JOBS + "; one tenant submitting far above its task limit, retrying refused submissions with their keys",
     ("noisy-tenant",), ("rate-limit-not-stored",),
     count=c.with_arg(tuple(sorted(v.WRITES - {v.WEBHOOK_DELIVER})), "after_429"))

# A realistic bug (milliseconds sent as Retry-After's seconds) passed every rule: 200 is valid delay-seconds.
_row("C3.retry-after-bounded", "C3",
     "A 429's Retry-After asks no longer wait than the run's limits can mean: at most twice the time a limit "
     "takes to let burst + 1 requests through (and never less than 5 s allowed).",
     "rate-limit-enforced", tuple(sorted(v.WRITES - {v.WEBHOOK_DELIVER})) + (v.APPOINTMENT_READ,
                                                                             v.APPOINTMENT_LIST),
     TENANTS + "; tenants sending far above their API limit", ("noisy-tenant",), ("retry-after-units",),
     count=c.answered(tuple(sorted(v.WRITES - {v.WEBHOOK_DELIVER})) + (v.APPOINTMENT_READ, v.APPOINTMENT_LIST),
                      429))

# -- D1/D2 tenancy --------------------------------------------------------------------------------
_ALL_TENANT_OPS = (v.SESSION_START, v.SESSION_STOP, v.LEGACY_START, v.LEGACY_STOP, v.ASSIGN, v.UNASSIGN,
                   v.APPOINTMENT_READ, v.APPOINTMENT_LIST, v.SESSION_READ, v.CALL_SUBMIT, v.CALL_READ,
                   v.CALL_REFRESH, v.CONSENT_GRANT, v.PROBE)
_row("D1.no-foreign-data", "D1",
     "No response to tenant A carries tenant B's data (no other company id anywhere in a body).",
     "tenant-isolation", _ALL_TENANT_OPS, TENANTS, ("tenant-probe", "smoke"), ("tenant-guard",))
_row("D1.no-foreign-rows-touched", "D1",
     "No acknowledged operation of tenant A reads or writes a row the final state shows belongs to tenant B.",
     "tenant-isolation", _ALL_TENANT_OPS, TENANTS, ("tenant-probe", "smoke"), ("tenant-guard",))
_row("D2.tenant-from-token", "D2",
     "The tenant comes only from the token: an X-Company-Id header naming another tenant changes nothing.",
     "tenant-isolation", (v.APPOINTMENT_LIST,), TENANTS, ("tenant-header-probe",), ("tenant-from-header",),
     count=c.with_arg((v.APPOINTMENT_LIST,), "header_tenant"))
# Found 2026-12-03 with a company_id query parameter honoured on every route (support's "act as"): tenant-header-probe
# and tenant-probe passed (the header was the only channel tried). Half the header probes now name the other tenant
# in a query parameter (company_id, tenant_id) of a list read from the document.
_row("D2.tenant-not-from-query", "D2",
     "A query parameter naming another tenant (company_id, tenant_id) changes nothing: the token decides, and "
     "no answer carries that tenant's data.",
     "tenant-isolation", (v.PROBE_FILTER,), TENANTS, ("tenant-header-probe",), ("tenant-from-query",),
     count=c.with_arg((v.PROBE_FILTER,), "target_tenant"))
# Found 2026-12-02 with a list that dropped its tenant filter when filtered by rep: tenant-probe passed, its probes
# put foreign ids in paths and bodies only. The probe now also puts them in a read's query string (query_field).
_row("D2.ids-in-queries", "D2",
     "A read filtered by another tenant's id (a query parameter such as assigned_rep_id) answers exactly as the "
     "same read filtered by a missing id, and never with another tenant's rows.",
     "tenant-isolation", (v.PROBE,), TENANTS + "; reps assigned in every tenant", ("tenant-probe",),
     ("list-filter-tenant",), count=c.with_arg((v.PROBE,), "query_field"))
# Found 2026-12-03 with a dead-letter list whose ?status= branch rebuilt its statement without the tenant: tenant-probe
# passed (no load filtered a list by status). The probes now filter every read by each value its document enumerates.
_row("D2.filters-scoped", "D2",
     "A read filtered by any value its API document enumerates (a status of sessions or dead letters) answers the "
     "tenant's own rows only: no filter is a way around the tenant condition.",
     "tenant-isolation", (v.PROBE_FILTER,), TENANTS + "; dead letters and sessions of every status in every tenant",
     ("tenant-probe",), ("dead-letter-filter-tenant",),
     count=lambda history: sum(1 for invoke, _ in c.completed(history, (v.PROBE_FILTER,))
                               if invoke.args.get("target_tenant") is None and not invoke.args.get("own_read")))
# Found 2026-12-06 by a source-mutation sweep (dropwhere 292): the assignments list of an appointment without the
# appointment's condition answered every company's assignments to its owner, and smoke passed: no load read that
# list as its owner (cross-tenant probes send another tenant's id, or a missing one). The probes now send every
# read of the document for the tenant's own rows, one route after the other.
_row("D2.own-reads-scoped", "D2",
     "Every read the API document lists, sent by a tenant's user for the tenant's own rows, answers that tenant's "
     "data only: no list or read by id carries another tenant's rows.",
     "tenant-isolation", (v.PROBE_FILTER,), TENANTS + "; assignments in every tenant", ("tenant-probe",),
     ("assignment-list-appointment",), count=c.with_arg((v.PROBE_FILTER,), "own_read"))
# Found 2026-12-06 by a refusal mutant (a malformed id answered 403) that no scenario met: no load sent an id that is
# no id, so an app that parses ids unguarded (a 500 for every such request) passed. A quarter of the path probes now
# send the route once more with a malformed id, every route in turn.
_row("D2.malformed-id-refused", "D2",
     "A path id that is no id at all (a word, a negative number, a quoted SQL condition, 300 characters) is refused "
     "400, 404 "
     "or 422 on every route that takes one: never served, never a server error.",
     "tenant-isolation", (v.PROBE,), TENANTS, ("tenant-probe",), ("id-parse-unguarded",),
     count=c.with_arg((v.PROBE,), "malformed_id"))
# Found 2026-12-02 with a guard that scoped only managers' lookups: tenant-probe passed, every probe came from the
# manager's token. Half the probes now come from a rep, on the routes the document lets a rep call (as_role).
_row("D2.every-role", "D2",
     "Another tenant's id answers 404 whoever of the tenant asks: a rep's request as surely as a manager's.",
     "tenant-isolation", (v.PROBE,), TENANTS + "; reps with tokens in every tenant", ("tenant-probe",),
     ("tenant-guard-reps",), count=c.with_arg_value((v.PROBE,), "as_role", "rep"))
# Found 2026-12-04 with unassign open to any user of the tenant: tenant-probe passed, its authorization probes drew
# route and caller at random and never sent a rep to unassign. They now take every (route, caller) pair in turn.
_row("D2.manager-routes-403", "D2",
     "A rep calling a route that needs the manager role (every one the OpenAPI document marks, writes included) "
     "is refused 403, and served nothing.",
     "authorization", (v.PROBE_AUTHZ,), TENANTS + "; reps with tokens in every tenant", ("tenant-probe",),
     ("manager-role",), count=c.with_arg_value((v.PROBE_AUTHZ,), "role", "rep"))
_row("D2.tokens-verified", "D2",
     "A request with no token, an expired token or a forged one is refused 401 on every route, before anything "
     "else is looked at.",
     "authorization", (v.PROBE_AUTHZ,), TENANTS + "; an expired token per tenant", ("tenant-probe",),
     ("token-expiry",), count=c.with_arg_value((v.PROBE_AUTHZ,), "role", "expired"))
# Found 2026-12-04 with an app that kept each verified token for good (an lru_cache on the decode): tenant-probe
# passed, its only expired token had expired before its first use, which such an app refuses like any other.
_row("D2.tokens-lapse", "D2",
     "A token the app served while it was live is refused 401 once it has expired: the expiry is checked on "
     "every request, not once per token.",
     "authorization", (v.PROBE_AUTHZ,),
     TENANTS + "; a manager token per tenant that the load signs (with the stack's key) to expire during the run",
     ("tenant-probe",), ("token-cache-expiry",), count=lapsed_after_served)
# Found 2026-12-04 with a start that locked its appointment FOR UPDATE SKIP LOCKED: session-start-storm passed with
# 2,678 starts answered 404 for the tenant's own appointment (no rule judged a 404 of one's own row but a stop's).
_row("D2.own-rows-found", "D2",
     "A request that names only rows of the caller's own tenant that exist (an appointment, a session, a call, a "
     "rep, an appointment to delete) is never answered 404: the guard refuses other tenants, not its own.",
     "tenant-isolation", (v.SESSION_START, v.LEGACY_START, v.ASSIGN, v.UNASSIGN, v.APPOINTMENT_READ, v.CALL_SUBMIT,
                          v.CALL_READ, v.CALL_REFRESH, v.DELETION_REQUEST), TENANTS, ("session-start-storm",),
     ("start-skip-locked",))
_row("D2.not-found-not-forbidden", "D2",
     "Another tenant's id answers 404, never 403 or another refusal that tells it exists.",
     "tenant-isolation", (v.PROBE,), TENANTS, ("tenant-probe",), ("tenant-404",))
_D2_ROUTES = (
    ("GET", "/api/v1/appointments/{id}"),
    ("PATCH", "/api/v1/appointments/{id}"),
    ("DELETE", "/api/v1/appointments/{id}"),
    ("GET", "/api/v1/appointments/{id}/assignments"),
    ("POST", "/api/v1/appointments/{id}/assign"),
    ("POST", "/api/v1/appointments/{id}/unassign"),
    ("GET", "/api/v1/appointments/{id}/consents"),
    ("POST", "/api/v1/appointments/{id}/consents"),
    ("GET", "/api/v1/reps/{id}"),
    ("GET", "/api/v1/recordings/sessions/{id}"),
    ("POST", "/api/v1/recordings/sessions/{id}/stop"),
    ("POST", "/api/v1/recordings/{id}/stop"),
    ("GET", "/api/v1/calls/{id}"),
    ("POST", "/api/v1/calls/{id}/refresh"),
    ("POST", "/api/v1/dead-letters/{id}/retry"),
    ("POST", "/api/v1/deletions/{id}/confirm"),
)
# Every route is probed in tenant-probe: ids of a kind no action makes are created through the API's own create
# route by the probe (calls, legacy recordings, deletion requests), dead letters come from the seed. Measured
# (verify --tries 1 --only tenant-guard --scenario tenant-probe, 2026-12-01): weakened, every one of these
# routes answered another tenant's id with 200/202/409/422; all fixes on, 404 on every route.
for _method, _template in _D2_ROUTES:
    _slug = _template.removeprefix("/api/v1/").replace("/{id}", "").replace("/", "-")
    _row(f"D2.cross-tenant-404.{_method.lower()}-{_slug}", "D2",
         f"{_method} {_template} with another tenant's id answers 404 with exactly the body of a missing id, and "
         "changes nothing of the other tenant's.",
         "tenant-isolation", (v.PROBE,), TENANTS + "; ids of every kind in every tenant", ("tenant-probe",),
         ("tenant-guard",), count=c.probe_route(_method, _template))
# Every write whose body names an id (probes.body_id_fields) is probed with another tenant's id there and a
# missing one as control; counted by the probes that carry body_field; tenant-isolation also flags a final-state
# row naming another tenant's row (foreign-reference). Measured (verify --tries 1 --only tenant-guard --scenario
# tenant-probe, 2026-12-01): weakened, session/legacy starts, calls and assignments answered 2xx/409 for another
# tenant's appointment or rep (11 foreign-reference rows); all fixes on, every body probe 404.
_row("D2.ids-in-bodies", "D2",
     "An id of another tenant in a request body (appointment_id of a session start, a legacy start or a call, "
     "rep_id of an assignment) answers 404 like a missing one, and writes nothing.",
     "tenant-isolation", (v.PROBE,), TENANTS, ("tenant-probe",), ("tenant-guard",),
     count=c.with_arg((v.PROBE,), "body_field"))
# Found 2026-12-05 by a source-mutation sweep of the reference app (the company deletion's tenant check removed):
# tenant-probe passed, its deletion probes all sent scope: appointment (sample_body took the enum's first value)
# and never named another tenant's company. Probes now vary enumerations and take the kind the scope names.
_row("D2.company-deletion-own", "D2",
     "A company deletion request names the caller's own company only: another tenant's company id answers 404 like "
     "a missing one and creates no request.",
     "tenant-isolation", (v.PROBE,), TENANTS, ("tenant-probe",), ("company-deletion-target",),
     count=c.with_arg_value((v.PROBE,), "body_field", "target_id"))

# -- E1 to E5 observability -----------------------------------------------------------------------
# The load records the X-Trace-Id each request sent (args.trace_id); trace-echoed (_task_traces) checks the task
# records of each submitted call: its submit task carries that id, its job's polls that id or a refresh's. Log lines:
# tests/reference_app/test_tracing.py. Measured (verify --tries 1 --only trace-propagation --scenario smoke,
# 2026-12-01): weakened, 175 of 175 tasks judged carried no trace id; all fixes on, 222 of 222 carried their request's.
_row("E1.trace-to-tasks", "E1",
     "The trace id of a request (X-Trace-Id or traceparent) reaches the tasks it enqueues: their task "
     "records carry it.",
     "trace-echoed", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS, ("smoke",), ("trace-propagation",))
# Found 2026-12-03: the row above promised the log lines too, but no checker read a log, so workers that logged
# without the trace id passed. The run now reads the workers' JSON logs (harness/runner/task_logs.py).
_row("E1.trace-in-task-logs", "E1",
     "A task logs with the trace id its record carries: every end-of-run log line of the task (succeeded, "
     "retry, failed) carries it, so a request's trace leads to its tasks' logs.",
     "trace-echoed", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; task workers writing JSON log lines the run reads",
     ("smoke",), ("task-log-trace",), judged_by="task_logs_judged")
_row("E1.trace-on-responses", "E1",
     "Every response carries X-Trace-Id, the request's own when it sent one.",
     # The load sends an X-Trace-Id with every request and records whether the answer echoed it. Measured (verify
     # --tries 1 --only trace-echo, 2026-12-01): weakened, 673 of 673 answers carried another id; all on, 882 of 882.
     "trace-echoed", _ALL_TENANT_OPS, TENANTS, ("smoke",), ("trace-echo",))
# Found 2026-12-03 in the reference app itself: an error no handler maps was answered 500 by Starlette's outermost
# middleware, outside the trace middleware, without X-Trace-Id (15 of 15 such answers in db-latency). No scenario
# that runs trace-echoed made one; db-latency's PostgreSQL resets do.
_row("E1.trace-on-error-answers", "E1",
     "An error answer carries X-Trace-Id too: a 500 for an error no handler maps has the request's trace id, as "
     "every other answer.",
     "trace-echoed", (v.SESSION_START, v.ASSIGN), HOT + "; the PostgreSQL link reset mid-request", ("db-latency",),
     ("trace-on-errors",), judged_by="error_answers_judged")
# Plan E1 item 3, "add trace ID to all error logs", had no row until 2026-12-03: the run read only the workers'
# task lines. The app's error lines are read now (harness/runner/error_logs.py), and each 500 held against them.
_row("E1.trace-in-error-logs", "E1",
     "A request answered 500 left an error log line carrying its trace id: an error the client reports can be "
     "found in the app's logs from the trace id it was given.",
     "trace-echoed", (v.SESSION_START, v.ASSIGN), HOT + "; the PostgreSQL link reset mid-request; the app writing "
     "JSON log lines the run reads", ("db-latency",), ("error-log-trace",), judged_by="error_logs_judged")
# Found 2026-12-03 with an app that read X-Trace-Id alone: smoke passed, no request sent a traceparent.
_row("E1.traceparent-honoured", "E1",
     "A request that gives its trace id as a W3C traceparent (and no X-Trace-Id) gets that trace-id back as "
     "X-Trace-Id, and the tasks it enqueues carry it.",
     "trace-echoed", _ALL_TENANT_OPS, TENANTS + "; one request in four traced by traceparent alone", ("smoke",),
     ("traceparent-ignored",), count=c.with_arg_value(_ALL_TENANT_OPS, "trace_via", "traceparent"))
_row("E2.dedupe-counters-agree", "E2",
     "webhook_dedupe_misses_total grows by exactly the call_analyses rows created; the webhook's dedupe hits "
     "by at least the deliveries answered duplicate and, with its misses, by no more than the deliveries "
     "that reached the app.",
     "metrics-agree", (v.WEBHOOK_DELIVER, v.CALL_SUBMIT), JOBS, ("webhook-poll-storm", "smoke"),
     ("dedupe-metrics",))
# Found 2026-12-02 with every duplicate counted under source="webhook" (polls' too): webhook-poll-storm passed, no
# checker read the hit counter (E2.dedupe-counters-agree's "hits" half was not judged). metrics-agree now bounds
# the webhook's hits from below (deliveries answered duplicate) and, with its misses, from above (deliveries that
# reached the app: the load's and the stub's). That upper bound had the slack of every delivery the app refused
# (401 forged, 404 unknown job: 208 of 3,561 in one all-on run), more than the poll hits, so this weakening was not
# caught; deliveries answered a 4xx other than 409 no longer count as reached (the stub counts its own,
# deliveries_refused), which left a slack of 0 in that run. And the stub now sets off a
# webhook from a quarter of the polls of a finished job before it answers them (webhook_on_poll_rate): those polls
# find the job applied, a poll's hit each (2026-12-02, one run each: all on, 2,444 counted against 2,444 reached;
# weakened, 2,755 against 2,654).
_row("E2.dedupe-hits-by-source", "E2",
     "webhook_dedupe_hits_total{source=\"webhook\"} counts the webhook's duplicates: at least the deliveries "
     "answered duplicate, and with the webhook's misses no more than the deliveries that reached the app and "
     "were not refused (a poll's hit is counted under source=\"poll\").",
     "metrics-agree", (v.WEBHOOK_DELIVER, v.CALL_SUBMIT), JOBS + "; jobs both delivered and polled",
     ("webhook-poll-storm",), ("dedupe-hit-source",))
_row("E2.replay-counter-agrees", "E2",
     "idempotency_keys_total{outcome=\"replay\"} grows by at least the replays the clients saw.",
     # idempotency-replay-storm replays on purpose; session-start-storm measured 0 replayed answers. Measured (verify
     # --tries 1 --only replay-metrics, 2026-12-01): weakened, the counter grew by 0 for 28 replays seen; all on, pass.
     "metrics-agree", (v.SESSION_START, v.SESSION_STOP, v.ASSIGN), HOT, ("idempotency-replay-storm",),
     ("replay-metrics",), count=c.key_repeat((v.SESSION_START, v.SESSION_STOP, v.ASSIGN)))
_row("E2.sessions-counter-agrees", "E2",
     "recording_sessions_started_total grows by exactly the recording_sessions rows created (short only by the "
     "starts answered an error while the database link was faulty: a commit whose acknowledgement was lost).",
     # Refused starts (409) are what a counter in the wrong place also counts: session-start-storm has many. Measured
     # (verify --tries 1 --only session-metrics, 2026-12-01): caught 1/1; all fixes on, pass.
     "metrics-agree", (v.SESSION_START, v.LEGACY_START), HOT, ("session-start-storm",), ("session-metrics",))
_row("E2.counters-from-start-up", "E2",
     "Every counter an alert rule uses exists in /metrics from start-up, for the label values the rules name.",
     "metrics-agree", (v.WEBHOOK_DELIVER, v.CALL_SUBMIT), TENANTS, ("smoke",), ("metrics-from-start-up",))
_row("E2.shunya-failures-counted", "E2",
     "shunya_job_failures_total and shunya_api_errors_total count every failed job and failed Shunya call.",
     # metrics-agree compares them with the failed jobs recorded and the errors the Shunya stub says it answered.
     # Measured (verify --tries 1 --only shunya-failure-metrics, 2026-12-01): weakened, 0 counted for 77 failed jobs
     # and 402 errors answered; all fixes on, 55 == 55 and 324 >= 324.
     "metrics-agree", (v.CALL_SUBMIT,), JOBS + "; Shunya failing", ("shunya-outage",), ("shunya-failure-metrics",),
     judged_by="shunya_errors_judged")
# Found 2026-12-03 with a metrics middleware that counted a request only when its handler returned: every
# scenario passed, while an error escaping as an exception (a reset PostgreSQL link) was answered 500 and never
# counted, so E5's error-rate alert (5xx over all answers) stays quiet through an outage. db-latency's resets make
# such errors. Measured (stormproof run db-latency, 2026-12-03): weakened, 0 counted for 16 5xx answers; all
# fixes on, 15 == 15.
_row("E2.server-errors-counted", "E2",
     "http_requests_total counts every answer the app gave, a 5xx from an exception escaping its handler "
     "included: its 5xx series grow by at least the 5xx answers the clients saw (E5's error-rate alert reads them).",
     "metrics-agree", (v.SESSION_START, v.ASSIGN), HOT + "; the PostgreSQL link reset mid-request",
     ("db-latency",), ("server-errors-counted",), judged_by="server_errors_judged")
# Found 2026-12-03 with a client that labelled every error create_job: shunya-outage passed (the total was right).
# Found again 2026-12-05, by this row's judged count: in shunya-outage, 11 runs of 13 met no poll error (its backlog
# lets the webhook apply every job before its poll asks Shunya), and the weakening escaped there. shunya-stuck-jobs'
# lost jobs are polled over and over while Shunya answers one call in five 503: every run meets both endpoints.
_row("E2.shunya-errors-by-endpoint", "E2",
     "shunya_api_errors_total counts Shunya API errors by endpoint: errors on job creations and on polls each "
     "move the counter under their own endpoint label.",
     "metrics-agree", (v.CALL_SUBMIT,), JOBS + "; Shunya failing on creations and polls", ("shunya-stuck-jobs",),
     ("shunya-error-endpoint",), judged_by="shunya_error_endpoints_judged")
# Found 2026-12-05 by a source-mutation sweep of the reference app (the client's 4xx check, and its check that an
# answer is a JSON object, each removed): every scenario passed, as the Shunya stub never refused a job nor answered
# anything but an object or an error status. shunya-stuck-jobs' stub now refuses a few calls 422 and answers a few
# 200 with a JSON array; metrics-agree counts both among the errors the stub answered (its upstream_stats).
_row("E2.shunya-refusals-counted", "E2",
     "A Shunya call answered with a refusal (a 4xx) is a failed call: counted in shunya_api_errors_total, never "
     "read as the job it asked for.",
     "metrics-agree", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya refusing a share of its calls 422",
     ("shunya-stuck-jobs",), ("shunya-refusal-checked",), judged_by="shunya_refusals_judged")
_row("E2.shunya-malformed-counted", "E2",
     "A Shunya answer that is not a JSON object (a gateway's page, a changed API) is a failed call: counted in "
     "shunya_api_errors_total, never used as the job.",
     "metrics-agree", (v.CALL_SUBMIT, v.CALL_REFRESH), JOBS + "; Shunya answering a share of its calls 200 with a "
     "JSON array", ("shunya-stuck-jobs",), ("shunya-answer-shape-checked",), judged_by="shunya_garbage_judged")
_row("E3.queue-depth-gauge", "E3",
     "celery_queue_depth reports the queue's backlog at scrape time (zero once the run is quiet).",
     # metrics-agree reads the gauge sampled during the load beside the broker's own queue length; shunya-outage
     # pauses the worker for a few seconds so that tasks pile up. Measured (verify --tries 1 --only queue-depth-gauge,
     # 2026-12-01): weakened, 0 in all 10 samples where the broker held a backlog (up to 386); all on, 10 of 10 shown.
     "metrics-agree", (v.CALL_SUBMIT,), JOBS + "; a paused worker", ("shunya-outage",), ("queue-depth-gauge",))
# Found 2026-12-03 with a gauge reading a key the transport never writes: smoke and shunya-outage passed (nothing
# judged the gauge). The sampler now reads the broker's unacked hash beside each scrape.
_row("E3.active-tasks-gauge", "E3",
     "celery_active_tasks reports the tasks delivered to workers and not yet acknowledged: while the broker "
     "holds such tasks throughout a scrape, the gauge shows them.",
     "metrics-agree", (v.CALL_SUBMIT,), JOBS + "; gauges sampled every second during the load",
     ("shunya-outage", "smoke"), ("active-tasks-gauge",))
_row("E4.db-pool-gauges", "E4",
     "db_pool_size, db_pool_active, db_pool_idle and db_pool_overflow exist and active + idle never exceed "
     "size + overflow.",
     # metrics-agree reads them in the final scrape; session-start-storm checks out thousands of connections.
     # Measured (verify --tries 1 --only pool-gauges, 2026-12-01): weakened, active 896 + idle 20 > size 20 + overflow
     # 0; all fixes on, pass.
     # Exercised by the requests that check a connection out of the pool (its row named none until 2026-12-02, so
     # every run counted 0 and verify called the weakened try an escape: "not exercised").
     "metrics-agree", (v.SESSION_START, v.SESSION_STOP), TENANTS, ("session-start-storm",), ("pool-gauges",))
# Found 2026-12-03 with gauges read from a pool of their own (never used): consistent, and smoke passed.
_row("E4.pool-gauges-live", "E4",
     "The pool gauges read the pool that serves the requests: while the load runs, it holds connections "
     "(db_pool_active + db_pool_idle >= 1 in the samples taken during the load), so a pool-exhaustion alert can fire.",
     "metrics-agree", (v.SESSION_START, v.SESSION_STOP), TENANTS + "; gauges sampled every second during the load",
     ("smoke", "session-start-storm"), ("pool-gauges-source",))
_row("E5.error-rate-slo", "E5",
     "The run's error rate (5xx and timeouts among requests, leaving out those sent while the schedule had "
     "taken the API itself away) stays under the scenario's error_rate_max (1 %), Redis restarts included: "
     "locks and rate limits fail open and the database guards decide.",
     # Every run checks it; redis-flap is where it is at risk: two Redis kills of 3 s under load, with an
     # error_rate_max of 2 % (every fix on: 0 errors in every run since the app's Redis pool fix, a1b0c23).
     "slo-error-rate", _ALL_TENANT_OPS, TENANTS, ("redis-flap",), ("redis-fail-open",))
# Found 2026-12-04 with an app whose unassign raised on an appointment nobody held: assignment-storm answered
# 16 % of its requests 500 and passed (the error-rate SLO is reported apart from the verdict, and no invariant
# judged an unassign's answer). Judged in every run (run_plan.ALWAYS_CHECKS), on every route.
_row("E5.no-unexplained-errors", "E5",
     "With no fault in place, no request is answered 5xx, whatever its route: with its dependencies up the app "
     "answers a success or a definite refusal (a 503 with Retry-After sheds load and is not an error).",
     "server-errors-explained", _ALL_TENANT_OPS, TENANTS + "; appointments unassigned while nobody holds them",
     ("assignment-storm",), ("unassign-idempotent",), judged_by="answers_judged")
# Found 2026-12-05 by a middleware refusing 12 % of the requests at random (400, 403, 409, 422) over seven scenarios:
# the refusals of starts, reads, unassigns, submissions, deliveries and deletions were judged by no rule, and an
# unassign refused 409 "not assigned" (a common reading of REST) passed assignment-storm. Judged in every run.
_row("E5.no-unexplained-refusals", "E5",
     "A well-formed request is refused only as its route's contract allows: 404, 429, its own 409s (a start's "
     "active-session-exists or consent-required, an assign's appointment-already-assigned or rep-double-booked, "
     "...) and the transient resource-busy or idempotency-key-in-flight; never a 400 or 422 of a valid body, a "
     "403 of a manager, or a 409 naming a problem the route does not have (unassigning an unassigned appointment "
     "answers it unassigned).",
     "refusals-explained", _ALL_TENANT_OPS, TENANTS + "; appointments unassigned while nobody holds them",
     ("assignment-storm",), ("unassign-refuses-unassigned",), judged_by="answers_judged")
# Found 2026-12-05 by a source-mutation sweep (bench/mutation_sweep.py): with any of the reference app's body validators
# removed (NUL in text, a window without offset or ending before it starts) every scenario passed, as the load only
# sent valid bodies. probe.malformed (harness/load/malformed.py) now breaks each write's body in every way its own
# schema refuses, route by route from the OpenAPI document. Judged in every run that sends them (the default mix).
_row("E5.malformed-refused", "E5",
     "A write whose body its own schema refuses (a required property missing, a wrong type, a NUL in text, a string "
     "over its maxLength, a number out of range, a value outside its enum, a date-time without offset, a window "
     "that ends before it starts, a property the schema does not list) is refused 4xx before anything is written: "
     "never a 2xx, never a 5xx.",
     "input-validated", (v.PROBE_MALFORMED,), TENANTS, ("tenant-probe",), ("storable-text",),
     judged_by="malformed_judged")
_row("E5.appointment-window-refused", "E5",
     "An appointment is created only with a window whose date-times carry their offset and that ends after it "
     "starts: a window without offset, or ending before it starts, is refused 4xx (never created, never a 5xx); "
     "A3's overlap guard reads the window as a range.",
     "input-validated", (v.PROBE_MALFORMED,), TENANTS, ("tenant-probe",), ("appointment-window-checked",),
     count=c.plus(c.with_arg_value((v.PROBE_MALFORMED,), "case", "naive-datetime"),
                  c.with_arg_value((v.PROBE_MALFORMED,), "case", "inverted-window")))
_row("E5.latency-slo", "E5",
     "The run's p95 latency stays under the scenario's latency_p95_ms (200 ms).",
     "slo-latency-p95", _ALL_TENANT_OPS, TENANTS, ("smoke",),
     # Measured: the session 9 soak (36 runs, every fix on, a shared 2-core machine) broke this SLO in 4 runs
     # (assignment-storm, session-start-storm twice, smoke): a weakening's cell would prove nothing here.
     gap="no weakening: with every fix on, a shared 2-core machine breaks this SLO in some runs (4 of 36 "
         "soak runs), so no cell could show a weakening's teeth; judged in every run, reported apart")

# -- F1 to F3 data lifecycle ----------------------------------------------------------------------
_row("F1.default-retention", "F1",
     "Without a retention policy, a retention run deletes the tenant's calls older than 90 days and its "
     "appointments ended more than 365 days ago.",
     "retention-enforced", (v.RETENTION_RUN,), TENANTS + "; calls and appointments older than the defaults",
     ("lifecycle-under-load",), ("retention-defaults",))
# The seed (at_risk) gives every tenant a call and an appointment past the defaults and one of each within them,
# and the first tenant a 30/100-day policy; every retention.run names those rows (args.rows), so
# retention-enforced sees both a row kept too long and one deleted too early, the tenant's or another's.
# Measured (verify --tries 1 --only retention-defaults,retention-tenant-scope,retention-audit, 2026-12-01): weakened,
# each cell 2 violations (defaults: the default tenant's expired call and appointment kept; tenant scope: the
# other tenant's retained call and appointment deleted; audit: both tenants' old audit rows deleted); all fixes on,
# 2 tenants' runs judged, 0.
_row("F1.policy-respected", "F1",
     "Retention never deletes a row younger than its tenant's policy, nor another tenant's rows.",
     "retention-enforced", (v.RETENTION_RUN,), TENANTS + "; one tenant with a short policy",
     ("lifecycle-under-load",), ("retention-tenant-scope",))
# Found 2026-12-02 with a retention that aged appointments from their start: lifecycle-under-load passed, no seeded
# appointment sat across a cutoff. The seed now gives each tenant one that began before its cutoff and ended after.
_row("F1.age-from-end", "F1",
     "An appointment's age counts from its end: one that began before the tenant's cutoff and ended after it "
     "survives a retention run.",
     "retention-enforced", (v.RETENTION_RUN,), TENANTS + "; an appointment across each tenant's cutoff",
     ("lifecycle-under-load",), ("retention-from-start",))
# Found 2026-12-05 by a mutation sweep: a retention loop that stopped after its first batch passed
# lifecycle-under-load, since every tenant's expired rows fitted in one batch of 500. The scenario now runs
# retention in batches of one, and the seed gives each tenant at least two expired rows of each kind; since the
# load runs retention about 30 times per tenant, later runs clear what the first left, so the final state alone
# passed it too (verify 0/2, 2026-12-06): each run's answer counts what it deleted (run-left-expired).
_row("F1.every-batch", "F1",
     "A retention run deletes every expired row of its tenant, however many batches (of "
     "STORMPROOF_RETENTION_BATCH_SIZE rows) that takes.",
     "retention-enforced", (v.RETENTION_RUN,), TENANTS + "; at least two expired calls and appointments per "
     "tenant, retention in batches of one row", ("lifecycle-under-load",), ("retention-batch-full",),
     judged_by="runs_counted_judged")
# Found 2026-12-06 by reading the coverage of every scenario: the app's periodic retention (plan F1's cleanup task,
# beat -> enforce_all) never ran in any scenario, every run was a request's, so a schedule that visited only the
# companies with a policy row passed. retention-schedule runs the beat every 2 s and asks for no run.
_row("F1.scheduled-retention", "F1",
     "The app's periodic retention, run by its own schedule with no request asking, deletes every tenant's rows "
     "past its retention (a tenant on the defaults as much as one with a policy of its own) and none within it.",
     "retention-enforced", (v.RETENTION_POLICY_READ,), TENANTS + "; rows past and within the defaults and one "
     "tenant's short policy; the stack's beat running retention every 2 s", ("retention-schedule",),
     ("retention-schedule-policies",), judged_by="scheduled_runs_judged")
# Found 2026-12-04 with a PUT /retention-policy that stored the call days as the appointment days: every scenario
# passed, no load sent the route (the seed wrote the policy). The retention turn now reads the policy and sets the
# seeded one again through the API; retention-enforced judges the answers and the stored row.
_row("F1.policy-stored", "F1",
     "A manager's PUT /retention-policy answers, and stores, the days it was sent; GET /retention-policy answers "
     "the policy in force (the tenant's own, or the defaults).",
     "retention-enforced", (v.RETENTION_POLICY_PUT, v.RETENTION_POLICY_READ), TENANTS + "; one tenant with a short "
     "policy the load sets (the seed stores a day longer)", ("lifecycle-under-load",), ("policy-put-fields",),
     count=c.by_operations((v.RETENTION_POLICY_PUT,)))
_row("F1.audit-survives", "F1",
     "Deletion audit rows are never deleted, by retention or anything else.",
     "deletion-audited", (v.RETENTION_RUN, v.DELETION_CONFIRM), TENANTS + "; audit rows older than any retention",
     ("lifecycle-under-load",), ("retention-audit",))
_row("F2.audited", "F2",
     "Every executed deletion has its deletion_audit row (who asked, who confirmed, scope, target, counts), "
     "written in the same transaction as the deletion.",
     "deletion-audited", (v.DELETION_CONFIRM,), TENANTS + "; managers who request and confirm deletions",
     ("lifecycle-under-load",), ("deletion-audit",))
# Found 2026-12-03 with an audit written with zero counts: lifecycle-under-load passed (no rule read the counts).
_row("F2.audit-counts", "F2",
     "An executed deletion's audit row counts what it erased: the appointment, and at least each consent and call "
     "of it that existed when it was confirmed.",
     "deletion-audited", (v.DELETION_CONFIRM,), TENANTS + "; appointments with two consents and a call, deleted",
     ("lifecycle-under-load",), ("deletion-audit-counts",))
_row("F2.deleted-entirely", "F2",
     "After a confirmed appointment deletion nothing of it remains: no appointment, consent, assignment, "
     "recording session or call of it.",
     "deletion-audited", (v.DELETION_CONFIRM,), TENANTS, ("lifecycle-under-load",), ("deletion-cascade",))
# Found 2026-12-02 with a pending check that let an executed request through (lifecycle-under-load passed: no
# deletion was ever confirmed twice). Half the executed deletions are now confirmed again (args.again).
_row("F2.runs-once", "F2",
     "A deletion runs once: a confirmation sent after one was answered 2xx gets a refusal (409 "
     "deletion-not-pending) or the first answer again, never a second run that rewrites its audit row.",
     "deletion-audited", (v.DELETION_CONFIRM,), TENANTS + "; executed deletions confirmed a second time",
     ("lifecycle-under-load",), ("deletion-reconfirm",), count=c.with_arg((v.DELETION_CONFIRM,), "again"))
# Found 2026-12-03: a confirmation that read its request without locking it passed lifecycle-under-load, whose
# second confirmations were all sent after the first answered. A share of the confirmations now go as a double click.
_row("F2.confirm-once-together", "F2",
     "Two confirmations of one deletion sent at once (a double click) run it once: one answers 2xx, the other "
     "409 deletion-not-pending or the same answer, never a 5xx and never a second run.",
     "deletion-audited", (v.DELETION_CONFIRM,), TENANTS + "; deletions confirmed twice at once",
     ("lifecycle-under-load",), ("deletion-confirm-lock",), count=c.with_arg((v.DELETION_CONFIRM,), "together"),
     judged_by="confirmed_together")
# Found 2026-12-05 by a mutation sweep (boolop): the pending check inverted refused every confirmation 409 "already
# executed" and lifecycle-under-load passed: no rule judged a refused confirmation. deletion-audited's confirm-refused
# judges the first confirmation of each request sent with its token, in time, with nothing before it.
_row("F2.confirmed-deletion-runs", "F2",
     "A confirmation sent with its request's token before it expires runs the deletion: the first such "
     "confirmation of a pending request, with nothing else taking its target first, is never refused.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM), TENANTS + "; deletion requests confirmed in time",
     ("lifecycle-under-load",), ("deletion-pending-status",), judged_by="first_confirms_judged")
# Found 2026-12-06 by a source-mutation sweep of refusals (a problem raised with the wrong kind): the confirmation's
# "not pending" refusal raised as not-found passed lifecycle-under-load, as any refusal of a second confirmation
# was accepted. tenant-isolation's own-row-not-found now judges confirmations too, against the requests table.
_row("F2.reconfirm-not-pending", "F2",
     "A confirmation of a deletion request that is no longer pending (executed or expired) answers 409 "
     "deletion-not-pending, never 404: the request is still there.",
     "tenant-isolation", (v.DELETION_CONFIRM,), TENANTS + "; executed deletions confirmed a second time",
     ("lifecycle-under-load",), ("not-pending-not-found",), count=c.with_arg((v.DELETION_CONFIRM,), "again"))
_row("F2.confirm-required", "F2",
     "POST /deletions deletes nothing; only a confirmation with its token, before it expires, deletes.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; deletion requests confirmed with a wrong token first, some never confirmed",
     ("lifecycle-under-load",), ("deletion-token",), count=c.with_arg((v.DELETION_CONFIRM,), "wrong_token"))
# Found 2026-12-03 with a start that did not expect its appointment's foreign key to refuse it: lifecycle-under-load
# passed, no start ever raced a deletion. Half the confirmations now go together with a start on the appointment.
_row("F2.start-racing-deletion", "F2",
     "A recording started while its appointment's deletion is confirmed comes first (and goes with the "
     "appointment) or is refused 404 like a missing appointment; never a 5xx, and no session outlives it.",
     "single-active-session", (v.SESSION_START, v.DELETION_CONFIRM),
     TENANTS + "; consented appointments deleted while a session starts on them",
     ("lifecycle-under-load",), ("start-deleted-appointment",),
     count=c.with_arg((v.SESSION_START,), "racing_deletion"))
# Found 2026-12-03 with an app that found the request by the token sent: lifecycle-under-load passed, every wrong
# token was a made-up one. Half the wrong tokens are now another pending request's.
_row("F2.token-of-its-request", "F2",
     "A confirmation confirms the request its URL names: the token of another pending request of the tenant "
     "is refused like any wrong token, and deletes neither appointment.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; deletion requests left pending, whose tokens confirm another request",
     ("lifecycle-under-load",), ("deletion-token-lookup",),
     count=c.with_arg_value((v.DELETION_CONFIRM,), "other_request_token", True))
# Found 2026-12-03 with an app that never compared expires_at: lifecycle-under-load passed, no confirmation was
# ever sent late. The scenario's TTL is now 4 s and a sixth of the requests are confirmed once it is over.
_row("F2.confirm-expires", "F2",
     "A confirmation sent after its request's expires_at deletes nothing: it is refused (409 "
     "deletion-not-pending) and the appointment stays, whoever sends the token.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; a confirmation TTL of a few seconds; deletion requests confirmed after it",
     ("lifecycle-under-load",), ("deletion-expiry",),
     count=c.with_arg_value((v.DELETION_CONFIRM,), "expired", True))
# Found 2026-12-03 reading the reference app: DELETE /appointments/{id} hard-deleted at once, unconfirmed and
# unaudited, its calls kept with no appointment; no load sent it on a tenant's own appointment, so nothing judged
# it. Half the load's deletion requests now go through the route (args.route "delete").
_row("F2.every-route-confirmed", "F2",
     "Every way to delete an appointment waits for the confirmation: DELETE /appointments/{id} deletes nothing "
     "by itself; the appointment goes only with a confirmation carrying its request's token, audited and with "
     "everything of it.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; appointments with consents and a call, asked deleted through DELETE /appointments/{id}",
     ("lifecycle-under-load",), ("appointment-delete-direct",),
     count=c.with_arg_value((v.DELETION_REQUEST,), "route", "delete"))
# Found 2026-12-04: no load ever deleted a company, so a company deletion that forgot a table or took another
# tenant's rows passed every scenario. The seed's disposable company is deleted whole by lifecycle-under-load.
_row("F2.company-complete", "F2",
     "A confirmed company deletion leaves none of the company's data but its managers: no appointment, "
     "assignment, consent, recording session, call, task record, dead letter, retention policy or rep of it; "
     "its managers stay, to read the audit.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; a disposable company with a row in every such table, written by nothing else",
     ("lifecycle-under-load",), ("company-deletion-side-tables",),
     count=c.with_arg_value((v.DELETION_CONFIRM,), "scope", "company"))
# Found 2026-12-05 by a source-mutation sweep of the reference app (the outbox step of a company deletion scoped
# to every other company): lifecycle-under-load passed, as the disposable company had no outbox row nor
# idempotency key and no rule read those tables. The seed gives it one of each (a retry due tomorrow, a stored
# answer); the snapshot counts both tables per company.
_row("F2.company-pending-work-deleted", "F2",
     "A confirmed company deletion takes the company's pending work and stored answers too: none of its outbox "
     "rows (tasks still to run for it) or idempotency keys (answers holding its data) is left.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; a disposable company with an outbox row due tomorrow and a stored idempotent answer",
     ("lifecycle-under-load",), ("company-deletion-pending-work",), judged_by="company_pending_work_judged")
_row("F2.company-scoped", "F2",
     "A company deletion deletes nothing of another company: every other company's users stay, and its audit "
     "counts no more rows of a table than the company had.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; a disposable company whose rows the seed counted, beside tenants with rows in every table",
     ("lifecycle-under-load",), ("company-deletion-scope",),
     count=c.with_arg_value((v.DELETION_CONFIRM,), "scope", "company"))
# Found 2026-12-06 by a source-mutation sweep (dropwhere 93 and 94): the company condition of a company deletion's
# cleanup of pending deletion requests dropped (every tenant's pending requests erased), and the cleanup taking
# the executing request itself, both passed lifecycle-under-load: no rule read the deletion_requests table. The
# snapshot reads it now (where the database has it); the run leaves dozens of other tenants' requests pending.
# Found 2026-12-06 by a source-mutation sweep (dropwhere 312 and 330): an appointment's consents listed without the
# appointment's condition, and the sessions list's status filter dropped, passed every scenario: no rule read what
# a list's rows were. Own reads and filtered reads now note the values of their rows' fields (fields_seen), and
# reads-current judges them (list-other-rows).
# Found 2026-12-06 by a source-mutation sweep (dropwhere 365): the worker's job lookup without its condition failed
# every task once two jobs existed; smoke passed with 148 tasks dead-lettered and nothing analysed (no job was ever
# created upstream, so no rule about completed or created jobs had anything to judge).
_row("C2.calls-analysed", "C2",
     "With no fault and a Shunya that answers every call well, every acknowledged call still there at the end is "
     "analysed (or its job failed or stuck upstream).",
     "job-applied-eventually", (v.CALL_SUBMIT,), JOBS, ("smoke",), ("job-row-lookup",),
     judged_by="acknowledged_calls_judged")
_row("F3.consent-list-scoped", "F3",
     "An appointment's consents list answers that appointment's consents only.",
     "reads-current", (v.PROBE_FILTER,), TENANTS + "; consents on several appointments of each tenant",
     ("tenant-probe",), ("consent-list-appointment",),
     count=lambda history: sum(1 for invoke, _ in c.completed(history, (v.PROBE_FILTER,))
                               if str(invoke.args.get("route", "")).endswith("/consents")))
_row("A2.session-list-filtered", "A2",
     "The sessions list filtered by status (?status=) answers sessions of that status only.",
     "reads-current", (v.PROBE_FILTER,), TENANTS + "; sessions of several statuses in each tenant",
     ("tenant-probe",), ("session-list-status-filter",),
     count=lambda history: sum(1 for invoke, _ in c.completed(history, (v.PROBE_FILTER,))
                               if invoke.args.get("query_field") == "status"
                               and str(invoke.args.get("route", "")).startswith("GET /api/v1/recordings/sessions")))
_row("F2.deletion-requests-scoped", "F2",
     "A company deletion takes its own tenant's pending deletion requests only: every other tenant's request "
     "is still there afterwards.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; other tenants' deletion requests left pending when the disposable company is deleted",
     ("lifecycle-under-load",), ("company-deletion-requests-scope",), judged_by="deletion_requests_at_risk")
_row("F2.executed-request-kept", "F2",
     "An executed deletion request stays beside its audit, as executed, the company deletion's own included.",
     "deletion-audited", (v.DELETION_REQUEST, v.DELETION_CONFIRM),
     TENANTS + "; a disposable company whose deletion is confirmed",
     ("lifecycle-under-load",), ("company-deletion-keeps-own-request",), judged_by="company_requests_judged")
_row("F3.consent-before-recording", "F3",
     "No recording session exists for an appointment without a recording consent granted before it started.",
     "consent-before-processing", (v.SESSION_START, v.LEGACY_START), TENANTS + "; appointments without consent",
     ("lifecycle-under-load",), ("consent-check",),
     count=c.with_arg((v.SESSION_START, v.LEGACY_START), "consent_probe"))
# Found 2026-12-04 with a check that read the appointment's latest consent whatever its scope: every scenario
# passed, though half the seeded appointments were refused recording or analysis for good (no rule judged a
# consent-required refusal).
_row("F3.refused-only-without-consent", "F3",
     "A start (either endpoint) or a call submitted for an appointment is refused 409 consent-required only "
     "when that appointment has no consent of the scope: one whose consent was there before the request was "
     "sent is served.",
     "consent-before-processing", (v.SESSION_START, v.LEGACY_START, v.CALL_SUBMIT),
     TENANTS + "; both consents seeded for every appointment", ("smoke",), ("consent-latest-scope",))
_row("F3.consent-before-analysis", "F3",
     "No call of an appointment is analysed without an analysis consent granted before the call was submitted.",
     "consent-before-processing", (v.CALL_SUBMIT,), JOBS + "; appointments without consent",
     ("lifecycle-under-load",), ("consent-check",), count=c.with_arg((v.CALL_SUBMIT,), "consent_probe"))
# Found 2026-12-05 by injecting refusals over the fault scenarios: 0 of 20 list 404s were judged (404 taken for a
# deleted row), and no list was ever empty. One list in four now asks for a page past the end.
_row("E5.empty-list-answered", "E5",
     "A list names no row, so it is never answered 404: an empty page is 200 and empty (unless the list named "
     "another tenant in X-Company-Id).",
     "refusals-explained", (v.APPOINTMENT_LIST,), TENANTS + "; a page past the end of the tenant's rows",
     ("smoke", "tenant-probe"), ("list-empty-404",),
     count=c.with_arg((v.APPOINTMENT_LIST,), "offset"))
# Found 2026-12-05 reading which fields no rule read: a call's or a session's created_at (what retention judges age
# by) could be any moment at all, a default evaluated once at import included.
_row("F1.created-at-truthful", "F1",
     "A call or a session is stamped created_at while the request that created it ran: one offset between the "
     "app's clock and the client's puts every such stamp within its request (retention ages rows by it).",
     "no-lost-acknowledged-write", (v.CALL_SUBMIT, v.SESSION_START, v.LEGACY_START), TENANTS + "; requests "
     "spread over the run", ("smoke", "lifecycle-under-load"), ("call-created-at-frozen",),
     count=c.by_operations((v.CALL_SUBMIT,)))
# Found 2026-12-05 reading which answer fields no rule read: no call sent by its session was ever accepted (the consent
# probe granted the recording consent only), and no rule compared a call's links with its body.
_row("F2.call-keeps-its-links", "F2",
     "A call answered 202 keeps the appointment or recording session its body named, in its answer and its final "
     "row (null only once that appointment or session is gone): the links its deletion cascade and consent "
     "check follow.",
     "no-lost-acknowledged-write", (v.CALL_SUBMIT,), JOBS + "; appointments with both consents, calls sent "
     "by their recording session", ("lifecycle-under-load",), ("call-session-unlinked",),
     count=c.with_arg_value((v.CALL_SUBMIT,), "consent_probe", "recording+analysis"))
# Found 2026-12-04 reading the reference app: POST /calls with a recording_session_id and no appointment_id skipped
# the analysis consent, and no load sent one (the consent probe named the appointment). Its fourth turn now does.
_row("F3.consent-via-session", "F3",
     "A call named by its recording session alone (recording_session_id, no appointment_id) is a call of that "
     "session's appointment: without the appointment's analysis consent it is refused 409 consent-required "
     "and never analysed.",
     "consent-before-processing", (v.CALL_SUBMIT,), JOBS + "; appointments with a recording consent only",
     ("lifecycle-under-load",), ("consent-via-session",), count=c.with_arg((v.CALL_SUBMIT,), "via"))
# Found 2026-12-02 with a legacy start that skipped the check: lifecycle-under-load passed, its consent probe
# sent session starts alone. The probe now takes each processing operation in turn (consent.probe).
_row("F3.consent-every-route", "F3",
     "Every way of processing an appointment checks its consent: a legacy start, like a session start, "
     "on an appointment without a recording consent is refused 409 consent-required and records nothing.",
     "consent-before-processing", (v.LEGACY_START,), TENANTS + "; appointments without consent",
     ("lifecycle-under-load",), ("legacy-consent-check",), count=c.with_arg((v.LEGACY_START,), "consent_probe"))
# Every consent.grant of the load sends a spoofed X-Forwarded-For, its own User-Agent and evidence text;
# consent-before-processing judges each answer and row (_consent_evidence). Measured (verify --tries 1 --only
# consent-forwarded-for, 2026-12-01): weakened, 79 consents kept the spoofed IP; all fixes on, 104 grants judged, 0.
_row("F3.evidence-from-connection", "F3",
     "A consent row keeps granted_at, the caller's IP and User-Agent from the connection (never the body "
     "nor a header the client writes, such as X-Forwarded-For) and the evidence text verbatim.",
     "consent-before-processing", (v.CONSENT_GRANT,), TENANTS + "; consents granted with a spoofed X-Forwarded-For",
     ("lifecycle-under-load",), ("consent-forwarded-for",), count=c.with_arg((v.CONSENT_GRANT,), "forwarded_for"))
# Found 2026-12-03 with an app that stripped the text: lifecycle-under-load passed, every text began and ended
# with a letter. A quarter of the grants now carry white space at the edges, CRLF, a tab and an NFD accent.
_row("F3.evidence-verbatim", "F3",
     "A consent's evidence text is stored exactly as sent: white space at its edges, its line ends and its "
     "Unicode form included.",
     "consent-before-processing", (v.CONSENT_GRANT,),
     TENANTS + "; evidence texts with edge white space, CRLF line ends and decomposed accents",
     ("lifecycle-under-load",), ("consent-evidence-normalised",),
     count=c.with_arg_value((v.CONSENT_GRANT,), "layout", True))

# -- the brief's invariants (section 5) not already rows above ------------------------------------
_KEYED = (v.SESSION_START, v.SESSION_STOP, v.ASSIGN, v.LEGACY_START, v.LEGACY_STOP, v.CALL_SUBMIT)
_row("brief-5.idempotent-replay", "brief-5",
     "Same key and payload: identical status and body and one side effect; another payload: never a 2xx; "
     "concurrent: 409 or the same result (every keyed write).",
     "idempotent-replay", _KEYED, HOT, _B1_SCENARIOS, ("idempotency-keys",),
     count=c.with_arg(_KEYED, "idempotency_key"))
_row("brief-5.no-lost-acknowledged-write", "brief-5",
     "Every 2xx write is reflected in the final state (a started session exists, a stop is stopped, an "
     "assignment holds unless undone later, a submitted call exists).",
     # A write acknowledged before it is durable is lost only if the app dies in between: app-kill-sessions kills it.
     # Measured (verify --tries 1 --only stop-write-behind, 2026-12-01): weakened, 4 acknowledged stops found
     # recording; all fixes on, 69 acknowledged writes all in the final state.
     "no-lost-acknowledged-write", tuple(sorted(v.WRITES)), HOT, ("app-kill-sessions",), ("stop-write-behind",))
# Found 2026-12-02: a consent answered 201 whose row never landed (written in a rolled-back savepoint) passed
# lifecycle-under-load: no checker looked for it. no-lost-acknowledged-write now judges consent grants and
# appointment creations too.
_row("brief-5.consent-kept", "brief-5",
     "Every consent answered 201 is in the final state as long as its appointment is: the evidence a "
     "processing relies on is never lost.",
     "no-lost-acknowledged-write", (v.CONSENT_GRANT,), TENANTS + "; appointments that consents are granted on",
     ("lifecycle-under-load",), ("consent-commit",))
# Found 2026-12-04 with an unassign that wrote on a session it never committed: assignment-storm passed (only
# assigns, starts, stops, calls, consents and creations were judged). no-lost-acknowledged-write now judges unassigns.
_row("brief-5.unassign-kept", "brief-5",
     "Every unassign answered 200 released the assignments its appointment had when it was sent: an assignment "
     "an answer named before the unassign is never active at the end.",
     "no-lost-acknowledged-write", (v.ASSIGN, v.UNASSIGN), HOT, ("assignment-storm",), ("unassign-commit",),
     count=c.by_operations((v.UNASSIGN,)))
# Found 2026-12-05 by a sweep that rewrote one field of random 2xx answers: no rule read an appointment's title or
# times. The load now writes two windows in three in another offset than UTC, and titles outside ASCII.
_row("brief-5.appointment-kept-as-sent", "brief-5",
     "An appointment answered 201 keeps the title and window it was created with: the same instants, whatever "
     "offset the client wrote them in.",
     "no-lost-acknowledged-write", (v.APPOINTMENT_CREATE,), TENANTS + "; windows written in offsets other than UTC",
     ("lifecycle-under-load", "smoke"), ("appointment-offset-dropped",),
     count=c.with_arg_matching((v.APPOINTMENT_CREATE,), "starts_at", r"[+-]\d\d:\d\d$"))
# Found 2026-12-05 by the same sweep: no rule read the title or window an appointment's answers gave (create, read,
# unassign; an assign's window), so a create answered with its wall-clock time labelled UTC passed every scenario.
_row("brief-5.appointment-answered-as-kept", "brief-5",
     "Every 2xx answer describing an appointment (its creation's, a read's, an unassign's, an assignment's window) "
     "gives the title and window it was created with, as instants.",
     "no-lost-acknowledged-write", (v.APPOINTMENT_CREATE, v.APPOINTMENT_READ, v.ASSIGN, v.UNASSIGN),
     TENANTS + "; windows written in offsets other than UTC", ("lifecycle-under-load", "smoke"),
     ("appointment-answer-utc-label",),
     count=c.with_arg_matching((v.APPOINTMENT_CREATE,), "starts_at", r"[+-](?!00:00)\d\d:\d\d$"))
# Found 2026-12-04 with single-row reads served from a 5-second cache no write invalidated: every scenario passed (no
# checker judged a read's content). reads-current runs in every run; appointment.assign_read reads after its writes.
_row("brief-5.reads-current", "brief-5",
     "A read answers the state the writes acknowledged before it was sent left: a session stopped is never read "
     "active, a session started is never read missing, an appointment reads the rep its last unambiguous assign "
     "or unassign left.",
     "reads-current", (v.SESSION_READ, v.APPOINTMENT_READ), HOT + "; appointments no other turn writes",
     ("assignment-storm", "session-start-storm"), ("read-cache",),
     count=c.by_operations((v.SESSION_READ, v.APPOINTMENT_READ)))
# Found 2026-12-05 by a sweep that rewrote one field of random 2xx answers: a read answering another row of the
# reader's own tenant passed every rule (tenant-isolation judges other tenants' rows only).
_row("brief-5.read-answers-its-row", "brief-5",
     "A read by id answers the row asked for: the same id, and for a session the appointment its start named.",
     "reads-current", (v.SESSION_READ, v.APPOINTMENT_READ, v.CALL_READ), HOT + "; appointments with several "
     "sessions over the run", ("session-start-storm",), ("session-read-latest",),
     count=c.by_operations((v.SESSION_READ, v.APPOINTMENT_READ, v.CALL_READ)))
# Found 2026-12-05 with the same cache on GET /calls/{id}, the route clients poll for a call's analysis: every
# scenario passed (no rule read a call's answer). The load reads a call again after delivering its job's result.
_row("brief-5.call-reads-current", "brief-5",
     "A call read shows the analysis once it is applied: after a signed delivery of its job was answered applied, "
     "or after another read showed it, a read of the call never answers analyses 0.",
     "reads-current", (v.CALL_READ, v.WEBHOOK_DELIVER), JOBS, ("smoke", "redis-flap"), ("call-read-cache",),
     count=c.by_operations((v.CALL_READ,)), judged_by="call_reads_judged")
_row("brief-5.task-accounting", "brief-5",
     "Every task enqueued is accounted for: enqueued = succeeded + dead-lettered (+ in flight at the cutoff).",
     "dead-letter-accounting", _TASK_OPS, JOBS + "; Shunya failing often enough to exhaust retries",
     # Only where a task exhausts its retries can the dead-letter table be missed: smoke measured escaping
     # (0 dead letters, verify --source promises --scenario smoke --only dead-letter-queue, 2026-11-30), and
     # task-dedupe-storm's Shunya never fails.
     ("shunya-outage",), ("dead-letter-queue",))

PROMISES: tuple[Promise, ...] = tuple(_rows)
#: promise id -> counter of the operations that exercised it.
COUNTERS: Mapping[str, c.Counter] = MappingProxyType(_counters)
#: promise id -> what the row still lacks (checker, weakening, load or seed) and whose it is.
GAPS: Mapping[str, str] = MappingProxyType(_gaps)
