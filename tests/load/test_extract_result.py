"""The answer fields the load keeps for the checkers (``extract_result``)."""

from __future__ import annotations

import json

from stormproof.harness.load.client import extract_result


def test_a_stop_answer_keeps_its_stopped_at_for_single_active_session() -> None:
    body = {"id": "s1", "company_id": "c1", "appointment_id": "a1", "status": "stopped",
            "stopped_at": "2026-12-01T21:00:00.123456Z"}
    result, _ = extract_result(json.dumps(body).encode(), False, ("c1", "c2"))
    assert result["stopped_at"] == "2026-12-01T21:00:00.123456Z"
    assert result["status"] == "stopped" and result["id"] == "s1"


def test_an_active_session_answer_has_no_stopped_at() -> None:
    body = {"id": "s1", "status": "recording", "stopped_at": None}
    result, _ = extract_result(json.dumps(body).encode(), False, ())
    assert "stopped_at" not in result


def test_an_appointment_answer_keeps_its_title_and_window() -> None:
    body = {"id": "a1", "company_id": "c1", "title": "Démo ☕", "starts_at": "2026-12-01T09:00:00+05:30",
            "ends_at": "2026-12-01T10:00:00+05:30", "status": "scheduled", "assigned_rep_id": None}
    result, _ = extract_result(json.dumps(body).encode(), False, ("c1",))
    assert (result["title"], result["starts_at"], result["ends_at"]) == (
        "Démo ☕", "2026-12-01T09:00:00+05:30", "2026-12-01T10:00:00+05:30")


def test_a_list_answer_keeps_the_statuses_of_its_rows() -> None:
    """dead-letter-accounting judges a list asked for one status by the statuses its rows answered."""
    body = [{"id": "l1", "status": "dead"}, {"id": "l2", "status": "retried"}, {"id": "l3"}, "x"]
    result, _ = extract_result(json.dumps(body).encode(), False, ())
    assert result["statuses"] == frozenset({"dead", "retried"})
    assert "statuses" not in extract_result(b"[]", False, ())[0]


def test_a_retention_run_keeps_its_counts_of_calls_and_appointments() -> None:
    """retention-enforced's run-left-expired compares each run's counts with the rows expired at its start."""
    body = {"company_id": "c1", "counts": {"calls": 2, "appointments": 1, "consents": 3, "batches": 4}}
    result, _ = extract_result(json.dumps(body).encode(), False, ("c1",))
    assert result["counts"] == {"calls": 2, "appointments": 1}
    assert "counts" not in extract_result(json.dumps({"counts": {"calls": "2"}}).encode(), False, ())[0]


def test_fields_seen_notes_the_values_a_lists_rows_carry() -> None:
    """A list's rows (a JSON list, or an object's items; an object alone is one row): ``name=value`` for each
    distinct string value of the fields asked for, capped per field; the body itself is not kept."""
    from stormproof.harness.load.client import Derived, fields_seen

    rows = [{"appointment_id": "a1", "status": "dead"}, {"appointment_id": "a2", "status": 3}, "junk"]
    assert fields_seen(rows, ("appointment_id", "status")) == {"appointment_id=a1", "appointment_id=a2",
                                                              "status=dead"}
    assert fields_seen({"items": rows[:1]}, ("status",)) == {"status=dead"}
    assert fields_seen({"appointment_id": "a9"}, ("appointment_id",)) == {"appointment_id=a9"}
    assert fields_seen(None, ("x",)) == frozenset()
    many = [{"id": str(n)} for n in range(50)]
    assert len(fields_seen(many, ("id",))) == 20
    result = Derived(["c1"]).result(200, json.dumps(rows).encode(), False, {"mask": None, "trace": None,
                                                                            "fields": ("status",)})
    assert result["fields_seen"] == {"status=dead"}
