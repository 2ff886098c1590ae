"""idempotent-replay: one key, one execution (IETF Idempotency-Key semantics, per tenant).

For the ops that carried an ``idempotency_key``, grouped by (tenant, key),
with a request's fingerprint being (operation, ``payload_fp``):

- same fingerprint, several 2xx answers: one execution. The answers must be
  identical (status and ``body_sha256``), name one created id, and all but the
  first must be marked ``replayed``;
- another fingerprint: never 2xx once the key is taken, i.e. two different
  fingerprints both answered 2xx (in any order: concurrent use gets 409), or a
  2xx for one invoked after the other's stored answer (2xx or 404) came back.

Only ``ok`` answers are compared: ``info`` may or may not have run, 409
in-flight and 422 mismatch are the expected refusals. Ops without a
``payload_fp`` are counted and skipped for the fingerprint rules.
"""

from __future__ import annotations

from collections import defaultdict

from harness.history import History, Op
from harness.invariants.collector import ViolationLog
from harness.invariants.registry import checker
from harness.invariants.snapshot import Snapshot
from harness.invariants.verdict import Verdict

__all__ = ["NAME", "check_idempotent_replay"]

NAME = "idempotent-replay"

Fingerprint = tuple[str, object]


@checker(NAME, "safety")
def check_idempotent_replay(history: History, snapshot: Snapshot) -> Verdict:
    """Same key and payload: identical answer, one side effect; other payload: never 2xx."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    groups: dict[tuple[str | None, object], list[tuple[Op, Op]]] = defaultdict(list)
    keyed = unfingerprinted = 0
    for invoke, completion in history.pairs():
        key = invoke.args.get("idempotency_key")
        if key is None:
            continue
        keyed += 1
        if completion is None:
            continue
        if invoke.args.get("payload_fp") is None:
            unfingerprinted += 1
        if completion.type == "ok" or completion.status == 404:
            groups[(invoke.tenant, key)].append((invoke, completion))

    for (tenant, key), answered in groups.items():
        _check_key(log, tenant, key, answered)

    return log.verdict(keyed_ops=keyed, keys=len(groups), unfingerprinted=unfingerprinted)


def _check_key(log: ViolationLog, tenant: str | None, key: object, answered: list[tuple[Op, Op]]) -> None:
    oks: dict[Fingerprint, list[tuple[Op, Op]]] = defaultdict(list)
    first_stored: dict[Fingerprint, Op] = {}  # earliest stored answer (2xx or 404) per fingerprint
    for invoke, completion in answered:
        fp = (invoke.f, invoke.args.get("payload_fp"))
        if fp[1] is None:
            if completion.type == "ok":
                oks[fp].append((invoke, completion))
            continue
        if completion.type == "ok":
            oks[fp].append((invoke, completion))
        known = first_stored.get(fp)
        if known is None or completion.time_ns < known.time_ns:
            first_stored[fp] = completion

    for fp, members in oks.items():
        if len(members) > 1:
            _check_replays(log, tenant, key, fp, members)

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
        digest, first_digest = completion.result.get("body_sha256"), first.result.get("body_sha256")
        if completion.status != first.status or (
            digest is not None and first_digest is not None and digest != first_digest
        ):
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
