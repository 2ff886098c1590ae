"""Plan E1: a trace id from the request reaches the tasks it causes, in every JSON log line."""

from __future__ import annotations

import json

import httpx

from .background import ledger_settled, submit_call, wait_for
from .helpers import auth


def test_trace_id_is_echoed_generated_and_carried_into_tasks(reference_app) -> None:
    app = reference_app(task_workers=1, env={"STORMPROOF_POLL_INTERVAL_MS": "200"},
                        shunya={"complete_after_ms": 50, "webhook_enabled": False})
    tenant = app.tenants[0]
    generated = httpx.get(f"{app.url}/api/v1/me", headers=auth(tenant.manager_token))
    assert len(generated.headers["X-Trace-Id"]) == 32
    w3c = httpx.get(f"{app.url}/api/v1/me", headers=auth(
        tenant.manager_token, traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
    assert w3c.headers["X-Trace-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"

    trace = "trace-e2e-0123456789"
    call = submit_call(app, tenant, **{"X-Trace-Id": trace})
    wait_for(lambda: ledger_settled(app), timeout=30, what="the call's tasks to finish")

    def traced_lines() -> list[dict]:
        worker_log = (app.workers[0].base_dir / "worker1.log").read_text()
        whole = worker_log.split("\n")[:-1]  # a line still being written has no newline yet
        return [json.loads(line) for line in whole if line.startswith("{")]

    def succeeded(task: str) -> bool:
        return any(task in line["msg"] and "succeeded" in line["msg"] and line.get("trace_id") == trace
                   for line in traced_lines())

    # Celery logs "succeeded" after the task returned, so a moment after the ledger row settles.
    wait_for(lambda: succeeded("poll_shunya_job_status"), timeout=30, what="the poll task's 'succeeded' log line")
    lines = traced_lines()
    assert lines, "the worker wrote no JSON log lines"
    assert all("trace_id" in line for line in lines)
    assert succeeded("submit_job")
    from .helpers import sql_rows

    assert sql_rows(app.database_url, "SELECT DISTINCT trace_id FROM task_records") == [(trace,)]
    assert call["id"]
