"""A service that stops on its own during a run is named in the run's error, never read as 'still progressing'."""

from __future__ import annotations

from stormproof.harness.runner.services import describe_exits, exited_on_their_own
from stormproof.harness.stack import LocalStack, StackConfig


def test_a_worker_that_died_is_named_and_its_pool_is_not(stormproof_postgres, stormproof_redis,
                                                          reference_app_template) -> None:
    config = StackConfig(tenants=1, appointments=1, task_workers=1, app_workers=1)
    with LocalStack(config, postgres=stormproof_postgres.service, redis=stormproof_redis.service, redis_db=60,
                    template=reference_app_template) as stack:
        assert exited_on_their_own(stack) == []  # everything up, the pool process included
        stack.workers[0].process.kill()  # as a crash would: no fault of the nemesis did it
        assert exited_on_their_own(stack) == ["worker1"]
        stack.app.process.kill()
        assert exited_on_their_own(stack) == ["app", "worker1"]


def test_an_external_backend_without_process_targets_is_not_judged() -> None:
    assert exited_on_their_own(object()) == []


def test_the_message_names_each_service_and_its_log() -> None:
    line = describe_exits(["app", "worker1"])
    assert "app, worker1 stopped during the run" in line and "logs/worker1.log" in line and "\n" not in line
