"""Weakenings: named switches that turn one fix of the plan off.

``STORMPROOF_WEAKEN=session-lock,session-unique-index`` makes the app behave
like the unhardened original for those fixes only. The harness runs a scenario
with a fix weakened to prove its checkers notice the fix is missing; a checker
that still passes with every guard of its invariant off is a checker that
cannot fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WEAKENINGS", "Weakening", "parse_weakenings", "UnknownWeakeningError"]


@dataclass(frozen=True, slots=True)
class Weakening:
    name: str
    plan_item: str
    removes: str


_DECLARED: tuple[Weakening, ...] = (
    Weakening(
        "session-lock",
        "A2",
        "the Redis lock recording_session:start:{appointment_id} around session start",
    ),
    Weakening(
        "session-unique-index",
        "A2/B3",
        "the partial unique index idx_recording_sessions_active_appointment "
        "(dropped at app start-up), and the handling of its violation",
    ),
    Weakening(
        "assignment-lock",
        "A3",
        "the Redis lock appointment:assign:{appointment_id} around assignment",
    ),
    Weakening(
        "assignment-guard",
        "A3/B3",
        "the database guards on assignments: the row locks on the appointment and the rep, the partial "
        "unique index on active assignments and the exclusion constraint against "
        "double-booking a rep (dropped at app start-up)",
    ),
    Weakening(
        "idempotency-keys",
        "B1",
        "Idempotency-Key handling: the header is ignored, nothing is stored or replayed",
    ),
    Weakening(
        "tenant-guard",
        "D2",
        "the tenant ownership check on ids: a resource is fetched by id alone, so another "
        "tenant's id is read and written instead of answering 404",
    ),
    Weakening(
        "tenant-from-header",
        "D2",
        "the rule that the tenant comes only from the token: an X-Company-Id header "
        "chosen by the client overrides it",
    ),
    Weakening(
        "job-lock",
        "A1",
        "the Redis lock shunya_job:{job_id} around applying a Shunya result",
    ),
    Weakening(
        "job-db-guard",
        "A1/B3",
        "the database's last word on applying a result: the conditional update on "
        "shunya_jobs.processed_output_hash and the unique index on call_analyses per job",
    ),
    Weakening(
        "task-dedupe",
        "A4/B2",
        "task de-duplication: the same work item may be enqueued any number of times",
    ),
    Weakening(
        "rate-limit",
        "C3",
        "the per-tenant rate limits on API requests, Shunya calls and task enqueues",
    ),
    Weakening(
        "retry-after-units",
        "C3",
        "the unit of the API limit's Retry-After: milliseconds where the header means seconds, so a client "
        "that honours a 429 stays away a thousand times as long as its allowance needs",
    ),
    Weakening(
        "shunya-limit",
        "C3",
        "the per-tenant limit on calls to Shunya (job creations and polls): the workers call Shunya at "
        "whatever rate the tasks run, so one tenant's backlog can use up the whole Shunya quota",
    ),
    Weakening(
        "rate-limit-per-tenant",
        "C3",
        "the tenant in the rate limits' key: every tenant shares one allowance, so a noisy tenant's "
        "flood refuses the quiet ones too",
    ),
    Weakening(
        "rate-limit-tasks",
        "C3",
        "the per-tenant limit on task enqueues: POST /calls and /calls/{id}/refresh queue work for the "
        "workers and Shunya at whatever rate a tenant sends (the API limit alone stands)",
    ),
    Weakening(
        "busy-stored",
        "B1/A2",
        "the rule that a busy resource's 409 (a lock held past the wait: resource-busy, \"retry\") is never "
        "stored under an Idempotency-Key: it is stored like a definite refusal, so the client's retry with the "
        "same key is answered the stored 409 for the key's lifetime and its write never runs",
    ),
    Weakening(
        "rate-limit-not-stored",
        "B1/C3",
        "the rule that a rate limit's 429 is never stored under an Idempotency-Key: it is stored like a "
        "404, so the client's retry with the same key after Retry-After is answered the stored 429 (without "
        "Retry-After) for the key's lifetime",
    ),
    Weakening(
        "redis-pool-wait",
        "C3",
        "the wait for a free pooled Redis connection: above the pool's size a command fails at once "
        "(redis-py's default pool), so in a burst the rate limits and locks fail open as if Redis were down",
    ),
    Weakening(
        "dead-letter-queue",
        "C2",
        "the dead-letter table: a task that exhausts its retries is logged and dropped",
    ),
    Weakening(
        "idempotency-fingerprint",
        "B1",
        "the payload check of Idempotency-Key: a key used again with another payload replays the "
        "first answer instead of 422 idempotency-key-mismatch",
    ),
    Weakening(
        "idempotency-store-errors",
        "B1",
        "the rule that a 5xx stores nothing under its Idempotency-Key: the error is stored like any answer "
        "and replayed to every retry (a response-caching middleware)",
    ),
    Weakening(
        "replay-rerender",
        "B1",
        "the stored answer of Idempotency-Key: a replay of a session start or stop re-reads the session "
        "and answers its current status (a started session stopped since replays as stopped)",
    ),
    Weakening(
        "idempotency-in-flight",
        "B1",
        "the in-flight claim of Idempotency-Key: a request with a key whose first request still runs "
        "runs again instead of answering 409 idempotency-key-in-flight",
    ),
    Weakening(
        "idempotency-key-required",
        "B1",
        "the 400 idempotency-key-missing of the endpoints that require a key: a write without one runs",
    ),
    Weakening(
        "idempotency-tenant-scope",
        "B1",
        "the tenant scope of Idempotency-Key: keys are looked up by their text alone, so a key another "
        "tenant used first answers with that tenant's stored response (or 422)",
    ),
    Weakening(
        "idempotency-expiry",
        "B1",
        "the expiry of Idempotency-Key: a key older than the TTL still replays instead of running as new",
    ),
    Weakening(
        "id-parse-unguarded",
        "D2/E5",
        "the guard on a path id's shape: an id that is no UUID (a word, a number, a quoted SQL condition) is "
        "parsed unguarded and the request crashes, 500, instead of answering 404 like any unknown id",
    ),
    Weakening(
        "tenant-404",
        "D2",
        "the 404 for another tenant's id: it answers 403 forbidden, which tells the caller the id exists",
    ),
    Weakening(
        "retry-backoff",
        "C1",
        "exponential backoff with full jitter: a failed task is retried after a fixed delay "
        "(STORMPROOF_TASK_BACKOFF_BASE_MS)",
    ),
    Weakening(
        "session-owner-scope",
        "A2/D2",
        "the tenant-wide stop: a recording session is stopped only by the user who started it; to every "
        "other user of its company (its manager, another rep) the stop answers 404",
    ),
    Weakening(
        "call-read-cache",
        "A1/D1",
        "current call reads: GET /calls/{id} is served from a per-process cache for 5 s (as read-cache does "
        "for appointments and sessions), so an analysis applied since reads as not there",
    ),
    Weakening(
        "duplicate-delivery-conflict",
        "A1",
        "the duplicate answer: a delivery of a job already applied is refused 409 conflict, not answered "
        "200 duplicate",
    ),
    Weakening(
        "duplicate-answered-applied",
        "A1",
        "the duplicate answer: a delivery of a job already applied is answered applied, not duplicate",
    ),
    Weakening(
        "failed-call-status",
        "A1",
        "the failed call's status: a job Shunya failed is recorded on the job, but its call keeps reading "
        "submitted",
    ),
    Weakening(
        "dead-letter-retry-failures",
        "C2",
        "the manual retry's fresh budget: a retried dead letter's task inherits the letter's failure count, "
        "so it is dead-lettered again at its first failure",
    ),
    Weakening(
        "tenant-retry-budget",
        "C1",
        "the per-tenant retry budget: a tenant's failing tasks retry as often as their own budgets allow, "
        "however many fail at once",
    ),
    Weakening(
        "tenant-retry-budget-shared",
        "C1",
        "the retry budget's tenant: one budget for all tenants, so one tenant's failures spend another's "
        "retries (its tasks are dead-lettered while it retried little)",
    ),
    Weakening(
        "outbox-due",
        "C1",
        "the outbox relay's due time: a retry is published as soon as it is written, so it runs before "
        "the wait its backoff chose",
    ),
    Weakening(
        "outbox-sweep",
        "C2",
        "the outbox's sweeper: a row whose message the broker lost (published, never begun) stays published "
        "and is never published again, so its task never runs",
    ),
    Weakening(
        "trace-propagation",
        "E1",
        "trace id propagation to tasks: a task's record and headers lose the request's trace id",
    ),
    Weakening(
        "retention-defaults",
        "F1",
        "the default retention (calls 90 days, appointments 365): a company without a policy of its "
        "own keeps everything",
    ),
    Weakening(
        "deletion-audit",
        "F2",
        "the deletion audit row: a confirmed deletion deletes and answers, but writes no deletion_audit row",
    ),
    Weakening(
        "deletion-cascade",
        "F2",
        "the cascade of an appointment deletion to its calls (with their Shunya jobs and analyses): they "
        "survive, unlinked from the deleted appointment",
    ),
    Weakening(
        "stop-idempotent",
        "A2",
        "the idempotent stop: stopping a stopped session answers 409 conflict instead of its state",
    ),
    Weakening(
        "rep-overlap-released",
        "A3",
        "the double-booking check's status filter: the rep's released assignments count too, so a rep "
        "unassigned from one appointment is refused every overlapping one for good (409 rep-double-booked)",
    ),
    Weakening(
        "appointment-released-counted",
        "A3",
        "the already-assigned check's status filter: the appointment's latest assignment counts even "
        "released, so once unassigned an appointment is refused every other rep for good (409 "
        "appointment-already-assigned)",
    ),
    Weakening(
        "reassign-idempotent",
        "A3",
        "the idempotent assignment: assigning the current rep again answers 409 "
        "appointment-already-assigned instead of the existing assignment",
    ),
    Weakening(
        "consent-via-session",
        "F3",
        "the analysis consent of a call named by its recording session alone (recording_session_id, no "
        "appointment_id): checked only when the body names the appointment, so such a call is analysed "
        "with the recording consent alone",
    ),
    Weakening(
        "start-answers-active",
        "A2",
        "the refusal of a start while a session is active: the active session is answered (201) as if "
        "this start had started it, an \"idempotent\" start without a key",
    ),
    Weakening(
        "throttle-retried",
        "C3",
        "the retry of a throttled task: a rate limit's refusal (the tenant's Shunya or task limit) is taken "
        "for a failure no retry mends, and the task is dead-lettered at once",
    ),
    Weakening(
        "stop-finds-active-only",
        "A2",
        "the stop's lookup of a stopped session: only active sessions are found, so stopping a stopped "
        "session answers 404 as if it did not exist",
    ),
    Weakening(
        "unassign-idempotent",
        "A3/E5",
        "the idempotent unassignment: unassigning an appointment with no active assignment raises "
        "(one active assignment is expected, as the original's scalar_one) and answers 500",
    ),
    Weakening(
        "unassign-refuses-unassigned",
        "A3/E5",
        "the idempotent unassignment: unassigning an appointment nobody holds is refused 409 conflict "
        "(\"not assigned\") instead of answering the appointment unassigned",
    ),
    Weakening(
        "webhook-signature",
        "A1",
        "the webhook signature check: a delivery without a valid, fresh signature is applied",
    ),
    Weakening(
        "failed-job-analysed",
        "A1",
        "a job Shunya failed recorded as failed: the failure is counted, then taken for an empty result "
        "and applied as the call's analysis",
    ),
    Weakening(
        "dead-letter-retry-once",
        "C2",
        "the once-only manual retry of a dead letter: retrying it again queues the task again instead "
        "of answering 409",
    ),
    Weakening(
        "dead-letter-retry-lock",
        "C2",
        "the lock on a dead letter being retried: it is read unlocked, so several retries sent at once "
        "each read it dead and each queue the task",
    ),
    Weakening(
        "idempotency-key-format",
        "B1",
        "the format check of Idempotency-Key: a malformed key (spaces, control characters, too long) is "
        "stored and used instead of answering 400 idempotency-key-invalid",
    ),
    Weakening(
        "retry-budget",
        "C1",
        "the retry budget: a task failing on a transient error is retried forever, never dead-lettered",
    ),
    Weakening(
        "retries-skipped",
        "C1",
        "the retry count: read as 0 (a setting parsed from the wrong variable), so a task that fails once, "
        "however transiently, is dead-lettered at once",
    ),
    Weakening(
        "dedupe-metrics",
        "E2",
        "the dedupe-hit count: a duplicate delivery or poll is counted in webhook_dedupe_misses_total",
    ),
    Weakening(
        "outbox",
        "A4/C1",
        "the transactional outbox: tasks are published straight to the broker after the "
        "commit, and retries go back to the broker, so a broker (Redis) restart loses them",
    ),
    Weakening(
        "metrics-from-start-up",
        "E2",
        "series exported from start-up: counters appear at their first event, so an alert's increase() "
        "or rate() misses the first burst after a start",
    ),
    Weakening(
        "trace-on-errors",
        "E1",
        "an unhandled error answered inside the trace middleware: without it Starlette's outermost "
        "middleware answers the 500, and the answer carries no X-Trace-Id",
    ),
    Weakening(
        "error-log-trace",
        "E1",
        "an unhandled error logged under its request's trace id: without it the line is written once the "
        "trace is cleared, so the error of a request answered 500 cannot be found from its trace id",
    ),
    Weakening(
        "server-errors-counted",
        "E2",
        "every answer counted in http_requests_total, an error escaping its handler as a 500 too: without it "
        "the request is counted only when its handler returns, and the error-rate alert misses an outage's "
        "errors",
    ),
    Weakening(
        "legacy-start-lock",
        "A2",
        "the per-appointment lock on the legacy POST /recordings/start (its handler kept its own path): "
        "with the unique index gone too, it starts a second active session beside any other start",
    ),
    Weakening(
        "legacy-consent-check",
        "F3",
        "the consent check on the legacy POST /recordings/start (the newer start route and call "
        "submission keep theirs): an older client records an appointment nobody consented to",
    ),
    Weakening(
        "rate-limit-per-user",
        "C3",
        "the API limit's key: the tenant's allowance is kept per user of the token, so each of a "
        "tenant's users gets the whole allowance and the tenant as many times its limit",
    ),
    Weakening(
        "list-filter-tenant",
        "D2",
        "the tenant filter of the appointment list when it is filtered by rep (assigned_rep_id): the "
        "list answers the rep's appointments whichever tenant they belong to",
    ),
    Weakening(
        "tenant-guard-reps",
        "D2",
        "the tenant ownership check on ids for reps: a rep's lookup by id is not scoped to its tenant "
        "(a manager's still is), so a rep reads and writes another tenant's rows by id",
    ),
    Weakening(
        "unassign-commit",
        "A3/brief-5",
        "the unassign's write: the release made in a savepoint that is rolled back (a write the handler "
        "never commits), so the 200 answers an appointment that stays assigned",
    ),
    Weakening(
        "read-cache",
        "brief-5",
        "reads from the database: GET /appointments/{id} and GET /recordings/sessions/{id} are answered from "
        "a per-process cache kept 5 s that writes never invalidate (a stopped session reads as recording)",
    ),
    Weakening(
        "consent-commit",
        "F3/brief-5",
        "the consent's write: recorded in a savepoint that is rolled back (a write the handler never "
        "commits), so the 201 names a consent that does not exist",
    ),
    Weakening(
        "webhook-raw-body",
        "A1",
        "the signature over the raw body: the webhook checks it against the parsed body re-serialised "
        "(keys sorted, compact), so a delivery laid out any other way is refused 401",
    ),
    Weakening(
        "webhook-window-past-only",
        "A1",
        "the webhook timestamp's window one way: only a timestamp too far in the past is refused, so a "
        "delivery dated an hour ahead is accepted (and stays valid for that hour)",
    ),
    Weakening(
        "webhook-window-tight",
        "A1",
        "the webhook timestamp's window hard-coded to 60 s instead of the configured tolerance (300 s): a "
        "delivery Shunya signed two minutes before it arrived is refused 401",
    ),
    Weakening(
        "webhook-timestamp-unguarded",
        "A1",
        "the webhook timestamp parsed unguarded: one that is no integer (nan, yesterday) raises, a 500 "
        "instead of the 401 of any other bad signature",
    ),
    Weakening(
        "conflict-names-active",
        "A2",
        "the active session named by 409 active-session-exists: the answer names the appointment's "
        "oldest session (looked up without the status filter), often one stopped long ago",
    ),
    Weakening(
        "deletion-token",
        "F2",
        "the confirmation token check of a deletion: a confirmation with any token (a wrong one, "
        "a guessed one) executes the deletion",
    ),
    Weakening(
        "start-deleted-appointment",
        "F2",
        "a session start that finds its appointment deleted as it writes (a confirmed deletion committed "
        "between its read and its insert): the foreign key's refusal is not expected, and the start "
        "answers 500 instead of 404",
    ),
    Weakening(
        "deletion-token-lookup",
        "F2",
        "the request a confirmation names: the request is found by the token sent, so the token of the "
        "tenant's other pending request confirms that other request, whatever the URL names",
    ),
    Weakening(
        "deletion-expiry",
        "F2",
        "the confirmation's expiry: expires_at is stored and shown but never compared, so a token leaked "
        "in a mail or a log deletes the appointment whenever it is used",
    ),
    Weakening(
        "rate-limit-atomic",
        "C3",
        "the limiter's check and update in one Redis script: without it GCRA's arrival time is read and "
        "written in separate round trips, and a tenant's requests that read it at once all pass",
    ),
    Weakening(
        "rate-limit-counts-refusals",
        "C3",
        "the limiter's refusals: GCRA stores the arrival time of a refused request too, so refusals spend "
        "the allowance and a tenant that keeps sending over its rate gets nothing through, for good",
    ),
    Weakening(
        "dedupe-hit-source",
        "E2",
        "the source label of a dedupe hit: a poll that finds its job already applied is counted as a "
        "webhook hit, so webhook_dedupe_hits_total{source=\"webhook\"} counts more than the webhooks",
    ),
    Weakening(
        "appointment-delete-direct",
        "F2",
        "DELETE /appointments/{id} asking for a confirmed deletion: the route hard-deletes at once (204), "
        "with no confirmation and no audit row, the appointment's calls kept with no appointment",
    ),
    Weakening(
        "deletion-audit-counts",
        "F2",
        "the audit's counts of what a deletion erased: only the appointment (or company) row is counted, "
        "its consents, calls and sessions going by ON DELETE CASCADE uncounted",
    ),
    Weakening(
        "deletion-reconfirm",
        "F2",
        "the pending check of a confirmation: an executed deletion confirmed again runs again and "
        "rewrites its audit row (the second run's counts, zeros, and its time), answering 200",
    ),
    Weakening(
        "deletion-confirm-lock",
        "F2",
        "the confirmation's lock on its deletion request: two confirmations sent at once both find the "
        "request pending and both run the deletion; the second fails on the audit row (500)",
    ),
    Weakening(
        "job-match-by-call",
        "A1",
        "the match of a delivered result to its job by job id: the webhook finds the job through the "
        "delivery's call_id, so a late delivery of a job superseded for the same call is applied as its result",
    ),
    Weakening(
        "replay-metrics",
        "E2",
        "the replay count of Idempotency-Key: a replayed answer is counted as outcome new in "
        "idempotency_keys_total, so replays the clients saw are missing from the counter",
    ),
    Weakening(
        "session-metrics",
        "E2",
        "the sessions-started count: recording_sessions_started_total counts every start request that "
        "passes the tenant and consent checks, refused ones (409) included, not the sessions created",
    ),
    Weakening(
        "shunya-failure-metrics",
        "E2",
        "the Shunya failure counters: a 5xx answer of the Shunya API and a job that ended failed are "
        "not counted (only timeouts and connection errors are)",
    ),
    Weakening(
        "shunya-error-endpoint",
        "E2",
        "the endpoint of a Shunya API error: every error is counted under create_job (a label set once "
        "for the client), so the polls' errors never show under their own endpoint",
    ),
    Weakening(
        "poll-until-done",
        "A1",
        "polling until the job is done: the poller asks Shunya once and, finding the job still pending, "
        "stops, leaving the result to the webhook alone",
    ),
    Weakening(
        "stop-write-behind",
        "brief-5",
        "the stop written before it is acknowledged: a session stop answers 200 from memory and leaves "
        "its write to a buffer flushed STORMPROOF_WRITE_BEHIND_MS later, so a crash in between loses it",
    ),
    Weakening(
        "session-read-latest",
        "brief-5",
        "GET /recordings/sessions/{id} answers the latest session of that session's appointment (the "
        "'current recording' the UI polls): a read of an earlier session answers another one",
    ),
    Weakening(
        "appointment-offset-dropped",
        "brief-5",
        "an appointment's window 'normalised to UTC' by replacing its offset instead of converting: "
        "10:00+05:30 is kept as 10:00 UTC, so a window written in any offset but UTC is shifted",
    ),
    Weakening(
        "appointment-answer-utc-label",
        "brief-5",
        "a created appointment answered with its window formatted by hand as wall-clock time plus 'Z': "
        "the row is right, but a window written in +05:30 is answered 5.5 hours late",
    ),
    Weakening(
        "call-session-unlinked",
        "F2",
        "a call submitted with its recording session: the session read for the consent check but never "
        "stored on the call, so the call outlives its session and answers recording_session_id null",
    ),
    Weakening(
        "call-created-at-frozen",
        "F1",
        "a call's created_at from a default evaluated once, at import (default=utcnow() for default=utcnow): "
        "every call is stamped with the app's start, so retention takes a new call for an old one once the "
        "app has run longer than the policy",
    ),
    Weakening(
        "list-empty-404",
        "E5",
        "an appointment list with nothing on its page answered 404 not-found ('no appointments found') "
        "instead of 200 and an empty page",
    ),
    Weakening(
        "stop-starter-only",
        "A2",
        "a permission check on stops: only the user who started a session may stop it, every other user of "
        "its tenant is answered 403 forbidden",
    ),
    Weakening(
        "task-dedupe-ledger",
        "A4/B2",
        "de-duplication by the task ledger (task_exists_by_unique_key without the task's state): a work "
        "item that ever had a task counts as queued, so a refresh after its last poll ended answers "
        "deduplicated with that finished task and polls nothing",
    ),
    Weakening(
        "company-deletion-target",
        "D2/F2",
        "a company deletion request checks that its target company exists, not that it is the caller's: "
        "another tenant's company id is accepted (201), and its confirmation erases that company",
    ),
    Weakening(
        "shunya-429-refused",
        "C3",
        "Shunya's own 429 read as a refusal of the work like any other 4xx (no Retry-After wait, no retry): "
        "the task is dead-lettered at Shunya's first throttle",
    ),
    Weakening(
        "storable-text",
        "E5",
        "the check that a request body's text can be stored (no NUL, no lone surrogate): a NUL reaches "
        "PostgreSQL, which refuses it in text, and the write answers 500 instead of 422",
    ),
    Weakening(
        "appointment-window-checked",
        "A3/E5",
        "the check of an appointment's window at creation: a window without offset, or one that ends before "
        "it starts, is created (201), where 422 was due",
    ),
    Weakening(
        "poll-budget-dead-letter",
        "C2",
        "the dead letter of a poll whose budget is spent: a job Shunya never finishes is polled up to the budget, "
        "then the poll ends quietly (succeeded, a warning in the log): the call waits for good, nobody is told",
    ),
    Weakening(
        "shunya-refusal-checked",
        "E2",
        "Shunya's 4xx answers (a refusal of the work) read like a success: the problem body is taken for the job "
        "(a create finds no job id, a poll no status), nothing is counted in shunya_api_errors_total",
    ),
    Weakening(
        "shunya-answer-shape-checked",
        "E2",
        "an answer from Shunya that is JSON but not an object used as it is: the task fails on it with a "
        "TypeError, dead-lettered at once instead of retried, and nothing is counted as malformed",
    ),
    Weakening(
        "company-deletion-pending-work",
        "F2",
        "a company deletion forgets the machinery's tables: its outbox rows (tasks still to run for it) and its "
        "stored idempotent answers are left behind, holding the deleted company's ids and bodies",
    ),
    Weakening(
        "dead-letter-status-filter",
        "C2",
        "the dead-letter list's status filter ignored: ?status=dead also lists letters already retried, so an "
        "operator retries them again or takes a handled failure for an open one",
    ),
    Weakening(
        "deletion-pending-status",
        "F2",
        "the confirmation's pending check compares the request's status with 'requested' (the name an earlier "
        "schema gave a new request): every confirmation is refused 409 as already executed, and nothing is erased",
    ),
    Weakening(
        "shunya-created-refused",
        "A1",
        "the Shunya client takes any status but 200 for a refusal: Shunya's 201 Created for a new job is counted a "
        "4xx and the submission dead-lettered, so no call is ever analysed while Shunya works",
    ),
    Weakening(
        "lead-score-field",
        "A1",
        "the call's lead score copied from the result's field 'score' (Shunya's older name): the analysis "
        "row holds the whole result, but every analysed call reads lead_score null",
    ),
    Weakening(
        "stop-answers-stale",
        "A2",
        "the stop's answer built from the row as loaded before the stop: the stop is one bulk UPDATE (no "
        "ORM flush) that does not refresh the loaded session, so a 200 stop answers status 'recording' "
        "and no stopped_at",
    ),
    Weakening(
        "pool-gauges",
        "E4",
        "the pool gauges read from the pool itself: db_pool_active counts connection check-outs (an event "
        "listener that never sees the check-ins) instead of the connections in use",
    ),
    Weakening(
        "pool-gauges-source",
        "E4",
        "the pool the gauges read: an engine made for the metrics from the same URL, never used, so "
        "db_pool_size says 20 and nothing is ever in use or idle",
    ),
    Weakening(
        "queue-depth-gauge",
        "E3",
        "the queue the depth gauge reads: celery_queue_depth measures Celery's default queue (celery), "
        "not the app's, so it reads 0 whatever the backlog",
    ),
    Weakening(
        "active-tasks-gauge",
        "E3",
        "the hash the active-tasks gauge reads: a per-queue key the Celery transport never writes, so "
        "celery_active_tasks reads 0 whatever the workers hold",
    ),
    Weakening(
        "trace-echo",
        "E1",
        "the caller's trace id: every request gets a new one, so the X-Trace-Id answered is not the one "
        "the caller sent and its logs cannot be joined to the caller's",
    ),
    Weakening(
        "traceparent-ignored",
        "E1",
        "the W3C traceparent: only X-Trace-Id is read, so a caller that traces with Trace Context (an "
        "OpenTelemetry client) gets a new id back and its tasks carry that one",
    ),
    Weakening(
        "redis-fail-open",
        "A2/C3",
        "the fail-open of the Redis locks and rate limits: when Redis cannot be reached, the error "
        "propagates and the request answers 500, so a Redis restart turns the requests in flight into "
        "errors instead of leaving the decision to the database guards",
    ),
    Weakening(
        "manager-role",
        "D2",
        "the manager role check of the manager-only routes (assign, unassign, deletions, reps, retention, "
        "dead-letter retries): any authenticated user of the tenant, a rep too, is served",
    ),
    Weakening(
        "start-skip-locked",
        "D2",
        "the plain lookup of a start's appointment: the start locks it FOR UPDATE SKIP LOCKED, so a start "
        "that meets another start's lock finds no appointment and answers 404 for the tenant's own "
        "appointment",
    ),
    Weakening(
        "token-expiry",
        "D2",
        "the expiry check of bearer tokens (exp verification switched off while debugging, left off): an "
        "expired token is served like a live one",
    ),
    Weakening(
        "token-cache-expiry",
        "D2",
        "the expiry check of the verified-token cache: a token verified once is served from the cache "
        "for good (an lru_cache on the decode), so a token that expires while in use is still served; a "
        "token expired before its first use is refused as before",
    ),
    Weakening(
        "tenant-from-query",
        "D2",
        "the tenant from the token only: a company_id query parameter (support's \"act as\", left in) "
        "names the tenant instead, on every route",
    ),
    Weakening(
        "dead-letter-filter-tenant",
        "D2",
        "the tenant condition of the dead-letter list's status filter: GET /dead-letters?status=... "
        "builds its own statement without it and lists every tenant's letters of that status",
    ),
    Weakening(
        "session-index-unhandled",
        "B3",
        "the handling of the partial unique index's refusal: a session start the index refuses (the lock "
        "lost, or two starts past the check) is a plain insert whose error answers 500, not the 409 "
        "naming the active session",
    ),
    Weakening(
        "rate-limit-fail-closed",
        "C3",
        "the fail-open of the rate limits: when Redis cannot be reached, the limiters refuse (429, "
        "Retry-After 1) instead of letting requests through, so a Redis restart locks every tenant out "
        "of the API for as long as it lasts",
    ),
    Weakening(
        "consent-check",
        "F3",
        "the consent check: recording sessions start and calls are submitted for analysis "
        "on appointments without a recorded consent",
    ),
    Weakening(
        "consent-latest-scope",
        "F3",
        "the consent lookup by scope: the appointment's latest consent decides whatever its scope, so an "
        "appointment whose last consent is an analysis consent is refused recording (409 "
        "consent-required) though it has a recording consent, and the other way round",
    ),
    Weakening(
        "consent-forwarded-for",
        "F3",
        "the consent evidence's IP from the connection: it is taken from the client's X-Forwarded-For "
        "header, which anyone can write",
    ),
    Weakening(
        "task-log-trace",
        "E1",
        "the trace id in the task workers' log lines: a line carries one only when its code passed it "
        "explicitly, so each task's own lines (Celery's end-of-run line among them) carry none, while "
        "its record and the tasks it enqueues keep the request's",
    ),
    Weakening(
        "consent-evidence-normalised",
        "F3",
        "the evidence text kept as sent: it is tidied up before it is stored (edges stripped, CRLF line "
        "ends made LF, Unicode made NFC)",
    ),
    Weakening(
        "company-deletion-scope",
        "F2",
        "the company condition of a company deletion's consents step: confirming one tenant's deletion "
        "deletes (and counts) every tenant's consents",
    ),
    Weakening(
        "company-deletion-side-tables",
        "F2",
        "the side tables of a company deletion: its dead letters and its retention policy are left "
        "behind (the steps an engineer forgets, no foreign key reminds them)",
    ),
    Weakening(
        "policy-put-fields",
        "F1",
        "the fields of PUT /retention-policy stored as sent: the appointment retention is stored from the "
        "call retention field (a copy-paste slip), so a tenant's appointments go after its calls' days",
    ),
    Weakening(
        "retention-tenant-scope",
        "F1",
        "the tenant scope of a retention run: it deletes every company's rows older than the caller's "
        "policy, not only the caller's",
    ),
    Weakening(
        "retention-audit",
        "F1/F2",
        "the rule that deletion audit rows are never deleted: a retention run deletes the company's audit "
        "rows older than its call retention, like the data they record",
    ),
    Weakening(
        "retention-from-start",
        "F1",
        "the age of an appointment from its end: retention counts it from its start, so an appointment that "
        "began before the cutoff and ended after it is deleted within its retention",
    ),
    Weakening(
        "conflict-names-own-id",
        "A2",
        "the session named by 409 active-session-exists: the answer names the id the refused start had "
        "allocated for its own session (never stored), not the active session's",
    ),
    Weakening(
        "retention-batch-full",
        "F1",
        "the batch loop of a retention run: it stops once a batch comes back full as well as short (<= for <, "
        "an off-by-one), so a run erases one batch of each kind and leaves the rest of the expired rows",
    ),
    Weakening(
        "retention-schedule-policies",
        "F1",
        "the periodic retention visits only the companies with a retention policy row (a loop over the policy "
        "table): a company on the defaults is never cleaned by the schedule",
    ),
    Weakening(
        "call-read-count-scoped",
        "A1",
        "the analyses a call read counts: the count's subquery loses its call (a dropped where), so a call reads "
        "as many analyses as the database holds, every tenant's",
    ),
    Weakening(
        "webhook-complete-result",
        "A1",
        "the webhook's check that a completed delivery carries its result and output hash: one without is "
        "applied (an empty analysis, or the job marked processed under no hash, so its real result comes in again)",
    ),
    Weakening(
        "assignment-list-appointment",
        "D2",
        "the assignments list of an appointment without the appointment's condition: its owner reads every "
        "company's assignments (a list no load read, found by a source-mutation sweep)",
    ),
    Weakening(
        "consent-list-appointment",
        "F3",
        "an appointment's consents list without the appointment's condition (the tenant's kept): each appointment "
        "lists every consent of its tenant, so a reader takes another appointment's consent for this one's",
    ),
    Weakening(
        "session-list-status-filter",
        "A2",
        "the sessions list's ?status= filter read but never applied: asked for the recording sessions, a client "
        "gets the stopped ones too",
    ),
    Weakening(
        "job-row-lookup",
        "C2",
        "the worker's lookup of a job row by id without its condition: once two jobs exist, every submit and poll "
        "finds several rows and fails, is dead-lettered, and no call is analysed (a ledger that balances)",
    ),
    Weakening(
        "not-pending-not-found",
        "F2",
        "a confirmation of a request no longer pending (executed, or expired) answered 404 not-found instead of "
        "409 deletion-not-pending: a client retrying a lost answer is told its deletion request does not exist",
    ),
    Weakening(
        "company-deletion-requests-scope",
        "F2",
        "the company condition of a company deletion's cleanup of pending deletion requests: confirming one "
        "tenant's deletion erases every tenant's pending requests, whose tokens then confirm nothing (404)",
    ),
    Weakening(
        "company-deletion-keeps-own-request",
        "F2",
        "the cleanup of a company's pending deletion requests takes the request being executed too (its "
        "\"not this one\" condition dropped): the executed company deletion leaves no request beside its audit",
    ),
)
_twice = sorted(name for name, count in Counter(w.name for w in _DECLARED).items() if count > 1)
if _twice:  # a dict built from the list would keep the last silently, and the first would switch off nothing
    raise RuntimeError(f"weakening names declared twice: {', '.join(_twice)}")
WEAKENINGS: dict[str, Weakening] = {w.name: w for w in _DECLARED}


class UnknownWeakeningError(ValueError):
    def __init__(self, unknown: list[str]) -> None:
        known = ", ".join(sorted(WEAKENINGS))
        super().__init__(
            f"unknown weakening(s) {', '.join(unknown)}; known names: {known}"
        )


def parse_weakenings(value: str | Iterable[str] | None) -> frozenset[str]:
    """Parse a comma-separated list (or an iterable) of names; unknown names are an error."""
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [item.strip() for item in items if item and item.strip()]
    unknown = [n for n in names if n not in WEAKENINGS]
    if unknown:
        raise UnknownWeakeningError(unknown)
    return frozenset(names)
