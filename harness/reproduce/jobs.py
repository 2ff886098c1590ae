"""Holding a replay's Shunya jobs until the replay says they complete.

A job applied twice needs its result to arrive by two paths inside the
app's race window. In a run those paths are the load's signed deliveries
(in the history), the stub's own webhook and the worker's poll (not in
it). In a replay left alone the stub finishes a job ``complete_after_ms``
after its creation and its webhook or the poller applies it at once, so
the replayed deliveries that come later are duplicates and nothing races.

So while a replay plays its groups, the stub keeps every new job pending
(``complete_after_ms`` raised through its admin API): the replayed
deliveries, and the stub's own delivery (a ``shunya.deliver`` step, see
select.py), meet an unapplied job, as in the run. When the groups are done,
the stub's setting is restored and the attempt's pending jobs are completed
at once (``POST /admin/jobs/{id}/complete``): the stub's webhooks and the
poller then race to apply them, as they did in the run (select.py holds the
app's race window open when the run's double apply involved the poll), and
quiescence waits for them. Jobs of other attempts are left alone.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from stormproof.harness.shunya.client import ShunyaStubClient
from stormproof.harness.shunya.results import stuck_draw

__all__ = ["HeldJobs", "HOLD_MS"]

#: How long the stub keeps a job pending while held (far beyond any replay).
HOLD_MS = 600_000


class HeldJobs:
    """Hold new jobs pending at the stub (``hold``) and complete this attempt's (``release``)."""

    def __init__(self, admin_url: str | None) -> None:
        self._client = ShunyaStubClient(admin_url) if admin_url else None
        self._saved: Any = None

    def hold(self) -> None:
        if self._client is None:
            return
        self._saved = self._client.get_config().get("complete_after_ms")
        self._client.set_config(complete_after_ms=HOLD_MS)

    def release(self, companies: Collection[str]) -> list[str]:
        """Restore the stub's timing and complete the pending jobs of ``companies``; their ids.

        A job the stub's ``stuck_rate`` loses (``stuck_draw``) stays pending: the run's stub lost it for good."""
        if self._client is None or self._saved is None:
            return []
        try:
            config = self._client.set_config(complete_after_ms=self._saved)
            lost = float(config.get("stuck_rate") or 0.0)
            done = []
            for job in self._client.jobs():
                if lost and stuck_draw(str(job["job_id"])) < lost:
                    continue
                if job.get("status") == "pending" and str(job.get("company_id")) in companies:
                    self._client.complete(str(job["job_id"]))
                    done.append(str(job["job_id"]))
            return done
        finally:
            self._saved = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
