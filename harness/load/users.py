"""The Locust users of a Stormproof run: every operation of the API, recorded, with deliberate contention.

Import this module only in a load process: importing Locust patches the
standard library with gevent. Each user acts for one tenant with its tokens;
many users aim at a few "hot" appointments and at the same jobs, because
races are the point. A user's choices come from ``random.Random`` seeded by
the run's seed and the user's number, so a run's mix can be replayed.
"""

from __future__ import annotations

import itertools
import hashlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.runners import WorkerRunner

from stormproof.harness.history import vocabulary as v
from stormproof.harness.history.spool import SpooledRecorder

from . import malformed
from . import probes as derive
from .client import (CLIENT_IP_HEADERS, TRACE_HEADER, TRACEPARENT_HEADER, Answer, Derived, client_ip_headers,
                     record_request, sent_trace_id, together, traceparent)
from .config import LoadConfig, load_config, opening_turns
from .tokens import LapsingToken, forged, lapsing_token
from .deadlines import LATE_MARGIN_S, LATE_WAIT_MAX_S, deletion_life_bound_s, expiry_args

__all__ = ["StormUser", "CONFIG"]  # and StagesShape, when the config has stages

CONFIG: LoadConfig = load_config()
COMPANY_IDS = tuple(str(t["company_id"]) for t in CONFIG.tenants)
_numbers = itertools.count(1)
#: The idempotency probes' turn (see StormUser.do_probe_idempotency), one count for the process's users.
_probe_turns = itertools.count()
#: Every operation that records or analyses for an appointment, and the consent probes' turn over them
#: (``_VIA_SESSION``: a call submitted with the recording session it came from, not the appointment).
_VIA_SESSION = "call.submit:via-session"
_CONSENT_PROBED = (v.SESSION_START, v.LEGACY_START, v.CALL_SUBMIT, _VIA_SESSION)
_consent_turns = itertools.count()
#: An appointment list's offset past any tenant's rows (the API's largest).
_PAST_THE_END = 1_000_000
#: Turns of appointment.double_book: overlapping pairs, and one turn in four a touching pair.
_pair_turns = itertools.count()
#: Turns of the requests' trace headers (X-Trace-Id, or a traceparent one time in four).
_trace_turns = itertools.count()
#: The authorization probes' turn over every (route, caller) pair, one count for the process's users.
_authz_turns = itertools.count()
#: The malformed-body probes' turn over every (route, case, field), one count for the process's users.
_malformed_turns = itertools.count()
#: The turns each load process takes before drawing at random (config.opening_turns).
_OPENING = opening_turns(CONFIG.weights)
_opening_turns = itertools.count()
#: Whether this load process has deleted the seed's disposable company (do_lifecycle_delete_company).
_company_deleted = False
#: Seconds into the load before the disposable company is deleted: by then the other tenants' first calls have
#: their Shunya jobs and analyses, so a deletion scoped wrong on those tables has rows of theirs to take (deleted
#: in the first second, it found none: a company deletion of every other company's analyses passed
#: lifecycle-under-load, a mutation sweep, 2026-12-06).
_COMPANY_DELETE_AFTER_S = 6.0
#: Seconds into the load before the first retention turn, for the same reason: a run deletes the seed's expired
#: rows the first time it finds them, and in the first second no tenant had an analysis, a Shunya job or an
#: assignment of the load's beside them, so a batch delete that lost its ``where`` (every tenant's analyses,
#: jobs or assignments erased) passed lifecycle-under-load (a mutation sweep, 2026-12-06).
_RETENTION_AFTER_S = 6.0
_LOAD_BEGAN = time.monotonic()


def _idempotency_turns(routes: list[Any], others: bool) -> list[tuple[str, Any]]:
    """The idempotency probe's (situation, route) pairs, in the order the probes take them.

    Diagonal, not one situation after another: turn ``j`` of round ``k`` is situation ``j`` on route
    ``j + k``. A run too short for the whole cycle then misses a few pairs spread over every
    situation and route, not a whole situation (measured 2026-12-02: 61 probes of an 84-pair cycle
    in a loaded idempotency-replay-storm run sent no other-tenant probe at all, and B1.key-per-tenant
    went unexercised). The list is the same at every call (all routes, fillable or not), so the turn
    count walks one fixed cycle.
    """
    key = (tuple(id(r) for r in routes), others)
    cached = _turns_cache.get(key)
    if cached is not None:
        return cached
    ttl = CONFIG.idempotency_ttl_s
    situations = [s for s in derive.IDEMPOTENCY_PROBES if s != "other-tenant" or others]
    if ttl is not None and ttl <= derive.EXPIRY_PROBE_MAX_TTL_S:
        situations.append("expired")
    required = [r for r in routes if r.idempotency == "required"]
    per_situation = [(s, required if s == "missing" else list(routes)) for s in situations]
    per_situation = [(s, rs) for s, rs in per_situation if rs]
    turns: list[tuple[str, Any]] = []
    for k in range(max((len(rs) for _, rs in per_situation), default=0)):
        for j, (situation, rs) in enumerate(per_situation):
            if k < len(rs):
                turns.append((situation, rs[(j + k) % len(rs)]))
    _turns_cache[key] = turns
    return turns


_turns_cache: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}


def _authz_pairs(routes: Sequence[Any]) -> list[tuple[Any, str]]:
    """The authorization probes' (route, caller) cycle for this process (derive.authz_turns), made once."""
    key = tuple(id(r) for r in routes)
    cached = _authz_cache.get(key)
    if cached is None:
        cached = _authz_cache[key] = derive.authz_turns(routes, _probe_offset())
    return cached


_authz_cache: dict[tuple[int, ...], list[tuple[Any, str]]] = {}


#: The share of cross-tenant probes that try a filter by id in a query string, when the app has one.
_QUERY_PROBE_SHARE = 0.2
#: Query parameters by which a client could name a tenant: the token must decide, whatever they say.
_TENANT_PARAMS = ("company_id", "tenant_id")
#: An unconfirmed deletion's token serves as the wrong token of another request until this long before
#: its life is certainly over: that bound less what the ``Date`` header and a stepped clock can hide (s).
_SPARE_MARGIN_S = 3.0
#: Lines of a consent script a long evidence text is made of (accents, quotes and punctuation included).
_SCRIPT = (
    "This call is recorded so that we can review the visit and improve our service.",
    "Your consent covers the recording and its analysis by our provider; you may withdraw it at any time.",
    "Le client a confirm\u00e9 qu'il accepte l'enregistrement \u00ab sans r\u00e9serve \u00bb.",
    "Recordings are kept for 90 days, analyses for 365 days, unless you ask us to delete them sooner.",
    "Asked twice; the answer was \"yes, that's fine\" both times.",
)
#: Likewise the share of cross-tenant probe turns that filter one of our own reads instead (``probe.filter``).
_FILTER_PROBE_SHARE = 0.15
#: And the share that send one of our own reads unfiltered, every read of the document in turn (``own_read``).
_OWN_READ_SHARE = 0.15
#: This process's own reads so far: the next one takes the next read route we can fill.
_own_reads = itertools.count()
#: Path ids that are no id at all: a word, a negative number (no row of a backend with integer ids has one), a UUID
#: with a letter out of range, a quoted SQL condition (URL-encoded), an overlong one. Each must be refused 400, 404
#: or 422 (tenant-isolation: malformed-id-*), never served and never a crash: an app that parses its ids unguarded
#: answered them 500 (plan E5, D2).
_MALFORMED_IDS = ("not-an-id", "-1", "00000000-0000-0000-0000-00000000000g", "%27%20OR%20%271%27%3D%271",
                  "a" * 300)
#: After a path probe's pair, the share of turns that send the same route once more with a malformed id.
_MALFORMED_ID_SHARE = 0.25
#: The malformed ids sent so far by this process: each turn takes the next.
_malformed_turns = itertools.count()


def _pool(pools: dict[str, list[str]], kind: str, *, anything: bool = False) -> list[str]:
    """The ids of ``kind``, or of its last word (``assigned_rep`` -> ``rep``) when none has that name; with
    ``anything``, else every id of every kind: a field that names no kind (``target_id`` of a deletion
    request, whose kind its ``scope`` says) must answer another tenant's id of any kind like a missing one."""
    found = pools.get(kind) or pools.get(kind.rsplit("_", 1)[-1])
    if found or not anything:
        return found or []
    return [ident for ids in pools.values() for ident in ids]


def _probe_offset() -> int:
    """Where this load process starts in the probes' turn: another place for each worker and seed."""
    return int(hashlib.sha256(f"{CONFIG.seed}:{os.getpid()}".encode()).hexdigest()[:6], 16)
_recorder: SpooledRecorder | None = None
_recorder_pid = 0
#: What this process has learnt, per tenant: session ids and call ids seen in answers.
_sessions: dict[str, deque[str]] = {}
_calls: dict[str, deque[str]] = {}


_recorder_lock = threading.Lock()


def recorder() -> SpooledRecorder:
    """This process's recorder (each forked Locust worker writes its own file).

    Created under a lock: opening its spool may yield to other users under
    gevent, and two recorders on one file would interleave records.
    """
    global _recorder, _recorder_pid
    if _recorder is not None and _recorder_pid == os.getpid():
        return _recorder
    with _recorder_lock:
        if _recorder is None or _recorder_pid != os.getpid():
            os.makedirs(CONFIG.history_dir, exist_ok=True)
            _recorder = SpooledRecorder(
                os.path.join(CONFIG.history_dir, f"load-{os.getpid()}.jsonl"), Derived(COMPANY_IDS),
                origin_ns=CONFIG.origin_ns,
            )
            _recorder_pid = os.getpid()
    return _recorder


def _remember(pool: dict[str, deque[str]], tenant: str, value: Any) -> None:
    if isinstance(value, str):
        pool.setdefault(tenant, deque(maxlen=64)).append(value)


# -- probes derived from the OpenAPI document (stormproof.harness.load.probes) ----------------------------------------
#: Ids per tenant and kind (``appointment``, ``session``, ...): the seed's, then those the answers named.
_ids: dict[str, dict[str, deque[str]]] = {}
#: Seeded ids per kind and list name of the tenant: every ``<kind>_ids`` list, and ``manager_id``.
_SEEDED_KINDS = {"appointment_ids": "appointment", "rep_ids": "rep"}
#: The share of webhook deliveries sent as an impostor would (plan A1: each must be refused 401, apply nothing).
_BAD_SIGNATURE_SHARE = 0.1
#: The share of the signed deliveries that say completed without a result or an output hash (must apply nothing).
_INCOMPLETE_SHARE = 0.1
#: (tenant, kind) -> when a probe last had that tenant create a row of that kind (``_create_unseen``).
_create_tried: dict[tuple[str, str], float] = {}


def _seed_ids() -> None:
    for tenant in CONFIG.tenants:
        pools = _ids.setdefault(str(tenant["company_id"]), {})
        for name, values in tenant.items():
            if name.endswith("_ids") and isinstance(values, list):
                kind = _SEEDED_KINDS.get(name, "appointment" if "appointment" in name else derive.kind_of(name[:-1]))
                pool = pools.setdefault(kind, deque(maxlen=256))
                # Single ids only: overlap_pair_ids holds pairs, and a pair rendered as one string where an id
                # goes is refused 422 before the id matters (a probe's false alarm, 2026-12-02).
                pool.extend(str(value) for value in values
                            if name not in ("deleted_appointment_ids",) and isinstance(value, (str, int)))


_seed_ids()


def _learn(tenant: str, path: str, answer: Answer) -> None:
    """File the ids a 2xx answer names under their kinds (cheap: only dict/list bodies of 2xx)."""
    if not answer.ok or answer.body is None:
        return
    pools = _ids.setdefault(tenant, {})
    for kind, value in derive.learn(path.split("?", 1)[0], answer.status, answer.body):
        pool = pools.get(kind)
        if pool is None:
            pool = pools[kind] = deque(maxlen=256)
        if not pool or pool[-1] != value:
            pool.append(value)


#: Offsets (seconds east of UTC, as written) and titles of the appointments the load creates.
_OFFSETS = ((0, "Z"), (19800, "+05:30"), (-28800, "-08:00"))
_TITLES = ("lifecycle", "Besprechung – Küche", "diagnóstico ✓")


class _Derived:
    """The document and the routes each kind of probe draws from, fetched once per process."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc = derive.with_contract(doc)
        routes = derive.routes(doc)
        self.cross = derive.cross_tenant_routes(routes)
        self.reads = derive.own_reads(routes)
        self.idempotent = derive.idempotent_routes(routes)
        self.authz = derive.authz_routes(routes)
        self.malformed = malformed.malformed_turns(doc, routes)
        self.creators = derive.creators(routes)
        self.body_ids = tuple((route, fields) for route in routes if (fields := derive.body_id_fields(doc, route)))
        self.query_ids = tuple((route, fields) for route in routes if (fields := derive.query_id_fields(doc, route)))
        self.filters = tuple((route, field, values) for route in routes
                             for field, values in derive.query_filters(doc, route))


_derived: _Derived | None = None
_derived_failed = 0.0
_derived_lock = threading.Lock()


def derived() -> _Derived | None:
    """The system under test's ``/openapi.json``, read at the first probe (retried every 5 s on failure), with
    docs/API.md's routes the document lacks; a backend that answers 404 there is probed on those alone."""
    global _derived, _derived_failed
    if _derived is not None:
        return _derived
    if time.monotonic() - _derived_failed < 5.0:
        return None
    with _derived_lock:
        if _derived is None:
            try:
                with urllib.request.urlopen(f"{CONFIG.app_url}/openapi.json", timeout=10) as response:
                    _derived = _Derived(json.load(response))
            except urllib.error.HTTPError as error:
                if error.code == 404:  # a backend that serves no document: docs/API.md's routes alone
                    _derived = _Derived({})
                else:
                    _derived_failed = time.monotonic()
            except (OSError, ValueError):
                _derived_failed = time.monotonic()
    return _derived


#: This process's lapsing token per tenant (None: it cannot sign one), signed at the tenant's first
#: authorization probe here, so that its live moments fall in the load whenever that probe comes.
_lapsing: dict[str, LapsingToken | None] = {}


def _lapsing_token(tenant: dict[str, Any]) -> LapsingToken | None:
    company = str(tenant["company_id"])
    if company not in _lapsing:
        secret, life = os.environ.get("STORMPROOF_LOAD_JWT_SECRET"), CONFIG.token_lapse_s
        _lapsing[company] = lapsing_token(str(tenant["manager_token"]), secret, life) if secret and life else None
    return _lapsing[company]


_FAST_FAILURE_S = 0.5
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 1.0
#: Waits before each resend of a keyed write whose answer was lost or a 5xx (see StormUser._send): 7.5 s in all,
#: longer than a killed API takes to restart on a loaded machine, as a patient client waits.
_RESEND_WAITS_S = (0.5, 2.0, 5.0)
#: A keyed write refused 429 is sent again (same key) as the user's first action this long after (its Retry-After).
_LIMITED_RETRY_S = 1.0


def _busy(answer: Answer) -> bool:
    """A 409 ``resource-busy``: a lock held past the app's wait, "retry" (the write did not run)."""
    return answer.status == 409 and isinstance(answer.body, dict) \
        and str(answer.body.get("type", "")).endswith("resource-busy")


_BUSY_WAIT = between(0.0, 0.02)
#: Requests of one burst (do_appointment_list_burst), each on its own connection.
BURST_SIZE = 16


class StormUser(FastHttpUser):
    host = CONFIG.app_url
    network_timeout = CONFIG.request_timeout_s
    connection_timeout = 5.0
    concurrency = 4

    def on_start(self) -> None:
        number = next(_numbers)
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.process_name = f"w{worker}-{os.getpid()}/u{number}"
        self._refusals = 0  # fast failures in a row: see _back_off_if_refused
        self._limited: tuple[float, Callable[[], None]] | None = None  # a keyed write refused 429: see _send
        self._burst_client: Any = None  # a session of BURST_SIZE connections, made at the first burst
        #: The token of our last deletion request left unconfirmed, when it was answered and until when it
        #: is surely pending: the wrong token some confirmations carry.
        self._spare_token: tuple[str, float] | None = None
        #: Whether this user has sent its incomplete webhook delivery, and how many forged ones (see _deliver).
        self._incomplete_sent = False
        self._forged = 0
        self._signed = 0  # whole signed deliveries sent (one in four is dated back: see _deliver)
        self._policy_set = False  # whether this user set its tenant's retention policy (retention_policy)
        self.rng = random.Random(f"{CONFIG.seed}:{worker}:{number}")
        #: Where this user's turn through the kinds of bad signature begins (each forged delivery the next kind);
        #: not drawn from rng, whose stream the seeds of the scenarios were measured with.
        self._forge_from = number
        self.tenant = CONFIG.tenants[(number - 1) % len(CONFIG.tenants)]
        self.company = str(self.tenant["company_id"])
        self.quiet = self.company in CONFIG.quiet_tenants
        self.others = [t for t in CONFIG.tenants if str(t["company_id"]) != self.company]
        hot = max(1, CONFIG.hot_appointments)
        self.hot = list(self.tenant["appointment_ids"][:hot])
        names = [name for name, weight in CONFIG.weights.items() if weight > 0]
        self.actions: list[Callable[[], None]] = [getattr(self, "do_" + name.replace(".", "_")) for name in names]
        self.cum_weights = list(itertools.accumulate(CONFIG.weights[name] for name in names))

    def wait_time(self) -> float:
        """Busy users pause 0 to 20 ms between actions; a quiet tenant's users pause about
        ``quiet_interval_s`` (half to one and a half times it), so the tenant stays far under its limit.
        With ``tick_s``, busy users wait for the next tick of the wall clock (every process reads the same
        one), so all of a tenant's users send at the same instant: a limiter whose check and update are not
        one atomic step lets the racing requests through together (plan C3)."""
        if self.quiet:
            return CONFIG.quiet_interval_s * (0.5 + self.rng.random())
        if CONFIG.tick_s > 0:
            return CONFIG.tick_s - time.time() % CONFIG.tick_s
        return _BUSY_WAIT(self)

    @task
    def act(self) -> None:
        if self._limited is not None and time.monotonic() >= self._limited[0]:
            again, self._limited = self._limited[1], None
            again()
        elif self.actions:
            turn = next(_opening_turns)
            if turn < len(_OPENING):
                getattr(self, "do_" + _OPENING[turn].replace(".", "_"))()
            else:
                self.rng.choices(self.actions, cum_weights=self.cum_weights)[0]()

    # -- plumbing --------------------------------------------------------------
    def _token(self) -> str:
        return str(self.tenant["manager_token"])

    def _send(self, f: str, method: str, path: str, *, args: dict[str, Any], body: Any = None,
              key: str | None = None, token: str | None = None, tenant: str | None = None,
              raw_body: bytes | None = None, headers: dict[str, str] | None = None,
              mask: tuple[str, ...] | None = None) -> Answer:
        """Send one request and record it; a keyed write of the load whose answer was lost is sent again.

        That is what an Idempotency-Key is for, and what real clients do: with no answer (reset,
        refused, timed out) the write may or may not have run, so the same request goes again under
        the same key (``args.resend`` = 1, 2, 3), up to three times over 7.5 s, while the answer is lost, a
        5xx, or the first request is still in flight (409 ``idempotency-key-in-flight``; ``args.resend_after``
        says which). The app must then replay what
        ran or run it now: a write committed just before a crash becomes an acknowledged replay that
        the checkers judge (its effects must all be there), instead of an answer nobody saw.
        Probes are never resent: each sends exactly the requests its situation describes.
        """
        answer = self._send_once(f, method, path, args=args, body=body, key=key, token=token, tenant=tenant,
                                 raw_body=raw_body, headers=headers, mask=mask)
        if key is None or f.startswith("probe."):
            return answer
        for resend, wait_s in enumerate(_RESEND_WAITS_S, start=1):
            in_flight = answer.status == 409 and isinstance(answer.body, dict) \
                and str(answer.body.get("type", "")).endswith("idempotency-key-in-flight")
            # A lost answer and a server error are both "try again, same key" (the key is what makes that
            # safe): a 5xx stores nothing, so the resend must run (B1.conflict-stored); a key store that kept
            # the 5xx answers it again, marked replayed (idempotent-replay: error-replayed).
            failed = "lost" if answer.status == 0 else "5xx" if answer.status >= 500 else None
            if failed is None and not (resend > 1 and in_flight):
                break
            gevent.sleep(wait_s)
            after = failed or "in-flight"
            answer = self._send_once(f, method, path, args={**args, "resend": resend, "resend_after": after},
                                     body=body, key=key, token=token, tenant=tenant, raw_body=raw_body,
                                     headers=headers, mask=mask)
        retry = "after_429" if answer.status == 429 else "after_busy" if key is not None and _busy(answer) else None
        if retry is not None and "after_429" not in args and "after_busy" not in args:
            # A rate limit's "not now", a busy resource's "retry": a real client sends the same request again
            # with the same key after Retry-After (about a second here), as the user's next action; the app must
            # run it anew, not answer a refusal it stored under the key (args.after_429 or args.after_busy marks
            # the retry; rate-limit-enforced and idempotent-replay judge a stored one).
            def again() -> None:
                self._send(f, method, path, args={**args, retry: 1}, body=body, key=key, token=token,
                           tenant=tenant, raw_body=raw_body, headers=headers, mask=mask)

            self._limited = (time.monotonic() + _LIMITED_RETRY_S, again)
        return answer

    def _send_once(self, f: str, method: str, path: str, *, args: dict[str, Any], body: Any,
                   key: str | None, token: str | None, tenant: str | None, raw_body: bytes | None,
                   headers: dict[str, str] | None, mask: tuple[str, ...] | None, client: Any = None) -> Answer:
        # Plan E1: the answer must echo the request's trace id, and the tasks it enqueues must carry it. One
        # request in four gives it as a W3C traceparent instead (plan E1's other way in; an app that read
        # X-Trace-Id alone passed while no request sent one, 2026-12-03).
        trace = uuid.uuid4().hex
        if next(_trace_turns) % 4 == 3 and TRACE_HEADER not in (headers or {}):
            sent = {TRACEPARENT_HEADER: traceparent(trace, uuid.uuid4().hex[:16]), **(headers or {})}
            args = {**args, "trace_via": TRACEPARENT_HEADER}
        else:
            sent = {TRACE_HEADER: trace, **(headers or {})}
        args = {**args, "trace_id": sent_trace_id(sent) or trace}  # a probe's own header wins
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["Idempotency-Key"] = key
            args = {**args, "idempotency_key": key}
        began = time.monotonic()
        answer = record_request(
            client or self.client, recorder(), process=self.process_name, f=f, tenant=tenant or self.company,
            method=method, path=path, args=args, headers=sent, body=body, raw_body=raw_body, mask=mask,
            fingerprint=body is not None and "payload_fp" not in args,
        )
        self._back_off_if_refused(answer, time.monotonic() - began)
        if answer.ok and token is not None:
            _learn(tenant or self.company, path, answer)
        return answer

    def _back_off_if_refused(self, answer: Answer, elapsed: float) -> None:
        """After a fast failure with no HTTP answer (the API is down: refused or reset at once), wait
        50 ms, doubling up to 1 s, as a real client does; any HTTP answer or a slow failure resets it.

        Without it, six users spun about 100 failed requests a second while a killed app restarted,
        and on a 2-core machine that CPU stretched the restart they were waiting for to 21 s
        (relay-worker-kill); the error rate then counted the spin, not the requests users would send.
        A timeout (a slow failure) is not a refusal: it already waited, and is not slowed further.
        """
        if answer.status != 0 or elapsed >= _FAST_FAILURE_S:
            self._refusals = 0
            return
        self._refusals += 1
        gevent.sleep(min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (self._refusals - 1)))

    def _member(self) -> tuple[str, dict[str, str]]:
        """A token of one of the tenant's users, at random (its manager or a rep), and ``args.as_user``.

        Sessions are the tenant's, not their starter's: any user of the tenant starts, stops and reads any
        of them (docs/API.md). A load that did all of it as the manager passed an app whose stop looked the
        session up among the caller's own (2026-12-05); now one user starts and, as often as not, another
        stops or reads.
        """
        reps = self.tenant.get("rep_tokens") or []
        n = self.rng.randrange(len(reps) + 1)
        return (self._token(), {}) if n == len(reps) else (str(reps[n]), {"as_user": f"rep:{n}"})

    def _start(self, f: str, appointment: str, key: str | None, **extra: Any) -> Answer:
        path = "/api/v1/recordings/sessions/start" if f == v.SESSION_START else "/api/v1/recordings/start"
        body = {"appointment_id": appointment}
        token, who = self._member()
        answer = self._send(f, "POST", path, args={"appointment_id": appointment, **who, **extra}, body=body,
                            key=key, token=token)
        if isinstance(answer.body, dict):
            _remember(_sessions, self.company, answer.body.get("id") or answer.body.get("recording_id")
                      or answer.body.get("active_session_id"))
        return answer

    def _known_session(self, tenant: str) -> str | None:
        pool = _sessions.get(tenant)
        return self.rng.choice(pool) if pool else None

    # -- actions -----------------------------------------------------------------
    def do_session_start(self) -> None:
        self._start(v.SESSION_START, self.rng.choice(self.hot), uuid.uuid4().hex)

    def do_legacy_start(self) -> None:
        self._start(v.LEGACY_START, self.rng.choice(self.hot), None)

    def _stop(self, f: str) -> None:
        session = self._known_session(self.company)
        if session is None:
            self.do_session_start()
            return
        if f == v.SESSION_STOP:
            path, key = f"/api/v1/recordings/sessions/{session}/stop", uuid.uuid4().hex
        else:
            path, key = f"/api/v1/recordings/{session}/stop", None
        token, who = self._member()
        self._send(f, "POST", path, args={"session_id": session, **who}, key=key, token=token)

    def do_session_stop(self) -> None:
        self._stop(v.SESSION_STOP)

    def do_legacy_stop(self) -> None:
        self._stop(v.LEGACY_STOP)

    def do_appointment_assign(self) -> None:
        appointment, rep = self.rng.choice(self.hot), self.rng.choice(self.tenant["rep_ids"])
        self._send(v.ASSIGN, "POST", f"/api/v1/appointments/{appointment}/assign",
                   args={"appointment_id": appointment, "rep_id": rep}, body={"rep_id": rep},
                   key=uuid.uuid4().hex, token=self._token())

    def do_appointment_double_book(self) -> None:
        """Assign one rep to both appointments of an overlapping pair at once (plan A3): at most one may hold,
        the other answers 409 rep-double-booked. Pairs come from the seed (``overlap_pair_ids``), unassigned,
        and one turn in four a pair whose windows only touch (``adjacent_pair_ids``): both may hold;
        half the time the pair is unassigned first, so the race can be run again."""
        pairs = self.tenant.get("overlap_pair_ids") or []
        if not pairs:
            return
        # One turn in four, a pair whose windows only touch: both assigns must then hold (a check that takes
        # touching windows for overlapping ones passed assignment-storm, 2026-12-03).
        touching = self.tenant.get("adjacent_pair_ids") or []
        kind = "adjacent_pair" if touching and next(_pair_turns) % 4 == 3 else "overlap_pair"
        pair = self.rng.choice(touching if kind == "adjacent_pair" else pairs)
        rep = self.rng.choice(self.tenant["rep_ids"])
        if self.rng.random() < 0.5:
            for appointment in pair:
                self._send(v.UNASSIGN, "POST", f"/api/v1/appointments/{appointment}/unassign",
                           args={"appointment_id": appointment}, key=uuid.uuid4().hex, token=self._token())

        def assign(appointment: str) -> None:
            self._send(v.ASSIGN, "POST", f"/api/v1/appointments/{appointment}/assign",
                       args={"appointment_id": appointment, "rep_id": rep, kind: True},
                       body={"rep_id": rep}, key=uuid.uuid4().hex, token=self._token())

        together(*(lambda appointment=appointment: assign(appointment) for appointment in pair))

    def do_appointment_unassign(self) -> None:
        appointment = self.rng.choice(self.hot)
        self._send(v.UNASSIGN, "POST", f"/api/v1/appointments/{appointment}/unassign",
                   args={"appointment_id": appointment}, key=uuid.uuid4().hex, token=self._token())

    def do_appointment_assign_read(self) -> None:
        """Assign a rep to one of the tenant's quiet appointments (none of the hot ones the other turns write),
        read it, unassign it, read it again: each read must answer what the write just acknowledged left
        (reads-current). Reads of hot appointments are nearly always concurrent with some write, so a read cache
        that writes never invalidate passed every scenario (2026-12-04)."""
        quiet = self.tenant["appointment_ids"][len(self.hot):]
        if not quiet or not self.tenant.get("rep_ids"):
            return
        appointment, rep = self.rng.choice(quiet), self.rng.choice(self.tenant["rep_ids"])
        path = f"/api/v1/appointments/{appointment}"
        self._send(v.ASSIGN, "POST", f"{path}/assign", args={"appointment_id": appointment, "rep_id": rep},
                   body={"rep_id": rep}, key=uuid.uuid4().hex, token=self._token())
        self._send(v.APPOINTMENT_READ, "GET", path, args={"appointment_id": appointment}, token=self._token())
        self._send(v.UNASSIGN, "POST", f"{path}/unassign", args={"appointment_id": appointment},
                   key=uuid.uuid4().hex, token=self._token())
        self._send(v.APPOINTMENT_READ, "GET", path, args={"appointment_id": appointment}, token=self._token())

    def do_appointment_read(self) -> None:
        appointment = self.rng.choice(self.tenant["appointment_ids"])
        self._send(v.APPOINTMENT_READ, "GET", f"/api/v1/appointments/{appointment}",
                   args={"appointment_id": appointment}, token=self._token())

    def do_session_read(self) -> None:
        session = self._known_session(self.company)
        if session is None:
            self.do_appointment_list()
            return
        token, who = self._member()
        self._send(v.SESSION_READ, "GET", f"/api/v1/recordings/sessions/{session}",
                   args={"session_id": session, **who}, token=token)

    def do_appointment_list(self) -> None:
        """The tenant's first page; one time in four a page past the end (``args.offset``), which is 200 and
        empty: an app that answered an empty page 404 passed every scenario, no list ever being empty."""
        if self.rng.random() < 0.25:
            self._send(v.APPOINTMENT_LIST, "GET", f"/api/v1/appointments?limit=50&offset={_PAST_THE_END}",
                       args={"offset": _PAST_THE_END}, token=self._token())
            return
        self._send(v.APPOINTMENT_LIST, "GET", "/api/v1/appointments?limit=50", args={}, token=self._token())

    def do_appointment_list_burst(self) -> None:
        """BURST_SIZE lists of this user's tenant at once, each on its own connection (``args.burst``).

        A steady flood reaches the app's limiter one request at a time; a burst reaches it together,
        and finds what only simultaneity finds: every request of the burst needing a connection to
        Redis at the same moment (a pool that fails instead of waiting lets them all through, fail
        open). rate-limit-enforced judges the accepted ones against the allowance like any others.
        A quiet tenant's user sends one list instead.
        """
        if self.quiet:  # a quiet tenant stays within its allowance (see wait_time): one list, not a burst
            self.do_appointment_list()
            return
        from locust.contrib.fasthttp import FastHttpSession

        if self._burst_client is None:
            self._burst_client = FastHttpSession(
                base_url=self.host, request_event=self.environment.events.request, user=self,
                network_timeout=self.network_timeout, connection_timeout=self.connection_timeout,
                max_redirects=self.max_redirects, max_retries=self.max_retries, insecure=self.insecure,
                concurrency=BURST_SIZE, ssl_context_factory=self.ssl_context_factory, headers=self.default_headers)

        # From every user of the tenant in turn: the allowance is the tenant's, and a limiter keyed by the
        # user (or the token) would let each of them through in full (a tenant's traffic from one token
        # passed such a limiter at noisy-tenant, 2026-12-02).
        tokens = [self._token(), *(str(t) for t in self.tenant.get("rep_tokens") or ())]

        def one(n: int) -> None:
            self._send_once(v.APPOINTMENT_LIST, "GET", "/api/v1/appointments?limit=50", args={"burst": n},
                            body=None, key=None, token=tokens[n % len(tokens)], tenant=None, raw_body=None,
                            headers=None, mask=None, client=self._burst_client)

        together(*(lambda n=n: one(n) for n in range(1, BURST_SIZE + 1)))

    def do_call_submit(self) -> str | None:
        appointment = self.rng.choice(self.hot)
        body = {"appointment_id": appointment}
        answer = self._send(v.CALL_SUBMIT, "POST", "/api/v1/calls", args={"appointment_id": appointment},
                            body=body, key=uuid.uuid4().hex, token=self._token())
        call = answer.body.get("id") if isinstance(answer.body, dict) else None
        _remember(_calls, self.company, call)
        return call if isinstance(call, str) else None

    def do_call_refresh(self) -> None:
        """Ask for a poll of a call's job now: with one already queued, nothing new may be enqueued."""
        pool = _calls.get(self.company)
        if not pool:
            self.do_call_submit()
            return
        call = self.rng.choice(pool)
        self._send("call.refresh", "POST", f"/api/v1/calls/{call}/refresh", args={"call_id": call},
                   token=self._token())

    def do_webhook_deliver(self) -> None:
        """Deliver, signed as Shunya would, the result of a job of ours: a deliberate duplicate; or (one in
        ten) a forged result with a missing, stale, future-dated, malformed or wrong signature, which must be
        refused 401.

        Aimed at the moment a duplicate can do harm: half the time the newest call (its job most likely
        not applied yet; an old call's was, and a duplicate of an applied job meets only the plain status
        check), and half the time two copies at once, as Shunya's retry meets the worker's poll. A
        starved machine served random old calls' duplicates one after the other, and with the job guards
        off the run found 1 or 2 double applies, or none (2026-12-02, load 8 to 15)."""
        pool = _calls.get(self.company)
        if not pool:
            self.do_call_submit()
            return
        call = pool[-1] if self.rng.random() < 0.5 else self.rng.choice(pool)
        answer = self._send("call.read", "GET", f"/api/v1/calls/{call}", args={"call_id": call}, token=self._token())
        job = answer.body.get("job") if isinstance(answer.body, dict) else None
        job_id = job.get("shunya_job_id") if isinstance(job, dict) else None
        if not job_id:
            return
        if self.rng.random() < 0.5:
            together(lambda: self._deliver(job_id, call), lambda: self._deliver(job_id, call))
        else:
            self._deliver(job_id, call)
        # Then read the call, as the client that waits for its analysis does: a delivery answered applied
        # must show (reads-current). The read before the delivery primes any cache a weak app keeps.
        self._send("call.read", "GET", f"/api/v1/calls/{call}", args={"call_id": call, "after_delivery": True},
                   token=self._token())

    def do_webhook_superseded(self) -> None:
        """A new call, then at once a signed delivery of another job of that call, superseded (as when a
        submission was retried after a lost answer and Shunya ran both): it is not the call's job, so its
        result must never become the call's (plan A1)."""
        call = self.do_call_submit()
        if call is not None:
            self._deliver(f"shj_superseded_{uuid.uuid4().hex[:16]}", call, superseded=True)

    def _deliver(self, job_id: str, call: str, **extra: object) -> None:
        """POST the completed job's result, signed as Shunya signs it (``harness/shunya/forged.py``).

        A small share is not Shunya's: unsigned, signed too long ago, or signed with another secret. Each
        carries a forged result (its own output_hash), so that one applied shows in the final state.

        Each user's first plain delivery is incomplete and its next one forged, then each at its share:
        a share alone left a whole run without one (webhook-poll-storm seed 4 drew no incomplete delivery,
        so its promise was not exercised and the all-on run needed another try, CI 2026-12-06).
        """
        from stormproof.harness.shunya.forged import BAD_SIGNATURES, DELAYED_S, INCOMPLETE, job_delivery

        forge_now = self._incomplete_sent and not self._forged
        # The kinds in turn, so that a short run still sends each (a future-dated or malformed timestamp is
        # refused by its own check only: a run without one says nothing of it).
        turn = BAD_SIGNATURES[(self._forge_from + self._forged) % len(BAD_SIGNATURES)]
        bad = turn if forge_now or self.rng.random() < _BAD_SIGNATURE_SHARE else None
        spaced = self.rng.random() < 0.5  # another layout of the same JSON, signed as sent: must be accepted
        # Signed but incomplete (completed, no result or no hash): aimed, like the duplicates, at a job not yet
        # applied, where an app that takes it in records an empty analysis or a job processed under no hash.
        incomplete = self.rng.choice(INCOMPLETE) if bad is None and not extra \
            and (not self._incomplete_sent or self.rng.random() < _INCOMPLETE_SHARE) else None
        self._incomplete_sent |= incomplete is not None
        self._forged += bad is not None
        # One whole signed delivery in four (from the second) dated DELAYED_S back, as Shunya's queued ones are:
        # within the contract's window, so it must be accepted (a window too tight refuses Shunya itself).
        whole = bad is None and incomplete is None
        self._signed += whole
        age = DELAYED_S if whole and self._signed % 4 == 2 else 0
        sent = job_delivery(job_id, call, self.company, CONFIG.webhook_secret, bad=bad,
                            forger=f"{derive.MARKER}{self.company}", spaced=spaced, incomplete=incomplete,
                            age_s=age)
        self._send(v.WEBHOOK_DELIVER, "POST", "/api/v1/shunya/webhook",
                   args={"job_id": job_id, "payload_fp": sent.payload_fp, "call_id": call, **extra,
                         **({"bad_signature": bad} if bad else {}), **({"spaced": True} if spaced else {}),
                         **({"incomplete": incomplete} if incomplete else {}), **({"delayed_s": age} if age else {})},
                   raw_body=sent.raw,
                   headers=sent.headers)

    def do_replay_same(self) -> None:
        """The same request twice with one key: the second must be the first, replayed.

        Half the time the session the first request started is stopped in between (args
        ``changed_between``): the replay must still give back the stored answer, the session as it was
        started, not re-read it as it is now. Replays sent back to back never saw a store that kept only
        the id and re-rendered the row (it passed idempotency-replay-storm, 2026-12-02).
        """
        appointment, key = self.rng.choice(self.hot), uuid.uuid4().hex
        first = self._start(v.SESSION_START, appointment, key)
        created = first.body.get("id") if first.status == 201 and isinstance(first.body, dict) else None
        if isinstance(created, str) and self.rng.random() < 0.5:
            self._send(v.SESSION_STOP, "POST", f"/api/v1/recordings/sessions/{created}/stop",
                       args={"session_id": created}, key=uuid.uuid4().hex, token=self._token())
            self._start(v.SESSION_START, appointment, key, changed_between=created)
            return
        self._start(v.SESSION_START, appointment, key)

    def do_replay_mismatch(self) -> None:
        """One key, two payloads: the second must be refused with 422."""
        appointments = list(self.tenant["appointment_ids"])
        if len(appointments) < 2:
            return
        key = uuid.uuid4().hex
        first, second = self.rng.sample(appointments, 2)
        self._start(v.SESSION_START, first, key)
        self._start(v.SESSION_START, second, key)

    def do_replay_concurrent(self) -> None:
        """Two requests with one key at once: 409 in flight, or the same answer."""
        appointment, key = self.rng.choice(self.hot), uuid.uuid4().hex
        together(*(lambda: self._start(v.SESSION_START, appointment, key) for _ in range(2)))

    def do_probe_tenant_header(self) -> None:
        """A read naming another tenant where a client can name one: the token decides, so only our rows may
        come back (plan D2; any other tenant's data in the answer is foreign-data).

        Half the time the X-Company-Id header on the appointment list; else a query parameter that names a
        tenant (``company_id``, ``tenant_id``) on any list read of the document. The header alone let an app
        that honoured ``?company_id=`` (support's "act as", left in) pass tenant-header-probe (2026-12-03).
        """
        if not self.others:
            return
        other = str(self.rng.choice(self.others)["company_id"])
        d = derived()
        lists = [r for r in d.authz if r.method == "GET" and not r.id_params] if d is not None else []
        if not lists or self.rng.random() < 0.5:
            self._send(v.APPOINTMENT_LIST, "GET", "/api/v1/appointments?limit=50", args={"header_tenant": other},
                       token=self._token(), headers={"X-Company-Id": other})
            return
        route, field = self.rng.choice(lists), self.rng.choice(_TENANT_PARAMS)
        path = f"{route.path}?{field}={other}"
        self._send(v.PROBE_FILTER, "GET", path, token=self._token(),
                   args={"route": route.name, "query_field": field, "value": other, "target_tenant": other,
                         "method": "GET", "path": path})

    def _own(self, tenant: str | None = None) -> dict[str, list[str]]:
        return {kind: list(pool) for kind, pool in _ids.get(tenant or self.company, {}).items() if pool}

    def _fill(self, route: derive.Route, pools: dict[str, list[str]]) -> dict[str, str] | None:
        """An id of the right kind for each path parameter, or None when a kind has none yet."""
        ids = {}
        for name, kind in route.id_params:
            pool = pools.get(kind)
            if not pool:
                return None
            ids[name] = self.rng.choice(pool)
        return ids

    def do_probe_cross_tenant(self) -> None:
        """Any route that takes an id, with another tenant's id and then a missing one: both must answer alike, 404.

        Routes come from the app's OpenAPI document (every method, writes included), ids from the
        seed and from what the load has seen. The body is one we could send for our own rows, so
        that only the path's id can make the difference. Writes whose body names an id
        (``appointment_id``, ``rep_id`` ...) are probed the same way with that id instead.
        """
        d = derived()
        if d is None or not self.others:
            return
        other = self.rng.choice(self.others)
        target_company = str(other["company_id"])
        foreign_pools = self._own(target_company)
        unseen = sorted({kind for route in d.cross for _, kind in route.id_params if not foreign_pools.get(kind)})
        if unseen and self._create_unseen(d, other, unseen):
            foreign_pools = self._own(target_company)
        # Sent by any user of ours, on the routes the document lets that user call: a tenant check made for
        # one role only (the manager's, say) is a door for the others (a guard that scoped managers' lookups
        # alone passed tenant-probe while every probe came from the manager, 2026-12-02).
        reps = [str(t) for t in self.tenant.get("rep_tokens") or ()]
        as_rep = bool(reps) and self.rng.random() < 0.5
        token = self.rng.choice(reps) if as_rep else self._token()

        def callable_by_us(route: derive.Route) -> bool:
            return not as_rep or not route.roles or "rep" in route.roles

        choices: list[tuple[derive.Route, dict[str, str], str | None]] = [
            (route, ids, None) for route in d.cross
            if callable_by_us(route) and (ids := self._fill(route, foreign_pools)) is not None]
        own = self._own()
        for route, fields in d.body_ids:  # another tenant's id in a body instead of a path: the same door
            ids = self._fill(route, own) if callable_by_us(route) else None
            if ids is not None:
                choices += [(route, ids, field) for field, kind in fields if _pool(foreign_pools, kind, anything=True)]
        queried: list[tuple[derive.Route, dict[str, str], str, str]] = []
        for route, fields in d.query_ids:  # or in a read's query string (a filter by id)
            ids = self._fill(route, own) if callable_by_us(route) else None
            if ids is not None:
                queried += [(route, ids, field, kind) for field, kind in fields if _pool(foreign_pools, kind)]
        filtered = [(route, ids, field, values) for route, field, values in d.filters
                    if callable_by_us(route) and (ids := self._fill(route, own)) is not None]
        role = "rep" if as_rep else "manager"
        # Every read of the document, sent for our own rows (ids of ours in its path), one route after the other:
        # a list or a read that lost its tenant condition answers other tenants' rows to their own reader, which
        # a probe with another tenant's id never asks (the assignments of an appointment, listed without the
        # appointment's condition, passed smoke: no load read them, 2026-12-06). Judged by tenant-isolation
        # (foreign-data, and own-row-not-found from the ids in the args).
        readable = [(route, ids) for route in d.reads if callable_by_us(route)
                    and (ids := self._fill(route, own)) is not None]
        if readable and self.rng.random() < _OWN_READ_SHARE:
            route, own_ids = readable[next(_own_reads) % len(readable)]
            path = derive.fill_path(route, own_ids)
            self._send(v.PROBE_FILTER, "GET", path, token=token,
                       args={"route": route.name, "own_read": True, "method": "GET", "path": path, "as_role": role,
                             **own_ids, **({"list_fields": tuple(own_ids)} if own_ids else {})})
            return
        # A filter is a branch of a read's query, where a tenant condition can get lost: our own read, filtered
        # by one of the values the document enumerates (every status of the dead-letter list, say); any other
        # tenant's data in the answer is foreign-data (tenant-isolation). Taken a fixed share of the time.
        if filtered and self.rng.random() < _FILTER_PROBE_SHARE:
            route, own_ids, field, values = self.rng.choice(filtered)
            value = self.rng.choice(values)
            path = f"{derive.fill_path(route, own_ids)}?{field}={value}"
            self._send(v.PROBE_FILTER, route.method, path, token=token,
                       args={"route": route.name, "query_field": field, "value": value, "method": route.method,
                             "path": path, "as_role": role, "list_fields": (field,)})
            return
        if not choices and not queried:
            return
        # A query door is one route among many: taken a fixed share of the time, or a run of a hundred
        # probes over dozens of doors would often never try it.
        if queried and (not choices or self.rng.random() < _QUERY_PROBE_SHARE):
            route, own_ids, field, kind = self.rng.choice(queried)
            self._probe_query_id(route, own_ids, field, self.rng.choice(_pool(foreign_pools, kind)),
                                 target_company, uuid.uuid4().hex, token, role)
            return
        route, foreign, field = self.rng.choice(choices)
        probe_id = uuid.uuid4().hex
        if field is not None:
            self._probe_body_id(d, route, foreign, field, foreign_pools, target_company, probe_id, token, role)
            return
        # the control: an id that exists nowhere, or (half the time, where the seed made one) one of ours deleted
        missing = {name: (self.rng.choice(gone) if (gone := self.tenant.get(f"deleted_{kind}_ids"))
                          and self.rng.random() < 0.5 else str(uuid.uuid4()))
                   for name, kind in route.id_params}
        body = derive.sample_body(d.doc, route, own, self.rng, derive.MARKER + self.company)
        for control, ids in ((False, foreign), (True, missing)):
            path = derive.fill_path(route, ids)
            target = next(iter(ids.values()))
            self._send(v.PROBE, route.method, path, body=body, token=token, mask=tuple(ids.values()),
                       key=uuid.uuid4().hex if route.idempotency else None,
                       args={"target_tenant": None if control else target_company, "target_id": target,
                             "method": route.method, "path": path, "route": route.name, "probe_id": probe_id,
                             "control": control, "as_role": role})
        if self.rng.random() < _MALFORMED_ID_SHARE:
            # The same request once more, its ids no ids at all (one request of its own, judged alone)
            bad = _MALFORMED_IDS[next(_malformed_turns) % len(_MALFORMED_IDS)]
            path = derive.fill_path(route, {name: bad for name in missing})
            self._send(v.PROBE, route.method, path, body=body, token=token,
                       key=uuid.uuid4().hex if route.idempotency else None,
                       args={"target_tenant": None, "target_id": bad, "malformed_id": True, "method": route.method,
                             "path": path, "route": route.name, "probe_id": uuid.uuid4().hex, "control": True,
                             "as_role": role})

    def _probe_body_id(self, d: _Derived, route: derive.Route, ids: dict[str, str], field: str,
                       foreign_pools: dict[str, list[str]], target_company: str, probe_id: str, token: str,
                       role: str) -> None:
        """Our own path, a body naming another tenant's id in ``field``, then the same body naming a missing id.

        Everything else is ours and valid, so only that id can make a difference: both must answer
        alike, 404, and nothing may be written (plan D2, ids in bodies; judged by tenant-isolation).
        """
        path = derive.fill_path(route, ids)
        body = derive.vary_enums(d.doc, route, derive.sample_body(d.doc, route, self._own(), self.rng,
                                                                  derive.MARKER + self.company, known_ids=True),
                                 self.rng)
        foreign = self.rng.choice(derive.foreign_for_body(foreign_pools, field, body, target_company))
        for control, value in ((False, foreign), (True, str(uuid.uuid4()))):
            self._send(v.PROBE, route.method, path, body={**(body or {}), field: value}, token=token,
                       mask=(value,), key=uuid.uuid4().hex if route.idempotency else None,
                       args={"target_tenant": None if control else target_company, "target_id": value,
                             "method": route.method, "path": path, "route": route.name, "probe_id": probe_id,
                             "as_role": role,
                             "control": control, "body_field": field})

    def _probe_query_id(self, route: derive.Route, ids: dict[str, str], field: str, foreign: str,
                        target_company: str, probe_id: str, token: str, role: str) -> None:
        """Our own read, filtered by another tenant's id in ``field``, then by a missing id.

        Both must answer alike (status, and the body once the id is masked): a filter naming someone
        else's row finds nothing of ours, exactly as one naming no row; and no answer may carry the
        other tenant's rows (judged by tenant-isolation, ``query_field`` in the args).
        """
        base = derive.fill_path(route, ids)
        for control, value in ((False, foreign), (True, str(uuid.uuid4()))):
            path = f"{base}?{field}={value}"
            self._send(v.PROBE, route.method, path, token=token, mask=(value,),
                       args={"target_tenant": None if control else target_company, "target_id": value,
                             "method": route.method, "path": path, "route": route.name, "probe_id": probe_id,
                             "control": control, "query_field": field, "as_role": role})

    def _create_unseen(self, d: _Derived, tenant: dict[str, Any], kinds: list[str]) -> bool:
        """Have ``tenant`` create, through the API's own create route, a row of a kind no answer named yet.

        Without it the probes reach only routes whose ids the scenario's actions happen to make; with it,
        every route that takes an id is probed (calls, legacy recordings, deletion requests ...). One
        kind per call, each (tenant, kind) tried at most every 2 s; a refused creation (409, 429) is
        simply tried again later. Recorded as ``probe.setup`` under the creating tenant.
        """
        company = str(tenant["company_id"])
        now = time.monotonic()
        ready = [k for k in kinds if d.creators.get(k) and now - _create_tried.get((company, k), -10.0) >= 2.0]
        if not ready:
            return False
        kind = self.rng.choice(ready)
        _create_tried[(company, kind)] = now
        route = self.rng.choice(d.creators[kind])
        theirs = self._own(company)
        body = derive.sample_body(d.doc, route, theirs, self.rng, derive.MARKER + company, known_ids=True)
        answer = self._send(v.PROBE_SETUP, route.method, route.path, body=body, token=str(tenant["manager_token"]),
                            tenant=company, key=uuid.uuid4().hex if route.idempotency else None,
                            args={"route": route.name, "kind": kind, "method": route.method, "path": route.path})
        return answer.ok

    def _fill_or_create(self, d: _Derived, route: derive.Route, tenant: dict[str, Any]) -> dict[str, str] | None:
        """Ids of ``tenant`` for ``route``'s path; where a kind has none yet, ``tenant`` creates one first.

        The idempotency probe's turn names a route; moving on to the next turn when its ids are
        missing starved the routes whose kind only an earlier answer can name (legacy stop needs a
        recording id: B1.mismatch.legacy-stop went unexercised in one of three
        idempotency-replay-storm runs, 2026-12-02). Creating the row through the API's own route,
        as the cross-tenant probe does, puts every route's turn at risk.
        """
        company = str(tenant["company_id"])
        pools = self._own(company)
        ids = self._fill(route, pools)
        if ids is not None:
            return ids
        unseen = sorted({kind for _, kind in route.id_params if not pools.get(kind)})
        if not self._create_unseen(d, tenant, unseen):
            return None
        return self._fill(route, self._own(company))

    def do_probe_idempotency(self) -> None:
        """A write that declares an Idempotency-Key, in one of the situations the draft names.

        replay (same key and payload, one after the other), mismatch (same key, another payload
        or path), concurrent (twice at once), missing (no key where required), other-tenant (the
        same key used by another tenant for its own request: its own, independent answer),
        malformed (a key with a space, a tab or 256 characters and more: 400); and, when the app's
        key TTL is short enough to wait out, expired (the same key and payload again well after the
        TTL: it must run as new, not replay).
        """
        d = derived()
        if d is None:
            return
        own = self._own()
        # Every (situation, route) in turn, shared by the process's users: each route's replay, mismatch,
        # concurrent, missing-key... is a promise of its own (docs/PROMISES.md, B1.*), and drawn at random
        # most of them went without a single probe in a run ("missing", only for the routes that require a
        # key: 0 of 90 probes in an idempotency-replay-storm run, 2026-12-02).
        pairs = _idempotency_turns(d.idempotent, bool(self.others))
        start = next(_probe_turns) + _probe_offset()
        for turn in range(start, start + len(pairs)):  # a route with no id of its kind yet: the next turn
            situation, route = pairs[turn % len(pairs)]
            ids = self._fill_or_create(d, route, self.tenant) if turn == start else self._fill(route, own)
            if ids is not None:
                own = self._own()
                break
        else:
            return
        ttl = CONFIG.idempotency_ttl_s
        key = uuid.uuid4().hex
        marker = f"{derive.MARKER}{self.company}-{key[:8]}"

        def send(step: int, ids: dict[str, str], body: Any, *, key: str | None = key, tenant: str | None = None,
                 token: str | None = None) -> Answer:
            path = derive.fill_path(route, ids)
            return self._send(v.PROBE_IDEMPOTENCY, route.method, path, body=body, key=key,
                              token=token or self._token(), tenant=tenant,
                              args={"route": route.name, "probe": situation, "step": step, "method": route.method,
                                    "path": path,
                                    "payload_fp": derive.request_fingerprint(route.method, path, body)})

        body = derive.sample_body(d.doc, route, own, self.rng, marker)
        if situation == "replay":
            send(1, ids, body)
            send(2, ids, body)
        elif situation == "expired":
            assert ttl is not None
            send(1, ids, body)
            gevent.sleep(ttl * derive.EXPIRY_PROBE_WAIT_TTLS + 1.0)
            send(2, ids, body)
        elif situation == "concurrent":
            together(*(lambda step=step: send(step, ids, body) for step in (1, 2)))
        elif situation == "missing":
            send(1, ids, body, key=None)
        elif situation == "malformed":  # must be refused 400 idempotency-key-invalid before anything runs
            send(1, ids, body, key=self.rng.choice(derive.MALFORMED_KEYS).format(key[:8]))
        elif situation == "mismatch":
            other_ids, other_body = ids, body
            for _ in range(4):
                other_ids = self._fill(route, own) or ids
                other_body = derive.sample_body(d.doc, route, own, self.rng, marker + "-2")
                if (other_ids, other_body) != (ids, body):
                    break
            else:
                return
            send(1, ids, body)
            send(2, other_ids, other_body)
        else:  # other-tenant: their own request, under the key we just used
            other = self.rng.choice(self.others)
            theirs = str(other["company_id"])
            their_ids = self._fill_or_create(d, route, other)
            if their_ids is None:
                return
            send(1, ids, body)
            their_body = derive.sample_body(d.doc, route, self._own(theirs), self.rng,
                                            f"{derive.MARKER}{theirs}-{key[:8]}")
            send(2, their_ids, their_body, tenant=theirs, token=str(other["manager_token"]))

    def do_probe_authz(self) -> None:
        """Any route that needs a token, called by someone who may not: no token, an expired or forged one, one
        that expired since it was served, a rep where the manager role is required; or by a manager on a read,
        who may. The first probes of a tenant send its lapsing token while it is live (``lapsing``)."""
        d = derived()
        if d is None or not d.authz:
            return
        # Every (route, caller) in turn: drawn at random, a rep on one manager route went unprobed for a whole
        # tenant-probe run (a rep let unassign passed, 2026-12-04: its 7 probes were all tokenless or forged).
        lapsing = _lapsing_token(self.tenant)
        now = time.time()
        if lapsing is not None and lapsing.phase(now) == "prime":
            # Live yet: sent on a read a manager may call, so that an app that keeps verified tokens has this one.
            reads = [r for r in d.authz if "manager" in derive.authz_roles(r)]
            if reads:
                lapsing.primed += 1
                self._authz_send(d, self.rng.choice(reads), "lapsing", lapsing.token, lapsing.args(now))
                return
        pairs = _authz_pairs(d.authz)
        start = next(_authz_turns)
        for turn in range(start, start + len(pairs)):
            route, role = pairs[turn % len(pairs)]
            if role == "expired" and not self.tenant.get("expired_token") \
                    or role == "rep" and not self.tenant.get("rep_tokens") \
                    or role == "lapsed" and (lapsing is None or lapsing.phase(now) != "lapsed"):
                continue
            break
        else:
            return
        token = {"none": None, "expired": self.tenant.get("expired_token"), "forged": forged(self._token()),
                 "rep": (self.tenant.get("rep_tokens") or [None])[0], "manager": self._token(),
                 "lapsed": lapsing.token if lapsing is not None else None}[role]
        self._authz_send(d, route, role, token, lapsing.args(now) if role == "lapsed" and lapsing else {})

    def do_probe_malformed(self) -> None:
        """A write whose body is broken in one way its own schema refuses (a required property missing, a wrong
        type, a NUL, one character too many, a number out of range, a date-time without offset, a window that
        ends before it starts...; stormproof.harness.load.malformed), sent by the tenant's manager with its own
        ids: refused 4xx before anything is written, never a 2xx or a 5xx (input-validated). Every (route,
        case, field) in turn, shared by the process's users."""
        d = derived()
        if d is None or not d.malformed:
            return
        own = self._own()
        start = next(_malformed_turns) + _probe_offset()
        for turn in range(start, start + len(d.malformed)):  # a route with no id of its kind yet: the next turn
            route, (case, field) = d.malformed[turn % len(d.malformed)]
            ids = self._fill_or_create(d, route, self.tenant) if turn == start else self._fill(route, own)
            if ids is not None:
                break
        else:
            return
        probe_id = uuid.uuid4().hex
        body = derive.sample_body(d.doc, route, self._own(), random.Random(probe_id),
                                  f"{derive.MARKER}{self.company}-{probe_id[:8]}", known_ids=True)
        path = derive.fill_path(route, ids)
        self._send(v.PROBE_MALFORMED, route.method, path, body=malformed.malform(d.doc, route, body, case, field),
                   token=self._token(), key=uuid.uuid4().hex if route.idempotency else None,
                   args={"route": route.name, "case": case, "field": field, "method": route.method, "path": path,
                         "probe_id": probe_id})

    def _authz_send(self, d: _Derived, route: Any, role: str, token: str | None, extra: dict[str, Any]) -> None:
        own = self._own()
        ids = {name: (self.rng.choice(own[kind]) if own.get(kind) else str(uuid.uuid4()))
               for name, kind in route.id_params}
        path = derive.fill_path(route, ids)
        body = derive.sample_body(d.doc, route, own, self.rng, derive.MARKER + self.company)
        self._send(v.PROBE_AUTHZ, route.method, path, body=body, token=token,
                   key=uuid.uuid4().hex if route.idempotency else None,
                   args={"route": route.name, "role": role, "required_roles": list(route.roles),
                         "method": route.method, "path": path, **extra})

    # -- data lifecycle (plan F1 to F3), off in the default mix ---------------------------------------
    def do_consent_grant(self) -> None:
        """Record consent on a hot appointment while sessions start on it: consents only ever add up."""
        self._grant_consent(self.rng.choice(self.hot), self.rng.choice(("recording", "analysis")))

    def _grant_consent(self, appointment: str, scope: str) -> None:
        """A consent grant whose client-settable address headers (X-Forwarded-For, X-Real-IP, Forwarded and
        the CDN ones) name addresses the client chose (TEST-NET-3, one per header): the evidence must keep
        the connection's IP, the User-Agent sent and the text verbatim (plan F3). X-Forwarded-For alone let
        an app that read X-Real-IP pass (2026-12-02)."""
        spoofed = [f"203.0.113.{self.rng.randrange(1, 255)}" for _ in CLIENT_IP_HEADERS]
        agent = f"stormproof-load/{self.process_name}"
        evidence = f"agreed by phone, script v{self.rng.randrange(100)} \u2014 {uuid.uuid4().hex[:8]}"
        if self.rng.random() < 1 / 3:
            # The script read out, as a long text kept in full: short evidence alone let an app that cut the
            # text at 255 characters (a VARCHAR(255) habit) pass lifecycle-under-load (2026-12-03).
            lines = [f"{n + 1}. {_SCRIPT[(n + self.rng.randrange(len(_SCRIPT))) % len(_SCRIPT)]}"
                     for n in range(self.rng.randrange(6, 30))]
            evidence = evidence + "\n" + "\n".join(lines)
        layout = self.rng.random() < 1 / 4
        if layout:
            # Layout kept as it came: white space at the edges, CRLF line ends, a tab, and an accent written
            # as a letter plus a combining mark (NFD). An app that stripped the text passed
            # lifecycle-under-load when every text began and ended with a letter (2026-12-03); one that
            # normalised line ends or Unicode would have too.
            evidence = f"  {evidence}\r\n\tconfirmed by Rene\u0301 (\u00ab oui \u00bb)\r\n"
        self._send(v.CONSENT_GRANT, "POST", f"/api/v1/appointments/{appointment}/consents",
                   args={"appointment_id": appointment, "scope": scope, "forwarded_for": spoofed[0],
                         "client_ips": spoofed, "user_agent": agent, "evidence": evidence, "layout": layout},
                   body={"scope": scope, "evidence": evidence}, token=self._token(),
                   headers={**client_ip_headers(spoofed), "User-Agent": agent})

    def _create_appointment(self) -> str | None:
        """A new appointment of our tenant, at a random hour years ahead (no consent yet)."""
        at = time.time() + 86400 * 400 + self.rng.randrange(24 * 365 * 5) * 3600
        # Written in the client's own offset and language two times in three: what was sent must be what is kept
        # (no-lost-acknowledged-write compares the final row), and an offset dropped on the way shifts the window.
        offset, suffix = self.rng.choice(_OFFSETS)
        fmt = "%Y-%m-%dT%H:%M:%S" + suffix
        window = {"title": self.rng.choice(_TITLES), "starts_at": time.strftime(fmt, time.gmtime(at + offset)),
                  "ends_at": time.strftime(fmt, time.gmtime(at + offset + 1800))}
        created = self._send(v.APPOINTMENT_CREATE, "POST", "/api/v1/appointments", args=dict(window), body=window,
                             token=self._token())
        appointment = created.body.get("id") if isinstance(created.body, dict) else None
        return appointment if created.status == 201 and isinstance(appointment, str) else None

    def do_consent_probe(self) -> None:
        """Process a new appointment without the consent it needs: must be 409 consent-required.

        Every way in, in turn: a session start, a legacy start, a call submission (its analysis needs
        consent). A check made on one route only let the others record without consent, and the
        probe sent session starts alone (a legacy start that skipped the check passed
        lifecycle-under-load, 2026-12-02). Half the time the appointment first gets a consent of a
        scope drawn at random, so a check that accepts any consent (not the one of the processing's
        scope) is at risk too. The appointment is kept: whatever was made stays in the final state
        for ``consent-before-processing`` to judge against the consents.

        The fourth way in is a call named by its recording session alone (``recording_session_id``, no
        ``appointment_id``): the session was recorded with the recording consent, and the call's analysis
        still needs the appointment's analysis consent (an app that checked it only when the body named
        the appointment analysed such calls unconsented, and every run passed: no load sent one).
        """
        appointment = self._create_appointment()
        if appointment is None:
            return
        f = _CONSENT_PROBED[next(_consent_turns) % len(_CONSENT_PROBED)]
        if f == _VIA_SESSION:
            # Half the time with the analysis consent too: the call must then be taken, and keep its session
            # (a call stored without its session link passed every scenario: no such call was ever accepted).
            scopes = ("recording", "analysis") if self.rng.random() < 0.5 else ("recording",)
            for scope in scopes:
                self._grant_consent(appointment, scope)
            started = self._start(v.SESSION_START, appointment, uuid.uuid4().hex)
            session = started.body.get("id") if started.status == 201 and isinstance(started.body, dict) else None
            if isinstance(session, str):
                self._send(v.CALL_SUBMIT, "POST", "/api/v1/calls",
                           args={"appointment_id": appointment, "recording_session_id": session,
                                 "consent_probe": "+".join(scopes), "via": "session"},
                           body={"recording_session_id": session}, key=uuid.uuid4().hex, token=self._token())
            return
        # The args say what the probe granted first ("none" or the scope), so that coverage counts the
        # probes (a start on a consented appointment puts no consent promise at risk) and a reader sees why.
        granted = "none"
        if self.rng.random() < 0.5:
            granted = self.rng.choice(("recording", "analysis"))
            self._grant_consent(appointment, granted)
        if f == v.CALL_SUBMIT:
            self._send(v.CALL_SUBMIT, "POST", "/api/v1/calls",
                       args={"appointment_id": appointment, "consent_probe": granted},
                       body={"appointment_id": appointment}, key=uuid.uuid4().hex, token=self._token())
        else:
            self._start(f, appointment, uuid.uuid4().hex if f == v.SESSION_START else None, consent_probe=granted)

    def do_lifecycle_delete(self) -> None:
        """Create an appointment with consent and a call, then delete it with a confirmed request, under load.

        Only appointments made here are deleted, so the seeded ones the other actions aim at stay.
        """
        appointment = self._create_appointment()
        if appointment is None:
            return
        for scope in ("recording", "analysis"):
            self._grant_consent(appointment, scope)
        # A call of it, so that what the deletion must take includes a call and its Shunya job (plan F2).
        self._send(v.CALL_SUBMIT, "POST", "/api/v1/calls", args={"appointment_id": appointment},
                   body={"appointment_id": appointment}, key=uuid.uuid4().hex, token=self._token())
        # Half the requests go through DELETE /appointments/{id}: every way to delete must wait for the
        # confirmation and write the audit (plan F2: cascade deletion with confirmation, an audit trail for
        # all deletions). A route that deleted at once, unaudited, passed lifecycle-under-load while the
        # load asked by POST /deletions alone (2026-12-03). Its answer is judged like any request's: an
        # appointment gone without a confirmation with the token is deleted-unconfirmed.
        if self.rng.random() < 0.5:
            request = self._send(v.DELETION_REQUEST, "DELETE", f"/api/v1/appointments/{appointment}",
                                 args={"scope": "appointment", "target_id": appointment, "route": "delete"},
                                 token=self._token())
        else:
            request = self._send(v.DELETION_REQUEST, "POST", "/api/v1/deletions",
                                 args={"scope": "appointment", "target_id": appointment},
                                 body={"scope": "appointment", "target_id": appointment}, token=self._token())
        if request.status not in (201, 202) or not isinstance(request.body, dict):
            return
        deletion = str(request.body.get("id"))
        answered = time.monotonic()
        life = deletion_life_bound_s(request.body.get("expires_at"), request.date)
        # A wrong token first: it must delete nothing (plan F2). Half the time it is a real token, of another
        # request of ours left unconfirmed: an app that found the request by its token (not the token by
        # the request) deleted that other request's appointment on this confirmation.
        spare = self._spare_token
        # Only while the other request is surely pending (its refusal must not be for expiry alone).
        other = spare is not None and time.monotonic() < spare[1] and self.rng.random() < 0.5
        wrong = spare[0] if other and spare is not None else f"wrong-{uuid.uuid4().hex}"
        self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                   args={"deletion_id": deletion, "wrong_token": True, "other_request_token": bool(other)},
                   body={"confirmation_token": wrong}, token=self._token())
        confirm = {"confirmation_token": request.body.get("confirmation_token")}
        if self.rng.random() < 1 / 3:
            # One request in three is left unconfirmed (the manager changed their mind), so the final state
            # shows what it kept; its token is the wrong one of a later confirmation.
            if isinstance(confirm["confirmation_token"], str) and life is not None:
                self._spare_token = (confirm["confirmation_token"], answered + life - _SPARE_MARGIN_S)
            # Half of those come back once the request has expired, with the right token (plan F2: only a
            # confirmation before it expires deletes), when its life is short enough to wait out.
            if life is not None and life <= LATE_WAIT_MAX_S and self.rng.random() < 0.5:
                gevent.sleep(max(0.0, life - (time.monotonic() - answered)) + LATE_MARGIN_S)
                self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                           args={"deletion_id": deletion, "late": True, **expiry_args(life, answered)},
                           body=confirm, token=self._token())
            return
        answers: list[Answer] = []

        def confirm_it(**extra: object) -> None:
            answers.append(self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                                      args={"deletion_id": deletion, **expiry_args(life, answered), **extra},
                                      body=confirm, token=self._token()))

        draw = self.rng.random()
        if draw < 0.25:
            # A double click: two confirmations at once. The deletion runs once: one answers 200, the other
            # 409 deletion-not-pending (or the same answer), never a 5xx. Confirmations sent one after the
            # other let an app that read the request without locking it pass lifecycle-under-load: the
            # second found it pending too, ran the deletion again and failed on the audit row (2026-12-03).
            together(lambda: confirm_it(together=True), lambda: confirm_it(together=True))
            answers.sort(key=lambda answer: answer.status != 200)
        elif draw < 0.625:
            # A recording started on the appointment (it has its consent) as the deletion is confirmed: the
            # start comes first (201, and the deletion takes its session) or finds the appointment gone (404),
            # never a 5xx (single-active-session), and nothing of it remains (deletion-audited). Not
            # remembered for the stops: its session goes with the appointment.
            start = {"appointment_id": appointment}
            together(confirm_it, lambda: self._send(
                v.SESSION_START, "POST", "/api/v1/recordings/sessions/start",
                args={**start, "racing_deletion": deletion}, body=start, key=uuid.uuid4().hex, token=self._token()))
        else:
            confirm_it()
        if not answers:  # stopped while it ran
            return
        done = answers[0]
        # Half the executed ones are confirmed again (a double click, a retry whose first answer was slow):
        # a deletion runs once, so the second gets 409 or the first answer, never a second run (plan F2).
        if done.status == 200 and self.rng.random() < 0.5:
            self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                       args={"deletion_id": deletion, "again": True}, body=confirm, token=self._token())

    def do_dead_letter_retry(self) -> None:
        """Retry one of our dead letters by hand, then the same one again: one after the other, or three
        retries at once (plan C2). The task runs again once; every other retry answers 409 (judged by
        dead-letter-accounting).

        The letter is one the tenant lists as dead now, else the seed's; three times in four one the app
        wrote during the run (Shunya's failures), when there is one: only such a letter's retried task
        shows whether a retry by hand gets the whole retry budget (plan C2), and the seed's eight a
        tenant would be picked far more often."""
        listed = self._send(v.DEAD_LETTER_LIST, "GET", "/api/v1/dead-letters?status=dead&limit=50",
                            args={"status": "dead"}, token=self._token())
        dead = [str(row["id"]) for row in listed.body if isinstance(row, dict) and row.get("id")] \
            if isinstance(listed.body, list) else []
        seeded = [str(x) for x in self.tenant.get("dead_letter_ids") or ()]
        made = sorted(set(dead) - set(seeded))
        letters = made if made and self.rng.random() < 0.75 else (dead or seeded)
        if not letters:
            return
        letter = self.rng.choice(letters)

        def retry(step: int, together_: bool = False) -> None:
            args: dict[str, Any] = {"dead_letter_id": letter, "step": step}
            if together_:
                args["together"] = True
            self._send(v.DEAD_LETTER_RETRY, "POST", f"/api/v1/dead-letters/{letter}/retry", args=args,
                       token=self._token())

        if self.rng.random() < 0.25:
            retry(1)
            retry(2)
        else:
            # Three at once, most of the time: two at once half the time let an app whose retry read the
            # letter without locking it through with as few as 3 double retries in a shunya-outage run.
            together(lambda: retry(1, True), lambda: retry(2, True), lambda: retry(3, True))

    def do_lifecycle_delete_company(self) -> None:
        """Delete the seed's disposable company (plan F2, scope company), once per load process: its manager
        asks, then confirms with the token. No other turn writes to that company, so deletion-audited can hold
        the final state to it: none of its rows left but its managers, nobody of another company gone, and
        the audit counting no more than the seed made. No load ever deleted a company before (2026-12-04), so
        a company deletion that took every tenant's reps, or forgot a table, passed every scenario."""
        global _company_deleted
        spare = next((t.get("disposable_company") for t in CONFIG.tenants if t.get("disposable_company")), None)
        if not isinstance(spare, dict) or _company_deleted or time.monotonic() - _LOAD_BEGAN < _COMPANY_DELETE_AFTER_S:
            return
        _company_deleted = True
        company, token = str(spare["company_id"]), str(spare["manager_token"])
        kept = sorted({str(user) for t in CONFIG.tenants for user in [t.get("manager_id"), *t.get("rep_ids", ())]
                       if user})
        args = {"scope": "company", "target_id": company, "rows": dict(spare.get("rows") or {}),
                "managers": [str(spare["manager_id"])], "kept_users": kept}
        request = self._send(v.DELETION_REQUEST, "POST", "/api/v1/deletions", args=args,
                             body={"scope": "company", "target_id": company}, token=token, tenant=company)
        if request.status not in (201, 202) or not isinstance(request.body, dict):
            return
        answered = time.monotonic()
        deletion = str(request.body.get("id"))
        life = deletion_life_bound_s(request.body.get("expires_at"), request.date)
        self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                   args={"deletion_id": deletion, **args, **expiry_args(life, answered)},
                   body={"confirmation_token": request.body.get("confirmation_token")}, token=token, tenant=company)

    def do_lifecycle_retention(self) -> None:
        """Enforce our tenant's retention now. The args name every tenant's seeded old rows (``retention_rows``)
        so that retention-enforced can tell a row deleted within its tenant's retention (plan F1).

        First a tenant seeded with a policy of its own sets it (PUT: the seed stored a day longer, so a PUT that
        stores nothing shows, and the rows' fates are those the seed planned once it is in force), then the
        manager reads it (GET /retention-policy: its own, or the defaults): the policy route's answers and the
        row it stores are judged too (a PUT that stored one field in the other's column passed every scenario,
        no load ever sent one, 2026-12-04). Not before ``_RETENTION_AFTER_S`` into the load."""
        if time.monotonic() - _LOAD_BEGAN < _RETENTION_AFTER_S:
            return
        policy = self.tenant.get("retention_policy")
        if isinstance(policy, dict) and policy:
            self._send(v.RETENTION_POLICY_PUT, "PUT", "/api/v1/retention-policy", args=dict(policy),
                       body=dict(policy), token=self._token())
        self._send(v.RETENTION_POLICY_READ, "GET", "/api/v1/retention-policy", args={}, token=self._token())
        rows = [row for tenant in CONFIG.tenants for row in tenant.get("retention_rows") or ()]
        self._send(v.RETENTION_RUN, "POST", "/api/v1/admin/retention/run", args={"rows": rows} if rows else {},
                   token=self._token())

    def do_lifecycle_retention_policy(self) -> None:
        """Our tenant's retention policy, set once (as in :meth:`do_lifecycle_retention`) and read, while the
        app's own schedule enforces it (plan F1's periodic cleanup; no request asks). The read's args name every
        tenant's seeded old rows, so that retention-enforced can tell a row the schedule deleted within its
        retention; it judges the rows the schedule left from the task records. Not before
        ``_RETENTION_AFTER_S`` into the load."""
        if time.monotonic() - _LOAD_BEGAN < _RETENTION_AFTER_S:
            return
        policy = self.tenant.get("retention_policy")
        if isinstance(policy, dict) and policy and not self._policy_set:
            self._policy_set = True
            self._send(v.RETENTION_POLICY_PUT, "PUT", "/api/v1/retention-policy", args=dict(policy),
                       body=dict(policy), token=self._token())
        rows = [row for tenant in CONFIG.tenants for row in tenant.get("retention_rows") or ()]
        self._send(v.RETENTION_POLICY_READ, "GET", "/api/v1/retention-policy", args={"rows": rows} if rows else {},
                   token=self._token())


if CONFIG.stages:

    class StagesShape(LoadTestShape):
        """Load as a function of time: the users of the stage the run is in; stop after the last."""

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            for stage in CONFIG.stages:
                if elapsed < stage.until_s:
                    return stage.users, stage.spawn_rate
            return None


@events.test_start.add_listener
def _progress(environment: Any, **_: Any) -> None:
    """The master (or the only process) writes progress once a second for the runner's display."""
    if CONFIG.progress_path is None or isinstance(environment.runner, WorkerRunner):
        return
    started = time.monotonic()

    def loop() -> None:
        while True:
            total = environment.stats.total
            state = {
                "elapsed_s": round(time.monotonic() - started, 1),
                "users": environment.runner.user_count if environment.runner else 0,
                "requests": total.num_requests,
                "failures": total.num_failures,
                "rps": round(total.current_rps, 1),
            }
            tmp = f"{CONFIG.progress_path}.tmp"
            with open(tmp, "w") as fh:
                json.dump(state, fh)
            os.replace(tmp, CONFIG.progress_path)
            gevent.sleep(1.0)

    gevent.spawn(loop)


@events.quitting.add_listener
def _close(**_: Any) -> None:
    if _recorder is not None and _recorder_pid == os.getpid():
        _recorder.close()

