"""metrics-agree: the app's counters tell the same story as the history and the final state.

Counters are taken as ``metrics - baseline`` (the scrape before the load),
and rows are counted over the whole table, so the run must start from a
database without sessions or analyses (a fresh one from the template):

- ``webhook_dedupe_misses_total`` (all sources) == ``call_analyses`` rows:
  every first application is counted once, and only those;
- ``idempotency_keys_total{outcome="replay"}`` >= ``ok`` ops marked replayed:
  the client saw at least that many replays;
- ``recording_sessions_started_total`` (all sources) == ``recording_sessions`` rows.

- every series an alert rule reads exists in the scrape before the load
  (``_alert_series``: created lazily, the first burst never moves the alert).

A missing counter or table makes that comparison, and so the verdict
(unless another comparison fails), ``unknown``. So does a dedupe-miss
mismatch when the system was not quiet at the snapshot with work still
pending (``snapshot.quiescence``): a job applied between the table read and
the scrape would tip the balance, so the mismatch proves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from stormproof.harness.history import History
from stormproof.harness.invariants.collector import ViolationLog
from stormproof.harness.invariants.metrics import metric_sum
from stormproof.harness.invariants.registry import checker
from stormproof.harness.invariants.snapshot import Snapshot
from stormproof.harness.invariants.verdict import Verdict

from ._alert_series import check_alert_series

__all__ = ["NAME", "check_metrics_agree"]

NAME = "metrics-agree"


def _delta(metrics: Mapping[str, float], baseline: Mapping[str, float], name: str, **labels: str) -> float | None:
    now = metric_sum(metrics, name, **labels)
    if now is None:
        return None
    return now - (metric_sum(baseline, name, **labels) or 0.0)


@checker(NAME, "safety")
def check_metrics_agree(history: History, snapshot: Snapshot) -> Verdict:
    """Dedupe misses == analyses, replays counted >= replays seen, sessions started == session rows."""
    log = ViolationLog(NAME, "safety", snapshot.config)
    metrics = snapshot.metrics
    if metrics is None:
        log.cannot("no metrics in snapshot")
        return log.verdict()
    base = snapshot.baseline
    compared: dict[str, dict[str, float]] = {}

    misses = _delta(metrics, base, "webhook_dedupe_misses_total")
    if misses is None or snapshot.call_analyses is None:
        log.cannot("webhook_dedupe_misses_total or call_analyses missing")
    else:
        rows = len(snapshot.call_analyses)
        compared["webhook_dedupe_misses"] = {"metric": misses, "observed": rows}
        quiescence = snapshot.quiescence
        busy = quiescence is not None and not quiescence.quiet and quiescence.pending > 0
        if misses != rows and busy:
            assert quiescence is not None
            log.cannot(f"webhook_dedupe_misses_total grew by {misses:g} but there are {rows} analyses, while work "
                       f"was still progressing: {quiescence.reason}")
        elif misses != rows:
            log.add("dedupe-misses", f"webhook_dedupe_misses_total grew by {misses:g} but there are {rows} analyses",
                    badness=abs(misses - rows), metric=misses, observed=rows)

    replays = _delta(metrics, base, "idempotency_keys_total", outcome="replay")
    seen_ops = [c.index for _, c in history.pairs() if c is not None and c.type == "ok" and c.result.get("replayed")]
    if replays is None:
        log.cannot('idempotency_keys_total{outcome="replay"} missing')
    else:
        compared["idempotency_replays"] = {"metric": replays, "observed": len(seen_ops)}
        if replays < len(seen_ops):
            log.add("replays", f"idempotency_keys_total{{outcome=\"replay\"}} grew by {replays:g} but the clients "
                    f"saw {len(seen_ops)} replayed answers", seen_ops[:20],
                    badness=len(seen_ops) - replays, metric=replays, observed=len(seen_ops))

    started = _delta(metrics, base, "recording_sessions_started_total")
    if started is None or snapshot.recording_sessions is None:
        log.cannot("recording_sessions_started_total or recording_sessions missing")
    else:
        # sessions the seed made (source "seed", stormproof.reference_app.seed) were never counted by the app
        rows = sum(1 for row in snapshot.recording_sessions if row.get("source") != "seed")
        compared["sessions_started"] = {"metric": started, "observed": rows}
        if started != rows:
            log.add("sessions-started", f"recording_sessions_started_total grew by {started:g} but there are "
                    f"{rows} sessions", badness=abs(started - rows), metric=started, observed=rows)

    alert_series = check_alert_series(log, base, metrics)
    return log.verdict(compared=compared, alert_series=alert_series)
