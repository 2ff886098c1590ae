"""Replays of a job the upstream lost (stuck-job-dropped) and of a dead-letter list asked for one status.

A run's stub loses a share of its jobs, drawn by job id: a replay's jobs have new ids, so the replay's stub
loses every job instead (0/10 reproduced before), and the replay's held jobs it loses stay pending when the
others are completed. A list of dead letters was not a request a replay could send.
"""

from __future__ import annotations

from stormproof.harness.history.vocabulary import DEAD_LETTER_LIST
from stormproof.harness.reproduce.case import Step
from stormproof.harness.reproduce.requests import ReplayContext, build_request
from stormproof.harness.reproduce.select import _lost_upstream

TENANT = "00000000-0000-4000-8000-0000000000c0"
STACK = {"env": {"STORMPROOF_POLL_BUDGET": "6"}, "shunya": {"stuck_rate": 0.25, "error_rate": 0.2}}


def test_a_lost_job_is_lost_on_every_replay_and_nothing_else_changes() -> None:
    lost = _lost_upstream(STACK, {"type": "stuck-job-dropped", "job_id": "shj_1"})
    assert lost["shunya"] == {"stuck_rate": 1.0, "error_rate": 0.0, "error_first": 0, "reject_rate": 0.0,
                              "garbage_rate": 0.0} and lost["env"] == STACK["env"]
    assert _lost_upstream(STACK, {"type": "over-budget"}) == STACK
    assert _lost_upstream({"env": {}}, {"type": "stuck-job-dropped"}) == {"env": {}}  # no stub: nothing to lose


def test_a_dead_letter_list_is_sent_with_the_status_the_load_asked() -> None:
    tenant = type("T", (), {"manager_token": "tok"})()
    ctx = ReplayContext(tenants=[tenant], by_company={TENANT: tenant}, webhook_secret="s", openapi=dict, bodies={},
                        created_by={})
    asked = build_request(Step(0, 0, "u1", DEAD_LETTER_LIST, TENANT, {"status": "dead"}), {"status": "dead"}, ctx)
    assert (asked.method, asked.path) == ("GET", "/api/v1/dead-letters?status=dead&limit=50")
    assert asked.headers["Authorization"] == "Bearer tok"
    plain = build_request(Step(0, 0, "u1", DEAD_LETTER_LIST, TENANT, {}), {}, ctx)
    assert plain.path == "/api/v1/dead-letters?limit=50"
