"""Signed deliveries that say ``completed`` without their result or hash, judged for job-applied-once (plan A1).

The load signs a small share of its deliveries as Shunya would, but leaves out
the ``result`` (``args.incomplete == "no-result"``) or the ``output_hash``
(``"no-hash"``). Such a delivery carries nothing to apply, so every answer is
judged by what it tells the sender and what it left behind:

- a 2xx answered ``applied`` is ``incomplete-delivery-applied``: the app took a
  completion without its result as the job's result (a 2xx ``duplicate``, from
  an app that finds the job already applied before it reads the body, applies
  nothing and passes; a 400 or 422 is the contract's answer; a 401 of a
  delivery signed with Shunya's secret is ``_forged_deliveries``' business, a
  5xx server-errors-explained's);
- in the final state, an analysis of a job such a delivery named, with an
  empty result or no output hash, is ``incomplete-result-applied``, whatever
  the answer said: the call shows an analysis of nothing, and a job marked
  processed under no hash lets its real result in a second time.

Found by a source-mutation sweep (sessions 31 and 33): the webhook's check that
a completed delivery has its result and hash, removed, passed every scenario,
since every delivery the load and the Shunya stub sent was whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import WEBHOOK_DELIVER
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

__all__ = ["check_incomplete_deliveries", "is_incomplete"]

#: What an app that took in a delivery without its hash may have stored for it.
_NO_HASH = (None, "", "None", "null")


def is_incomplete(args: Mapping[str, object]) -> bool:
    """A delivery the load left incomplete on purpose: it vouches for no result."""
    return bool(args.get("incomplete"))


def check_incomplete_deliveries(log: ViolationLog, history: History, analyses: Iterable[Row]) -> int:
    """Judge every incomplete delivery's answer and what its job holds in the end; returns how many were sent."""
    named: dict[str, list[int]] = {}
    count = 0
    for invoke, completion in history.pairs_of(WEBHOOK_DELIVER):
        if not is_incomplete(invoke.args):
            continue
        count += 1
        job = str(invoke.args.get("job_id"))
        ops = [invoke.index] if completion is None else [invoke.index, completion.index]
        named.setdefault(job, []).extend(ops)
        if completion is None or completion.type != "ok":
            continue
        if isinstance(completion.result, dict) and completion.result.get("status") == "applied":
            missing = invoke.args.get("incomplete")
            log.add("incomplete-delivery-applied", f"a signed delivery of job {job} saying completed with {missing} "
                    f"(no {'result' if missing == 'no-result' else 'output_hash'}) answered {completion.status} "
                    "applied: a completion without its result was taken as the job's result", ops,
                    tenant=invoke.tenant, shunya_job_id=job, incomplete=missing)
    if named:
        for row in analyses:
            job = str(row.get("shunya_job_id"))
            if job not in named:
                continue
            result, fingerprint = row.get("result"), row.get("output_hash")
            if not result or fingerprint in _NO_HASH:
                what = "an empty result" if not result else "no output hash"
                log.add("incomplete-result-applied", f"Shunya job {job}: its analysis holds {what}, and a signed "
                        "delivery without its result or hash named the job: the app applied it", named[job],
                        shunya_job_id=job, analysis=str(row.get("id")), output_hash=str(fingerprint))
    return count
