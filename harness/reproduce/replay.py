"""The replay: a case's requests against a fresh stack, in the run's groups, under the run's faults.

One :class:`Replayer` starts one stack like the run's (same stack settings,
same weakenings, the same ``--app-command`` for an external backend) and
replays a case on it as often as asked. Each attempt seeds fresh tenants, so
attempts never see each other's rows, locks or keys, and costs a seed and
the requests, not a stack start. The attempt's history is recorded in
memory the way the load records it, the final rows are read directly and
restricted to the attempt's tenants, and the case's invariant is checked on
both by the very checker of the run: a replay reproduces when it says
``invalid``.

Groups are played one after the other. The requests of a group leave
together (they overlapped in the run; sent at once, a race window of a few
milliseconds is hit every time), except that a request waits for the answers
the run had given before it was sent (``Step.after``: overlap chains a group
through requests that did not overlap each other) and for the answer
that named an id it uses (a read that must name an id a worker makes later,
a call's Shunya job, is read again until it does). Before each group the faults the run had in place
during it are put in place (a toxic on the same link with the same
parameters, a process paused or killed) and the others removed, so every
request meets the faults it met in the run. Shunya jobs are held pending
while the groups play and completed together after them (:mod:`.jobs`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import SimpleNamespace, TracebackType
from typing import Any

import httpx

from stormproof.harness.history import History, Op, classify
from stormproof.harness.invariants import CheckConfig, Quiescence, Snapshot, Verdict, check_all, get_checker
from stormproof.harness.invariants.snapshot import TABLES

from stormproof.harness.history.vocabulary import CALL_READ, CALL_REFRESH, CALL_SUBMIT, WEBHOOK_DELIVER

from .case import STEP_REF, Case, Step
from .jobs import HeldJobs
from .requests import SHUNYA_DELIVER, ReplayContext, build_request

__all__ = ["Attempt", "Replayer", "ReplayError", "check_config_for", "fresh_key", "replayer_on", "stack_config_for",
           "tenants_needed"]

log = logging.getLogger(__name__)

#: Requests that reach the Shunya stub (through the app or directly): without them and without task
#: workers, the stub would only lengthen the stack's start.
UPSTREAM = frozenset((CALL_SUBMIT, CALL_REFRESH, CALL_READ, WEBHOOK_DELIVER, SHUNYA_DELIVER))
_IDS = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class ReplayError(RuntimeError):
    """The stack for a replay could not be started (one line: cause and fix)."""


@dataclass(frozen=True)
class Attempt:
    """One replay: did it break the invariant, the checker's verdict, and what was sent."""

    reproduced: bool
    verdict: Verdict
    history: History
    seconds: float

    @property
    def kinds(self) -> frozenset[str]:
        """The sub-types (``details["type"]``) of the violations the attempt showed."""
        return frozenset(str(v.details.get("type")) for v in self.verdict.violations)


#: What an attempt imports on first use (the seed's models, the snapshot's reader, the faults, the load's
#: client): about 1.5 s of CPU that the written test would spend after its stack is up.
ATTEMPT_MODULES = (
    "stormproof.reference_app.seed", "stormproof.harness.runner.capture", "stormproof.harness.runner.quiesce",
    "stormproof.harness.faults.packages", "stormproof.harness.load.client", "stormproof.harness.load.probes",
    "stormproof.harness.plan.scenario",
)


def warm_imports() -> None:
    """Import :data:`ATTEMPT_MODULES` while the stack starts (a thread: the start mostly waits on its
    processes, and one core is left while the app imports on the other). An import that fails here fails
    again, with its traceback, where the attempt needs it."""
    import importlib

    for name in ATTEMPT_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - raised again at the attempt's own import
            continue


class _Log:
    """An in-memory history: the load's invoke/complete records, without a file."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._origin = time.monotonic_ns()

    def invoke(self, process: str, f: str, tenant: str | None, args: Mapping[str, Any]) -> Op:
        with self._lock:
            op = Op(len(self.ops), "invoke", process, f, tenant, args, time_ns=time.monotonic_ns() - self._origin,
                    wall=time.time())
            self.ops.append(op)
            return op

    def complete(self, invoke: Op, status: int | None, result: Mapping[str, Any] | None, error: str | None) -> Op:
        with self._lock:
            op = Op(len(self.ops), classify(status, error), invoke.process, invoke.f, invoke.tenant, invoke.args,
                    status, result or {}, error, time.monotonic_ns() - self._origin, time.time(), invoke.index)
            self.ops.append(op)
            return op


def tenants_needed(case: Case, run_tenants: int) -> int:
    """The tenants an attempt seeds: up to the last one the case's requests name (``tN`` refs), at least one.

    Seeding is most of an attempt's own time (about 0.5 s a tenant at load 8, at-risk rows included);
    a tenant no request names has no part in the case (a cross-tenant probe names both tenants).
    """
    named = [int(m.group(1)) for ref in case.refs.values() if (m := _TENANT_REF.match(ref))]
    return max(1, min(run_tenants, max(named, default=run_tenants - 1) + 1))


_TENANT_REF = re.compile(r"t(\d+)(?:\.|$)")


def stack_config_for(case: Case, weakenings: tuple[str, ...] | None = None) -> Any:
    """The StackConfig of the run's stack, with the fault proxy only when a fault of the case needs it.

    The proxy and the Shunya stub are started only when the case needs them (a network fault; a
    configured stub or task workers): each is a process on the path to the app's start, and the
    written test pays for it on every run (about 2 s of a session race's file). Without the proxy,
    the stack launches the reference app while PostgreSQL starts (``LocalStack._launch_app_early``).
    """
    from stormproof.harness.faults.packages import TOXIC_TYPES
    from stormproof.harness.stack import StackConfig

    s = case.stack
    network = set(TOXIC_TYPES) | {"down"}
    task_workers = int(s.get("task_workers", 0))
    # The run's stack may name a stub config (even ``{}``) for requests this case no longer has.
    stub = s.get("shunya") is not None and (task_workers > 0 or any(step.f in UPSTREAM for step in case.steps))
    return StackConfig(
        weakenings=tuple(case.weakenings if weakenings is None else weakenings),
        app_workers=int(s.get("app_workers", 1)), task_workers=task_workers,
        worker_concurrency=int(s.get("worker_concurrency", 2)), tenants=int(s.get("tenants", 2)),
        reps=int(s.get("reps", 3)), appointments=int(s.get("appointments", 5)),
        shunya=dict(s["shunya"]) if stub else None, env=dict(s.get("env") or {}),
        app_command=case.app_command, proxies=any(f.fault in network for f in case.faults),
        # Each attempt seeds tenants of its own (``Replayer._seed``); the stack's would go unused.
        seed_tenants=False,
    )


def check_config_for(case: Case) -> CheckConfig:
    """The limits, budgets and key TTL the run's checker judged with, read from the run's stack settings.

    The run takes them from its plan (``RunPlan.check_config``: the scenario's stack env, which the
    replay's app is given too). Judged with the defaults instead, a replay knows no rate limit, no
    retry budget and no key TTL, so over-limit, a quiet tenant refused, a task tried too often or a key
    replayed past its TTL can never show. SLOs are not needed: a replay cannot show one.
    """
    from stormproof.harness.plan.scenario import StackSpec

    spec = StackSpec.model_validate(dict(case.stack))
    rate, burst = spec.rate_limit
    task_rate, task_burst = spec.task_rate_limit
    shunya_rate, shunya_burst = spec.shunya_rate_limit
    retry_rate, retry_burst = spec.retry_budget
    return CheckConfig(rate_limit_per_s=rate, rate_limit_burst=burst, task_rate_per_s=task_rate,
                       task_rate_burst=task_burst, shunya_rate_per_s=shunya_rate, shunya_rate_burst=shunya_burst,
                       retry_budget_per_s=retry_rate, retry_budget_burst=retry_burst,
                       task_try_budget=spec.task_try_budget,
                       task_backoff_ms=spec.task_backoff_ms, task_max_retries=spec.task_max_retries,
                       idempotency_ttl_s=spec.idempotency_ttl_s)


class Replayer:
    """A fresh stack for ``case`` (weakenings: the case's unless given); :meth:`attempt` replays it."""

    def __init__(self, case: Case, *, weakenings: tuple[str, ...] | None = None, timeout_s: float = 10.0,
                 stack: Any = None) -> None:
        self.case = case
        self.weakenings = tuple(case.weakenings if weakenings is None else weakenings)
        self.timeout_s = timeout_s
        self._own = stack is None
        self.stack = stack
        self._openapi: Mapping[str, Any] | None = None
        self.started_in_s = 0.0

    # -- the stack -----------------------------------------------------------------------------
    def __enter__(self) -> "Replayer":
        if self.stack is None:
            from stormproof.harness.stack import LocalStack

            began = time.monotonic()
            stack = LocalStack(stack_config_for(self.case, self.weakenings))
            warm = threading.Thread(target=warm_imports, name="replay-imports", daemon=True)
            warm.start()
            try:
                stack.start()
            except Exception as exc:  # noqa: BLE001 - one line for the user, details in the stack's logs
                raise ReplayError(f"the stack for the replay did not start: {exc}") from exc
            finally:
                warm.join()
            self.stack = stack
            self.started_in_s = time.monotonic() - began
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._own and self.stack is not None:
            self.stack.stop()
            self.stack = None

    def _doc(self) -> Mapping[str, Any]:
        if self._openapi is None:
            self._openapi = httpx.get(f"{self.stack.app_url}/openapi.json", timeout=10, verify=tls()).json()
        return self._openapi

    def _seed(self, case: Case | None = None) -> list[Any]:
        from stormproof.reference_app.seed import seed
        from stormproof.reference_app.settings import Settings

        stack = self.stack
        settings = Settings(database_url=stack.database_url, redis_url=stack.redis_url, environment="test",
                            jwt_secret=stack.jwt_secret)
        cfg = stack.config
        case = self.case if case is None else case
        # The disposable company only where the case names it: seeding is most of an attempt's own time.
        disposable = any(".disposable_company." in ref for ref in case.refs.values())
        return seed(settings, tenants=tenants_needed(case, cfg.tenants), reps=cfg.reps, appointments=cfg.appointments,
                    consent=cfg.seed_consent, at_risk=cfg.seed_at_risk, disposable=disposable)

    # -- one attempt -----------------------------------------------------------------------------
    def attempt(self, case: Case | None = None) -> Attempt:
        """Replay ``case`` (default: the one the stack was made for) once, on fresh tenants."""
        from stormproof.harness.runner.capture import capture_snapshot, scrape_metrics

        case = case or self.case
        began = time.monotonic()
        tenants = self._seed(case)
        fresh = self._translation(case, tenants)
        # Only a checker that reads /metrics gets them: two scrapes and their parsing were 0.4 s of a replay.
        metrics = get_checker(case.invariant).reads_metrics
        baseline = scrape_metrics(self.stack) if metrics else None
        record = _Log()
        # A company deletion is sent by the disposable company's manager: its token is found like a tenant's.
        spares = {str(d["company_id"]): SimpleNamespace(**d) for t in tenants
                  if isinstance(d := getattr(t, "disposable_company", None), dict)}
        ctx = ReplayContext(tenants=tenants, by_company={**spares, **{t.company_id: t for t in tenants}},
                            webhook_secret=self.stack.webhook_secret, openapi=self._doc, bodies={}, created_by={})
        _rearm_errors(self.stack, case)
        faults = _Faults(self.stack)
        jobs = HeldJobs(self.stack.shunya_admin_url if any(s.f == CALL_SUBMIT for s in case.steps) else None)
        try:
            jobs.hold()
            for group in case.groups:
                faults.enter({(f.fault, f.target): f.params for f in case.faults if group[0].group in f.groups},
                             record)
                asyncio.run(self._group(group, case, fresh, ctx, record))
        finally:
            try:
                faults.close(record)
            finally:
                jobs.release({t.company_id for t in tenants})
                jobs.close()
        quiescence = self._quiesce()
        snapshot = capture_snapshot(self.stack, baseline_metrics=baseline, config=check_config_for(case),
                                    quiescence=quiescence, metrics=metrics)
        snapshot = _only(snapshot, {t.company_id for t in tenants} | set(spares))
        history = History(record.ops)
        (verdict,) = check_all(history, snapshot, [case.invariant])
        return Attempt(verdict.status == "invalid", verdict, history, time.monotonic() - began)

    def _quiesce(self) -> Quiescence:
        if not self.stack.config.task_workers:
            return Quiescence(quiet=True, waited_s=0.0)
        from stormproof.harness.runner.capture import wait_quiet
        from stormproof.harness.runner.quiesce import QuiescePolicy

        return wait_quiet(self.stack, QuiescePolicy(base_s=1.0, per_item_s=0.2, stall_s=3.0, cap_s=30.0,
                                                    confirm_s=1.0, interval_s=0.25))

    @staticmethod
    def _translation(case: Case, tenants: list[Any]) -> dict[str, str]:
        """The run's ids, tenants and keys -> this attempt's (answers add theirs as they come).

        An id a step's answer makes is an id nobody made until that answer gives it, never the run's own
        (a step shrinking removed, or one answered without it, a 404, leaves it so): a seeded Shunya stub
        hands its job ids out again in the same order, so the run's job id was a job of an earlier attempt
        on the same stack, already applied. A case shrunk to one delivery of it "reproduced" 5/5 a
        duplicate refused 409 (duplicate-delivery-conflict), and its test, on a fresh stack, passed
        (2026-12-05).
        """
        out: dict[str, str] = {}
        for original, ref in case.refs.items():
            if STEP_REF.match(ref) is not None:
                out[original] = _unmade(original)
            elif ref.startswith("key:"):
                out[original] = fresh_key(original)
            elif ref.startswith("t"):
                head, _, rest = ref.partition(".")
                number = int(head[1:])
                if number >= len(tenants):
                    continue
                tenant = tenants[number]
                if not rest:
                    out[original] = tenant.company_id
                    continue
                # ``manager_id``, ``appointment_ids.3``, ``disposable_company.rep_ids.0``: a path through the tenant.
                value: Any = tenant
                for part in rest.split("."):
                    if isinstance(value, list):
                        value = value[int(part)] if part.isdigit() and int(part) < len(value) else None
                    elif isinstance(value, Mapping):
                        value = value.get(part)
                    else:
                        value = getattr(value, part, None)
                if isinstance(value, str):
                    out[original] = value
        return out

    async def _group(self, group: list[Step], case: Case, fresh: dict[str, str], ctx: ReplayContext,
                     record: _Log) -> None:
        in_group = {s.index for s in group}
        waits: dict[int, asyncio.Event] = {s.index: asyncio.Event() for s in group}
        start = asyncio.Event()
        limits = httpx.Limits(max_connections=len(group) + 5, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.stack.app_url, timeout=self.timeout_s, limits=limits,
                                     verify=tls()) as client:

            async def one(step: Step) -> None:
                try:
                    await start.wait()
                    for before in step.after:  # the run had these answers before it sent this one
                        if before in in_group:
                            await waits[before].wait()
                    if step.pause_s and step.f != SHUNYA_DELIVER:  # the run reused this key that long after its answer
                        await asyncio.sleep(step.pause_s)
                    for original in _ids_used(step.args):
                        ref = STEP_REF.match(case.refs.get(original, ""))
                        if ref and int(ref.group(1)) in in_group and int(ref.group(1)) != step.index:
                            await waits[int(ref.group(1))].wait()
                    await self._send(client, step, case, fresh, ctx, record)
                finally:
                    waits[step.index].set()

            tasks = [asyncio.create_task(one(step)) for step in group]
            await asyncio.sleep(0.02)
            start.set()
            await asyncio.gather(*tasks)

    async def _send(self, client: httpx.AsyncClient, step: Step, case: Case, fresh: dict[str, str],
                    ctx: ReplayContext, record: _Log) -> None:
        from stormproof.harness.load.client import TRACE_HEADER, extract_result, fields_seen, trace_echo
        from stormproof.harness.load.probes import masked_digest

        args = _translate(step.args, fresh)
        tenant = fresh.get(step.tenant or "", step.tenant)
        if step.f == SHUNYA_DELIVER:
            alone = sum(1 for other in case.steps if other.group == step.group) == 1
            await self._upstream_delivery(step, args, tenant, record, settle=alone)
            return
        request = build_request(replace(step, tenant=tenant), args, ctx)
        args = request.args if request.args is not None else args
        invoke = record.invoke(step.process, step.f, tenant, args)
        headers = dict(request.headers)
        content = request.raw_body if request.raw_body is not None else (
            json.dumps(request.body).encode() if request.body is not None else None)
        if content is not None:
            headers.setdefault("Content-Type", "application/json")
        wanted = _fields_made_by(case, step.index)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                response = await client.request(request.method, request.path, headers=headers, content=content)
            except httpx.HTTPError as exc:
                record.complete(invoke, None, None, f"{type(exc).__name__}: {exc}")
                return
            raw = response.content
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            result, body = extract_result(raw, replayed, tuple(t.company_id for t in ctx.tenants))
            # A read that named an id a worker makes later (a call's Shunya job id) is read again until it
            # names it, as the run's read came after the worker: a write is never sent twice.
            if (request.method != "GET" or response.status_code != 200 or time.monotonic() > deadline
                    or all(isinstance(result.get(f), str) for f in wanted)):
                break
            await asyncio.sleep(0.02)
        if TRACE_HEADER in headers:
            result["trace"] = trace_echo(headers[TRACE_HEADER], response.headers)
        if step.args.get("list_fields"):
            result["fields_seen"] = fields_seen(body, step.args["list_fields"])
        if response.status_code == 429:
            result["retry_after"] = response.headers.get("Retry-After") or ""
        if step.f == "probe.cross_tenant":
            result["body_masked"] = masked_digest(raw, _IDS.findall(request.path))
        record.complete(invoke, response.status_code, result, None)
        ctx.bodies[step.index] = body
        if 200 <= response.status_code < 300 or response.status_code == 409:
            for original, ref in case.refs.items():
                match = STEP_REF.match(ref)
                if match and int(match.group(1)) == step.index and isinstance(result.get(match.group(2)), str):
                    fresh[original] = result[match.group(2)]
                    ctx.created_by[result[match.group(2)]] = step.index


    async def _upstream_delivery(self, step: Step, args: Mapping[str, Any], tenant: str | None,
                                 record: _Log, *, settle: bool = False) -> None:
        """The stub completes the job (if still held) and sends its own signed webhook now.

        With ``settle`` (the step plays alone, at the moment the run's stub completed the job), the step
        ends only when the stub has delivered the job's webhook or given it up (:func:`_webhook_settled`):
        the faults of its group stay in place until then, as the run's outage outlasted the stub's retries.
        Ended at once, the faults were removed under the stub's first retry, which then got through.
        """
        invoke = record.invoke(step.process, step.f, tenant, args)
        admin = self.stack.shunya_admin_url
        if admin is None:
            record.complete(invoke, None, None, "no Shunya stub in this stack")
            return
        async with httpx.AsyncClient(base_url=admin, timeout=self.timeout_s, trust_env=False, verify=tls()) as stub:
            try:
                job = await _job_of(stub, args, self.timeout_s)
                if job is None:
                    record.complete(invoke, None, None, f"no Shunya job for call {args.get('call_id')}")
                    return
                if step.pause_s:  # the stub completes a job that long after creating it: the poller polls first
                    await asyncio.sleep(step.pause_s)
                await stub.post(f"/admin/jobs/{job}/complete")  # 409: already complete, which is as good
                answer = await stub.post(f"/admin/jobs/{job}/deliver")
                if settle:
                    await _webhook_settled(stub, job, self.timeout_s)
            except httpx.HTTPError as exc:
                record.complete(invoke, None, None, f"{type(exc).__name__}: {exc}")
                return
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        body = body if isinstance(body, dict) else {}
        if answer.status_code == 200 and body.get("status_code") is None and body.get("error"):
            # the stub sent it and it never reached the app (the webhook link down): no answer, as in the run
            record.complete(invoke, None, {"delivery_id": body.get("delivery_id")}, str(body["error"]))
            return
        status = body.get("status_code") if answer.status_code == 200 else None
        record.complete(invoke, status if isinstance(status, int) else answer.status_code,
                        {"delivery_id": body.get("delivery_id")}, None)


class _Faults:
    """The faults in place during the attempt: :meth:`enter` makes them exactly the given set."""

    def __init__(self, stack: Any) -> None:
        from stormproof.harness.faults.client import ToxiproxyClient
        from stormproof.harness.faults.packages import standard_packages

        self._client = ToxiproxyClient(stack.proxy_api_url) if stack.proxy_api_url else None
        self._packages = standard_packages(self._client, stack.fault_targets())
        self._active: dict[tuple[str, str], object] = {}
        self._used: set[str] = set()

    def enter(self, wanted: Mapping[tuple[str, str], Mapping[str, Any]], record: _Log) -> None:
        for key in [k for k in self._active if k not in wanted]:
            self._packages[key[0]].stop(self._active.pop(key))
            self._note(record, key, "stop", {})
        for key, params in wanted.items():
            if key in self._active:
                continue
            package = self._packages.get(key[0])
            if package is None:
                raise ReplayError(f"the replay's stack offers no fault {key[0]!r} (on {key[1]})")
            self._active[key] = package.start(key[1], params)
            self._used.add(key[0])
            self._note(record, key, "start", params)

    @staticmethod
    def _note(record: _Log, key: tuple[str, str], phase: str, params: Mapping[str, Any]) -> None:
        op = record.invoke("nemesis", "fault", None, {"fault": key[0], "phase": phase, "target": key[1],
                                                       "params": dict(params)})
        record.complete(op, None, None, None)

    def close(self, record: _Log) -> None:
        try:
            self.enter({}, record)
            for name in self._used:
                self._packages[name].heal()
        finally:
            if self._client is not None:
                self._client.close()


def _rearm_errors(stack: Any, case: Case) -> None:
    """Count the stub's ``error_first`` failures again from this attempt's first call.

    The stub counts them from when the setting was made, the stack's start: the first attempt would
    use them up and every later one meet an upstream that never fails.
    """
    first = int((case.stack.get("shunya") or {}).get("error_first") or 0)
    if first and stack.shunya_admin_url:
        from stormproof.harness.shunya.client import ShunyaStubClient

        with ShunyaStubClient(stack.shunya_admin_url) as stub:
            stub.set_config(error_first=first)


async def _webhook_settled(stub: httpx.AsyncClient, job: str, timeout_s: float) -> bool:
    """Wait (at most ``timeout_s``) until each of the stub's own webhooks for ``job`` was delivered or its
    last attempt made; whether it settled.

    An attempt in flight is neither pending nor recorded, so "nothing pending" alone can come between a
    failed attempt and its retry: each delivery's records are read instead, with the stub's retry settings.
    """
    config = (await stub.get("/admin/config")).json()
    last = int(config.get("webhook_max_attempts", 1)) if config.get("webhook_retry", True) else 1
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = [r for r in (await stub.get("/admin/deliveries", params={"job_id": job})).json()
                   .get("deliveries") or () if not r.get("manual")]
        tried: dict[str, list[Mapping[str, Any]]] = {}
        for rec in records:
            tried.setdefault(str(rec.get("delivery_id")), []).append(rec)
        if tried and all(any(r.get("ok") for r in attempts) or max(int(r.get("attempt") or 1) for r in attempts) >= last
                         or any(r.get("error") == "outbox_full" for r in attempts) for attempts in tried.values()):
            return True
        await asyncio.sleep(0.05)
    return False


async def _job_of(stub: httpx.AsyncClient, args: Mapping[str, Any], timeout_s: float) -> str | None:
    """The job id the step names, or the stub's job of its call (waiting for the worker to create it)."""
    if isinstance(args.get("job_id"), str) and str(args["job_id"]).startswith("shj_"):
        return str(args["job_id"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = (await stub.get("/admin/jobs")).json().get("jobs") or []
        mine = [j for j in jobs if str(j.get("call_id")) == str(args.get("call_id"))]
        if mine:
            return str(mine[0]["job_id"])
        await asyncio.sleep(0.02)
    return None


def tls() -> Any:
    """The runner's one TLS context (imported late: the runner imports this package)."""
    from stormproof.harness.runner.capture import tls as shared

    return shared()


_HEX_RUN = re.compile(r"[0-9a-f]{4,}")


def fresh_key(original: str) -> str:
    """A new Idempotency-Key of the run key's shape: its hex runs drawn again, every other character kept.

    Each attempt needs its own keys (a key stored by one attempt must not answer the next), but the
    shape is what some requests test: a malformed key (a space, a tab, 256 characters and more) must
    reach the app malformed, or a correct app runs it and the probe that expected a 400 reports it
    ran (idempotency-key-format's reproducer failed 0/5 with every fix on). A key with no hex run
    becomes a fresh UUID, as the load's own keys are.
    """
    if not _HEX_RUN.search(original):
        return uuid.uuid4().hex
    return _HEX_RUN.sub(lambda m: "".join(uuid.uuid4().hex for _ in range(len(m.group()) // 32 + 1))[:len(m.group())],
                        original)


def _fields_made_by(case: Case, index: int) -> set[str]:
    """The answer fields of step ``index`` that later steps use (``step:index.field`` refs)."""
    return {m.group(2) for ref in case.refs.values() if (m := STEP_REF.match(ref)) and int(m.group(1)) == index}


def _ids_used(args: Mapping[str, Any]) -> list[str]:
    out = []
    for value in args.values():
        if isinstance(value, str):
            out.append(value)
            out.extend(_IDS.findall(value))
    return out


def _unmade(original: str) -> str:
    """An id of the same shape as ``original`` that nothing made (a UUID, or ``prefix_`` and hex)."""
    if _IDS.fullmatch(original):
        return str(uuid.uuid4())
    head, sep, tail = original.rpartition("_")
    return f"{head}{sep}{uuid.uuid4().hex[:len(tail)] if sep else uuid.uuid4().hex}"


def _translate(value: Any, fresh: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        if value in fresh:
            return fresh[value]
        if "/" in value:
            for found in set(_IDS.findall(value)):
                if found in fresh:
                    value = value.replace(found, fresh[found])
        return value
    if isinstance(value, Mapping):
        return {k: _translate(v, fresh) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_translate(v, fresh) for v in value]
    return value


def _only(snapshot: Snapshot, companies: set[str]) -> Snapshot:
    """The snapshot restricted to the attempt's tenants (earlier attempts' rows are not its concern).

    The Shunya stub's completed jobs are the stack's, every attempt's: only those of the attempt's own
    job rows are kept. Kept whole, an earlier attempt's job that polling never applied (weakening
    poll-until-done) made every later attempt fail job-applied-eventually, whatever it sent: a case
    shrank to one request that could not even find its job, "reproduced" 5/5, and its test passed.
    """
    tables = {name: tuple(r for r in rows if str(r.get("company_id")) in companies)
              for name in TABLES if (rows := snapshot.table(name)) is not None}
    completed = snapshot.completed_jobs
    if completed is not None and "shunya_jobs" in tables:
        mine = {str(row.get("shunya_job_id")) for row in tables["shunya_jobs"]}
        completed = frozenset(job for job in completed if job in mine)
    return replace(snapshot, **tables, completed_jobs=completed)


def replayer_on(case: Case, weakenings: tuple[str, ...], postgres: Any, redis: Any, template: str) -> Replayer:
    """A replayer whose stack runs on the pytest plugin's PostgreSQL, Redis and migrated template.

    For the generated pytest files: the services come from the plugin's fixtures
    (``stormproof_postgres``, ``stormproof_redis``, ``reference_app_template``), the app
    and the proxies are started here, with ``weakenings``.
    """
    from stormproof.harness.stack import LocalStack

    config = stack_config_for(case, weakenings)
    stack = LocalStack(config, postgres=getattr(postgres, "service", postgres),
                       redis=getattr(redis, "service", redis), template=template)
    return _OwnedReplayer(case, weakenings=weakenings, stack=stack)


class _OwnedReplayer(Replayer):
    """A replayer given a stack not yet started: it starts and stops it."""

    def __enter__(self) -> "Replayer":
        began = time.monotonic()
        try:
            self.stack.start()
        except Exception as exc:  # noqa: BLE001
            raise ReplayError(f"the stack for the replay did not start: {exc}") from exc
        self.started_in_s = time.monotonic() - began
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stack.stop()
