"""trace-echoed judges that a request's trace id reaches the tasks it enqueues (plan E1)."""

from __future__ import annotations

from stormproof.harness.invariants import Snapshot, check_all
from tests.invariants.builders import HistoryBuilder

SUBMIT, POLL = "shunya.submit_job", "shunya.poll_shunya_job_status"


def _history() -> tuple[HistoryBuilder, int]:
    """Call k1 submitted with trace T1 then refreshed with R1; k2 submitted with T2; k3's answer a replay."""
    b = HistoryBuilder()
    _, submitted = b.call("call.submit", 0, 1, 202, result={"id": "k1", "trace": "echoed"}, trace_id="T1")
    b.call("call.submit", 1, 2, 202, result={"id": "k2", "trace": "echoed"}, trace_id="T2")
    b.call("call.refresh", 2, 3, 202, result={"trace": "echoed"}, call_id="k1", trace_id="R1")
    b.call("call.submit", 3, 4, 202, result={"id": "k3", "replayed": True, "trace": "echoed"}, trace_id="T3")
    return b, submitted


def _task(tid: str, name: str, job: str, trace: str | None) -> dict:
    return {"task_id": tid, "name": name, "company_id": "c1", "state": "succeeded", "attempts": 1,
            "args": {"job_row_id": job, "company_id": "c1"}, "trace_id": trace}


JOBS = ({"id": "j1", "call_id": "k1"}, {"id": "j2", "call_id": "k2"}, {"id": "j3", "call_id": "k3"})


def _check(b: HistoryBuilder, records: tuple, letters: tuple = ()):
    (verdict,) = check_all(b.build(), Snapshot(task_records=records, shunya_jobs=JOBS, dead_letters=letters),
                           ["trace-echoed"])
    return verdict


def test_tasks_carrying_their_requests_trace_pass() -> None:
    b, _ = _history()
    records = (_task("s1", SUBMIT, "j1", "T1"), _task("p1", POLL, "j1", "T1"), _task("p2", POLL, "j1", "R1"),
               _task("s2", SUBMIT, "j2", "T2"), _task("p3", POLL, "j2", "T2"),
               _task("s3", SUBMIT, "j3", "other"),  # the replayed call's first request is not in the history
               _task("m1", SUBMIT, "j2", "M"))  # a dead letter's manual retry: the retry request's trace
    verdict = _check(b, records, ({"id": "d1", "task_id": "s0", "retried_task_id": "m1"},))
    assert verdict.status == "valid", verdict.violations
    assert (verdict.summary["tasks_judged"], verdict.summary["tasks_traced"]) == (5, 5)


def test_tasks_that_lost_the_trace_are_caught() -> None:
    """What the app does with ``trace-propagation`` weakened: task records without the request's trace id."""
    b, submitted = _history()
    records = (_task("s1", SUBMIT, "j1", None), _task("p1", POLL, "j1", "new-in-the-worker"),
               _task("s2", SUBMIT, "j2", "T2"), _task("p3", POLL, "j2", "R1"))  # a refresh of another call
    verdict = _check(b, records)
    assert verdict.status == "invalid"
    found = sorted((v.details["task_id"], v.details["expected"]) for v in verdict.violations)
    assert found == [("p1", "T1"), ("p3", "T2"), ("s1", "T1")]
    assert b.at(submitted) in next(v for v in verdict.violations if v.details["task_id"] == "s1").ops


def test_without_task_trace_columns_the_verdict_is_unknown() -> None:
    b, _ = _history()
    (verdict,) = check_all(b.build(), Snapshot(task_records=({"task_id": "s1", "name": SUBMIT},), shunya_jobs=JOBS),
                           ["trace-echoed"])
    assert verdict.status == "unknown"


def test_a_refresh_that_may_have_acted_gives_its_trace_to_a_poll_whoever_sent_it() -> None:
    """A probe's refresh (the probes derive their routes from the API) and a refresh whose answer was lost
    both may have queued the poll: their trace ids are the poll's own (a false alarm in a plain-Locust smoke
    run, every fix on). A refused refresh queued nothing, so its trace id on a poll is still caught."""
    b, _ = _history()
    path = "/api/v1/calls/k2/refresh"
    b.call("probe.idempotency", 5, 6, 202, result={"trace": "echoed"}, method="POST", path=path, trace_id="P1")
    b.call("probe.authz", 6, 7, 202, method="POST", path=path + "?x=1", trace_id="P2")
    b.call("call.refresh", 7, 8, None, error="connection reset", call_id="k2", trace_id="L1")
    b.call("probe.cross_tenant", 8, 9, 404, method="POST", path=path, trace_id="N1")
    b.call("probe.idempotency", 9, 10, 200, method="GET", path="/api/v1/calls/k2", trace_id="N2")
    records = (_task("p4", POLL, "j2", "P1"), _task("p5", POLL, "j2", "P2"), _task("p6", POLL, "j2", "L1"),
               _task("p7", POLL, "j2", "N1"), _task("p8", POLL, "j2", "N2"))
    verdict = _check(b, records)
    assert sorted(v.details["task_id"] for v in verdict.violations) == ["p7", "p8"]
    assert (verdict.summary["tasks_judged"], verdict.summary["tasks_traced"]) == (5, 3)


def test_a_poll_enqueued_by_a_manually_retried_submit_task_may_carry_the_retrys_trace() -> None:
    """A dead-lettered submit task retried by hand (``POST /dead-letters/{id}/retry``) submits the job again and
    enqueues its poll under the retry request's trace id: that poll is the retry's, not a lost trace. The retry of
    another job's submit task gives its trace to no poll of this one."""
    b, _ = _history()
    letters = ({"id": "d1", "task_id": "s2", "retried_task_id": "m1"},
               {"id": "d2", "task_id": "s9", "retried_task_id": "m2"})
    records = (_task("s2", SUBMIT, "j2", "T2"), _task("m1", SUBMIT, "j2", "M1"), _task("p3", POLL, "j2", "M1"),
               _task("m2", SUBMIT, "j1", "M2"), _task("p4", POLL, "j2", "M2"))
    verdict = _check(b, records, letters)
    assert [v.details["task_id"] for v in verdict.violations] == ["p4"]
    assert (verdict.summary["tasks_judged"], verdict.summary["tasks_traced"]) == (3, 2)


# -- the tasks' own log lines (Snapshot.task_log_traces, read from the workers' JSON logs) ---------------------
def _check_logs(b: HistoryBuilder, records: tuple, traces: dict | None):
    (verdict,) = check_all(b.build(), Snapshot(task_records=records, shunya_jobs=JOBS, task_log_traces=traces),
                           ["trace-echoed"])
    return verdict


def _logged_records() -> tuple:
    return (_task("s1", SUBMIT, "j1", "T1"), _task("p1", POLL, "j1", "T1"), _task("s2", SUBMIT, "j2", "T2"),
            _task("x1", "retention.enforce_all", "-", "X1"),  # any task with a trace id, submitted by the load or not
            _task("n1", POLL, "j9", None))  # no trace id in its record: its lines are not this rule's business


def test_task_log_lines_with_their_records_trace_pass() -> None:
    b, _ = _history()
    traces = {"s1": ("T1",), "p1": ("T1", "T1", "T1"), "s2": ("T2",), "x1": ("X1",), "n1": (None,),
              "gone": (None,)}  # a task whose record is gone (its data deleted)
    verdict = _check_logs(b, _logged_records(), traces)
    assert verdict.status == "valid", verdict.violations
    assert verdict.summary["task_logs_judged"] == 4


def test_task_log_lines_without_the_trace_are_caught() -> None:
    """What the workers do with ``task-log-trace`` weakened: the records keep the trace, the lines lose it
    (one poll run of three logged without it is enough), whoever enqueued the task."""
    b, submitted = _history()
    traces = {"s1": (None,), "p1": ("T1", None, "T1"), "s2": ("T2",), "x1": ("another",), "n1": (None,)}
    verdict = _check_logs(b, _logged_records(), traces)
    assert verdict.status == "invalid"
    found = sorted((v.details["type"], v.details["task_id"], v.details["logged"]) for v in verdict.violations)
    assert found == [("trace-not-in-task-log", "p1", None), ("trace-not-in-task-log", "s1", None),
                     ("trace-not-in-task-log", "x1", "another")]
    assert b.at(submitted) in next(v for v in verdict.violations if v.details["task_id"] == "s1").ops


def test_without_task_logs_nothing_is_judged_on_them() -> None:
    """An app whose workers do not log this way (or whose logs the run cannot read) is not judged on logs."""
    b, _ = _history()
    verdict = _check_logs(b, _logged_records(), None)
    assert verdict.status == "valid" and "task_logs_judged" not in verdict.summary


def _errors() -> HistoryBuilder:
    """Three requests answered 500 (traces E1, E2, E3), one replayed 500 (E4: stored, no new error), one 201."""
    b = HistoryBuilder()
    for n in (1, 2, 3):
        b.call("session.start", n, n + 1, 500, result={"trace": "missing"}, trace_id=f"E{n}")
    b.call("session.start", 5, 6, 500, result={"trace": "echoed", "replayed": True}, trace_id="E4")
    b.call("session.start", 6, 7, 201, result={"id": "s1", "trace": "echoed"}, trace_id="OK")
    return b


def _check_errors(b: HistoryBuilder, traces):
    (verdict,) = check_all(b.build(), Snapshot(task_records=(), shunya_jobs=(), error_log_traces=traces),
                           ["trace-echoed"])
    return [v for v in verdict.violations if v.details["type"] == "error-log-untraced"], verdict


def test_every_500_left_an_error_line_with_its_trace() -> None:
    """Plan E1, "add trace ID to all error logs": each request answered 500 (not a replay) has an error line
    with its trace id; lines of other traces (a worker's error, the relay's) change nothing."""
    good, verdict = _check_errors(_errors(), {"E1": 1, "E2": 2, "E3": 1, None: 3})
    assert good == [] and verdict.summary["error_logs_judged"] == 3
    # what the app does with error-log-trace weakened: the lines are written once the trace is cleared
    (bad,), _ = _check_errors(_errors(), {None: 3})
    assert bad.details["requests"] == 3 and bad.details["untraced_lines"] == 3 and len(bad.ops) == 6
    (one,), _ = _check_errors(_errors(), {"E1": 1, "E3": 1})
    assert one.details["requests"] == 1
    # no error line to read (a plain-text app, a run without logs): not judged
    none, verdict = _check_errors(_errors(), None)
    assert none == [] and verdict.summary["error_logs_judged"] == 0
    # the API killed during the run: its last lines may be lost, so a shortfall is unknown
    b = _errors()
    b.call("fault", 8, 9, None, process="nemesis", tenant=None, fault="kill", phase="start", target="app")
    killed, verdict = _check_errors(b, {None: 3})
    assert killed == [] and "killed" in (verdict.error or ""), verdict
