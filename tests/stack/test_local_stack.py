"""The whole local stack: every link through a fault proxy, a request through each, nothing left after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from stormproof.harness.stack import LINKS, LocalStack, StackConfig

from ..reference_app.background import wait_for


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        children: list[str] = []
        for task in Path(f"/proc/{current}/task").glob("*"):  # children belong to the forking thread
            try:
                children += (task / "children").read_text().split()
            except OSError:
                continue
        for child in map(int, children):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_every_link_carries_traffic_and_can_be_cut(stormproof_postgres, stormproof_redis, reference_app_template) -> None:
    config = StackConfig(tenants=1, appointments=1, task_workers=1,
                         shunya={"complete_after_ms": 50}, env={"STORMPROOF_POLL_INTERVAL_MS": "300"})
    with LocalStack(config, postgres=stormproof_postgres.service, redis=stormproof_redis.service, redis_db=63,
                    template=reference_app_template) as stack:
        info = stack.info()
        assert set(info["proxies"]) == set(LINKS)
        tenant = stack.tenants[0]
        headers = {"Authorization": f"Bearer {tenant.manager_token}"}
        call = httpx.post(f"{stack.app_url}/api/v1/calls", headers=headers, json={}).json()
        wait_for(lambda: httpx.get(f"{stack.app_url}/api/v1/calls/{call['id']}", headers=headers).json()["analyses"] == 1,
                 timeout=30, what="the analysis to arrive through the shunya and webhook proxies")
        metrics = stack.proxy.client.metrics()
        for name in LINKS:
            sent = [line for line in metrics.splitlines()
                    if line.startswith("toxiproxy_proxy_sent_bytes_total") and f'proxy="{name}"' in line]
            assert sent and sum(float(line.rsplit(" ", 1)[1]) for line in sent) > 0, f"no bytes through {name}"
        for link in ("postgres", "redis"):
            stack.proxy.client.disable_proxy(link)
            assert httpx.get(f"{stack.app_url}/readyz", timeout=10).status_code == 503, link
            stack.proxy.client.enable_proxy(link)
            wait_for(lambda: httpx.get(f"{stack.app_url}/readyz", timeout=10).status_code == 200,
                     timeout=15, what=f"readiness after re-enabling {link}")
        pids = [s.process.pid for s in (stack.app, stack.shunya, stack.proxy, *stack.workers)]
        run_dir = Path(stack.base_dir)
    assert not any(_alive(pid) for pid in pids)
    assert not run_dir.exists()


def test_sigkilled_stormproof_up_leaves_no_survivors(tmp_path: Path) -> None:
    env = {**os.environ, "STORMPROOF_TMPDIR": "/tmp"}
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "stormproof"), "up", "--json", "--tenants", "1",
         "--task-workers", "1", "--app-workers", "2", "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        info = json.loads(proc.stdout.readline())
        family = _descendants(proc.pid)
        assert len(family) >= 6, family  # postgres, redis, proxy, stub, app (+workers), celery (+pool)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in family):
            time.sleep(0.1)
        survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in family if _alive(pid)}
        assert not survivors, f"outlived a SIGKILLed harness: {survivors}"
        try:
            httpx.get(info["app_url"] + "/healthz", timeout=1)
            raise AssertionError("the app still answers")
        except httpx.HTTPError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
