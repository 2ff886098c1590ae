"""DockerStack: the whole system in containers, faults through the proxy, and nothing left behind.

Needs a Docker daemon and the images (``scripts/build-images.sh`` where no
registry is reachable; ``scripts/docker-lane.sh`` does both). Without Docker
these tests skip with the reason, except under ``STORMPROOF_REQUIRE_DOCKER=1``
(CI's docker lane), where they fail with it.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stormproof.harness.stack import ServiceStartError, StackConfig
from stormproof.harness.stack.docker import (
    PROXIES,
    RUN_LABEL,
    DockerImages,
    DockerStack,
    DockerUnavailableError,
    ImageUnavailableError,
    docker_unreachable_reason,
)

LOCAL_STACK_KEYS = {
    "app_url", "database_url", "redis_url", "shunya_url", "webhook_secret", "weakenings",
    "task_workers", "run_dir", "ready_after_s", "tenants",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("STORMPROOF_REQUIRE_DOCKER") == "1":
        pytest.fail(f"STORMPROOF_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def docker_ready() -> None:
    reason = docker_unreachable_reason()
    if reason is not None:
        _unavailable(reason)


def _start(stack: DockerStack) -> DockerStack:
    try:
        return stack.start()
    except ImageUnavailableError as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="module")
def stack(docker_ready: None) -> Iterator[DockerStack]:
    config = StackConfig(
        task_workers=1,
        tenants=1,
        shunya={"complete_after_ms": 100},
        env={"STORMPROOF_POLL_INTERVAL_MS": "300"},
    )
    started = _start(DockerStack(config))
    try:
        yield started
    finally:
        started.stop()


def leftovers(run_id: str) -> list[str]:
    """Names of containers and networks still labelled with ``run_id`` (via docker-py)."""
    import docker

    client = docker.from_env(timeout=10)
    try:
        selector = {"label": f"{RUN_LABEL}={run_id}"}
        containers = [c.name for c in client.containers.list(all=True, filters=selector)]
        networks = [n.name for n in client.networks.list(filters=selector)]
    finally:
        client.close()
    return containers + networks


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


# -- without a daemon -------------------------------------------------------------------------------
def test_unreachable_docker_names_docker_host_and_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    reason = docker_unreachable_reason(timeout=2)
    assert reason is not None and f"DOCKER_HOST=unix://{tmp_path}/no-daemon.sock" in reason
    with pytest.raises(DockerUnavailableError, match="dockerd") as info:
        DockerStack(StackConfig(task_workers=0)).start()
    assert "DOCKER_HOST" in str(info.value) and "LocalStack" in str(info.value)


def test_image_settings_default_to_public_images_and_read_the_environment() -> None:
    assert DockerImages.from_env({}) == DockerImages(
        postgres="postgres:15", redis="redis:7", proxy="ghcr.io/shopify/toxiproxy:2.12.0", app="stormproof/app",
    )
    images = DockerImages.from_env({"STORMPROOF_IMAGE_PROXY": "stormproof/fault-proxy", "STORMPROOF_IMAGE_REDIS": ""})
    assert images.proxy == "stormproof/fault-proxy" and images.redis == "redis:7"


# -- the running stack -------------------------------------------------------------------------------
def test_info_has_local_stack_keys_plus_the_proxy_api(stack: DockerStack) -> None:
    info = stack.info()
    assert set(info) == LOCAL_STACK_KEYS | {"proxy_api_url", "proxies"}
    assert info["proxies"] == {name: f"127.0.0.1:{port}" for name, port in stack.links.items()}
    assert info["task_workers"] == 1 and len(info["tenants"]) == 1
    assert 0 < info["ready_after_s"] < stack.start_timeout * 3
    with stack.faults() as proxy:
        proxies = proxy.list_proxies()
    assert {name: p.upstream for name, p in proxies.items()} == {n: up for n, (_, up) in PROXIES.items()}
    # The host reaches the app only through the proxy named "app": its port is the proxy container's.
    import docker

    client = docker.from_env(timeout=10)
    try:
        proxy_ports = client.api.port(stack.container_ids()["proxy"], PROXIES["app"][0])
        assert not client.api.port(stack.container_ids()["app"], 8000)  # the app itself is not published
    finally:
        client.close()
    assert info["app_url"] == f"http://127.0.0.1:{proxy_ports[0]['HostPort']}"
    import psycopg

    with psycopg.connect(info["database_url"], connect_timeout=5) as conn:
        companies = sorted(str(c) for (c,) in conn.execute("SELECT id FROM companies").fetchall())
    # The one tenant asked for, and the at-risk seed's disposable company beside it (for company deletion).
    spare = stack.tenants[0].disposable_company
    assert spare is not None
    assert companies == sorted([stack.tenants[0].company_id, str(spare["company_id"])])


def test_authenticated_idempotent_request_through_the_proxy(stack: DockerStack) -> None:
    tenant = stack.tenants[0]
    key = uuid.uuid4().hex
    url = f"{stack.app_url}/api/v1/recordings/sessions/start"
    body = {"appointment_id": tenant.appointment_ids[0]}
    first = httpx.post(url, json=body, headers=bearer(tenant.manager_token, **{"Idempotency-Key": key}), timeout=10)
    assert first.status_code == 201, first.text
    again = httpx.post(url, json=body, headers=bearer(tenant.manager_token, **{"Idempotency-Key": key}), timeout=10)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    read = httpx.get(
        f"{stack.app_url}/api/v1/recordings/sessions/{first.json()['id']}",
        headers=bearer(tenant.manager_token), timeout=10,
    )
    assert read.status_code == 200 and read.json()["appointment_id"] == tenant.appointment_ids[0]
    assert httpx.get(url.replace("/start", ""), timeout=10).status_code == 401


def test_background_job_runs_end_to_end(stack: DockerStack) -> None:
    """App -> Redis -> worker container -> Shunya stub -> webhook -> app: the analysis lands once."""
    tenant = stack.tenants[0]
    submitted = httpx.post(
        f"{stack.app_url}/api/v1/calls", json={"appointment_id": tenant.appointment_ids[1]},
        headers=bearer(tenant.manager_token), timeout=10,
    )
    assert submitted.status_code == 202, submitted.text
    call_url = f"{stack.app_url}/api/v1/calls/{submitted.json()['id']}"

    def analysed() -> dict[str, Any] | None:
        call = httpx.get(call_url, headers=bearer(tenant.manager_token), timeout=10).json()
        return call if call["analyses"] >= 1 else None

    call = wait_for(analysed, timeout=60, what="the call's analysis")
    assert call["analyses"] == 1 and call["job"]["status"] == "completed"


def test_metrics_add_up_the_app_and_the_worker_containers(stack: DockerStack) -> None:
    """Issue 11: each container has its own multiprocess dir, so the app's /metrics alone misses the worker's
    counters; the stack's scrape adds every container up, and dedupe misses match the analyses again."""
    import psycopg

    from stormproof.harness.invariants.metrics import metric_sum, parse_metrics

    tenant = stack.tenants[0]
    submitted = httpx.post(f"{stack.app_url}/api/v1/calls", json={"appointment_id": tenant.appointment_ids[0]},
                           headers=bearer(tenant.manager_token), timeout=10)
    assert submitted.status_code == 202, submitted.text

    def settled() -> bool:
        with psycopg.connect(stack.check_dsn) as conn:
            in_flight = conn.execute("SELECT count(*) FROM task_records WHERE state IN ('queued', 'running', "
                                     "'retrying')").fetchone()
            done = conn.execute("SELECT count(*) FROM task_records WHERE state = 'succeeded'").fetchone()
        return bool(in_flight and done and in_flight[0] == 0 and done[0] >= 2)

    wait_for(settled, timeout=60, what="the submit and poll tasks to finish")
    with psycopg.connect(stack.check_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM call_analyses").fetchone()
    analyses = row[0] if row else 0
    app_only = parse_metrics(httpx.get(stack.metrics_url, timeout=10).text)
    summed = parse_metrics(stack.scrape_metrics())
    worker_tasks = metric_sum(summed, "tasks_finished_total") or 0
    assert worker_tasks >= 2, "the worker container's task counters must be in the scrape"
    assert worker_tasks > (metric_sum(app_only, "tasks_finished_total") or 0)
    assert metric_sum(summed, "webhook_dedupe_misses_total") == analyses


def test_app_to_postgres_proxy_down_makes_the_app_unready(stack: DockerStack) -> None:
    readyz = f"{stack.app_url}/readyz"
    assert httpx.get(readyz, timeout=10).status_code == 200
    with stack.faults() as proxy:
        proxy.disable_proxy("postgres")
        try:
            down = wait_for(
                lambda: (r := httpx.get(readyz, timeout=15)).status_code == 503 and r,
                timeout=30, what="/readyz to answer 503 with the app->PostgreSQL link down",
            )
            assert down.json()["checks"]["database"].startswith("error") and down.json()["checks"]["redis"] == "ok"
        finally:
            proxy.enable_proxy("postgres")
    wait_for(lambda: httpx.get(readyz, timeout=15).status_code == 200, timeout=30, what="/readyz back to 200")


# -- process faults on containers (same names and packages as locally) ------------------------------

def test_fault_targets_are_the_recipes_under_the_local_names(stack: DockerStack) -> None:
    from stormproof.harness.stack.recipe import recipe

    targets = stack.fault_targets()
    assert tuple(targets) == recipe(stack.config).targets().processes
    assert set(targets) == {"postgres", "redis", "shunya", "app", "worker1", "worker1-pool"}
    assert all(t.pid for t in targets.values())


def test_redis_kill_and_restart_loses_keys_and_keeps_its_address(stack: DockerStack) -> None:
    import redis

    from stormproof.harness.faults.packages import standard_packages

    kill = standard_packages(processes=stack.fault_targets())["kill"]
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5, socket_connect_timeout=5, retry=None)
    try:
        client.set("stormproof:before-kill", "1")
        handle = kill.start("redis", {})
        assert stack.fault_targets()["redis"].pid is None
        readyz = f"{stack.app_url}/readyz"
        wait_for(lambda: httpx.get(readyz, timeout=15).status_code == 503, timeout=30, what="/readyz 503, Redis dead")
        kill.stop(handle)  # restarts it and waits for PING, on the same published port
        assert client.ping() and client.get("stormproof:before-kill") is None
    finally:
        client.close()
        kill.heal()
    wait_for(lambda: httpx.get(readyz, timeout=15).status_code == 200, timeout=30, what="/readyz back to 200")


def test_postgres_kill_and_restart_keeps_its_data(stack: DockerStack) -> None:
    import psycopg

    from stormproof.harness.faults.packages import standard_packages

    def tenants() -> int:
        with psycopg.connect(stack.check_dsn, connect_timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM companies").fetchone()[0])

    before = tenants()
    kill = standard_packages(processes=stack.fault_targets())["kill"]
    kill.stop(kill.start("postgres", {}))
    assert tenants() == before > 0
    wait_for(lambda: httpx.get(f"{stack.app_url}/readyz", timeout=15).status_code == 200, timeout=30,
             what="/readyz back to 200 after PostgreSQL's restart")


def test_pause_freezes_the_app_container_and_resume_thaws_it(stack: DockerStack) -> None:
    from stormproof.harness.faults.packages import standard_packages

    pause = standard_packages(processes=stack.fault_targets())["pause"]
    readyz = f"{stack.app_url}/readyz"
    handle = pause.start("app", {})
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(readyz, timeout=2)
    finally:
        pause.heal()  # heals what start did, like the nemesis at the end of a run
    assert handle == ("app", None)
    # Thawed means it answers at once, whatever it answers: a frozen app answers nothing.
    first = httpx.get(readyz, timeout=15)
    assert first.status_code in (200, 503), first.text
    # Ready again within a bound. Not necessarily at once: the first check after a
    # freeze can meet a dependency connection that went stale while the app was
    # frozen (seen once in CI as a single 503), which the pool then replaces.
    last: list[httpx.Response] = [first]

    def ready() -> bool:
        last[0] = httpx.get(readyz, timeout=15)
        return last[0].status_code == 200

    if first.status_code != 200:
        try:
            wait_for(ready, timeout=30, what="/readyz back to 200 after the app was thawed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; first answer {first.status_code} {first.text}, last {last[0].text}") from None


def test_worker_pool_process_is_paused_and_killed_inside_its_container(stack: DockerStack) -> None:
    from stormproof.harness.faults.packages import standard_packages

    import json

    targets = stack.fault_targets()
    pool = targets["worker1-pool"]
    first = pool.pid
    # Not the Celery main process (the one that logs "ready." and receives tasks): a task-running child.
    ready = next(line for line in stack._logs("worker1").decode().splitlines() if " ready." in line)
    assert first is not None and first != json.loads(ready)["pid"]
    packages = standard_packages(processes=targets)
    handle = packages["pause"].start("worker1-pool", {})
    state = pool._exec(["sh", "-c", f"cut -d' ' -f3 /proc/{first}/stat"])
    packages["pause"].stop(handle)
    assert state == "T"  # stopped while the fault lasted
    packages["kill"].start("worker1-pool", {})
    # The worker's main process replaces its dead pool process with a new one.
    replaced = wait_for(lambda: (pid := pool.pid) not in (None, first) and pid, timeout=30,
                        what="a new pool process")
    assert replaced != first
    packages["kill"].heal()


def test_stop_saves_logs_and_removes_every_container_and_the_network(stack: DockerStack) -> None:
    """Runs last in this module: it stops the shared stack."""
    run_id, run_dir = stack.run_id, Path(stack.info()["run_dir"])
    services = set(stack.container_ids())
    assert services == {"postgres", "redis", "proxy", "shunya", "app", "worker1"}
    assert len(leftovers(run_id)) == len(services) + 1  # and the network
    stack.stop()
    assert leftovers(run_id) == []
    assert {p.stem for p in run_dir.glob("*.log")} == services
    assert b" ready." in (run_dir / "worker1.log").read_bytes()
    stack.stop()  # idempotent


# -- failures clean up too -----------------------------------------------------------------------------
def test_missing_image_names_the_setting_and_the_build_script(docker_ready: None) -> None:
    images = DockerImages.from_env()
    missing = DockerImages(images.postgres, images.redis, images.proxy, app=f"stormproof/missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ImageUnavailableError, match=r"STORMPROOF_IMAGE_APP=stormproof/missing-.*build-images\.sh"):
        DockerStack(StackConfig(task_workers=0), images=missing).start()


def test_service_that_never_gets_ready_fails_with_its_log_and_leaves_nothing(docker_ready: None) -> None:
    images = DockerImages.from_env()
    # The Redis image cannot run "serve": the app container exits at once.
    broken = DockerImages(images.postgres, images.redis, images.proxy, app=images.redis)
    stack = DockerStack(StackConfig(task_workers=0), images=broken, start_timeout=30)
    with pytest.raises(ServiceStartError, match=r"(?s)app container.*exited.*serve") as info:
        _start(stack)
    assert "last lines of its log" in str(info.value)
    assert leftovers(stack.run_id) == []
    assert (Path(str(stack.run_dir)) / "postgres.log").exists()


def test_interrupted_start_leaves_nothing(docker_ready: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(self: DockerStack, settings: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(DockerStack, "_migrate_and_seed", interrupt)
    stack = DockerStack(StackConfig(task_workers=0))
    with pytest.raises(KeyboardInterrupt):
        _start(stack)
    assert stack.run_id and leftovers(stack.run_id) == []


def test_scenario_runs_on_the_docker_backend(docker_ready: None, tmp_path: Path) -> None:
    """`stormproof run NAME --backend docker`: load, a latency fault on the redis link, checks, report."""
    from stormproof.harness.runner import RunOptions, run_scenario
    from stormproof.scenarios import load_scenario

    outcome = run_scenario(
        load_scenario("session-start-storm"),
        RunOptions(duration_s=8, backend="docker", out_dir=tmp_path, progress=False),
    )
    assert outcome.verdict == "pass", (outcome.result.error, [v for v in outcome.result.verdicts if not v.valid])
    assert outcome.result.run.backend == "docker"
    assert outcome.result.stats["requests"] > 0
    assert any(f["fault"] == "latency" for f in outcome.result.faults)
    assert (outcome.run_dir / "logs" / "app.log").exists()


# -- images: nothing only our images have (issue 13, item 4) -----------------------------------------
def test_the_launcher_uses_only_what_the_public_images_offer(docker_ready: None) -> None:
    """postgres:15 takes POSTGRES_* and server flags as arguments; redis:7 a redis-server command line;
    Toxiproxy its own default command. Nothing else is asked of those three images."""
    from types import SimpleNamespace

    from stormproof.harness.stack.containers import PostgresContainer, ProxyContainer, RedisContainer

    common: dict[str, Any] = {"network": SimpleNamespace(name="unused"), "labels": {}}
    pg = PostgresContainer("postgres:15", user="u", password="p", dbname="d", host_port=1,
                           service="postgres", name="pg", **common)
    assert set(pg.env) == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    assert pg._command and all(arg.startswith("-") for arg in pg._command[::2])  # the image prepends "postgres"
    redis = RedisContainer("redis:7", host_port=2, service="redis", name="r", **common)
    assert redis._command[0] == "redis-server" and not redis.env
    proxy = ProxyContainer("ghcr.io/shopify/toxiproxy:2.12.0", api_host_port=3, service="proxy", name="p", **common)
    assert proxy._command is None and not proxy.env  # the image's own entrypoint and command


def test_our_proxy_image_is_driven_as_the_real_toxiproxy_would_be(docker_ready: None) -> None:
    """toxiproxy-python (a client we did not write) drives the proxy container through its published API."""
    import docker
    import toxiproxy
    from testcontainers.core.network import Network
    from toxiproxy.api import APIConsumer

    from stormproof.harness.stack.containers import ProxyContainer, RedisContainer
    from stormproof.harness.stack.ports import free_port

    images = DockerImages.from_env()
    run = uuid.uuid4().hex[:8]
    labels = {RUN_LABEL: f"toxi-{run}"}
    network = Network(docker_network_kw={"labels": labels})
    network.create()
    link_port = free_port()
    proxy = ProxyContainer(images.proxy, api_host_port=free_port(), publish={16379: link_port},
                           service="proxy", name=f"stormproof-toxi-{run}-proxy", network=network, labels=labels)
    redis = RedisContainer(images.redis, host_port=free_port(), service="redis",
                           name=f"stormproof-toxi-{run}-redis", network=network, labels=labels)
    saved = (APIConsumer.host, APIConsumer.port)
    try:
        redis.start()
        proxy.start()
        server = toxiproxy.Toxiproxy()
        server.update_api_consumer("127.0.0.1", proxy.published[ProxyContainer.API_PORT])
        assert server.running()
        link = server.create(upstream="redis:6379", name="redis", listen="0.0.0.0:16379")
        import redis as redis_py

        client = redis_py.Redis(host="127.0.0.1", port=link_port, socket_timeout=5, retry=None)
        try:
            assert client.ping()
            link.add_toxic(type="latency", attributes={"latency": 300})
            started = time.monotonic()
            client.ping()
            assert time.monotonic() - started >= 0.28
            link.destroy_toxic("latency_downstream")
            with link.down():
                with pytest.raises(redis_py.ConnectionError):
                    redis_py.Redis(host="127.0.0.1", port=link_port, socket_timeout=2, retry=None).ping()
        finally:
            client.close()
    finally:
        APIConsumer.host, APIConsumer.port = saved
        for container in (proxy, redis):
            with contextlib.suppress(Exception):
                container.stop()
        with contextlib.suppress(Exception):
            network.remove()
    assert leftovers(f"toxi-{run}") == []
