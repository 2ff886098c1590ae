import threading
from pathlib import Path

import pytest

from stormproof.harness.history import (
    HistoryFileError,
    HistoryRecorder,
    HistoryWriteError,
    load_history,
    merge_histories,
    op_to_json,
    read_ops,
)


def test_concurrent_recording_keeps_every_op(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    threads, per_thread = 8, 2000
    barrier = threading.Barrier(threads)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            invoke = recorder.invoke(f"user-{n}", "session.start", tenant="c1", args={"appointment_id": f"{n}-{i}"})
            recorder.complete(invoke, status=201, result={"id": f"s-{n}-{i}", "company_ids_seen": {"c1"}})

    with HistoryRecorder(path, batch_size=64) as recorder:
        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert recorder.count == threads * per_thread * 2

    history = load_history(path)  # validates indices, invoke links, one completion per invoke
    assert len(history) == threads * per_thread * 2
    assert [op.index for op in history] == list(range(len(history)))
    times = [op.time_ns for op in history]
    assert times == sorted(times)  # index order is time order
    pairs = history.pairs()
    assert all(c is not None and c.type == "ok" and c.result["id"] == "s-" + i.args["appointment_id"]
               for i, c in pairs)
    assert {i.args["appointment_id"] for i, _ in pairs} == {f"{n}-{i}" for n in range(threads)
                                                          for i in range(per_thread)}
    # the file round-trips exactly
    assert path.read_text().splitlines() == [op_to_json(op) for op in history]


def test_classification_errors_and_faults(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        a = recorder.invoke("u", "session.stop", args={"session_id": "s"})
        b = recorder.invoke("u", "session.stop", args={"session_id": "s"})
        c = recorder.invoke("u", "session.stop", args={"session_id": "s"})
        assert recorder.complete(a, status=404).type == "fail"
        assert recorder.complete(b, error=TimeoutError("read timed out")).error == "TimeoutError: read timed out"
        assert recorder.complete(c, status=502).type == "info"
        fault = recorder.fault("latency", "start", "app", {"latency": 500})
        with pytest.raises(ValueError):
            recorder.complete(fault)
    history = load_history(path)
    assert [outcome.type for outcome in history if outcome.type != "invoke"] == ["fail", "info", "info", "ok"]
    (injected,) = history.faults()
    assert injected.process == "nemesis"
    assert dict(injected.args) == {"fault": "latency", "phase": "start", "target": "app", "params": {"latency": 500}}
    with pytest.raises(HistoryWriteError):
        recorder.invoke("u", "session.stop")  # closed


def test_write_failure_surfaces(tmp_path: Path) -> None:
    recorder = HistoryRecorder(tmp_path / "h.jsonl")
    recorder.invoke("u", "f", args={"bad": float("inf")})  # cannot be written as JSON
    with pytest.raises(HistoryWriteError):
        recorder.flush()
    with pytest.raises(HistoryWriteError):
        recorder.invoke("u", "f")
    with pytest.raises(HistoryWriteError):
        recorder.close()


def test_truncated_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        for i in range(5):
            recorder.complete(recorder.invoke("u", "call.submit", args={"n": i}), status=201)
    data = path.read_bytes()
    cut = data[: len(data) - 7]  # a crash in the middle of the last line
    path.write_bytes(cut)
    history = load_history(path)
    assert len(history) == 9
    assert history.pairs()[-1][1] is None  # its completion was lost: counts as info
    path.write_bytes(data.rstrip(b"\n"))  # complete last line without its newline
    assert len(load_history(path)) == 10


def test_corrupt_line_before_the_end_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        for i in range(3):
            recorder.invoke("u", "f", args={"n": i})
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(HistoryFileError, match=":2:"):
        read_ops(path)


def test_merge_orders_by_time_and_remaps_invokes(tmp_path: Path) -> None:
    clock = iter(range(0, 1000, 10))
    shared_origin = 0
    paths = [tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"]
    one = HistoryRecorder(paths[0], origin_ns=shared_origin, clock=lambda: next(clock))
    two = HistoryRecorder(paths[1], origin_ns=shared_origin, clock=lambda: next(clock))
    a = one.invoke("w1/u1", "session.start", args={"appointment_id": "a"})  # t=0
    b = two.invoke("w2/u1", "session.start", args={"appointment_id": "b"})  # t=10
    two.complete(b, status=201, result={"id": "sb"})  # t=20
    one.complete(a, status=201, result={"id": "sa"})  # t=30
    c = two.invoke("w2/u1", "session.stop", args={"session_id": "sb"})  # t=40
    one.close()
    two.close()
    merged = merge_histories(paths)
    assert [(op.process, op.type, op.time_ns) for op in merged] == [
        ("w1/u1", "invoke", 0), ("w2/u1", "invoke", 10), ("w2/u1", "ok", 20), ("w1/u1", "ok", 30),
        ("w2/u1", "invoke", 40)]
    assert merged[2].invoke_index == 1 and merged[3].invoke_index == 0
    assert merged.pairs()[2] == (merged[4], None)
    assert c.index == 2  # per-file indices were renumbered


def test_merge_breaks_time_ties_by_source_order(tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        path = tmp_path / f"w{n}.jsonl"
        with HistoryRecorder(path, origin_ns=0, clock=lambda: 5) as recorder:
            recorder.complete(recorder.invoke(f"w{n}", "f"), status=200)
        paths.append(path)
    merged = merge_histories(reversed(paths))
    assert [op.process for op in merged] == ["w2", "w2", "w1", "w1", "w0", "w0"]
    assert [op.invoke_index for op in merged] == [None, 0, None, 2, None, 4]


def test_a_file_read_in_chunks_gives_every_op_and_names_a_bad_line_past_the_first_chunk(tmp_path: Path) -> None:
    """The file is read a chunk of lines at a time (session 11): ops across chunk boundaries, blank lines,
    a partial last line, and a bad line in a later chunk named by its line number."""
    from stormproof.harness.history.op import op_to_json
    from stormproof.harness.history.storage import _CHUNK

    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        for i in range(_CHUNK + 10):
            recorder.complete(recorder.invoke("u", "call.submit", args={"n": i}), status=201)
    written = path.read_text().splitlines()
    history = load_history(path)
    assert [op_to_json(op) for op in history] == written
    path.write_text("\n".join(written[:5] + ["", "  "] + written[5:]) + "\n" + written[-1][:9])
    assert [op_to_json(op) for op in read_ops(path)] == written
    bad = written[: _CHUNK + 3] + ["{not json"] + written[_CHUNK + 3:]
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(HistoryFileError, match=f":{_CHUNK + 4}:"):
        read_ops(path)
