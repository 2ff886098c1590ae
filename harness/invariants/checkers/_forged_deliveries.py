"""Webhook deliveries that Shunya did not sign, judged for job-applied-once (plan A1: webhooks are authenticated).

The load sends a small share of its deliveries with a missing, stale, future-dated,
malformed or wrong signature (``args.bad_signature``), each carrying a forged result whose
``output_hash`` (``args.payload_fp``) no job produced. Every answer is judged:

- a 2xx is ``forged-delivery-accepted``: an impostor's result was taken in;
- any other refusal than 401 (a 400, 404, 409, 422, or a 5xx outside a
  fault) is ``forged-delivery-wrong-status``: the contract answers 401, and
  anything else means the body was read before its sender was known;
- in the final state, a ``call_analyses`` row holding a forged result's
  ``output_hash`` is ``forged-result-applied``, whatever the answer said.

No answer and 429 are counted, not judged (see ``_probes``).

And the other way round: a delivery signed as Shunya signs it (in any layout of
its JSON: ``args.spaced``, the signature covers the raw bytes; or signed a while
before it was sent, within the window: ``args.delayed_s``) answered 401
outside a fault is ``signed-delivery-refused``: the check refuses the sender
it exists for (one that verifies its own re-serialisation of the body, say),
and every result waits for the poller.
"""

from __future__ import annotations

from collections.abc import Iterable

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import WEBHOOK_DELIVER
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.snapshot import Row

from ._probes import FaultWindows, answer_class

__all__ = ["check_forged_deliveries"]


def check_forged_deliveries(log: ViolationLog, history: History, analyses: Iterable[Row]) -> int:
    """Judge every delivery sent without a valid signature; returns how many there were."""
    faults: FaultWindows | None = None
    forged: dict[object, tuple[int, ...]] = {}
    count = 0
    for invoke, completion in history.pairs_of(WEBHOOK_DELIVER):
        bad = invoke.args.get("bad_signature")
        if bad is None:
            if completion is not None and completion.status == 401:
                faults = faults or FaultWindows(history)
                if answer_class(invoke, completion, faults) == "4xx":
                    layout = "re-laid-out " if invoke.args.get("spaced") else ""
                    delayed = invoke.args.get("delayed_s")
                    when = f", signed {delayed} s before it was sent," if delayed else ""
                    log.add("signed-delivery-refused", f"a {layout}webhook delivery signed with Shunya's secret for "
                            f"job {invoke.args.get('job_id')}{when} answered 401: the signature check refuses Shunya",
                            (invoke.index, completion.index), tenant=invoke.tenant,
                            shunya_job_id=invoke.args.get("job_id"), spaced=bool(invoke.args.get("spaced")),
                            delayed_s=delayed or 0)
            continue
        count += 1
        ops = (invoke.index,) if completion is None else (invoke.index, completion.index)
        forged[invoke.args.get("payload_fp")] = ops
        if completion is None:
            continue
        faults = faults or FaultWindows(history)
        kind = answer_class(invoke, completion, faults)
        facts = dict(tenant=invoke.tenant, shunya_job_id=invoke.args.get("job_id"), bad_signature=bad)
        if kind == "2xx":
            log.add("forged-delivery-accepted", f"a webhook delivery with a {bad} signature for job "
                    f"{invoke.args.get('job_id')} answered {completion.status}, not 401", ops, **facts)
        elif kind in ("4xx", "5xx") and completion.status != 401:
            log.add("forged-delivery-wrong-status", f"a webhook delivery with a {bad} signature for job "
                    f"{invoke.args.get('job_id')} answered {completion.status}, not 401", ops,
                    status=completion.status, **facts)
    if forged:
        for row in analyses:
            ops = forged.get(row.get("output_hash"))
            if ops is not None:
                log.add("forged-result-applied", f"Shunya job {row.get('shunya_job_id')}: applied the forged result "
                        f"{row.get('output_hash')} of a delivery without a valid signature", ops,
                        shunya_job_id=row.get("shunya_job_id"), analysis=str(row.get("id")))
    return count
