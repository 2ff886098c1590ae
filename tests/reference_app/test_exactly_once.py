"""Plan A1: a webhook/poll storm against one Shunya job applies its result exactly once.

20 signed deliveries of the same result hit the app at once while 6 poll tasks
(sent with distinct task ids, as several pollers would) run on 2 worker
processes; the race window is widened to 100 ms. Each guard alone holds; with
both off, duplicates appear, which proves the test can fail.

The proof must not depend on luck: with a fixed 100 ms window on a loaded
2-core machine the appliers sometimes came one after the other and the
unguarded storm applied once (issue 11). The unguarded test therefore holds
the window open until two appliers are inside it (``STORMPROOF_RACE_BARRIER``,
at most 10 s): with no guard in the way both pass the check before either
writes, so the duplicate is certain, not likely.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from stormproof.reference_app.settings import Settings
from stormproof.reference_app.worker.celery_app import POLL_TASK, make_celery

from .background import analyses, delivery, ledger_settled, shunya_job_id, submit_call, wait_for
from .helpers import sql_rows

ENV = {"STORMPROOF_RACE_DELAY_MS": "100", "STORMPROOF_POLL_INTERVAL_MS": "500"}
#: The window stays open until two appliers are in it (at most 10 s): the race happens every time.
RACE = {**ENV, "STORMPROOF_RACE_DELAY_MS": "10000", "STORMPROOF_RACE_BARRIER": "2"}
DELIVERIES, POLLERS = 20, 6


async def _storm(app, call: dict, job_id: str) -> list[int]:
    import httpx

    celery = make_celery(Settings(database_url=app.database_url, redis_url=app.redis_url))
    job_row = call["job"]["id"]
    for _ in range(POLLERS):
        celery.send_task(POLL_TASK, kwargs={"job_row_id": job_row, "company_id": call["company_id"], "polls": 0},
                         task_id=uuid.uuid4().hex)
    limits = httpx.Limits(max_connections=DELIVERIES + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        posts = []
        for _ in range(DELIVERIES):
            body, headers = delivery(job_id, call, secret=app.webhook_secret)
            posts.append(client.post(f"{app.url}/api/v1/shunya/webhook", content=body, headers=headers))
        responses = await asyncio.gather(*posts)
    return [r.status_code for r in responses]


def _run(reference_app, weakenings, env=ENV):
    app = reference_app(
        weakenings, task_workers=1, worker_concurrency=2, env=env,
        shunya={"complete_after_ms": 50, "webhook_enabled": False},
    )
    call = submit_call(app, app.tenants[0])
    job_id = shunya_job_id(app, call)
    statuses = asyncio.run(_storm(app, call, job_id))
    assert all(s == 200 for s in statuses), statuses
    wait_for(lambda: ledger_settled(app), timeout=60, what="every task to finish")
    applied = analyses(app, job_id)
    print(f"\n[storm {weakenings or 'all guards'}] analyses={applied} deliveries={DELIVERIES} pollers={POLLERS}")
    return app, job_id, applied


@pytest.mark.parametrize("weakenings", [(), ("job-lock",), ("job-db-guard",)], ids=["all-guards", "db-guard-only", "lock-only"])
def test_storm_applies_the_result_once(reference_app, weakenings) -> None:
    app, job_id, applied = _run(reference_app, weakenings)
    assert applied == 1
    (lead,) = sql_rows(app.database_url, "SELECT c.lead_score FROM calls c JOIN shunya_jobs j ON j.call_id = c.id "
                                         "WHERE j.shunya_job_id = %s", job_id)
    from stormproof.harness.shunya.results import expected_result

    assert lead[0] == expected_result(job_id)["lead_score"]


def test_storm_duplicates_without_guards(reference_app) -> None:
    _app, _job, applied = _run(reference_app, ("job-lock", "job-db-guard"), env=RACE)
    assert applied > 1, "with the lock and the database guard off, the storm must apply the result twice or more"
