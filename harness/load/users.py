"""The Locust users of a Stormproof run: every operation of the API, recorded, with deliberate contention.

Import this module only in a load process: importing Locust patches the
standard library with gevent. Each user acts for one tenant with its tokens;
many users aim at a few "hot" appointments and at the same jobs, because
races are the point. A user's choices come from ``random.Random`` seeded by
the run's seed and the user's number, so a run's mix can be replayed.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.runners import WorkerRunner

from harness.history import HistoryRecorder
from harness.history import vocabulary as v

from .client import Answer, payload_fingerprint, record_request
from .config import LoadConfig, load_config

__all__ = ["StormUser", "CONFIG"]  # and StagesShape, when the config has stages

CONFIG: LoadConfig = load_config()
COMPANY_IDS = tuple(str(t["company_id"]) for t in CONFIG.tenants)
_numbers = itertools.count(1)
_recorder: HistoryRecorder | None = None
_recorder_pid = 0
#: What this process has learnt, per tenant: session ids and call ids seen in answers.
_sessions: dict[str, deque[str]] = {}
_calls: dict[str, deque[str]] = {}


_recorder_lock = threading.Lock()


def recorder() -> HistoryRecorder:
    """This process's recorder (each forked Locust worker writes its own file).

    Created under a lock: building it starts a writer thread, which under gevent
    yields to other users, and two recorders on one file would interleave lines.
    """
    global _recorder, _recorder_pid
    if _recorder is not None and _recorder_pid == os.getpid():
        return _recorder
    with _recorder_lock:
        if _recorder is None or _recorder_pid != os.getpid():
            os.makedirs(CONFIG.history_dir, exist_ok=True)
            _recorder = HistoryRecorder(
                os.path.join(CONFIG.history_dir, f"load-{os.getpid()}.jsonl"), origin_ns=CONFIG.origin_ns
            )
            _recorder_pid = os.getpid()
    return _recorder


def _remember(pool: dict[str, deque[str]], tenant: str, value: Any) -> None:
    if isinstance(value, str):
        pool.setdefault(tenant, deque(maxlen=64)).append(value)


class StormUser(FastHttpUser):
    host = CONFIG.app_url
    wait_time = between(0.0, 0.02)
    network_timeout = CONFIG.request_timeout_s
    connection_timeout = 5.0
    concurrency = 4

    def on_start(self) -> None:
        number = next(_numbers)
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.process_name = f"w{worker}-{os.getpid()}/u{number}"
        self.rng = random.Random(f"{CONFIG.seed}:{worker}:{number}")
        self.tenant = CONFIG.tenants[(number - 1) % len(CONFIG.tenants)]
        self.company = str(self.tenant["company_id"])
        self.others = [t for t in CONFIG.tenants if str(t["company_id"]) != self.company]
        hot = max(1, CONFIG.hot_appointments)
        self.hot = list(self.tenant["appointment_ids"][:hot])
        names = [name for name, weight in CONFIG.weights.items() if weight > 0]
        self.actions: list[Callable[[], None]] = [getattr(self, "do_" + name.replace(".", "_")) for name in names]
        self.cum_weights = list(itertools.accumulate(CONFIG.weights[name] for name in names))

    @task
    def act(self) -> None:
        if self.actions:
            self.rng.choices(self.actions, cum_weights=self.cum_weights)[0]()

    # -- plumbing --------------------------------------------------------------
    def _token(self) -> str:
        return str(self.tenant["manager_token"])

    def _send(self, f: str, method: str, path: str, *, args: dict[str, Any], body: Any = None,
              key: str | None = None, token: str | None = None, tenant: str | None = None,
              raw_body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["Idempotency-Key"] = key
            args = {**args, "idempotency_key": key}
        if body is not None:
            args = {**args, "payload_fp": payload_fingerprint(body)}
        return record_request(
            self.client, recorder(), process=self.process_name, f=f, tenant=tenant or self.company,
            method=method, path=path, args=args, company_ids=COMPANY_IDS, headers=sent, body=body,
            raw_body=raw_body,
        )

    def _start(self, f: str, appointment: str, key: str | None) -> Answer:
        path = "/api/v1/recordings/sessions/start" if f == v.SESSION_START else "/api/v1/recordings/start"
        body = {"appointment_id": appointment}
        answer = self._send(f, "POST", path, args={"appointment_id": appointment}, body=body, key=key,
                            token=self._token())
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
        self._send(f, "POST", path, args={"session_id": session}, key=key, token=self._token())

    def do_session_stop(self) -> None:
        self._stop(v.SESSION_STOP)

    def do_legacy_stop(self) -> None:
        self._stop(v.LEGACY_STOP)

    def do_appointment_assign(self) -> None:
        appointment, rep = self.rng.choice(self.hot), self.rng.choice(self.tenant["rep_ids"])
        self._send(v.ASSIGN, "POST", f"/api/v1/appointments/{appointment}/assign",
                   args={"appointment_id": appointment, "rep_id": rep}, body={"rep_id": rep},
                   key=uuid.uuid4().hex, token=self._token())

    def do_appointment_unassign(self) -> None:
        appointment = self.rng.choice(self.hot)
        self._send(v.UNASSIGN, "POST", f"/api/v1/appointments/{appointment}/unassign",
                   args={"appointment_id": appointment}, key=uuid.uuid4().hex, token=self._token())

    def do_appointment_read(self) -> None:
        appointment = self.rng.choice(self.tenant["appointment_ids"])
        self._send(v.APPOINTMENT_READ, "GET", f"/api/v1/appointments/{appointment}",
                   args={"appointment_id": appointment}, token=self._token())

    def do_session_read(self) -> None:
        session = self._known_session(self.company)
        if session is None:
            self.do_appointment_list()
            return
        self._send(v.SESSION_READ, "GET", f"/api/v1/recordings/sessions/{session}", args={"session_id": session},
                   token=self._token())

    def do_appointment_list(self) -> None:
        self._send("appointment.list", "GET", "/api/v1/appointments?limit=50", args={}, token=self._token())

    def do_call_submit(self) -> None:
        appointment = self.rng.choice(self.hot)
        body = {"appointment_id": appointment}
        answer = self._send(v.CALL_SUBMIT, "POST", "/api/v1/calls", args={"appointment_id": appointment},
                            body=body, key=uuid.uuid4().hex, token=self._token())
        if isinstance(answer.body, dict):
            _remember(_calls, self.company, answer.body.get("id"))

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
        """Deliver, signed as Shunya would, the result of a job of ours: a deliberate duplicate."""
        pool = _calls.get(self.company)
        if not pool:
            self.do_call_submit()
            return
        call = self.rng.choice(pool)
        answer = self._send("call.read", "GET", f"/api/v1/calls/{call}", args={"call_id": call}, token=self._token())
        job = answer.body.get("job") if isinstance(answer.body, dict) else None
        job_id = job.get("shunya_job_id") if isinstance(job, dict) else None
        if not job_id:
            return
        from harness.shunya.results import canonical_json, expected_result, output_hash
        from harness.shunya.signing import sign

        result = expected_result(job_id)
        payload = {
            "event": "job.completed", "delivery_id": f"dlv_{uuid.uuid4().hex}", "job_id": job_id,
            "company_id": self.company, "call_id": call, "status": "completed", "result": result,
            "output_hash": output_hash(result), "error": None,
        }
        raw = canonical_json(payload)
        ts = int(time.time())
        self._send(v.WEBHOOK_DELIVER, "POST", "/api/v1/shunya/webhook",
                   args={"job_id": job_id, "payload_fp": output_hash(result)}, raw_body=raw,
                   headers={"X-Shunya-Timestamp": str(ts), "X-Shunya-Signature": sign(CONFIG.webhook_secret, ts, raw)})

    def do_replay_same(self) -> None:
        """The same request twice with one key: the second must be the first, replayed."""
        appointment, key = self.rng.choice(self.hot), uuid.uuid4().hex
        self._start(v.SESSION_START, appointment, key)
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
        gevent.joinall([gevent.spawn(self._start, v.SESSION_START, appointment, key) for _ in range(2)])

    def do_probe_tenant_header(self) -> None:
        """List with another tenant's id in X-Company-Id: the token decides, so only our rows may come back."""
        if not self.others:
            return
        other = str(self.rng.choice(self.others)["company_id"])
        self._send("appointment.list", "GET", "/api/v1/appointments?limit=50", args={"header_tenant": other},
                   token=self._token(), headers={"X-Company-Id": other})

    def do_probe_cross_tenant(self) -> None:
        """Ask for another tenant's ids with our token: anything but 404 is a leak."""
        if not self.others:
            return
        other = self.rng.choice(self.others)
        target_company = str(other["company_id"])
        choice = self.rng.randrange(5)
        method, key, body = "GET", None, None
        if choice == 0:
            target = self.rng.choice(other["appointment_ids"])
            path = f"/api/v1/appointments/{target}"
        elif choice == 1:
            target = self.rng.choice(other["rep_ids"])
            path = f"/api/v1/reps/{target}"
        elif choice == 2 and _sessions.get(target_company):
            target = self.rng.choice(_sessions[target_company])
            path = f"/api/v1/recordings/sessions/{target}"
        elif choice == 3 and _sessions.get(target_company):
            target = self.rng.choice(_sessions[target_company])
            method, path, key = "POST", f"/api/v1/recordings/sessions/{target}/stop", uuid.uuid4().hex
        else:
            target = self.rng.choice(other["appointment_ids"])
            method, path, key = "POST", f"/api/v1/appointments/{target}/assign", uuid.uuid4().hex
            body = {"rep_id": self.rng.choice(self.tenant["rep_ids"])}
        self._send(v.PROBE, method, path, args={"target_tenant": target_company, "target_id": target,
                                                "method": method, "path": path},
                   body=body, key=key, token=self._token())

    # -- data lifecycle (plan F1 to F3), off in the default mix ---------------------------------------
    def do_consent_grant(self) -> None:
        """Record consent on a hot appointment while sessions start on it: consents only ever add up."""
        appointment = self.rng.choice(self.hot)
        scope = self.rng.choice(("recording", "analysis"))
        self._send(v.CONSENT_GRANT, "POST", f"/api/v1/appointments/{appointment}/consents",
                   args={"appointment_id": appointment, "scope": scope},
                   body={"scope": scope, "evidence": "load generator"}, token=self._token())

    def _create_appointment(self) -> str | None:
        """A new appointment of our tenant, at a random hour years ahead (no consent yet)."""
        at = time.time() + 86400 * 400 + self.rng.randrange(24 * 365 * 5) * 3600
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        window = {"title": "lifecycle", "starts_at": time.strftime(fmt, time.gmtime(at)),
                  "ends_at": time.strftime(fmt, time.gmtime(at + 1800))}
        created = self._send(v.APPOINTMENT_CREATE, "POST", "/api/v1/appointments", args={}, body=window,
                             token=self._token())
        appointment = created.body.get("id") if isinstance(created.body, dict) else None
        return appointment if created.status == 201 and isinstance(appointment, str) else None

    def do_consent_probe(self) -> None:
        """Start recording a new appointment that has no consent: must be 409 consent-required.

        The appointment is kept, so with the ``consent-check`` weakening the session it got stays in
        the final state for ``consent-before-processing`` to find.
        """
        appointment = self._create_appointment()
        if appointment is not None:
            self._start(v.SESSION_START, appointment, uuid.uuid4().hex)

    def do_lifecycle_delete(self) -> None:
        """Create an appointment with consent, then delete it with a confirmed request, under load.

        Only appointments made here are deleted, so the seeded ones the other actions aim at stay.
        """
        appointment = self._create_appointment()
        if appointment is None:
            return
        self._send(v.CONSENT_GRANT, "POST", f"/api/v1/appointments/{appointment}/consents",
                   args={"appointment_id": appointment, "scope": "recording"},
                   body={"scope": "recording", "evidence": "load generator"}, token=self._token())
        request = self._send(v.DELETION_REQUEST, "POST", "/api/v1/deletions",
                             args={"scope": "appointment", "target_id": appointment},
                             body={"scope": "appointment", "target_id": appointment}, token=self._token())
        if request.status != 201 or not isinstance(request.body, dict):
            return
        deletion = str(request.body.get("id"))
        self._send(v.DELETION_CONFIRM, "POST", f"/api/v1/deletions/{deletion}/confirm",
                   args={"deletion_id": deletion},
                   body={"confirmation_token": request.body.get("confirmation_token")}, token=self._token())

    def do_lifecycle_retention(self) -> None:
        self._send(v.RETENTION_RUN, "POST", "/api/v1/admin/retention/run", args={}, token=self._token())


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

