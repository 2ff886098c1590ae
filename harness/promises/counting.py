"""How many completed operations of a history exercised a promise.

A promise is exercised by an operation that put it at risk and got a
definite or unknown answer (``ok``, ``fail`` or ``info``; an invoke without
completion counts for nothing). Most promises are exercised by any completed
operation of their names; some need a situation, and count only operations
that created it: a key used again (replay), a key used again with another
payload (mismatch), a key used while its first request ran (concurrent), a
probe of one route. Counters are plain functions of the history's pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import NEMESIS, PROBE, PROBE_IDEMPOTENCY

__all__ = [
    "Counter",
    "answered",
    "answered_problem",
    "by_operations",
    "completed",
    "key_concurrent",
    "key_mismatch",
    "key_missing",
    "key_repeat",
    "key_shared_across_tenants",
    "over_allowance",
    "plus",
    "probe_situation",
    "probe_case",
    "probe_route",
    "redelivered",
    "served_beside_limited",
    "stopped_again",
    "stopped_by_another_user",
    "with_arg",
    "with_arg_matching",
    "with_arg_value",
    "with_result_value",
]

#: The API's path prefix, which the promise table's routes leave out.
API_PREFIX = "/api/v1"
_PARAM = re.compile(r"\{[^}]*\}")

#: A counter: the completed pairs of a history that exercised a promise, counted.
Counter = Callable[[History], int]


def completed(history: History, names: Iterable[str], *, definite: bool = True) -> Iterable[tuple[Op, Op]]:
    """The pairs of ``names`` that have a definite answer (the nemesis's ops never count).

    An answer whose outcome is unknown (``info``: a 5xx, a timeout, a reset) exercised nothing a checker can
    judge: an app that answered 500 to every call submission had "exercised" every promise about Shunya jobs
    192 times, so webhook-poll-storm passed with no job ever created (2026-12-03). Now those promises are not
    exercised, and the checkers that judge only them are ``unknown``: not a pass.

    ``definite=False`` keeps them: a request whose answer was lost may still have run, and sent again
    under its key it is the situation a replay promise is about; a request the limiter counted was sent.
    """
    for invoke, completion in history.pairs_of(*names):
        if completion is not None and (completion.type != "info" or not definite) and invoke.process != NEMESIS:
            yield invoke, completion


def by_operations(names: tuple[str, ...]) -> Counter:
    """Every completed operation of ``names``."""
    return lambda history: sum(1 for _ in completed(history, names))


def redelivered(names: tuple[str, ...]) -> Counter:
    """Signed deliveries (not of a superseded job) of a job the load had delivered before: a duplicate for sure."""
    def count(history: History) -> int:
        seen: set[tuple[str | None, object]] = set()
        again = 0
        for invoke, _ in completed(history, names):
            if "bad_signature" in invoke.args or "superseded" in invoke.args:
                continue
            job = (invoke.tenant, invoke.args.get("job_id"))
            again += job in seen
            seen.add(job)
        return again
    return count


def stopped_by_another_user(starts: tuple[str, ...], stops: tuple[str, ...]) -> Counter:
    """Stops of a session that another user of the tenant started (``args.as_user``; none: the manager)."""
    def count(history: History) -> int:
        starter: dict[tuple[str | None, object], object] = {}
        for invoke, completion in completed(history, starts):  # the first answer: a replay may come as another user
            if completion.type == "ok":
                starter.setdefault((invoke.tenant, completion.result.get("id")), invoke.args.get("as_user"))
        return sum(1 for invoke, _ in completed(history, stops)
                   if (key := (invoke.tenant, invoke.args.get("session_id"))) in starter
                   and starter[key] != invoke.args.get("as_user"))
    return count


def stopped_again(stops: tuple[str, ...]) -> Counter:
    """Stops sent after another stop of the same session was answered 2xx: a stop that must find a stopped session
    (the rest find it active, and put only the stop's own promises at risk)."""
    def count(history: History) -> int:
        stopped: dict[tuple[str | None, object], int] = {}
        for invoke, completion in completed(history, stops):
            if completion.type == "ok":
                key = (invoke.tenant, invoke.args.get("session_id"))
                stopped[key] = min(stopped.get(key, completion.time_ns), completion.time_ns)
        return sum(1 for invoke, _ in completed(history, stops)
                   if stopped.get((invoke.tenant, invoke.args.get("session_id")), invoke.time_ns) < invoke.time_ns)
    return count


def with_arg(names: tuple[str, ...], arg: str) -> Counter:
    """Completed operations of ``names`` whose args carry ``arg`` (not None)."""
    return lambda history: sum(1 for invoke, _ in completed(history, names) if invoke.args.get(arg) is not None)


def with_arg_value(names: tuple[str, ...], arg: str, value: object, *, definite: bool = True) -> Counter:
    """Completed operations of ``names`` whose ``arg`` is ``value`` (cross-tenant probes a rep sent, say)."""
    return lambda history: sum(1 for invoke, _ in completed(history, names, definite=definite)
                               if invoke.args.get(arg) == value)


def with_arg_matching(names: tuple[str, ...], arg: str, pattern: str) -> Counter:
    """Completed operations of ``names`` whose ``arg`` is a text ``pattern`` matches (searched)."""
    compiled = re.compile(pattern)
    return lambda history: sum(1 for invoke, _ in completed(history, names)
                               if isinstance(arg_value := invoke.args.get(arg), str) and compiled.search(arg_value))


def with_result_value(names: tuple[str, ...], key: str, value: object) -> Counter:
    """Completed operations of ``names`` whose answer's recorded ``key`` is ``value`` (a delivery answered
    applied, a call read answering one analysis)."""
    return lambda history: sum(1 for _, completion in completed(history, names)
                               if completion.result.get(key) == value)


def answered(names: tuple[str, ...], status: int) -> Counter:
    """Completed operations of ``names`` answered ``status``: for a limit (429), the situation it is for.

    A correct app answers 429 exactly when the tenant went over its allowance, so a run whose load never
    reached the limit counts nothing (its pass would be vacuous). An app that never limits counts nothing
    either, but its checker finds the over-limit seconds: invalid outranks "not exercised"."""
    return lambda history: sum(1 for _, completion in completed(history, names) if completion.status == status)


def answered_problem(names: tuple[str, ...], problem: str) -> Counter:
    """Completed operations of ``names`` refused with the problem type ``problem`` (its slug): refusals a checker
    must explain."""
    return lambda history: sum(1 for _, completion in completed(history, names)
                               if completion.result.get("problem") == problem)


class over_allowance:  # noqa: N801 - a counter, named like the functions that make the others
    """Requests of ``names`` a tenant sent in a second beyond its allowance there (``rate + burst`` of the
    limit ``limit`` names in the run's config: ``api``, ``tasks`` or ``shunya``, each submission or refresh one
    Shunya call at least), answered or not: the situation a limit is for, whatever the app answered (an app
    that never limits is exercised too, and its checker says so).

    Without the run's config (a limit not known), the requests answered 429 are counted instead."""

    needs_config = True

    def __init__(self, names: tuple[str, ...], limit: str) -> None:
        self.names, self.limit = names, limit

    def __call__(self, history: History, config: object | None = None) -> int:
        prefix = {"api": "rate_limit", "tasks": "task_rate", "shunya": "shunya_rate"}[self.limit]
        rate = getattr(config, f"{prefix}_per_s", None)
        burst = getattr(config, f"{prefix}_burst", 0.0)
        if rate is None:
            return answered(self.names, 429)(history)
        sent: dict[tuple[str | None, int], int] = defaultdict(int)
        for invoke, _ in completed(history, self.names, definite=False):
            sent[(invoke.tenant, invoke.time_ns // 1_000_000_000)] += 1
        allowance = rate + burst
        return int(sum(max(0, count - allowance) for count in sent.values()))


def served_beside_limited(names: tuple[str, ...]) -> Counter:
    """Operations of ``names`` answered (not 429) to a tenant in a second in which another tenant was answered
    429: a tenant served while the others are limited, the situation a shared allowance breaks."""

    def count(history: History) -> int:
        second = 1_000_000_000
        limited: dict[int, set[str | None]] = defaultdict(set)
        served: list[tuple[int, str | None]] = []
        for invoke, completion in completed(history, names):
            if completion.status == 429:
                limited[completion.time_ns // second].add(invoke.tenant)
            elif completion.status is not None:
                served.append((completion.time_ns // second, invoke.tenant))
        return sum(1 for at, tenant in served if limited.get(at, set()) - {tenant})

    return count


def under_fault(names: tuple[str, ...], target: str) -> Counter:
    """Operations of ``names`` whose flight overlapped a fault on ``target`` (Redis killed, say): the
    situation a fail-open promise is about."""

    def count(history: History) -> int:
        from stormproof.harness.invariants.checkers._probes import FaultWindows

        windows = FaultWindows(history, lambda _fault, where: where == target)
        if not len(windows):
            return 0
        return sum(1 for invoke, completion in completed(history, names)
                   if windows.overlaps(invoke.time_ns, completion.time_ns))

    return count


def _keyed(history: History, names: tuple[str, ...]) -> dict[tuple[str | None, object], list[tuple[Op, Op]]]:
    """Completed keyed pairs grouped by (tenant, key), in invoke order."""
    groups: dict[tuple[str | None, object], list[tuple[Op, Op]]] = defaultdict(list)
    for invoke, completion in completed(history, names, definite=False):
        key = invoke.args.get("idempotency_key")
        if key is not None:
            groups[(invoke.tenant, key)].append((invoke, completion))
    for pairs in groups.values():
        pairs.sort(key=lambda pair: pair[0].time_ns)
    return groups


def _fingerprint(invoke: Op) -> tuple[str, object]:
    return (invoke.f, invoke.args.get("payload_fp"))


def _key_uses(names: tuple[str, ...], counts: Callable[[set[tuple[str, object]], tuple[str, object]], bool]) -> Counter:
    """Uses of a key that ``counts`` flags, given the fingerprints the key was used with before."""

    def count(history: History) -> int:
        total = 0
        for pairs in _keyed(history, names).values():
            seen: set[tuple[str, object]] = set()
            for invoke, _ in pairs:
                fp = _fingerprint(invoke)
                total += counts(seen, fp)
                seen.add(fp)
        return total

    return count


def key_repeat(names: tuple[str, ...]) -> Counter:
    """Uses of a key again with the same operation and payload: the replay situation."""
    return _key_uses(names, lambda seen, fp: fp in seen)


def key_mismatch(names: tuple[str, ...]) -> Counter:
    """Uses of a key already used with another operation or payload: the 422 situation."""
    return _key_uses(names, lambda seen, fp: bool(seen - {fp}))


def key_concurrent(names: tuple[str, ...]) -> Counter:
    """Uses of a key invoked while an earlier use of it was still unanswered: the 409 situation."""

    def count(history: History) -> int:
        total = 0
        for pairs in _keyed(history, names).values():
            open_until = -1
            for invoke, completion in pairs:
                total += invoke.time_ns < open_until
                open_until = max(open_until, completion.time_ns)
        return total

    return count


def key_missing(names: tuple[str, ...], route: str | None = None) -> Counter:
    """Operations of ``names`` sent without an Idempotency-Key (where one is required: the 400 situation),
    and with ``route`` (``METHOD /path``, the API prefix left out) the idempotency probes of that route
    whose situation is ``missing``: those are the requests that send no key on purpose."""
    keyless = lambda history: sum(  # noqa: E731
        1 for invoke, _ in completed(history, names) if invoke.args.get("idempotency_key") is None)
    return keyless if route is None else plus(keyless, probe_situation(route, "missing", step=1))


def probe_situation(route: str, situation: str, *, step: int = 2) -> Counter:
    """Idempotency probes of ``route`` (``METHOD /path``, the API prefix left out) in ``situation``, counted
    at ``step`` (the use of the key that meets the situation: the second, but for a missing key)."""
    return lambda history: sum(
        1 for invoke, _ in completed(history, (PROBE_IDEMPOTENCY,))
        if invoke.args.get("probe") == situation and invoke.args.get("step") == step
        and _same_route(invoke.args.get("route"), route))


def plus(*counters: Counter) -> Counter:
    """The sum of ``counters``: a promise exercised by the load's own operations and by probes alike."""
    return lambda history: sum(counter(history) for counter in counters)


def _same_route(name: object, route: str) -> bool:
    """``POST /api/v1/recordings/sessions/{session_id}/stop`` is ``POST /recordings/sessions/{id}/stop``."""
    if not isinstance(name, str):
        return False
    method, path = route.split(" ", 1)
    return _PARAM.sub("{}", name) == f"{method} {API_PREFIX}{_PARAM.sub('{}', path)}"


def key_shared_across_tenants(names: tuple[str, ...]) -> Counter:
    """Uses of a key that another tenant used before: the per-tenant scope situation."""

    def count(history: History) -> int:
        tenants: dict[object, set[str | None]] = defaultdict(set)
        total = 0
        pairs = sorted(completed(history, names), key=lambda pair: pair[0].time_ns)
        for invoke, _ in pairs:
            key = invoke.args.get("idempotency_key")
            if key is None:
                continue
            total += bool(tenants[key] - {invoke.tenant})
            tenants[key].add(invoke.tenant)
        return total

    return count


def probe_case(name: str, case: str) -> Counter:
    """Probes of op ``name`` whose situation (their ``probe`` argument) is ``case``."""
    return lambda history: sum(1 for invoke, _ in completed(history, (name,)) if invoke.args.get("probe") == case)


def probe_route(method: str, template: str) -> Counter:
    """Cross-tenant probes of one route (``template`` with ``{...}`` placeholders), any id in the path (a probe
    of another tenant's id in the body, ``body_field``, is counted by its own promise)."""
    pattern = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + r"(\?.*)?$")

    def count(history: History) -> int:
        return sum(
            1 for invoke, _ in completed(history, (PROBE,))
            if str(invoke.args.get("method", "GET")).upper() == method and invoke.args.get("body_field") is None
            and pattern.match(str(invoke.args.get("path", "")))
        )

    return count
