"""The spooled recorder writes the history the eager recorder wrote, op for op, with the work done after."""

from __future__ import annotations

import itertools
import json

import pytest

from stormproof.harness.history import HistoryRecorder, load_history
from stormproof.harness.history.spool import SPOOL_SUFFIX, SpooledRecorder, finish_spool
from stormproof.harness.load.client import Derived, extract_result, payload_fingerprint
from stormproof.harness.load.probes import masked_digest

COMPANIES = ("c-111", "c-222", "c-333")

#: (f, tenant, args, body sent, fingerprint?, status or None, raw answer, replayed, mask, error)
REQUESTS = [
    ("session.start", "c-111", {"appointment_id": "a1", "idempotency_key": "k1"}, {"b": [1, 2.5, "é"], "a": None},
     True, 201, b'{"id":"s1","appointment_id":"a1","company_id":"c-111","status":"recording"}', False, None, None),
    ("session.start", "c-111", {"appointment_id": "a1", "idempotency_key": "k1"}, {"b": [1, 2.5, "é"], "a": None},
     True, 201, b'{"id":"s1","appointment_id":"a1","company_id":"c-111","status":"recording"}', True, None, None),
    ("probe.cross_tenant", "c-222", {"target_tenant": "c-111", "target_id": "a1", "probe_id": "p1"}, None,
     False, 404, b'{"type":"https://x/problems/not-found","detail":"a1 not found","trace_id":"t9"}', False,
     ("a1",), None),
    ("appointment.read", "c-333", {"appointment_id": "a3"}, None, False, 200,
     b'{"id":"a3","company_id":"c-333","notes":"mentions c-111"}', False, None, None),
    ("call.submit", "c-111", {"appointment_id": "a1", "payload_fp": "given"}, {"x": 1}, False, 503, b"oops", False,
     None, None),
    ("session.stop", "c-111", {"session_id": "s1"}, None, False, None, None, False, None, TimeoutError("read timed out")),
    ("webhook.deliver", None, {"job_id": "j1", "payload_fp": "h"}, None, False, 200, b"", False, None, None),
]


def _eager(path, clock) -> None:
    """What the load client recorded before the spool: every derivation on the hot path."""
    with HistoryRecorder(path, origin_ns=0, clock=clock, wall_clock=lambda: 1.5) as recorder:
        for f, tenant, args, body, fp, status, raw, replayed, mask, error in REQUESTS:
            if fp:
                args = {**args, "payload_fp": payload_fingerprint(body)}
            invoke = recorder.invoke("u1", f, tenant=tenant, args=args)
            if status is None:
                recorder.complete(invoke, error=error)
                continue
            result, _ = extract_result(raw, replayed, COMPANIES)
            if mask is not None:
                result["body_masked"] = masked_digest(raw, mask)
            recorder.complete(invoke, status=status, result=result)


def _spooled(path, clock, batch: int) -> SpooledRecorder:
    recorder = SpooledRecorder(path, Derived(COMPANIES), origin_ns=0, batch=batch, clock=clock,
                               wall_clock=lambda: 1.5)
    for f, tenant, args, body, fp, status, raw, replayed, mask, error in REQUESTS:
        data = json.dumps(body).encode() if body is not None else None
        handle = recorder.invoke("u1", f, tenant, args, data if fp else None)
        recorder.complete(handle, status, raw, replayed, mask, error)
    return recorder


@pytest.mark.parametrize("batch", [1, 3, 4096])
def test_spooled_history_is_the_eager_one_line_for_line(tmp_path, batch):
    _eager(tmp_path / "eager.jsonl", itertools.count(0, 1000).__next__)
    with _spooled(tmp_path / "spooled.jsonl", itertools.count(0, 1000).__next__, batch):
        pass
    assert (tmp_path / "spooled.jsonl").read_text() == (tmp_path / "eager.jsonl").read_text()
    assert not (tmp_path / f"spooled.jsonl{SPOOL_SUFFIX}").exists()
    history = load_history(tmp_path / "spooled.jsonl")
    assert [op.type for op in history][:4] == ["invoke", "ok", "invoke", "ok"]
    assert history[7].result["company_ids_seen"] == frozenset({"c-333", "c-111"})  # foreign data kept


def test_flush_writes_what_is_recorded_so_far_and_recording_goes_on(tmp_path):
    recorder = _spooled(tmp_path / "h.jsonl", itertools.count(0, 1000).__next__, 2)
    recorder.flush()
    assert len(load_history(tmp_path / "h.jsonl")) == 2 * len(REQUESTS)
    handle = recorder.invoke("u2", "appointment.read", "c-111", {"appointment_id": "a1"})
    recorder.complete(handle, 200, b'{"id":"a1"}')
    recorder.close()
    assert len(load_history(tmp_path / "h.jsonl")) == 2 * len(REQUESTS) + 2


def test_a_crashed_process_spool_is_finished_later_without_its_cut_batch(tmp_path):
    recorder = _spooled(tmp_path / "h.jsonl", itertools.count(0, 1000).__next__, 4)
    recorder._spool.flush()  # the process dies here: the batch in memory is lost, the spool stays
    spool = tmp_path / f"h.jsonl{SPOOL_SUFFIX}"
    with open(spool, "ab") as handle:
        handle.write(b"\xdb\x05\x00")  # and a batch cut short
    finish_spool(spool, Derived(COMPANIES))
    history = load_history(tmp_path / "h.jsonl")
    assert len(history) == 12 and not spool.exists()  # three whole batches of four records
    assert history.completion(history[0]) is not None


def test_deferred_fingerprint_equals_the_fingerprint_of_the_body():
    for body in ({"z": 1, "a": [1.25, None, True], "é": "ü"}, [1, 2], "text", {"n": {"b": 1e-7, "a": 10**20}}):
        derived = Derived(()).args({"k": 1}, json.dumps(body).encode())
        assert derived == {"k": 1, "payload_fp": payload_fingerprint(body)}
