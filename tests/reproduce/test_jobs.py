"""A Shunya job applied twice, from a recorded run (conftest: pause-past-lock-ttl) to a replay that applies it twice again.

What the replay must control: the job's id is made by a worker after the
submit answered (a replayed read waits for it); the job must still be
unapplied when the replayed deliveries arrive (the stub holds it pending
until the groups are played); the stub's own webhook, which the history
cannot hold, is sent by the stub with them; and when the poller took part,
the app's race window is held open until the poll comes. With every fix on,
the same case never breaks.
"""

from __future__ import annotations

from pathlib import Path

from stormproof.harness.history.vocabulary import CALL_SUBMIT, WEBHOOK_DELIVER
from stormproof.harness.reproduce import Replayer, load_run, measure, select_case
from stormproof.harness.reproduce.requests import SHUNYA_DELIVER
from stormproof.harness.reproduce.steps import describe


def test_a_job_applied_twice_replays_and_not_with_the_fixes_on(job_run: Path) -> None:
    _, case = select_case(load_run(job_run))
    assert case.invariant == "job-applied-once"
    kinds = {s.f for s in case.steps}
    assert CALL_SUBMIT in kinds and SHUNYA_DELIVER in kinds, describe(case)
    # the stub's own delivery names the job the run's read learned, or the call the submit made
    (upstream,) = [s for s in case.steps if s.f == SHUNYA_DELIVER]
    made = {case.refs[value] for value in upstream.args.values()}
    assert made and all(ref.startswith("step:") for ref in made), made
    if "poll" in case.source.get("message", "") or case.stack["env"].get("STORMPROOF_RACE_BARRIER"):
        # a poll took part: the replay holds the app's race window open until it comes
        assert int(case.stack["env"]["STORMPROOF_RACE_DELAY_MS"]) > int(case.stack["env"]["STORMPROOF_POLL_INTERVAL_MS"])
    with Replayer(case) as weak:
        first = weak.attempt()
        sent = [op for op in first.history if op.f in (WEBHOOK_DELIVER, SHUNYA_DELIVER) and not op.is_invoke]
        assert sent and all(op.status == 200 for op in sent), [(op.f, op.status, op.error) for op in sent]
        rate = measure(weak, case, 3)
    assert first.reproduced or rate.reproduced, first.verdict
    assert rate.reproduced >= 2, rate
    with Replayer(case, weakenings=()) as fixed:
        assert measure(fixed, case, 3).reproduced == 0
