"""idempotent-replay: one key, one execution (IETF Idempotency-Key semantics, per tenant).

For the ops that carried an ``idempotency_key``, grouped by (tenant, key),
with a request's fingerprint being (operation, ``payload_fp``):

- same fingerprint, several 2xx answers: one execution. The answers must be
  identical (status and ``body_sha256``), name one created id, and all but the
  first must be marked ``replayed``;
- same fingerprint, a definite refusal stored (404, a 409 conflict such as
  active-session-exists; docs/API.md): a request sent after that answer came
  back gets it again, marked ``replayed``, same status and body; and a stored
  2xx is never followed by a refusal (``stored-answer-not-replayed``: a key
  store that keeps only successes runs the request again);
- another fingerprint: never 2xx once the key is taken, i.e. two different
  fingerprints both answered 2xx (in any order: concurrent use gets 409), or a
  2xx for one invoked after the other's stored answer (2xx or 404) came back.

A 5xx stores nothing (the write rolled back; the key is free for a retry): a
5xx answered as a replay (``Idempotent-Replayed: true``) is ``error-replayed``,
a key store that kept an error the client can never get past. The load sends
a keyed write again after a 5xx, as after a lost answer. So does a refusal
that says "retry": a 409 ``resource-busy`` (a lock held past the wait) or
``idempotency-key-in-flight`` answered as a replay is ``retry-replayed`` (the
load sends a keyed write refused busy again after a second, ``after_busy``).

Only stored answers (``ok``, 404, a 409 other than in-flight) are compared by
these rules: ``info`` may or may not have run, 409 in-flight and 422 mismatch
are the expected refusals. Ops
without a ``payload_fp`` are counted and skipped for the fingerprint rules.

The ``probe.idempotency`` ops (derived from the OpenAPI document, one
situation each, ``args.probe``) have every answer judged against the draft:

- ``replay``: a stored answer (2xx, 404, 409) is given back the same, status
  and body bytes (``replay-differs``; two 2xx are the rules above);
- ``mismatch``: once the key holds a stored answer, another payload or path
  gets 422 (``mismatch-not-refused``; a 2xx is ``mismatch-accepted`` above);
- ``concurrent``: the same answer twice, or one of them 409
  ``idempotency-key-in-flight``; anything else (a 422 mismatch, a success
  next to another refusal: it ran twice) is ``concurrent-differs``;
- ``missing``: no key where the document says it is required gets 400
  (``missing-key-accepted`` for a 2xx, ``missing-key-wrong-status`` else);
- ``malformed``: a key that is not 1 to 255 printable ASCII characters gets
  400 ``idempotency-key-invalid`` before anything runs
  (``malformed-key-accepted`` for a 2xx, ``malformed-key-wrong-status`` for
  any other refusal: the key was taken for a valid one);
- ``other-tenant``: another tenant using the same key gets its own answer:
  never a replay, never a key mismatch or in-flight refusal (``key-crossed-tenants``);
- ``expired``: the same key and payload again after the key's TTL
  (``CheckConfig.idempotency_ttl_s``): the key is forgotten, so the second
  request runs as new. Its age is bounded by the history: at least from the
  first answer to the second request, at most from the first request to the
  second answer. Older than the TTL plus a margin for sure, a replay is
  ``expired-key-replayed``; younger than the TTL minus the margin for sure, a
  fresh run is ``key-forgotten-early``; in between it is not judged (the
  margin, ``ttl_margin``, covers the app's clock, the time it takes to store
  the key, and scheduling);
- any probe: a 5xx is a violation (``server-error``) unless a fault was active.

A known TTL also bounds the other rules: two uses of a key that may lie a TTL
(less the margin) apart are not compared, since the key may have expired
between them; ``expired`` probes are judged by their own rule only.

With no keyed operation at all the verdict is ``unknown`` ("not exercised").
"""

from __future__ import annotations

from collections import defaultdict

from stormproof.harness.history import History, Op
from stormproof.harness.history.vocabulary import PROBE_IDEMPOTENCY
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._answers import answers
from ._probes import FaultWindows, answer_class

__all__ = ["NAME", "check_idempotent_replay", "ttl_margin"]

NAME = "idempotent-replay"

Fingerprint = tuple[str, object]


def ttl_margin(ttl_s: float) -> float:
    """Seconds either side of the TTL where a key's fate is not judged: half a second, or a fifth of the TTL."""
    return max(0.5, 0.2 * ttl_s)


def _span_s(first: Op, last: Op) -> float:
    return (last.time_ns - first.time_ns) / 1e9


def _may_have_expired(first_invoke: Op, last_completion: Op, ttl: float | None) -> bool:
    """Whether the key may have expired between the first request's start and the last answer."""
    return ttl is not None and _span_s(first_invoke, last_completion) >= ttl - ttl_margin(ttl)


@checker(NAME, "safety")
def check_idempotent_replay(history: History, snapshot: Snapshot) -> Verdict:
    """Same key and payload: identical answer, one side effect; other payload: never 2xx."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    seen = answers(history).part("keys")  # the walk of every op for its key, shared (see _answers)
    groups = seen.key_groups
    keyed, unfingerprinted = seen.keyed, seen.unfingerprinted
    ttl = snapshot.config.idempotency_ttl_s
    for (tenant, key), answered in groups.items():
        if ttl is not None and len(answered) > 1:
            start = min((invoke for invoke, _ in answered), key=lambda op: op.time_ns)
            answered = [(i, c) for i, c in answered if not _may_have_expired(start, c, ttl)]
        if len(answered) > 1:  # one answer under a key can neither differ from another nor mismatch one
            _check_key(log, tenant, key, answered)

    for invoke, completion in seen.errors_replayed:
        key = invoke.args.get("idempotency_key")
        if completion.status == 409:
            problem = completion.result.get("problem")
            log.add("retry-replayed", f"key {key!r} (tenant {invoke.tenant}): a 409 {problem} was answered as a "
                    "replay; that refusal says retry (the write did not run), so a key that stored it refuses "
                    "every retry for its lifetime", (invoke.index, completion.index), tenant=invoke.tenant,
                    key=key, status=409, problem=problem)
            continue
        log.add("error-replayed", f"key {key!r} (tenant {invoke.tenant}): a "
                f"{completion.status} was answered as a replay; a 5xx stores nothing, so a retry under the "
                "key must run the request", (invoke.index, completion.index), tenant=invoke.tenant,
                key=key, status=completion.status)
    probes = _check_probes(log, history, ttl)
    if keyed == 0 and not probes:
        log.cannot("not exercised: no operation carried an Idempotency-Key")
    return log.verdict(keyed_ops=keyed, keys=len(groups), unfingerprinted=unfingerprinted, probes=probes)


_STORED = (404, 409)  # definite refusals stored under the key and replayed like successes (docs/API.md)
_KEY_REFUSALS = frozenset(("idempotency-key-mismatch", "idempotency-key-in-flight"))


def _check_probes(log: ViolationLog, history: History, ttl: float | None) -> dict[str, int]:
    """Judge every answer to a ``probe.idempotency`` against its situation; count them per situation."""
    faults = FaultWindows(history)
    runs: dict[tuple[object, object, object], list[tuple[Op, Op]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for invoke, completion in history.pairs_of(PROBE_IDEMPOTENCY):
        if completion is None:
            continue
        situation = invoke.args.get("probe")
        counts[str(situation)] += 1
        kind = answer_class(invoke, completion, faults)
        if kind == "5xx":
            log.add("server-error", f"{situation} probe {invoke.args.get('route')} answered {completion.status}",
                    (invoke.index, completion.index), tenant=invoke.tenant, status=completion.status)
            continue
        if situation == "missing":
            if kind == "2xx":
                log.add("missing-key-accepted", f"{invoke.args.get('route')} without the Idempotency-Key it "
                        f"requires answered {completion.status}", (invoke.index, completion.index),
                        tenant=invoke.tenant)
            elif kind == "4xx" and completion.status != 400:
                log.add("missing-key-wrong-status", f"{invoke.args.get('route')} without the Idempotency-Key it "
                        f"requires answered {completion.status}, not 400", (invoke.index, completion.index),
                        tenant=invoke.tenant, status=completion.status)
            continue
        if situation == "malformed":
            if kind == "2xx":
                log.add("malformed-key-accepted", f"{invoke.args.get('route')} with the malformed Idempotency-Key "
                        f"{invoke.args.get('idempotency_key')!r} answered {completion.status}: it ran",
                        (invoke.index, completion.index), tenant=invoke.tenant)
            elif kind == "4xx" and (completion.status != 400
                                    or completion.result.get("problem") != "idempotency-key-invalid"):
                log.add("malformed-key-wrong-status", f"{invoke.args.get('route')} with the malformed "
                        f"Idempotency-Key {invoke.args.get('idempotency_key')!r} answered {completion.status} "
                        f"{completion.result.get('problem') or ''}".rstrip() + ", not 400 idempotency-key-invalid",
                        (invoke.index, completion.index), tenant=invoke.tenant, status=completion.status)
            continue
        run = (situation, invoke.args.get("idempotency_key"), invoke.args.get("route"))
        runs[run].append((invoke, completion))
    for (situation, key, route), pairs in runs.items():
        pairs.sort(key=lambda pair: (pair[0].args.get("step", 0), pair[0].index))
        judgeable = [(i, c) for i, c in pairs if answer_class(i, c, faults) in ("2xx", "4xx")]
        if len(judgeable) < 2:
            continue
        (i1, c1), (i2, c2) = judgeable[0], judgeable[1]
        ops = (i1.index, c1.index, i2.index, c2.index)
        if situation == "expired":
            _check_expiry(log, key, route, (i1, c1, i2, c2), ttl, counts)
        elif _may_have_expired(i1, c2, ttl):
            counts["compared-past-ttl:skipped"] += 1
        elif situation == "replay" and (c1.status in _STORED or (c1.type == "ok") != (c2.type == "ok")):
            if c1.status != c2.status or c1.result.get("body_sha256") != c2.result.get("body_sha256"):
                log.add("replay-differs", f"key {key!r}: the replay of {route} answered {c2.status} where the "
                        f"first use answered {c1.status} (or another body)", ops, tenant=i1.tenant,
                        idempotency_key=key)
        elif situation == "mismatch" and (c1.type == "ok" or c1.status in _STORED) and c2.type != "ok":
            if c2.status != 422:
                log.add("mismatch-not-refused", f"key {key!r}: another payload for {route} answered {c2.status}, "
                        "not 422", ops, tenant=i1.tenant, idempotency_key=key, status=c2.status)
        elif situation == "concurrent":
            in_flight = [c.result.get("problem") == "idempotency-key-in-flight" for c in (c1, c2)]
            problems = {c1.result.get("problem"), c2.result.get("problem")}
            same = c1.status == c2.status and (c1.type == "ok" or
                                               c1.result.get("body_sha256") == c2.result.get("body_sha256"))
            if "idempotency-key-mismatch" in problems or not (same or any(in_flight)):
                log.add("concurrent-differs", f"key {key!r}: two concurrent identical {route} answered "
                        f"{c1.status} and {c2.status}: neither the result twice nor 409", ops, tenant=i1.tenant,
                        idempotency_key=key)
        elif situation == "other-tenant" and i1.tenant != i2.tenant:
            if c2.result.get("replayed") or c2.result.get("problem") in _KEY_REFUSALS:
                log.add("key-crossed-tenants", f"key {key!r} used by {i1.tenant} then by {i2.tenant}: the second "
                        f"tenant got {c2.status} ({c2.result.get('problem') or 'replayed'}), not its own answer",
                        ops, tenant=i2.tenant, other_tenant=i1.tenant, idempotency_key=key)
    return dict(counts)


def _check_expiry(log: ViolationLog, key: object, route: object, ops: tuple[Op, Op, Op, Op], ttl: float | None,
                  counts: dict[str, int]) -> None:
    """An ``expired`` probe: past the TTL for sure the key is forgotten (no replay); before it for sure, kept."""
    i1, c1, i2, c2 = ops
    if ttl is None:
        counts["expired:ttl-unknown"] += 1
        return
    if not (c1.type == "ok" or c1.status in _STORED):
        counts["expired:first-not-stored"] += 1
        return
    margin = ttl_margin(ttl)
    youngest, oldest = _span_s(c1, i2), _span_s(i1, c2)
    indexes = tuple(op.index for op in ops)
    if youngest > ttl + margin:
        counts["expired:after-ttl"] += 1
        if c2.result.get("replayed"):
            log.add("expired-key-replayed", f"key {key!r}: {route} again {youngest:.1f} s or more after the first "
                    f"answer, past the TTL of {ttl:g} s, replayed the stored answer instead of running as new",
                    indexes, badness=youngest - ttl, tenant=i1.tenant, idempotency_key=key, age_s=round(youngest, 3),
                    ttl_s=ttl)
    elif oldest < ttl - margin:
        counts["expired:before-ttl"] += 1
        if not c2.result.get("replayed"):
            log.add("key-forgotten-early", f"key {key!r}: {route} again at most {oldest:.1f} s after the first "
                    f"request, within the TTL of {ttl:g} s, ran as new instead of replaying", indexes,
                    badness=ttl - oldest, tenant=i1.tenant, idempotency_key=key, age_s=round(oldest, 3), ttl_s=ttl)
    else:
        counts["expired:near-ttl"] += 1


def _check_key(log: ViolationLog, tenant: str | None, key: object, answered: list[tuple[Op, Op]]) -> None:
    oks: dict[Fingerprint, list[tuple[Op, Op]]] = defaultdict(list)
    first_stored: dict[Fingerprint, Op] = {}  # earliest stored answer (2xx, 404, 409) per fingerprint
    stored_answers: dict[Fingerprint, list[tuple[Op, Op]]] = defaultdict(list)
    for invoke, completion in answered:
        fp = (invoke.f, invoke.args.get("payload_fp"))
        if fp[1] is None:
            if completion.type == "ok":
                oks[fp].append((invoke, completion))
            continue
        if completion.type == "ok":
            oks[fp].append((invoke, completion))
        stored_answers[fp].append((invoke, completion))
        known = first_stored.get(fp)
        if known is None or completion.time_ns < known.time_ns:
            first_stored[fp] = completion

    for fp, members in oks.items():
        if len(members) > 1:
            _check_replays(log, tenant, key, fp, members)
    for fp, members in stored_answers.items():
        # Some refusal among them (the 2xx alone are judged above); probes by their situation's own rule.
        if len(members) > 1 and len(members) != len(oks.get(fp, ())) and not str(fp[0]).startswith("probe."):
            _check_stored_refusals(log, tenant, key, fp, members)

    # Another fingerprint answered 2xx once the key was taken.
    reported: set[frozenset[Fingerprint]] = set()
    for fp, members in oks.items():
        if fp[1] is None:
            continue
        for other_fp, stored in first_stored.items():
            if other_fp == fp or frozenset((fp, other_fp)) in reported:
                continue
            other_ok = other_fp in oks
            for invoke, completion in members:
                if other_ok or stored.time_ns < invoke.time_ns:
                    witness = oks[other_fp][0][1] if other_ok else stored
                    reported.add(frozenset((fp, other_fp)))
                    log.add(
                        "mismatch-accepted",
                        f"key {key!r} (tenant {tenant}): payload {fp[1]!r} of {fp[0]} got {completion.status} "
                        f"although the key was used for payload {other_fp[1]!r} of {other_fp[0]} "
                        f"(answered {witness.status})",
                        (witness.index, completion.index),
                        tenant=tenant,
                        idempotency_key=key,
                    )
                    break


def _check_replays(
    log: ViolationLog, tenant: str | None, key: object, fp: Fingerprint, members: list[tuple[Op, Op]]
) -> None:
    members = sorted(members, key=lambda pair: (pair[1].time_ns, pair[1].index))
    first = members[0][1]
    ids = {completion.result.get("id") for _, completion in members} - {None}
    if len(ids) > 1:
        seconds = next(c for _, c in members if c.result.get("id") not in (None, first.result.get("id")))
        log.add(
            "duplicate-side-effect",
            f"key {key!r} (tenant {tenant}): one request of {fp[0]} created {len(ids)} different ids",
            (first.index, seconds.index),
            badness=float(len(ids)),
            tenant=tenant,
            idempotency_key=key,
            ids=tuple(sorted(map(str, ids))),
        )
        return
    for _, completion in members[1:]:
        if not _same_answer(completion, first):
            log.add(
                "replay-differs",
                f"key {key!r} (tenant {tenant}): replay of {fp[0]} answered {completion.status} "
                f"unlike the first answer {first.status} (or a different body)",
                (first.index, completion.index),
                tenant=tenant,
                idempotency_key=key,
            )
            return
    fresh = [completion for _, completion in members if not completion.result.get("replayed")]
    if len(fresh) > 1:
        log.add(
            "executed-twice",
            f"key {key!r} (tenant {tenant}): {len(fresh)} answers to {fp[0]} were not replays",
            (fresh[0].index, fresh[1].index),
            badness=float(len(fresh)),
            tenant=tenant,
            idempotency_key=key,
        )


def _same_answer(one: Op, other: Op) -> bool:
    """Same status, and the same body where both answers' bodies were hashed."""
    digest, other_digest = one.result.get("body_sha256"), other.result.get("body_sha256")
    return one.status == other.status and (digest is None or other_digest is None or digest == other_digest)


def _check_stored_refusals(
    log: ViolationLog, tenant: str | None, key: object, fp: Fingerprint, members: list[tuple[Op, Op]]
) -> None:
    """Where a refusal is among a fingerprint's stored answers: each later request got the first answer again.

    The first answer to come back was stored with the key (a 404 or 409 as surely as a 2xx), so a
    request of the same payload sent after it must replay it: marked ``replayed``, same status and
    body. A request sent before it came back ran alongside it and is judged by the in-flight rules.
    One report per key and payload.
    """
    members = sorted(members, key=lambda pair: (pair[1].time_ns, pair[1].index))
    first = members[0][1]
    for invoke, completion in members[1:]:
        if invoke.time_ns <= first.time_ns or (first.type == "ok" and completion.type == "ok"):
            continue  # concurrent with the first; or two 2xx, which _check_replays judges
        same = _same_answer(completion, first)
        if same and completion.result.get("replayed"):
            continue
        how = "ran again (not a replay)" if same else f"answered {completion.status} (or another body)"
        log.add(
            "stored-answer-not-replayed",
            f"key {key!r} (tenant {tenant}): {fp[0]} first answered {first.status}, stored with the key; the "
            f"same request sent after that {how}",
            (first.index, completion.index),
            tenant=tenant,
            idempotency_key=key,
            statuses=(first.status, completion.status),
        )
        return
