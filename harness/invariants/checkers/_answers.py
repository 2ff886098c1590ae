"""One pass over every answer of a history, shared by the checkers that read all of them.

slo-latency-p95, slo-error-rate, trace-echoed, metrics-agree, tenant-isolation,
idempotent-replay and rate-limit-enforced each used to walk every pair of the
history for a few fields. On a 1,000,000-op history each walk cost from a
tenth of a second to three seconds (bench/bench_checkers.py), most of it in
touching each op again after the previous walk had pushed it out of the CPU's
caches. This module walks the history once (``History.view``), one operation
at a time so that the per-operation facts need no lookup per op, and each
checker reads its part and does the rest (whatever needs the snapshot or the
config) on what the pass kept. What each part holds is exactly what its
checker computed before, in the same order.

The hot loop reads ``args`` and ``result`` with ``key in m`` and ``m[key]``:
on a read-only mapping both go straight to the dict beneath, while ``m.get``
is a method call forwarded to it (about twice as slow, a million times).
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter

from stormproof.harness.history import History, Op
from stormproof.harness.history import vocabulary as v
from stormproof.harness.history.vocabulary import (LOAD_STOPPED, NEMESIS, PROBE, PROBE_AUTHZ, PROBE_IDEMPOTENCY,
                                                   WEBHOOK_DELIVER)

__all__ = ["Answers", "EXAMPLES", "OTHER_LIMITS", "RowIdKeys", "answers", "load_stopped", "named_by",
           "spends_allowance", "spends_nothing"]

#: Error ops kept as examples (slo-error-rate lists this many).
EXAMPLES = 20
#: Operations that may meet another rate limit than the API's (Shunya calls, task enqueues).
OTHER_LIMITS = frozenset((v.CALL_SUBMIT, v.CALL_REFRESH, v.DEAD_LETTER_RETRY))
#: Argument keys that are not row ids even though they end in ``_id`` (tenant-isolation).
_NOT_ROW_IDS = frozenset(("company_id", "target_tenant", "idempotency_key", "target_id", "probe_id"))
_SECOND = 1_000_000_000
#: 409 problems a key need not store: the in-flight refusal, a busy resource (a lock held: "retry",
#: Retry-After; a backend may well let the same key try again), and one whose body named no problem
#: (a backend's own wording of it, e.g. FastAPI's {"detail": ...}): not judged as a stored answer.
_NOT_STORED_409 = frozenset(("idempotency-key-in-flight", "resource-busy", None))
#: Of those, the ones that say "retry": the write did not run, so a key that stored one answers every retry
#: with it (idempotent-replay: ``retry-replayed``). An unnamed 409 may be a backend's definite conflict.
_RETRY_409 = frozenset(("idempotency-key-in-flight", "resource-busy"))


class RowIdKeys(dict[tuple[str, ...], tuple[str, ...]]):
    """Argument names -> those that name rows, worked out once per shape of args (there are few shapes)."""

    def __missing__(self, names: tuple[str, ...]) -> tuple[str, ...]:
        chosen = self[names] = tuple(n for n in names if n.endswith("_id") and n not in _NOT_ROW_IDS)
        return chosen


Probes = dict[object, dict[bool, tuple[Op, Op]]]
_FIRST = itemgetter(0)


class Answers:
    """What the whole-history checkers read, from one pass.

    SLOs, traces, metrics (client ops are those not sent by the nemesis):

    - ``latencies``: operation -> latency (ns) of each ``ok`` client op, in invoke order;
    - ``totals`` / ``errors``: operation -> client ops / those without a definite answer
      (no completion, ``info``, or a 5xx status);
    - ``error_examples``: the first ``EXAMPLES`` errors in invoke order (the completion's
      index, the invoke's when it never completed);
    - ``traced``: answers (a completion with a status) that recorded ``result.trace``;
      ``trace_wrong``: ``other`` / ``missing`` -> their completion indices, in invoke order;
    - ``replayed``: ``ok`` completions with ``result.replayed`` set, in invoke order;
    - ``server_errors``: (invoke, completion) of the 5xx answers, in invoke order (metrics-agree counts
      them in ``http_requests_total``, trace-echoed holds the 500s against the error logs).

    tenant-isolation (answered client ops):

    - ``responses``: how many; ``foreign_data``: (invoke index, invoke, completion) of those whose
      ``result.company_ids_seen`` names another company than the op's tenant, in invoke order;
    - ``probes``: ``probe_id`` (or ``("solo", index)``) -> {is control: (invoke, completion)}, in
      history order; ``probe_answers``: answers to the non-control probes, per status (or ``info``);
    - ``named``: tenant -> every row id its ``ok`` non-probe ops named (``*_id`` args, the ``id``
      answered): the checker looks for a foreign owner among them, and walks the ops
      (``named_by``) only for a tenant that has one.

    idempotent-replay (every op with an ``idempotency_key``, nemesis included, as before):

    - ``keyed``: how many; ``unfingerprinted``: answered ones without a ``payload_fp``;
    - ``errors_replayed``: (invoke, completion) of the answers that store nothing marked replayed: a 5xx,
      a 409 ``idempotency-key-in-flight`` or ``resource-busy`` ("retry": the write did not run);
    - ``key_groups``: (tenant, key) -> the (invoke, completion) answered ``ok``, 404 or a 409 naming a
      problem other than ``idempotency-key-in-flight`` (the answers the key stores), in invoke
      order, keys in the order of their first such answer (``expired`` probes left out).

    rate-limit-enforced (client ops with a tenant, webhook deliveries left out):

    - ``accepted``: (tenant, second of the answer) -> answers with a status but 429;
    - ``limited``: answers 429; ``refused``: (tenant, invoke ns, completion ns, completion index)
      of the 429s of operations only the API limit meets, in invoke order.

    A part whose input a checker could not read (an unhashable id or key) keeps the error in
    ``failed`` (``tenancy``, ``named``, ``keys``); that checker raises it where it read that part
    (so it is ``unknown``, as when it walked alone), the others are unaffected.
    """

    __slots__ = ("latencies", "totals", "errors", "error_examples", "traced", "trace_wrong", "replayed",
                 "server_errors",
                 "responses", "foreign_data", "probes", "probe_answers", "named",
                 "keyed", "unfingerprinted", "errors_replayed", "key_groups", "accepted", "limited", "refused", "failed")

    def __init__(self, history: History) -> None:
        latencies: dict[str, list[int]] = {}
        totals: dict[str, int] = {}
        errors: dict[str, int] = {}
        examples: list[tuple[int, int]] = []  # (invoke index, listed index): merged across operations below
        wrong: list[tuple[int, int, str]] = []
        replayed: list[tuple[int, int]] = []
        server_errors: list[tuple[int, Op, Op]] = []
        traced = 0
        responses = 0
        foreign_data: list[tuple[int, Op, Op]] = []
        probes: Probes = {}
        probe_answers: Counter[str] = Counter()
        named: dict[str, set[object]] = {}
        row_keys = RowIdKeys()
        keyed = unfingerprinted = 0
        keyed_answers: list[tuple[int, tuple[object, object], tuple[Op, Op]]] = []
        errors_replayed: list[tuple[Op, Op]] = []
        reprobed = False  # a probe id answered twice the same way: the later replaces the earlier (see below)
        accepted: list[tuple[str, int]] = []
        accept = accepted.append
        limited = 0
        refused: list[tuple[int, str, int, int, int]] = []
        failed: dict[str, Exception] = {}
        for f, pairs in history.grouped().items():
            latency: list[int] = []
            append = latency.append
            total = failed_ops = 0
            f_examples: list[tuple[int, int]] = []
            is_probe = f == PROBE
            expiry_probe = f == PROBE_IDEMPOTENCY
            api_only = f not in OTHER_LIMITS and not f.startswith("probe.")
            for pair in pairs:
                invoke, completion = pair
                args = invoke.args
                if args and "idempotency_key" in args and args["idempotency_key"] is not None:
                    keyed += 1
                    if completion is not None and not (expiry_probe and args.get("probe") == "expired"):
                        if args.get("payload_fp") is None:
                            unfingerprinted += 1
                        status = completion.status
                        if completion.type == "ok" or status == 404 or status == 409 \
                                and completion.result.get("problem") not in _NOT_STORED_409:
                            keyed_answers.append((invoke.index, (invoke.tenant, args["idempotency_key"]), pair))
                        elif status is not None and (status >= 500 or status == 409 and completion.result.get(
                                "problem") in _RETRY_409) and completion.result.get("replayed"):
                            errors_replayed.append(pair)
                client = invoke.process != NEMESIS
                if completion is None:
                    if client:
                        total += 1
                        failed_ops += 1
                        if len(f_examples) < EXAMPLES:
                            f_examples.append((invoke.index, invoke.index))
                    continue
                kind = completion.type
                status = completion.status
                result = completion.result
                if client:
                    if kind == "ok":
                        total += 1
                        append(completion.time_ns - invoke.time_ns)
                    elif kind == "info" and load_stopped(completion):
                        pass  # cut by the end of the load: no answer to judge, and nobody's error
                    else:
                        total += 1
                        if (status or 0) >= 500:
                            server_errors.append((invoke.index, invoke, completion))
                        if kind == "info" or (status or 0) >= 500:
                            failed_ops += 1
                            if len(f_examples) < EXAMPLES:
                                f_examples.append((invoke.index, completion.index))
                    responses += 1
                    tenant = invoke.tenant
                    if spends_allowance(f, invoke, status):
                        if status == 429:
                            limited += 1
                            if api_only:
                                refused.append((invoke.index, tenant, invoke.time_ns, completion.time_ns,
                                                completion.index))
                        else:
                            accept((tenant, completion.time_ns // _SECOND))
                    try:
                        if tenant is not None and "company_ids_seen" in result:
                            seen = result["company_ids_seen"]
                            if seen and (len(seen) > 1 or tenant not in seen):
                                foreign_data.append((invoke.index, invoke, completion))
                        if is_probe:
                            control = bool(args.get("control"))
                            if not control:
                                probe_answers[str(status) if kind != "info" else "info"] += 1
                            entry = probes.setdefault(args.get("probe_id") or ("solo", invoke.index), {})
                            if control in entry:
                                reprobed = True
                            entry[control] = pair
                    except Exception as exc:  # noqa: BLE001 - e.g. an unhashable probe id: tenant-isolation's alone
                        failed.setdefault("tenancy", exc)
                    if kind == "ok" and tenant is not None and not is_probe:
                        try:
                            ids = named.get(tenant)
                            if ids is None:
                                ids = named[tenant] = set()
                            for name in row_keys[tuple(args)]:
                                ids.add(args[name])
                            if "id" in result and result["id"] is not None:
                                ids.add(result["id"])
                        except TypeError as exc:  # an unhashable id: it matters only where rows have owners
                            failed.setdefault("named", exc)
                if not result:
                    continue
                if status is not None and "trace" in result:
                    trace = result["trace"]
                    if trace is not None:
                        traced += 1
                        if trace == "other" or trace == "missing":
                            wrong.append((invoke.index, completion.index, trace))
                if kind == "ok" and "replayed" in result and result["replayed"]:
                    replayed.append((invoke.index, completion.index))
            if latency:
                latencies[f] = latency
            if total:
                totals[f] = total
                errors[f] = failed_ops
            examples.extend(f_examples)
        examples.sort()
        wrong.sort()
        replayed.sort()
        self.latencies = latencies
        self.totals = totals
        self.errors = errors
        self.error_examples = [listed for _, listed in examples[:EXAMPLES]]
        self.traced = traced
        self.trace_wrong: dict[str, list[int]] = {"other": [], "missing": []}
        for _, index, trace in wrong:
            self.trace_wrong[trace].append(index)
        self.replayed = [index for _, index in replayed]
        server_errors.sort(key=lambda entry: entry[0])
        self.server_errors = [(invoke, completion) for _, invoke, completion in server_errors]

        self.responses = responses
        foreign_data.sort(key=_FIRST)
        self.foreign_data = foreign_data
        # Read one operation at a time; the checker judges them in history order (each probe id at its
        # earliest op kept). Probes are one operation's, walked in invoke order, so they are in that order
        # already unless a later answer replaced a probe id's earlier one.
        if len(probes) > 1 and reprobed:
            probes = dict(sorted(probes.items(), key=lambda item: min(p[0].index for p in item[1].values())))
        self.probes = probes
        self.probe_answers = probe_answers
        self.named = named

        self.keyed = keyed
        self.unfingerprinted = unfingerprinted
        self.errors_replayed = errors_replayed
        keyed_answers.sort(key=_FIRST)
        groups: dict[tuple[object, object], list[tuple[Op, Op]]] = {}
        try:
            for _, group, answer in keyed_answers:  # the history's own pair tuples, not copies
                members = groups.get(group)
                if members is None:
                    groups[group] = [answer]
                else:
                    members.append(answer)
        except TypeError as exc:  # an unhashable key
            failed["keys"] = exc
        self.key_groups = groups

        self.accepted: Counter[tuple[str, int]] = Counter(accepted)
        self.limited = limited
        refused.sort(key=_FIRST)
        self.refused = [item[1:] for item in refused]
        self.failed = failed

    def part(self, name: str) -> Answers:
        """Self, once the named part (``tenancy``, ``named``, ``keys``) was read without error; else that error."""
        error = self.failed.get(name)
        if error is not None:
            raise error
        return self


def load_stopped(completion: Op) -> bool:
    """Whether the load itself cut this request (its user stopped mid-request): not an error of anyone's."""
    error = completion.error
    return error is not None and error.startswith(LOAD_STOPPED)


def spends_allowance(f: str, invoke: Op, status: int | None) -> bool:
    """Whether a client request of operation ``f``, answered ``status``, counts against its tenant's API
    allowance (accepted unless 429): the one definition rate-limit-enforced's busy seconds (``Answers``) and
    the flights that confirm them both use, so the two never disagree on what was accepted. Webhook
    deliveries are the provider's, not a tenant's; a request without a valid token is nobody's."""
    return (status is not None and invoke.tenant is not None and f != WEBHOOK_DELIVER
            and not (f == PROBE_AUTHZ and spends_nothing(invoke)))


def spends_nothing(invoke: Op) -> bool:
    """Whether a request spends no tenant's rate allowance: an authorization probe sent with no valid token
    (``none``, ``expired``, ``forged``) is answered 401 before the limiter knows whose it is."""
    from .authorization import expected_status  # authorization imports this module's neighbours, not it

    return invoke.f == PROBE_AUTHZ and expected_status(invoke.args.get("role"), ()) == 401


def answers(history: History) -> Answers:
    """The history's ``Answers``, built once and shared (do not change it)."""
    return history.view(Answers)


def named_by(history: History, tenant: str) -> list[tuple[Op, Op]]:
    """The ``ok`` non-probe client pairs of ``tenant``, in history order (the rare walk after a foreign id)."""
    return [(invoke, completion) for invoke, completion in history.pairs()
            if completion is not None and completion.type == "ok" and invoke.tenant == tenant
            and invoke.process != NEMESIS and invoke.f != PROBE]
