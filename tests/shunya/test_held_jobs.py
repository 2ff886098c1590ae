"""The replay's held jobs (``stormproof.harness.reproduce.jobs``): completed at release, except those the stub's
``stuck_rate`` loses (a lost job of the run must stay lost in its replay: 0/10 reproduced when all completed)."""

from __future__ import annotations

from stormproof.harness.reproduce.jobs import HeldJobs
from stormproof.harness.shunya.client import ShunyaStubClient
from stormproof.harness.shunya.results import stuck_draw
from stormproof.harness.shunya.runner import RunningStub


def test_release_completes_the_held_jobs_but_the_lost_ones(client: ShunyaStubClient, stub: RunningStub) -> None:
    client.set_config(stuck_rate=0.5)
    held = HeldJobs(stub.url)
    try:
        held.hold()
        ids = [client.create_job(f"c{i}", "co")["job_id"] for i in range(20)]
        client.create_job("other", "another-company")
        lost = {job_id for job_id in ids if stuck_draw(job_id) < 0.5}
        assert lost and lost != set(ids)
        done = held.release({"co"})
    finally:
        held.close()
    assert set(done) == set(ids) - lost
    status = {job["job_id"]: job["status"] for job in client.jobs()}
    assert all(status[job_id] == "pending" for job_id in lost)
    assert client.get_config()["complete_after_ms"] != 600_000  # the stub's own timing is back
