"""Selection: from a violation to the steps and faults a replay needs.

A violation names the operations that show it (``ops``: invoke or completion
indices). Those alone rarely replay: a stop needs the start that made its
session, a webhook the call whose job it answers. So selection takes

1. the named operations (for a rate-limit violation, the traffic that spent
   the tenant's allowance: ``_traffic``);
2. *context*: other requests on the same resources (appointment, session, call,
   job, key) that overlapped them in time, since the race may need them (the
   shrinker removes those it does not);
3. *preconditions*, transitively: the request whose answer first named an id
   a selected request used (the start that created a stopped session, the
   appointment a consent was granted on), and the consents granted on an
   appointment created during the run;
4. the faults in place while any of them ran, each with the groups it covers.

Requests that overlapped in time form one *group* (chained overlaps); groups
are replayed one after the other, the requests of a group together, each
after the answers of its group the run had given before it was sent. Seeded
ids, tenants and keys become refs (see :mod:`.case`), so a fresh stack can
stand in for the run's.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from stormproof.harness.history import History, Op, load_history
from stormproof.harness.history.vocabulary import (APPOINTMENT_READ, CALL_READ, CALL_REFRESH, CALL_SUBMIT,
                                                   CONSENT_GRANT, FAULT, NEMESIS, SESSION_READ, STOPS,
                                                   WEBHOOK_DELIVER, WRITES)

from .case import STEP_REF, Case, CaseFault, Step
from .requests import SHUNYA_DELIVER, SUPPORTED

__all__ = ["SelectionError", "RunRecord", "cites", "load_run", "numbered_violations", "select_case", "MAX_CONTEXT"]

#: At most this many context requests join the named ones (the shrinker starts from here).
MAX_CONTEXT = 12
#: Answer fields that name a created resource.
_CREATED = ("id", "shunya_job_id", "active_session_id")
#: Resource ids: UUIDs, and Shunya job ids (``shj_`` + 32 hex, the stub's; ``job_...`` other upstreams').
_UUIDISH = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                      r"|shj_[0-9a-fA-F]{32}|\bjob_[0-9a-zA-Z_]+")
#: Violation details that name a resource when the violation cites no request (a job applied twice
#: by the stub's own webhook and the poller: no request of the load delivered it).
_NAMED_IN_DETAILS = ("shunya_job_id", "call_id")
#: Details that name no resource a request made (the tenant is every request's).
_NOT_RESOURCES = frozenset(("company_id", "tenant"))
#: At most this many acknowledged requests that used a resource named only in the details join the case.
MAX_USERS = 8
#: Violation details that name a session whose end matters: a start refused 409 naming a session that a stop
#: had ended is only wrong if the replay ends it too, so the stops answered 2xx before the violation join it.
_ENDED_IN_DETAILS = ("active_session_id",)
#: Reads by id: what they answer is the state the writes answered before them left (see ``_state_before_reads``).
_READS = frozenset((SESSION_READ, APPOINTMENT_READ, CALL_READ))
#: At most this many writes answered before a cited read join the case, the latest first.
MAX_BEFORE_READ = 6
#: Invariants judged on latency or rates: a handful of requests cannot show them.
UNREPRODUCIBLE_KINDS = frozenset(("slo",))
#: Rate-limit violations about a 429's own answer (its Retry-After, a replayed 429): the tenant's traffic before
#: it must spend the allowance again, or the replayed request is simply served.
_REFUSAL_ANSWERS = frozenset(("limit-without-retry-after", "retry-after-too-long", "limit-replayed"))
#: At most this many requests stand for the traffic that spent a tenant's rate allowance (see ``_traffic``).
MAX_TRAFFIC = 40
#: A reused key's pause (``_key_pauses``) counts from this long, and is kept up to this long.
KEY_PAUSE_S = (0.5, 30.0)
_SECOND_NS = 1_000_000_000


class SelectionError(ValueError):
    """The run directory or the violation cannot be reproduced (one line: cause and fix)."""


class RunRecord:
    """What a run directory holds that selection reads: result.json, the history, the seeded tenants."""

    def __init__(self, run_dir: Path, result: Mapping[str, Any], history: History,
                 tenants: Sequence[Mapping[str, Any]]) -> None:
        self.run_dir = run_dir
        self.result = result
        self.history = history
        self.tenants = tenants

    @property
    def plan(self) -> Mapping[str, Any]:
        return self.result.get("plan") or {}


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory; a :class:`SelectionError` says what is missing."""
    path = Path(run_dir)
    if not (path / "result.json").is_file():
        raise SelectionError(f"{path}: not a run directory (no result.json); give a directory that "
                             "`stormproof run` wrote, e.g. reports/<run>")
    try:
        result = json.loads((path / "result.json").read_text())
    except ValueError as exc:
        raise SelectionError(f"{path}/result.json: not JSON ({exc}); run the scenario again") from None
    if not (path / "history.jsonl").is_file():
        raise SelectionError(f"{path}: no history.jsonl; the run recorded no operations to replay")
    history = load_history(path / "history.jsonl")
    tenants: list[Mapping[str, Any]] = []
    if (path / "load-config.json").is_file():
        tenants = json.loads((path / "load-config.json").read_text()).get("tenants") or []
    return RunRecord(path, result, history, tenants)


def numbered_violations(result: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Every violation of result.json as (verdict, violation), numbered from 1 in this order."""
    return [(verdict, violation) for verdict in result.get("verdicts") or ()
            for violation in verdict.get("violations") or ()]


def pick_violation(record: RunRecord, number: int | None) -> tuple[int, Mapping[str, Any], Mapping[str, Any]]:
    """Violation ``number`` (1-based), or the first one a replay can show."""
    listed = numbered_violations(record.result)
    if not listed:
        raise SelectionError(f"{record.run_dir}: the run has no violations; nothing to reproduce")
    if number is None:
        for n, (verdict, violation) in enumerate(listed, 1):
            if verdict.get("kind") not in UNREPRODUCIBLE_KINDS and cites(violation):
                return n, verdict, violation
        raise SelectionError(f"{record.run_dir}: only SLO breaches, which a few requests cannot show; "
                             "nothing to reproduce")
    if not 1 <= number <= len(listed):
        raise SelectionError(f"--violation {number}: out of range; this run has violations 1 to {len(listed)}")
    verdict, violation = listed[number - 1]
    if verdict.get("kind") in UNREPRODUCIBLE_KINDS:
        raise SelectionError(f"--violation {number}: an SLO breach ({verdict.get('invariant')}), which a few "
                             "requests cannot show; pick a safety or liveness violation")
    if not cites(violation):
        raise SelectionError(f"--violation {number}: names no operations ({violation.get('message')}); "
                             "pick one that does")
    return number, verdict, violation


def cites(violation: Mapping[str, Any]) -> bool:
    """Whether the violation names something to replay: requests, a resource a request may have made, or a
    tenant's traffic in one second of the run (over-limit)."""
    details = violation.get("details") or {}
    return bool(violation.get("ops")) or bool(_named_ids(details)) \
        or (details.get("type") == "over-limit" and isinstance(details.get("second"), int))


def _named_ids(details: Mapping[str, Any]) -> list[str]:
    """The resource ids a violation's details name (a job, a call, a deletion, an appointment), tenants excepted."""
    found: list[str] = []
    for key, value in details.items():
        if key not in _NOT_RESOURCES:
            found.extend(ident for text in _strings(value) for ident in _UUIDISH.findall(text) if ident not in found)
    return found


def _users(history: History, idents: Sequence[str]) -> list[Op]:
    """For a violation judged on the final state that names no request: the acknowledged requests that used
    the resources it names (the call submitted on a deleted appointment, the confirmation that ran the
    deletion), first ones first, at most :data:`MAX_USERS` per resource.

    Such a violation (deletion-cascade's rows left behind) has only the creator of each resource to start
    from, and the creator alone leaves the state the violation is about unmade. The shrinker removes the
    users it does not need.
    """
    users: dict[str, list[Op]] = {ident: [] for ident in idents}
    for invoke, done in history.pairs():
        if invoke.f not in SUPPORTED or invoke.process == NEMESIS or done is None or done.status is None \
                or not 200 <= done.status < 300:
            continue
        for ident in _ids_in(invoke.args) & users.keys():
            if len(users[ident]) < MAX_USERS:
                users[ident].append(invoke)
    return [invoke for ident in idents for invoke in users[ident]]


def _traffic(history: History, details: Mapping[str, Any], named: Mapping[int, Op]) -> list[Op]:
    """The requests that spent a tenant's rate allowance, for a rate-limit violation (else none).

    A rate limit is not a resource a request names: what breaks it is how many requests reached the
    limiter, and whose. ``over-limit`` names a tenant and a second of the run: the tenant's requests
    answered in that second with anything but 429 (the checker's count) are the case. A
    ``quiet-tenant-limited`` 429 was refused because others spent the allowance: every other tenant's
    requests sent in the second before it was answered join it, nearest first, so that a limiter shared
    between tenants is exhausted again when the refused request comes (it waits for the answers it had
    seen, ``Step.after``). A violation about a 429's own answer (its Retry-After, a stored 429) needs that
    429 again: the same tenant's requests sent in the second before it was answered join it, nearest first,
    so that its own allowance is spent when it comes. At most :data:`MAX_TRAFFIC`; the shrinker keeps the few
    that matter.
    """
    kind, tenant = details.get("type"), details.get("tenant")

    def counted(invoke: Op) -> bool:
        return invoke.f in SUPPORTED and invoke.f != WEBHOOK_DELIVER and invoke.process != NEMESIS

    if kind == "over-limit" and isinstance(details.get("second"), int):
        second = int(details["second"])
        return [invoke for invoke, done in history.pairs() if invoke.tenant == tenant and counted(invoke)
                and done is not None and done.status not in (None, 429)
                and done.time_ns // _SECOND_NS == second][:MAX_TRAFFIC]
    if (kind == "quiet-tenant-limited" or kind in _REFUSAL_ANSWERS) and named:
        refused = max(named.values(), key=lambda op: op.index)
        done = history.completion(refused)
        answered = done.time_ns if done is not None else refused.time_ns
        if kind == "quiet-tenant-limited":
            def spender(invoke: Op) -> bool:
                return invoke.tenant not in (None, tenant)
        else:
            def spender(invoke: Op) -> bool:
                return invoke.tenant is not None and invoke.tenant == refused.tenant
        others = [invoke for invoke, _ in history.pairs() if spender(invoke) and counted(invoke)
                  and invoke.index != refused.index and answered - _SECOND_NS <= invoke.time_ns <= answered]
        return sorted(others, key=lambda op: answered - op.time_ns)[:MAX_TRAFFIC]
    return []


def _state_before_reads(history: History, cited: Iterable[Op], creators: Mapping[str, tuple[int, str]]) -> list[Op]:
    """For each cited read: the writes on its row answered 2xx before it was sent, the latest
    :data:`MAX_BEFORE_READ` first. Its row's resources are the ids it names and the ids the request that made
    them used (a session's appointment).

    A read answers the state those writes left, and a read that answers the wrong row or an old state shows
    only if the replay leaves the same state: a session read answering its appointment's *later* session
    (session-read-latest) needs the stop of the first and the start of the second, which name neither the
    read nor anything it names (0/5 reproduced with the named requests and their creators alone,
    2026-12-05). The shrinker removes those the violation does not need.
    """
    out: dict[int, Op] = {}
    for read in cited:
        if read.f not in _READS:
            continue
        resources = _ids_in(read.args)
        for ident in list(resources):
            made = creators.get(ident)
            if made is not None and made[0] < read.index:
                resources |= _ids_in(history[made[0]].args)
        before = []
        for invoke, done in history.pairs():
            if invoke.f not in WRITES or invoke.f not in SUPPORTED or invoke.process == NEMESIS or done is None \
                    or done.status is None or not 200 <= done.status < 300 or done.time_ns >= read.time_ns:
                continue
            if _ids_in(invoke.args) & resources or any(isinstance(value, str) and value in resources
                                                       for value in done.result.values()):
                before.append((done.time_ns, invoke))
        for _, invoke in sorted(before, key=lambda item: -item[0])[:MAX_BEFORE_READ]:
            out.setdefault(invoke.index, invoke)
    return list(out.values())


def _invoke(history: History, index: int) -> Op | None:
    if not 0 <= index < len(history):
        return None
    op = history[index]
    return op if op.is_invoke else history[op.invoke_index]  # type: ignore[index]


def _span(history: History, invoke: Op) -> tuple[int, int]:
    done = history.completion(invoke)
    end = done.time_ns if done is not None else (history[-1].time_ns if len(history) else invoke.time_ns)
    return invoke.time_ns, end


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item)


def _ids_in(args: Mapping[str, Any]) -> set[str]:
    """Every id a request's args use (whole values, or ids inside a probe's path)."""
    found: set[str] = set()
    for key, value in args.items():
        if key in ("payload_fp", "method", "route", "probe", "role", "scope", "idempotency_key", "trace_id"):
            continue
        for text in _strings(value):
            found.update(_UUIDISH.findall(text))
    return found


def _seeded_refs(tenants: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for t, tenant in enumerate(tenants):
        for name, value in tenant.items():
            if name == "company_id":
                refs[str(value)] = f"t{t}"
            elif name == "manager_id":
                refs[str(value)] = f"t{t}.manager_id"
            elif name.endswith("_ids") and isinstance(value, list):
                for position, item in enumerate(value):
                    if isinstance(item, list):  # pairs (overlap_pair_ids, adjacent_pair_ids): each id of each
                        for half, member in enumerate(item):
                            refs.setdefault(str(member), f"t{t}.{name}.{position}.{half}")
                    else:
                        refs.setdefault(str(item), f"t{t}.{name}.{position}")
            elif name == "disposable_company" and isinstance(value, Mapping):
                # The company a company deletion takes (the seed's, beside the tenant): its ids too.
                refs[str(value.get("company_id"))] = f"t{t}.{name}.company_id"
                refs[str(value.get("manager_id"))] = f"t{t}.{name}.manager_id"
                for position, item in enumerate(value.get("rep_ids") or ()):
                    refs.setdefault(str(item), f"t{t}.{name}.rep_ids.{position}")
    return refs


def _creators(history: History) -> dict[str, tuple[int, str]]:
    """Each id an answer named first: (the invoke index of that request, the answer's field).

    First in the order the answers came, not the requests: a start sent early and answered 409
    late names the session (``active_session_id``) another start made and answered 201 before it.
    Taken for the creator, that 409 would replay on fresh tenants as the 201 and name no
    ``active_session_id``, leaving the stops that follow pointed at an unknown session.
    """
    first: dict[str, tuple[int, str]] = {}
    answered = sorted(((invoke, done) for invoke, done in history.pairs() if done is not None),
                      key=lambda pair: pair[1].index)
    for invoke, done in answered:
        if invoke.f == FAULT:
            continue
        for field in _CREATED:
            value = done.result.get(field)
            if isinstance(value, str) and value not in first:
                first[value] = (invoke.index, field)
    return first


def _groups(history: History, invokes: Sequence[Op]) -> dict[int, int]:
    """Group number per invoke index: requests whose spans chain by overlap share one."""
    ordered = sorted(invokes, key=lambda op: op.time_ns)
    groups: dict[int, int] = {}
    group, end = -1, -1
    for op in ordered:
        start, stop = _span(history, op)
        if start > end:
            group += 1
            end = stop
        else:
            end = max(end, stop)
        groups[op.index] = group
    return groups


def _answered_before(history: History, groups: Mapping[int, int]) -> dict[int, tuple[int, ...]]:
    """Per chosen request, the chosen requests of its group whose answer came before it was sent.

    Overlap chains: a long request (a start under load) overlaps two that did not overlap each other,
    and all three share a group. Sent at once, those two lose the run's order: a key used by one tenant
    and then by another, a grant and then the start it allowed, may arrive the other way round and the
    violation cannot show. The replay sends each request after the answers it had seen (all of them,
    not the last, so that shrinking a request away keeps the order of the rest).
    """
    done_at = {index: done.time_ns for index in groups if (done := history.completion(history[index])) is not None}
    out: dict[int, tuple[int, ...]] = {}
    for index, group in groups.items():
        sent = history[index].time_ns
        out[index] = tuple(sorted(other for other, at in done_at.items()
                                  if other != index and groups[other] == group and at < sent))
    return out


def _key_pauses(history: History, chosen: Mapping[int, Op]) -> dict[int, float]:
    """Per chosen request that reuses an Idempotency-Key: seconds since the last answer to that key before it.

    Groups play back to back, so a key the run used again seconds later would be reused at once: within
    its TTL, where a replayed answer is right (idempotency-expiry was 0/5). Gaps under a half second are
    not kept (the race windows are what matters there), nor more than 30 s of one.
    """
    low, high = KEY_PAUSE_S
    answered: dict[str, list[int]] = {}
    for index, op in chosen.items():
        key, done = op.args.get("idempotency_key"), history.completion(op)
        if isinstance(key, str) and done is not None:
            answered.setdefault(key, []).append(done.time_ns)
    pauses: dict[int, float] = {}
    for index, op in chosen.items():
        key = op.args.get("idempotency_key")
        before = [at for at in answered.get(key, ()) if at < op.time_ns] if isinstance(key, str) else []
        if before and (gap := (op.time_ns - max(before)) / 1e9) >= low:
            pauses[index] = round(min(gap, high), 3)
    return pauses


def _ended_first(history: History, groups: dict[int, int], enders: set[int], cited: set[int],
                 refs: Mapping[str, str], forced: frozenset[int] = frozenset()) -> dict[int, int]:
    """Groups where each stop in ``enders`` (with the start that made its session) plays just before the
    group of the cited request it was answered before, when the two share a group.

    A start storm chains every request into one group by overlap, and in one group the stop may land
    after the refused start that names its session: the replay's 409 is then right, and a misnamed
    conflict never reproduces. Order is kept only where the violation depends on it. A stop in ``forced``
    (see :func:`_stoppers`) plays first whenever it shares the cited request's group.
    """
    moved: set[int] = set()
    for stop in enders:
        done = history.completion(history[stop])
        together = [n for n in cited if groups[n] == groups[stop]]
        if not together or (stop not in forced and (done is None or all(history[n].time_ns <= done.time_ns
                                                                         for n in together))):
            continue
        moved.add(stop)
        ref = STEP_REF.match(refs.get(str(history[stop].args.get("session_id")), ""))
        if ref is not None and int(ref.group(1)) in groups and groups[int(ref.group(1))] == groups[stop]:
            moved.add(int(ref.group(1)))
    if not moved:
        return groups
    order = {index: 2 * group - 1 if index in moved else 2 * group for index, group in groups.items()}
    renumber = {slot: number for number, slot in enumerate(sorted(set(order.values())))}
    return {index: renumber[slot] for index, slot in order.items()}


#: Violations of a request that met a state another request had just made: the replay sends that request
#: first, in a group of its own, rather than both at once through the app's race window.
_AFTER_THE_CHANGE = frozenset(("stop-refused",))


def _stoppers(history: History, details: Mapping[str, Any], cited: set[int]) -> set[int]:
    """For a ``stop-refused`` (a stop answered 404 for a session that existed, as a stopped one): the stops of
    that session answered 2xx, not as replays, before the refused stop was answered.

    In the run the two stops overlapped and the other one committed first; sent together in a replay, with
    the race window's barrier, both found the session active and nothing was refused (4/10, then 0/10 once
    shrunk, 2026-12-04). The replay stops the session first, then sends the refused stop.
    """
    session = details.get("session_id")
    if details.get("type") not in _AFTER_THE_CHANGE or not isinstance(session, str) or not cited:
        return set()
    answered = [done.time_ns for n in cited if (done := history.completion(history[n])) is not None]
    if not answered:
        return set()
    out: set[int] = set()
    for invoke, done in history.pairs_of(*sorted(STOPS)):
        if invoke.index in cited or invoke.f not in SUPPORTED or str(invoke.args.get("session_id")) != session:
            continue
        if done is not None and done.status is not None and 200 <= done.status < 300 \
                and not done.result.get("replayed") and done.time_ns < max(answered):
            out.add(invoke.index)
    return out


def _upstream_steps(steps: Sequence[Step], refs: Mapping[str, str], details: Mapping[str, Any],
                    history: History, stack: Mapping[str, Any]) -> tuple[list[Step], tuple[int, int] | None]:
    """The job's own delivery by Shunya, which the run's history cannot hold (the stub sent it, not the load).

    It names the job by its id when a request of the run learned it, else by its call (the replay
    finds the call's job at the stub).

    A job applied twice was applied by two of: the load's signed deliveries (in the history), the
    stub's webhook and the worker's poll (not in it). So the case gets one ``shunya.deliver`` step:
    the stub completes the job and delivers its webhook at once, sent with the first group that
    delivers the job (or after the last group, when the load delivered none). Its index is minus
    that of the delivery it goes with (after every group: minus one past the last), so it sorts
    first in its group and never collides with a run's index. The shrinker drops it if not needed.

    After the last group, the step keeps the run's timing (:func:`_completion`): it waits as long after
    the job's creation as the stub took to complete it (``pause_s``), and the second value returned is the
    span of the run during which the stub completed the job and tried its webhook, so that the faults
    in place then (the webhook link down) are put in place around it. Sent at once and with no fault,
    it delivered a webhook the run's stub had lost to the outage, and a job polling never applied
    (poll-until-done) was applied in every replay (0/5).
    """
    job, call = details.get("shunya_job_id"), details.get("call_id")
    args = {name: value for name, value in (("job_id", job), ("call_id", call))
            if isinstance(value, str) and value in refs}
    if not args or not steps:
        return [], None
    mine = [s for s in steps if s.f == WEBHOOK_DELIVER and s.args.get("job_id") == job]
    if mine:
        first = min(mine, key=lambda s: s.index)
        return [Step(-first.index, first.group, "shunya", SHUNYA_DELIVER, first.tenant, args)], None
    last = max(steps, key=lambda s: s.index)
    timing = _completion(history, steps, refs, call, stack)
    pause, span = timing if timing is not None else (0.0, None)
    return [Step(-(last.index + 1), max(s.group for s in steps) + 1, "shunya", SHUNYA_DELIVER, last.tenant, args,
                 pause_s=pause)], span


def _completion(history: History, steps: Sequence[Step], refs: Mapping[str, str], call: Any,
                stack: Mapping[str, Any]) -> tuple[float, tuple[int, int]] | None:
    """When the run's stub completed the call's job and gave its webhook up: (seconds after the job's
    creation, the run's span from completion to the last webhook attempt), or None
    when the case holds no submission of the call.

    The history cannot say when: the stub completes a job ``complete_after_ms`` after the worker
    created it (just after the submission was answered) and retries a failed webhook
    ``webhook_max_attempts`` times, ``webhook_backoff_ms`` doubling each time (the stack's stub
    settings, the stub's defaults where the run set none).
    """
    from stormproof.harness.shunya.config import StubConfig

    made = STEP_REF.match(refs.get(call, "")) if isinstance(call, str) else None
    submitted = history.completion(history[int(made.group(1))]) if made is not None \
        and 0 <= int(made.group(1)) < len(history) else None
    if submitted is None:
        return None
    known = {f.name for f in fields(StubConfig)}
    stub = replace(StubConfig(), **{k: v for k, v in dict(stack.get("shunya") or {}).items() if k in known})
    completed = submitted.time_ns + stub.complete_after_ms * 1_000_000
    retries = stub.webhook_backoff_ms * (2 ** max(stub.webhook_max_attempts - 1, 0) - 1) if stub.webhook_retry else 0
    return stub.complete_after_ms / 1000, (completed, completed + retries * 1_000_000)


def _meeting_env(stack: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    """The stack for a job the poller applied too: the app's race window held open until the poll comes.

    The poll is the worker's timer (``STORMPROOF_POLL_INTERVAL_MS``), which a replay cannot send;
    in the run it met a webhook inside the app's race window by chance. The replay opens that
    window to one poll interval and more, with a barrier of two (the app's documented test knobs,
    as pause-past-lock-ttl uses them): the first applier waits inside until the second comes in,
    so the webhook and the poll meet on every replay. A guard stops the second as it would have.
    """
    if "poll" not in tuple(details.get("applied_by") or ()):
        return dict(stack)
    env = dict(stack.get("env") or {})
    poll = int(env.get("STORMPROOF_POLL_INTERVAL_MS", 2000))
    env["STORMPROOF_RACE_DELAY_MS"] = str(max(int(env.get("STORMPROOF_RACE_DELAY_MS", 0)), 2 * poll + 200))
    env["STORMPROOF_RACE_BARRIER"] = "2"
    return {**stack, "env": env}


#: Invariants about two requests that both passed a check before either wrote (the app's keyed race window).
_CHECK_THEN_WRITE = frozenset(("single-active-session", "single-assignment"))
#: The window a replay holds open for them: long enough for the other requests of the group to arrive on a
#: loaded machine (fresh connections, an empty pool), short enough that the fixed app, whose guard makes the
#: requests wait in turn, answers ten of them inside a request's timeout.
_CHECK_THEN_WRITE_WINDOW_MS = 300


def _check_then_write_env(stack: Mapping[str, Any], invariant: str) -> dict[str, Any]:
    """The stack for a check-then-write race the run opened with the app's race window: a barrier of two.

    The run's window (``STORMPROOF_RACE_DELAY_MS``, 30 ms in session-start-storm) was met by chance
    among hundreds of requests on warm connections. A replay sends a handful on fresh ones to a fresh
    app: on a loaded machine they arrived more than 30 ms apart and nothing raced (CI: 0 of 2
    replays). The replay keeps the window open up to 300 ms with a barrier of two (the documented
    test knobs, as pause-past-lock-ttl uses them): with the guard off, the first two requests for the
    same appointment pass the check together on every replay; with a guard, the second waits for the
    first to write and is refused, as it would have been.
    """
    env = dict(stack.get("env") or {})
    if invariant not in _CHECK_THEN_WRITE or int(env.get("STORMPROOF_RACE_DELAY_MS", 0) or 0) <= 0:
        return dict(stack)
    env["STORMPROOF_RACE_DELAY_MS"] = str(max(int(env["STORMPROOF_RACE_DELAY_MS"]), _CHECK_THEN_WRITE_WINDOW_MS))
    env.setdefault("STORMPROOF_RACE_BARRIER", "2")
    return {**stack, "env": env}


#: The fault targets on the way of the stub's own webhook: the only faults its step meets at the moment the
#: run's stub completed the job. The app's processes are not: the worker pool paused then (pause-past-lock-ttl)
#: could not create the job the step waits for.
DELIVERY_PATH = frozenset(("webhook",))
#: Requests whose task calls the upstream (each submission's task creates its job).
_CALLS_UPSTREAM = frozenset((CALL_SUBMIT, CALL_REFRESH))
#: An upstream's 5xx answer a task's last error names (the reference app's Shunya client: ``create_job: HTTP 503``).
_UPSTREAM_STATUS = re.compile(r"\bHTTP (5\d\d)\b")


def _failing_upstream(stack: Mapping[str, Any], details: Mapping[str, Any], tasks: int = 1) -> dict[str, Any]:
    """The stack for a task whose tries met the upstream's errors: the stub fails the calls as in the run.

    The run's stub fails a share of its calls (``error_rate``), drawn at random; a task is dropped
    or dead-lettered only when every one of its tries drew a failure (three 503s in a row at a rate of
    one half: one time in eight). The run recorded the answer that failed the task's last try
    (``details["last_error"]``, from the task ledger), so the replay's stub gives it to every API call:
    each try fails, on every replay (dead-letter-queue: 2/5 before). A task tried past its budget that
    then succeeded (``over-budget``, retry-budget: 0/5 before) failed all its tries but the last: the
    stub fails the first ``attempts - 1`` calls of each attempt (``error_first``) and answers the rest,
    times the ``tasks`` of the case that call it (the submissions): the stub cannot tell whose call it
    is, and shared out, three failures over two tasks left each short of its budget (0/5). With that
    many, the weakened app tries one task at least ``attempts`` times; the fixed one dead-letters it.
    """
    shunya = stack.get("shunya")
    error = details.get("last_error")
    found = _UPSTREAM_STATUS.search(error) if isinstance(error, str) and shunya is not None else None
    if found is None:
        return dict(stack)
    status = int(found.group(1))
    attempts = details.get("attempts")
    if details.get("type") == "over-budget" and details.get("state") == "succeeded" and isinstance(attempts, int):
        first = (attempts - 1) * max(tasks, 1)
        return {**stack, "shunya": {**dict(shunya), "error_rate": 0.0, "error_first": first, "error_status": status}}
    return {**stack, "shunya": {**dict(shunya), "error_rate": 1.0, "error_status": status}}


def _lost_upstream(stack: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    """The stack for a job the upstream lost (``stuck-job-dropped``): the replay's stub loses every job.

    The run's stub lost a share of its jobs (``stuck_rate``), drawn by job id; a replay's jobs have new ids,
    so the lost one would be lost again only at that rate (0/10 at 0.25, 2026-12-05). Every job of the case
    is lost instead: pending for good, no webhook, only the app's poll to find out. And the stub answers every
    call: its errors would end some replays' polls in a dead letter for their failures, not their budget (3/10
    with the run's 28 % of errors and odd answers).
    """
    shunya = stack.get("shunya")
    if details.get("type") != "stuck-job-dropped" or shunya is None:
        return dict(stack)
    return {**stack, "shunya": {**dict(shunya), "stuck_rate": 1.0, "error_rate": 0.0, "error_first": 0,
                                "reject_rate": 0.0, "garbage_rate": 0.0}}


def _fault_windows(history: History) -> list[tuple[str, str, Mapping[str, Any], int, int]]:
    """(fault, target, params, start, end) of every fault the nemesis injected."""
    open_: dict[tuple[str, str], tuple[Mapping[str, Any], int]] = {}
    windows = []
    horizon = history[-1].time_ns if len(history) else 0
    for op in history.faults():
        fault, phase, target = op.args.get("fault"), op.args.get("phase"), op.args.get("target")
        if target == "*" or not isinstance(fault, str) or not isinstance(target, str):
            continue
        if phase == "start":
            open_[(fault, target)] = (op.args.get("params") or {}, op.time_ns)
        elif (fault, target) in open_:
            params, began = open_.pop((fault, target))
            windows.append((fault, target, params, began, op.time_ns))
    windows.extend((f, t, p, began, horizon) for (f, t), (p, began) in open_.items())
    return windows


def select_case(record: RunRecord, number: int | None = None, *, max_context: int = MAX_CONTEXT,
                app_command: Sequence[str] | None = None) -> tuple[int, Case]:
    """The case that replays violation ``number`` of the run (the first one a replay can reach when None)."""
    if number is None:
        first, _, _ = pick_violation(record, None)
        listed = numbered_violations(record.result)
        failure: SelectionError | None = None
        for n in range(first, len(listed) + 1):
            verdict, violation = listed[n - 1]
            if verdict.get("kind") in UNREPRODUCIBLE_KINDS or not cites(violation):
                continue
            try:
                return select_case(record, n, max_context=max_context, app_command=app_command)
            except SelectionError as exc:
                failure = failure or exc
        assert failure is not None
        raise failure
    history = record.history
    number, verdict, violation = pick_violation(record, number)
    named = {op.index: op for i in violation.get("ops") or () if (op := _invoke(history, int(i))) is not None
             and op.f != FAULT}
    creators = _creators(history)
    details = violation.get("details") or {}
    from_details: dict[str, str] = {}
    # resources the violation names: the request whose answer first named each stands for it; with no request
    # named, every id of the details, and the requests that used them (_users)
    bare = not violation.get("ops")
    idents = _named_ids(details) if bare else [str(details[k]) for k in _NAMED_IN_DETAILS
                                                if isinstance(details.get(k), str)]
    for ident in idents:
        made = creators.get(ident)
        if made is not None and history[made[0]].f in SUPPORTED:
            named.setdefault(made[0], history[made[0]])
            from_details[ident] = f"step:{made[0]}.{made[1]}"
    if bare and from_details:
        for invoke in _users(history, list(from_details)):
            named.setdefault(invoke.index, invoke)
    ended = {str(details[key]) for key in _ENDED_IN_DETAILS if isinstance(details.get(key), str)}
    for invoke in _traffic(history, details, named):
        named.setdefault(invoke.index, invoke)
    cited = set(named)  # the requests the violation itself names
    enders: set[int] = set()  # the stops that ended a session it names, answered before one of them was sent
    if ended and named:
        latest = max(named)
        for invoke, done in history.pairs_of(*sorted(STOPS)):
            if invoke.index < latest and invoke.f in SUPPORTED and str(invoke.args.get("session_id")) in ended \
                    and done is not None and done.status is not None and 200 <= done.status < 300:
                named.setdefault(invoke.index, invoke)
                enders.add(invoke.index)
    forced = _stoppers(history, details, cited)
    for index in forced:
        named.setdefault(index, history[index])
    enders |= forced
    if not named and not violation.get("ops"):
        what = ", ".join(_named_ids(details))
        if not what:
            raise SelectionError(f"--violation {number}: no request of the run that a replay can send stands for "
                                 f"it ({violation.get('message')}); pick another violation")
        raise SelectionError(f"--violation {number}: names {what}, but no request of the run learned that id "
                             "(the load never read it), so a replay cannot reach it; pick another violation")
    if not named:
        raise SelectionError(f"--violation {number}: its operations are not in history.jsonl; was the run "
                             "directory edited?")
    unsupported = sorted({op.f for op in named.values() if op.f not in SUPPORTED})
    if unsupported:
        raise SelectionError(f"--violation {number}: names operations a replay cannot send yet "
                             f"({', '.join(unsupported)}); pick another violation")
    refs = {**_seeded_refs(record.tenants), **from_details}
    chosen: dict[int, Op] = dict(named)

    # context: requests on the same resources, overlapping the named ones
    start = min(_span(history, op)[0] for op in named.values())
    end = max(_span(history, op)[1] for op in named.values())
    resources = set().union(*(_ids_in(op.args) for op in named.values()))
    resources |= {str(op.args["idempotency_key"]) for op in named.values() if op.args.get("idempotency_key")}
    context = []
    for invoke, done in history.pairs():
        if invoke.index in chosen or invoke.f not in SUPPORTED or invoke.process == NEMESIS:
            continue
        s, e = _span(history, invoke)
        if e < start or s > end:
            continue
        used = _ids_in(invoke.args) | ({str(invoke.args["idempotency_key"])}
                                        if invoke.args.get("idempotency_key") else set())
        if used & resources:
            context.append((abs(s - start), invoke))
    for _, invoke in sorted(context, key=lambda item: item[0])[:max_context]:
        chosen[invoke.index] = invoke
    for invoke in _state_before_reads(history, (named[n] for n in sorted(cited)), creators):
        chosen.setdefault(invoke.index, invoke)

    # preconditions: creators of every id used, transitively; consents on created appointments
    todo = list(chosen.values())
    while todo:
        op = todo.pop()
        for ident in _ids_in(op.args):
            if ident in refs:
                continue
            creator = creators.get(ident)
            if creator is None or creator[0] >= op.index or history[creator[0]].f not in SUPPORTED:
                continue
            refs[ident] = f"step:{creator[0]}.{creator[1]}"
            if creator[0] not in chosen:
                chosen[creator[0]] = history[creator[0]]
                todo.append(history[creator[0]])
    created = {ident for ident, ref in refs.items() if ref.startswith("step:")}
    latest = max(chosen)
    for invoke in history.pairs_of(CONSENT_GRANT):
        op = invoke[0]
        if op.index < latest and op.index not in chosen and op.args.get("appointment_id") in created:
            chosen[op.index] = op

    keys: dict[str, str] = {}
    for op in sorted(chosen.values(), key=lambda o: o.index):
        key = op.args.get("idempotency_key")
        if isinstance(key, str) and key not in keys:
            keys[key] = f"key:{len(keys)}"
    refs.update(keys)

    groups = _ended_first(history, _groups(history, list(chosen.values())), enders, cited, refs, frozenset(forced))
    before = _answered_before(history, groups)
    pauses = _key_pauses(history, chosen)
    steps = []
    for index in sorted(chosen):
        op = chosen[index]
        done = history.completion(op)
        steps.append(Step(index, groups[index], op.process, op.f, op.tenant, op.args,
                          done.status if done is not None else None, done.type if done is not None else "info",
                          before[index], pauses.get(index, 0.0)))
    plan = record.plan
    run_stack = plan.get("scenario", {}).get("stack") or {}
    upstream, upstream_span = _upstream_steps(steps, refs, details, history, run_stack)
    steps.extend(upstream)

    spans: dict[int, tuple[int, int]] = {}
    for op in chosen.values():
        s, e = _span(history, op)
        g = groups[op.index]
        known = spans.get(g)
        spans[g] = (s, e) if known is None else (min(known[0], s), max(known[1], e))
    if upstream and upstream_span is not None:  # its own group, at the run's moment of completion
        spans[upstream[0].group] = upstream_span
    faults = []
    for fault, target, params, began, ended in _fault_windows(history):
        covered = tuple(sorted(g for g, (s, e) in spans.items() if began <= e and ended >= s
                               and (target in DELIVERY_PATH or not upstream or g != upstream[0].group)))
        if covered:
            faults.append(CaseFault(fault, target, dict(params), covered))

    race = str(verdict.get("invariant")) if details.get("type") not in _AFTER_THE_CHANGE else ""
    stack = _lost_upstream(_failing_upstream(_meeting_env(_check_then_write_env(run_stack, race),
                                                          details), details,
                                             tasks=sum(1 for step in steps if step.f in _CALLS_UPSTREAM)), details)
    command = tuple(app_command) if app_command else (tuple(plan["app_command"]) if plan.get("app_command") else None)
    case = Case(
        invariant=str(verdict.get("invariant")),
        steps=tuple(steps),
        faults=tuple(faults),
        refs=refs,
        stack=stack,
        weakenings=tuple(plan.get("weakenings") or record.result.get("run", {}).get("weakenings") or ()),
        app_command=command,
        source={"run_dir": str(record.run_dir), "scenario": (record.result.get("scenario") or {}).get("name"),
                "violation": number, "message": violation.get("message"), "ops": list(violation.get("ops") or ()),
                # the requests the violation names (invoke indices): shrink.loosened sends them unordered
                "cited": sorted(cited),
                # the sub-type a replay must show to count as this violation (repeat.measure)
                "kind": details.get("type")},
    )
    return number, case.pruned()
