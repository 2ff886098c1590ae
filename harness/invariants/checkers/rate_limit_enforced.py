"""rate-limit-enforced: no tenant gets more API requests accepted than its limit allows (plan C3).

GCRA lets a tenant through at ``rate`` per second after a burst of
``burst``; so in any window of ``length`` seconds, at most ``rate x length +
burst`` of its requests may be answered with anything but 429 (the rate
widened by ``rate_limit_tolerance``). The seconds in which more answers than
``rate + burst`` arrived are found cheaply; each is then confirmed by whole
flights: a window (1, 2 or 4 s) around it holding more requests sent *and*
answered inside it than its bound allows. The limiter decided each of those
inside the window, whatever the latency; answers merely bunched by a stall
(a correct limiter, a slow app) are counted as ``bunched_seconds``, not
flagged. A tenant over the bound was not limited; the limit that protects
the other tenants was not there. Not checked (valid, with a note) when the
run had no limit.

The limit is per tenant, so it must never refuse a tenant that stayed within
its own allowance, whatever the others send (plan C3: the others are served).
GCRA refuses a request only when, in some window ending at its arrival, the
tenant had more than ``rate x length + burst - 1`` requests accepted. A 429
of the API limit whose tenant *sent* (accepted or not) no more than that in
every window ending at the answer (widened by the request's own latency, so
the app's arrival time is inside it) is ``quiet-tenant-limited``: someone
else's traffic used this tenant's allowance. The windows are a doubling grid
(0.25 s to the whole run), each bound taken at the next shorter length, so
the rule never claims more than the arithmetic allows. Only the API limit is
judged: a call submission or refresh may meet the Shunya or task limit.

A limit is a rate, not a ban: a tenant over it still gets its allowance
(plan C3, "requests/minute"). GCRA, a token bucket or a sliding log refuse a
request only when the tenant had one accepted within the last ``1/rate``
seconds (the bucket was emptied by acceptances, and it refills). A 429 of the
API limit with nothing of its tenant's let through (answered anything but
429, or not answered, so perhaps admitted) in the ``max(4, 20/rate)``
seconds either side of its flight is ``limit-starves``: the limiter counted
refusals against the tenant (a flood then keeps it out for as long as it
sends). Not judged near a fault, nor where the tenant's refused calls
outnumbered its API-only requests (a call's 429 may be the task limit's,
after the API limit let it through).

Task enqueues have a per-tenant limit of their own (plan C3: "task enqueueing"),
spent by every call submission and refresh that runs (a replayed answer ran
nothing). Completion seconds cannot judge so small an allowance: a few answers
delayed into the same second would read as over-limit. A window instead holds
only the requests whose whole flight (invoke to answer, so the app's decision)
lies inside it; more of them accepted than ``rate x length + burst`` (the rate
widened by ``rate_limit_tolerance``) in some window is ``task-over-limit``:
whatever the latency, those were admitted inside it.

A 429's Retry-After must also be one the run's limits can mean: no longer
than twice the time a limit takes to let ``burst + 1`` requests through (at
least 5 s allowed); a longer one (milliseconds sent as seconds) keeps a client
that honours it out for far longer than its allowance does
(``retry-after-too-long``; not judged when no limit is known).

Calls to Shunya have a per-tenant limit too (plan C3: "Shunya API calls"),
spent by the workers' job creations and polls, which no client sees. The
Shunya stub logs when each call arrived and for whom (``GET /admin/calls``,
``snapshot.upstream_calls``); more of one tenant's in some window of 1, 2 or
4 s than ``rate x length + burst`` (the rate widened by
``rate_limit_tolerance``) is ``shunya-over-limit``. Windows near a fault are
not judged: a paused worker or a slowed link delivers calls decided apart
together.

A request without a valid token (an authorization probe's ``none``,
``expired`` or ``forged`` caller) is nobody's: the limit applies to the
tenant the token names, once the token is known good, so its 401 never spends
the allowance of the tenant whose user sent it. It counts neither as accepted
(with authorization probes among a limited tenant's traffic, the 401s pushed
the count past the bound: a false ``over-limit``) nor as sent.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import CALL_REFRESH, CALL_SUBMIT, NEMESIS, WEBHOOK_DELIVER
from stormproof.harness.invariants.checkers._probes import FaultWindows
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._answers import OTHER_LIMITS, answers, spends_allowance, spends_nothing
from ._windows import busiest, crowded

__all__ = ["NAME", "check_rate_limit_enforced"]

NAME = "rate-limit-enforced"


@checker(NAME, "safety")
def check_rate_limit_enforced(history: History, snapshot: Snapshot) -> Verdict:
    """Per tenant and per second, accepted (non-429) answers stay within rate + burst."""
    config = snapshot.config
    log = ViolationLog(NAME, "safety", config)
    tasks: dict[str, int] = {"limits_429_judged": _refusals_retryable(log, history, _longest_wait_s(config))}
    if config.task_rate_per_s is not None:
        tasks["task_enqueues_judged"] = _task_over_limit(log, history, config.task_rate_per_s,
                                                         config.task_rate_burst, config.rate_limit_tolerance)
    if config.shunya_rate_per_s is not None and snapshot.upstream_calls is not None:
        tasks.update(_shunya_over_limit(log, history, snapshot.upstream_calls, config.shunya_rate_per_s,
                                        config.shunya_rate_burst, config.rate_limit_tolerance))
    if config.rate_limit_per_s is None:
        if config.task_rate_per_s is not None or config.shunya_rate_per_s is not None \
                or tasks["limits_429_judged"]:
            return log.verdict(checked=True, **tasks)
        return log.verdict(checked=False, note="the run set no per-tenant rate limit", **tasks)
    bound = config.rate_limit_per_s * (1 + config.rate_limit_tolerance) + config.rate_limit_burst
    seen = answers(history)  # the walk of every answer, shared (see _answers)
    accepted, limited, refused = seen.accepted, seen.limited, seen.refused
    over = sorted((key, count) for key, count in accepted.items() if count > bound)
    flights = _accepted_flights(history, {tenant for (tenant, _), _ in over}) if over else {}
    bunched = 0
    for (tenant, second), count in over:
        found = _admitted_window(flights[tenant], second, config.rate_limit_per_s, config.rate_limit_burst,
                                 config.rate_limit_tolerance)
        if found is None:
            bunched += 1  # answered in one second, but no window held that many whole flights: latency
            continue
        length, window_bound, inside = found
        log.add(
            "over-limit",
            f"tenant {tenant} had {len(inside)} requests accepted within {length:g} s (sent and answered "
            f"inside it; {count} answered in second {second} of the run), over its limit "
            f"{config.rate_limit_per_s:g}/s, burst {config.rate_limit_burst:g}: at most {window_bound:g}",
            badness=float(len(inside) - window_bound), tenant=tenant, second=second, accepted=len(inside),
            answered_in_second=count, window_s=length,
        )
    quiet_refusals = _quiet_refusals(log, history, _sent(history), refused, config.rate_limit_per_s,
                                     config.rate_limit_burst, config.rate_limit_tolerance) if refused else 0
    starved = _starved_refusals(log, history, refused, config.rate_limit_per_s) if refused else {}
    busiest = max(accepted.values(), default=0)
    return log.verdict(checked=True, bound_per_second=bound, busiest_second=busiest, answered_429=limited,
                       api_429_judged=len(refused), quiet_tenant_429=quiet_refusals, bunched_seconds=bunched,
                       **starved, **tasks)


_FAR = 1 << 62  # a request never answered: it may have passed the limiter at any time after it was sent


def _starved_refusals(log: ViolationLog, history: History, refused: list[tuple[str, int, int, int]],
                      rate: float) -> dict[str, int]:
    """Flag each API 429 with nothing of its tenant let through in the ``max(4, 20/rate)`` s either side.

    Let through for sure: a request of the tenant answered anything but 429 (or never answered: perhaps).
    A call's 429 may be the task limit's after the API limit let it through (the bodies need not say which
    limit refused), so a silence is judged only where the tenant's API-only requests were at least as many
    as its refused calls: a correct limiter lets some 20 requests through in such a window, and all of them
    being calls then has odds below one in a million. Returns counts for the verdict.
    """
    gap = int(max(4.0, 20.0 / rate) * 1e9)
    tenants = {tenant for tenant, *_ in refused}
    through: dict[str, list[tuple[int, int]]] = {tenant: [] for tenant in tenants}
    maybe: dict[str, list[int]] = {tenant: [] for tenant in tenants}
    api_sent: dict[str, list[int]] = {tenant: [] for tenant in tenants}
    for f, pairs in history.grouped().items():
        if f == WEBHOOK_DELIVER:
            continue
        api_only = f not in OTHER_LIMITS and not f.startswith("probe.")
        for invoke, completion in pairs:
            if invoke.tenant not in tenants or invoke.process == NEMESIS or spends_nothing(invoke):
                continue
            if api_only:
                api_sent[invoke.tenant].append(invoke.time_ns)
            status = completion.status if completion is not None else None
            if status == 429:
                if not api_only:
                    maybe[invoke.tenant].append(invoke.time_ns)
            elif status:
                if spends_allowance(f, invoke, status):
                    through[invoke.tenant].append((invoke.time_ns, completion.time_ns))  # type: ignore[union-attr]
            else:
                end = completion.time_ns + gap if completion is not None else _FAR
                through[invoke.tenant].append((invoke.time_ns, end))
    starts: dict[str, list[int]] = {}
    latest: dict[str, list[int]] = {}  # the latest end among the flights sent up to each position
    for tenant, flights in through.items():
        flights.sort()
        starts[tenant] = [start for start, _ in flights]
        running, ends = -1, []
        for _, end in flights:
            running = max(running, end)
            ends.append(running)
        latest[tenant] = ends
        maybe[tenant].sort()
        api_sent[tenant].sort()
    faults = FaultWindows(history)
    starved = near_fault = mostly_calls = 0
    for tenant, invoked_ns, answered_ns, index in refused:
        low, high = invoked_ns - gap, answered_ns + gap
        before = bisect_right(starts[tenant], high)
        if before and latest[tenant][before - 1] >= low:
            continue  # something of the tenant's was let through near this refusal
        if faults.overlaps(low, high):
            near_fault += 1
            continue
        calls = bisect_right(maybe[tenant], high) - bisect_left(maybe[tenant], low)
        reads = bisect_right(api_sent[tenant], high) - bisect_left(api_sent[tenant], low)
        if calls > reads:
            mostly_calls += 1  # the API limit may have let only calls through, which the task limit refused
            continue
        starved += 1
        log.add("limit-starves",
                f"tenant {tenant} was answered 429 with none of its requests let through within {gap / 1e9:g} s "
                f"either side, though it sent {reads} API requests then (limit {rate:g}/s): a rate limit that "
                "counts the refusals keeps a tenant that keeps sending out for good", (index,), tenant=tenant,
                api_requests_in_window=reads)
    return {"starved_429": starved, "starved_not_judged_near_fault": near_fault,
            "starved_not_judged_mostly_calls": mostly_calls}


#: Window lengths (s) over which the Shunya stub's arrivals of one tenant's calls are counted.
_SHUNYA_WINDOWS_S = (1.0, 2.0, 4.0)


def _shunya_over_limit(log: ViolationLog, history: History, calls: tuple[tuple[float, str], ...], rate: float,
                       burst: float, tolerance: float) -> dict[str, int]:
    """Flag a window in which the Shunya stub served more of one tenant's calls than the app's limit lets out.

    The stub notes when each call arrived (unix seconds) and for whom. A limiter that keeps to ``rate`` per
    second after ``burst`` lets at most ``rate x length + burst`` calls out in any window of ``length`` s;
    the rate is widened by ``tolerance`` for the time between the app's decision and the arrival (a call
    decided just before the window may land in it). Windows that overlap a fault are not judged: a paused
    worker or a slowed link can hold calls decided apart and deliver them together. One violation per
    tenant and window, the next judged after it; returns counts for the verdict.
    """
    per_tenant: dict[str, list[float]] = defaultdict(list)
    for at, company in calls:
        per_tenant[company].append(at)
    faults = FaultWindows(history)
    # The history's clock: ns since its start; the stub's: unix seconds. Any op carries both.
    origin = next((op.wall - op.time_ns / 1e9 for op in history if op.wall), None)
    judged = near_fault = most = 0
    for tenant, times in sorted(per_tenant.items()):
        times.sort()
        judged += len(times)
        most = max(most, busiest(times, _SHUNYA_WINDOWS_S[0]))
        for length in _SHUNYA_WINDOWS_S:
            bound = rate * (1 + tolerance) * length + burst
            for i, count in crowded(times, length, bound):
                start_ns = None if origin is None else (times[i] - origin) * 1e9
                if start_ns is not None and faults.overlaps(start_ns - 1e9, start_ns + (length + 1) * 1e9):
                    near_fault += 1
                    continue
                log.add("shunya-over-limit",
                        f"tenant {tenant}: the Shunya stub served {count} of its calls (job creations and polls) "
                        f"within {length:g} s, over the app's Shunya limit {rate:g}/s, burst {burst:g}: at most "
                        f"{bound:g}", _shunya_senders(history, tenant, start_ns, length),
                        badness=float(count - bound), tenant=tenant, window_s=length, calls=count, at=times[i])
    return {"shunya_calls_judged": judged, "shunya_busiest_second": most,
            "shunya_windows_not_judged_near_fault": near_fault}


#: At most this many requests cited by a shunya-over-limit window (for ``stormproof reproduce``).
_MAX_SENDERS = 40


def _shunya_senders(history: History, tenant: str, start_ns: float | None, length: float) -> list[int]:
    """The tenant's call submissions and refreshes in flight from a second before a crowded window to its end
    (invoke indices, at most ``_MAX_SENDERS``): the requests that made the app call Shunya then, so that a
    replay of them together crowds the stub again. Empty without the history's clock (no op with a wall time)."""
    if start_ns is None:
        return []
    low, high = start_ns - 1e9, start_ns + length * 1e9
    found = [invoke.index for invoke, completion in history.pairs_of(CALL_SUBMIT, CALL_REFRESH)
             if invoke.tenant == tenant and invoke.process != NEMESIS and invoke.time_ns <= high
             and (completion is None or completion.time_ns >= low)]
    return sorted(found)[:_MAX_SENDERS]


#: Window lengths (s) that confirm an over-limit second: the second itself, then longer ones for slow answers.
_API_WINDOWS_S = (1.0, 2.0, 4.0)


def _accepted_flights(history: History, tenants: set[str]) -> dict[str, list[tuple[int, int]]]:
    """(invoke ns, completion ns) of the answers ``answers`` counts as accepted, for ``tenants`` only,
    sorted. Walked only when some second was over the bound (a correct run rarely has one)."""
    flights: dict[str, list[tuple[int, int]]] = {tenant: [] for tenant in tenants}
    for f, pairs in history.grouped().items():
        for invoke, completion in pairs:
            if (invoke.tenant in flights and completion is not None and completion.status != 429
                    and invoke.process != NEMESIS and spends_allowance(f, invoke, completion.status)):
                flights[invoke.tenant].append((invoke.time_ns, completion.time_ns))
    for spans in flights.values():
        spans.sort()
    return flights


def _admitted_window(flights: list[tuple[int, int]], second: int, rate: float, burst: float,
                     tolerance: float) -> tuple[float, float, list[int]] | None:
    """A window around ``second`` holding more whole flights (sent and answered inside it, so admitted
    inside it, whatever the latency) than ``rate x length + burst`` allows: (length, bound, the flights'
    positions), or None.

    Answers counted by the second they arrived in can bunch: a correct limiter admits 2 a second, the
    app stalls for 3 s, and the answers of all of them arrive in one second (measured: the busiest
    second of correct noisy-tenant runs at 7 to 9 against a bound of 12.5, on a loaded machine). The
    limiter decided each one between its invoke and its answer, so only whole flights are counted.
    """
    invokes = [start for start, _ in flights]
    for length in _API_WINDOWS_S:
        window_bound = rate * length * (1 + tolerance) + burst
        width = int(length * 1e9)
        first = bisect_left(invokes, (second - int(length)) * 1_000_000_000 - width)
        last = bisect_right(invokes, (second + 1) * 1_000_000_000)
        for i in range(first, last):  # a window opening at an invoke holds the most
            start = invokes[i]
            end = start + width
            inside = [j for j in range(i, bisect_right(invokes, end)) if flights[j][1] <= end]
            if len(inside) > window_bound:
                return length, window_bound, inside
    return None


_DELTA_SECONDS = re.compile(r"^[0-9]+$")


def _longest_wait_s(config: object) -> float | None:
    """The longest Retry-After the run's limits can mean, in seconds; None when no client-facing limit is known.

    A limit of ``rate`` per second after a burst of ``burst`` refuses a request only until enough of its
    allowance is back for it: GCRA and a token bucket within ``1/rate`` s, a window of ``burst`` requests
    (a sliding log) within ``burst/rate`` s. Twice the longest of those, rounded up, and never under 5 s, is
    allowed: a correct limiter never asks for more, and one that says milliseconds where it means seconds
    asks a thousand times as much."""
    waits = [(burst + 1) / rate for rate, burst in ((getattr(config, "rate_limit_per_s", None),
                                                     getattr(config, "rate_limit_burst", 0.0)),
                                                    (getattr(config, "task_rate_per_s", None),
                                                     getattr(config, "task_rate_burst", 0.0)))
             if rate]
    return max(5.0, 2 * math.ceil(max(waits))) if waits else None


def _retry_after_s(value: str, answered_wall: float) -> float | None:
    """A Retry-After in seconds from the answer: delay-seconds as is, an HTTP-date less the answer's time."""
    from email.utils import parsedate_to_datetime

    value = value.strip()
    if _DELTA_SECONDS.match(value):
        return float(value)
    try:
        return parsedate_to_datetime(value).timestamp() - answered_wall
    except (TypeError, ValueError, IndexError):
        return None


def _refusals_retryable(log: ViolationLog, history: History, longest_s: float | None) -> int:
    """Every 429 says when to come back and is the limit's answer now, never a stored one (plan C3, B1).

    A 429 without a Retry-After (delta-seconds or an HTTP-date) leaves the client to guess (the recorder
    notes the header of each 429 as ``retry_after``, "" when absent; histories without the note are not
    judged on it). A Retry-After longer than the run's limits can mean (``longest_s``, see
    :func:`_longest_wait_s`; not judged when no limit is known) keeps a client that honours it out far
    longer than its allowance does: ``retry-after-too-long``. A 429 answered as a replay
    (Idempotent-Replayed) was stored under the request's key:
    the same request sent again with its key after Retry-After gets that 429 again, for the key's whole
    lifetime, so a rate-limited write can never be retried safely. Returns how many 429s were judged.
    """
    judged = 0
    for pairs in history.grouped().values():
        for invoke, completion in pairs:
            if completion is None or completion.status != 429 or invoke.process == NEMESIS:
                continue
            judged += 1
            result = completion.result
            retry_after = result.get("retry_after")
            if retry_after is not None and not _valid_retry_after(str(retry_after)):
                log.add("limit-without-retry-after",
                        f"{invoke.f} was answered 429 with "
                        + (f"Retry-After {retry_after!r}, neither delay-seconds nor an HTTP-date" if retry_after
                           else "no Retry-After") + ": the client cannot tell when to come back",
                        (invoke.index, completion.index), tenant=invoke.tenant, f=invoke.f)
            elif retry_after and longest_s is not None:
                wait = _retry_after_s(str(retry_after), completion.wall)
                if wait is not None and wait > longest_s:
                    log.add("retry-after-too-long",
                            f"{invoke.f} was answered 429 with Retry-After {retry_after!r} ({wait:g} s), longer than "
                            f"the run's limits can mean (at most {longest_s:g} s): a client that honours it stays "
                            "out far longer than its allowance does", (invoke.index, completion.index),
                            badness=wait - longest_s, tenant=invoke.tenant, f=invoke.f, retry_after_s=wait)
            if result.get("replayed"):
                log.add("limit-replayed",
                        f"{invoke.f} was answered a stored 429 (Idempotent-Replayed) for key "
                        f"{invoke.args.get('idempotency_key')!r}: a limit's refusal was kept under the key, so its "
                        "retry after Retry-After is refused again for the key's lifetime",
                        (invoke.index, completion.index), tenant=invoke.tenant, f=invoke.f)
    return judged


def _valid_retry_after(value: str) -> bool:
    """RFC 9110 10.2.3: delay-seconds (digits) or an HTTP-date."""
    from email.utils import parsedate_to_datetime

    value = value.strip()
    if _DELTA_SECONDS.match(value):
        return True
    try:
        return parsedate_to_datetime(value) is not None
    except (TypeError, ValueError, IndexError):
        return False


#: Window lengths (s) for the task limit: a short one for a flood, longer ones for a tenant slowed by latency.
_TASK_WINDOWS_S = (1.0, 2.0, 4.0, 8.0)
#: Requests named in a task-over-limit violation.
_TASK_LISTED = 20


def _task_over_limit(log: ViolationLog, history: History, rate: float, burst: float, tolerance: float) -> int:
    """Flag, per tenant, the window holding the most accepted task enqueues beyond ``rate x length + burst``.

    Returns how many accepted submissions and refreshes were judged."""
    spans: defaultdict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for invoke, completion in history.pairs_of(CALL_SUBMIT, CALL_REFRESH):
        if (completion is None or completion.type != "ok" or invoke.process == NEMESIS or invoke.tenant is None
                or completion.result.get("replayed")):
            continue
        spans[invoke.tenant].append((invoke.time_ns, completion.time_ns, invoke.index))
    for tenant, flights in sorted(spans.items()):
        flights.sort()
        worst: tuple[float, float, float, list[int]] | None = None  # (excess ratio, length, bound, requests)
        for length in _TASK_WINDOWS_S:
            bound = rate * length * (1 + tolerance) + burst
            width = int(length * 1e9)
            for i, (start, _, _) in enumerate(flights):  # a window opening at an invoke holds the most
                inside = []
                for invoked, answered, index in flights[i:]:
                    if invoked > start + width:
                        break
                    if answered <= start + width:
                        inside.append(index)
                if len(inside) > bound and (worst is None or len(inside) / bound > worst[0]):
                    worst = (len(inside) / bound, length, bound, inside)
        if worst is not None:
            _, length, bound, inside = worst
            log.add("task-over-limit",
                    f"tenant {tenant} had {len(inside)} call submissions and refreshes accepted within "
                    f"{length:g} s (task limit {rate:g}/s, burst {burst:g}: at most {bound:g}): its task "
                    "enqueues were not limited", inside[:_TASK_LISTED],
                    badness=len(inside) - bound, tenant=tenant, accepted=len(inside), window_s=length)
    return sum(len(flights) for flights in spans.values())


def _sent(history: History) -> dict[str, list[tuple[int, int]]]:
    """Tenant -> (invoke ns, completion ns) of every request it sent, even one never answered: it may have
    arrived. Walked only when an API 429 is to be judged (runs without one never need it)."""
    sent: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for f, pairs in history.grouped().items():
        if f == WEBHOOK_DELIVER:
            continue
        for invoke, completion in pairs:
            if invoke.process != NEMESIS and invoke.tenant is not None and not spends_nothing(invoke):
                answered = completion.time_ns if completion is not None else 1 << 62
                sent[invoke.tenant].append((invoke.time_ns, answered))
    return sent


_GRID_S = tuple(0.25 * 2 ** k for k in range(16))  # 0.25 s doubling to about 2.3 hours


def _quiet_refusals(log: ViolationLog, history: History, sent: dict[str, list[tuple[int, int]]],
                    refused: list[tuple[str, int, int, int]], rate: float, burst: float, tolerance: float) -> int:
    """Flag each API 429 of a tenant that stayed within its own allowance in every window before it.

    Under a fault on Redis (the limiter's store) the message says so: a limiter that cannot check must let
    the request through (fail open), not refuse it (2026-12-03: limiters that refused while Redis was
    down passed redis-flap)."""
    redis_down = FaultWindows(history, lambda _fault, target: target == "redis")
    invokes = {tenant: sorted(i for i, _ in spans) for tenant, spans in sent.items()}
    completions = {tenant: sorted(c for _, c in spans) for tenant, spans in sent.items()}
    found = 0
    for tenant, invoked_ns, answered_ns, index in refused:
        starts, ends = invokes[tenant], completions[tenant]
        before = bisect_right(starts, answered_ns)  # requests sent before the answer came
        latency_s = (answered_ns - invoked_ns) / 1e9
        shorter = 0.0
        for length in _GRID_S:
            # Requests whose flight overlaps the window: sent before its end, answered after its start.
            window_start = answered_ns - int((length + latency_s) * 1e9)
            in_window = before - bisect_left(ends, window_start)
            if in_window > rate * shorter * (1 - tolerance) + burst - 2:
                break  # this much traffic could have used the allowance: the 429 may be right
            shorter = length
            if window_start <= (starts[0] if starts else 0):
                found += 1
                why = ("while Redis was faulty: a limiter that cannot check must let requests through (fail open)"
                       if len(redis_down) and redis_down.overlaps(invoked_ns, answered_ns)
                       else "another tenant's traffic used its allowance")
                log.add("quiet-tenant-limited",
                        f"tenant {tenant} was answered 429 though it sent at most {in_window} requests in the "
                        f"{length:g} s before (its limit: {rate:g}/s, burst {burst:g}): {why}", (index,),
                        tenant=tenant, sent_in_window=in_window)
                break
    return found
