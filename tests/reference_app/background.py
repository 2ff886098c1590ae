"""Helpers for the background-work tests: calls, signed deliveries, the ledger, waiting."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from stormproof.harness.shunya.results import canonical_json, expected_result, output_hash
from stormproof.harness.shunya.signing import sign

from .helpers import auth, sql_rows


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def submit_call(app, tenant, **headers: str) -> dict[str, Any]:
    response = httpx.post(
        f"{app.url}/api/v1/calls", headers=auth(tenant.manager_token, **headers),
        json={"appointment_id": tenant.appointment_ids[0]},
    )
    assert response.status_code == 202, response.text
    return response.json()


def shunya_job_id(app, call: dict[str, Any], timeout: float = 20.0) -> str:
    def stored() -> str | None:
        rows = sql_rows(app.database_url, "SELECT shunya_job_id FROM shunya_jobs WHERE call_id = %s", call["id"])
        return rows[0][0] if rows and rows[0][0] else None

    return wait_for(stored, timeout=timeout, what="the job to be submitted to Shunya")


def delivery(job_id: str, call: dict[str, Any], *, secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A completed-job webhook exactly as Shunya signs it."""
    result = expected_result(job_id)
    body = canonical_json({
        "event": "job.completed", "delivery_id": f"dlv_{uuid.uuid4().hex}", "job_id": job_id,
        "company_id": call["company_id"], "call_id": call["id"], "status": "completed",
        "result": result, "output_hash": output_hash(result), "error": None,
    })
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/json", "X-Shunya-Timestamp": str(ts), "X-Shunya-Signature": sign(secret, ts, body)}
    return body, headers


def analyses(app, job_id: str) -> int:
    return sql_rows(app.database_url, "SELECT count(*) FROM call_analyses WHERE shunya_job_id = %s", job_id)[0][0]


def ledger(app) -> dict[str, int]:
    rows = sql_rows(app.database_url, "SELECT state, count(*) FROM task_records GROUP BY state")
    return {state: count for state, count in rows}


def ledger_settled(app) -> dict[str, int] | None:
    states = ledger(app)
    in_flight = sum(states.get(s, 0) for s in ("queued", "running", "retrying"))
    return None if in_flight else (states or None)


def metric(app, name: str, **labels: str) -> float:
    text = httpx.get(f"{app.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
