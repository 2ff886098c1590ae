"""One stack recipe, two launchers: the same services and links answer on local processes and containers.

The launcher test needs PostgreSQL and Redis binaries (local) and a Docker
daemon with the images (docker: skipped without, failed under
``STORMPROOF_REQUIRE_DOCKER=1``, as in ``test_docker.py``).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from stormproof.harness.stack import LocalStack, StackConfig
from stormproof.harness.stack.recipe import LINKS, Ready, recipe, targets_for

CONFIG = StackConfig(task_workers=1, tenants=1, shunya={"complete_after_ms": 100})


# -- the recipe itself (no stack) ------------------------------------------------------------------

def test_recipe_declares_services_in_start_order_with_their_readiness() -> None:
    spec = recipe(CONFIG)
    assert [s.name for s in spec.services] == ["postgres", "redis", "proxy", "shunya", "app", "worker1"]
    assert spec.service("worker1").ready is Ready.LOG_READY and spec.service("postgres").ready is Ready.SQL
    assert [link.name for link in spec.links] == [link.name for link in LINKS]


def test_without_the_stub_there_is_no_shunya_service_nor_its_links() -> None:
    spec = recipe(StackConfig(task_workers=0))
    assert not spec.has("shunya") and not spec.workers
    assert {link.name for link in spec.links} == {"app", "postgres", "redis"}


def test_targets_are_one_table_for_both_backends() -> None:
    from stormproof.harness.stack.docker import DockerStack

    config = StackConfig(task_workers=2)
    targets = recipe(config).targets()
    assert targets.processes == ("postgres", "redis", "shunya", "app", "worker1", "worker2",
                                 "worker1-pool", "worker2-pool")
    assert LocalStack.targets(config) == DockerStack.targets(config) == targets
    assert targets_for("docker", config) == targets_for("local", config) == targets
    assert targets_for("external", config).processes == ()
    with pytest.raises(ValueError, match="unknown backend"):
        targets_for("k8s", config)


# -- both launchers ----------------------------------------------------------------------------------

def _swap_port(url: str, port: int) -> str:
    head, _, tail = url.rpartition("@")
    host_port, _, path = tail.partition("/")
    host = host_port.rsplit(":", 1)[0]
    return f"{head}@{host}:{port}/{path}"


def _answers(service: str, stack: Any, port: int) -> bool:
    """Does ``service`` answer through the link published on ``port``?"""
    if service == "postgres":
        import psycopg

        url = _swap_port(stack.info()["database_url"], port)
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    if service == "redis":
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=None)
        try:
            return bool(client.ping())
        finally:
            client.close()
    if service == "app":
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    if service == "shunya":
        return httpx.get(f"http://127.0.0.1:{port}/admin/health", timeout=10).status_code == 200
    raise AssertionError(service)


def _start(backend: str) -> Any:
    if backend == "local":
        return LocalStack(CONFIG).start()
    from stormproof.harness.stack.docker import DockerStack, ImageUnavailableError, docker_unreachable_reason

    reason = docker_unreachable_reason()
    try:
        if reason is not None:
            raise ImageUnavailableError(reason)
        return DockerStack(CONFIG).start()
    except ImageUnavailableError as exc:
        if os.environ.get("STORMPROOF_REQUIRE_DOCKER") == "1":
            pytest.fail(f"STORMPROOF_REQUIRE_DOCKER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_the_same_recipe_answers_on_both_launchers(backend: str) -> None:
    spec = recipe(CONFIG)
    stack = _start(backend)
    try:
        # Every link of the recipe, and nothing else, reached through the proxy from the host.
        assert set(stack.links) == {link.name for link in spec.links}
        for link in spec.links:
            assert _answers(link.service, stack, stack.links[link.name]), link
        # Every faultable service of the recipe is a live fault target under the same name.
        targets = stack.fault_targets()
        assert set(targets) == set(spec.targets().processes)
        assert all(targets[name].pid is not None for name in targets), {n: t.pid for n, t in targets.items()}
        # The job path crosses the shunya and webhook links: the worker and the stub are wired alike.
        info = stack.info()
        assert info["task_workers"] == 1 and info["tenants"]
    finally:
        stack.stop()
