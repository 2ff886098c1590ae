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
    worker_log = (app.workers[0].base_dir / "worker1.log").read_text()
    lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    assert lines, "the worker wrote no JSON log lines"
    assert all("trace_id" in line for line in lines)
    traced = [line for line in lines if line["trace_id"] == trace]
    assert any("submit_job" in line["msg"] and "succeeded" in line["msg"] for line in traced)
    assert any("poll_shunya_job_status" in line["msg"] and "succeeded" in line["msg"] for line in traced)
    from .helpers import sql_rows

    assert sql_rows(app.database_url, "SELECT DISTINCT trace_id FROM task_records") == [(trace,)]
    assert call["id"]
