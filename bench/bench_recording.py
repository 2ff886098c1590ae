"""Benchmark what recording the history costs the Locust process, per request, against recording off.

One small keep-alive HTTP server (its own process) answers every request
with a realistic JSON body (ids, a company id, a status) and the
``Idempotent-Replayed`` header. Then Locust (FastHttpUser, headless, one
process, ``--users`` users, no wait) sends keyed session starts with a JSON
body for ``--seconds``, in three arms that take turns, ``--rounds`` times:

- ``off``: the same request, the same answer handling (status, body parsed
  for the user's own logic), nothing recorded;
- ``baseline``: recording as a baseline tree does it (``--baseline DIR``,
  another checkout of the project; skipped without it);
- ``this tree``: recording as this tree does it (``stormproof.harness.load.client.record_request``
  with the recorder ``stormproof.harness.load.users`` uses).

Inside the Locust process, CPU seconds (user+system, ``time.process_time``)
are read at test start and at test stop, so start-up is not counted; the
recorder's close after the load (where this tree derives digests and ids
and writes history.jsonl) is timed apart. It prints, per arm, the median
CPU microseconds per request, the overhead against ``off``, requests per
second, and the post-run close per op; the machine's cores and load average.

    .venv/bin/python bench/bench_recording.py [--seconds 8] [--rounds 3] [--users 20] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormproof.harness.stack.ports import free_port, wait_for_port  # noqa: E402

_SERVER = r"""
import asyncio, sys
BODY = (b'{"id":"5f0c8a52-2f7e-4b8e-9a63-0d7c3c1f9e21","appointment_id":"0b8f5a77-3c1d-4e0a-8f7e-61c2d9a4b3f0",'
        b'"company_id":"c0a80164-0000-4000-8000-000000000001","status":"recording","source":"sessions",'
        b'"started_by":"9d2f4c1e-7a8b-4c3d-9e0f-1a2b3c4d5e6f","started_at":"2026-11-30T17:00:00.123456+00:00",'
        b'"stopped_at":null,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}')
HEAD = (b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nidempotent-replayed: false\r\n"
        b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n")
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(HEAD + BODY)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=512)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

_LOCUSTFILE = r'''
import inspect, json, os, time, uuid
from locust import FastHttpUser, constant, events, task

MODE = os.environ["BENCH_MODE"]
OUT = os.environ["BENCH_OUT"]
COMPANIES = tuple(f"c0a80164-0000-4000-8000-00000000000{i}" for i in range(1, 9))
_recorder = None

if MODE != "off":
    from stormproof.harness.load import client
    from stormproof.harness.history import HistoryRecorder
    NEW = "fingerprint" in inspect.signature(client.record_request).parameters
    path = os.path.join(os.environ["BENCH_DIR"], "load.jsonl")
    if NEW:
        from stormproof.harness.history.spool import SpooledRecorder
        _recorder = SpooledRecorder(path, client.Derived(COMPANIES), origin_ns=time.monotonic_ns())
    else:
        _recorder = HistoryRecorder(path, origin_ns=time.monotonic_ns())

state = {}

@events.test_start.add_listener
def _start(environment, **_):
    state["cpu"] = time.process_time()
    state["wall"] = time.perf_counter()

@events.test_stop.add_listener
def _stop(environment, **_):
    cpu, wall = time.process_time() - state["cpu"], time.perf_counter() - state["wall"]
    requests = environment.stats.total.num_requests
    close = 0.0
    ops = 0
    if _recorder is not None:
        began = time.process_time()
        _recorder.close()
        close = time.process_time() - began
        with open(_recorder.path, "rb") as fh:
            ops = sum(1 for _ in fh)
    with open(OUT, "w") as fh:
        json.dump({"cpu": cpu, "wall": wall, "requests": requests, "close_cpu": close, "ops": ops,
                   "failures": environment.stats.total.num_failures}, fh)


class Bench(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0

    @task
    def start_session(self):
        self.n += 1
        appointment = f"0b8f5a77-3c1d-4e0a-8f7e-61c2d9a4{self.n % 1000:04d}"
        key = uuid.uuid4().hex
        body = {"appointment_id": appointment, "notes": "bench", "source": "sessions"}
        args = {"appointment_id": appointment, "idempotency_key": key}
        headers = {"Authorization": "Bearer x", "Idempotency-Key": key}
        if MODE == "off":
            data = json.dumps(body).encode()
            sent = dict(headers)
            sent.setdefault("Content-Type", "application/json")
            with self.client.request("POST", "/api/v1/sessions", data=data, headers=sent, name="session.start",
                                     catch_response=True) as response:
                status = int(response.status_code or 0)
                raw = response.content or b""
                if status == 0 or status >= 500:
                    response.failure(f"HTTP {status}")
                else:
                    response.success()
                replayed = (response.headers or {}).get("Idempotent-Replayed") == "true" if status else False
            try:
                json.loads(raw) if raw else None
            except ValueError:
                pass
        elif NEW:
            client.record_request(self.client, _recorder, process="u1", f="session.start", tenant=COMPANIES[0],
                                  method="POST", path="/api/v1/sessions", args=args, headers=headers, body=body,
                                  fingerprint=True)
        else:
            args = {**args, "payload_fp": client.payload_fingerprint(body)}
            client.record_request(self.client, _recorder, process="u1", f="session.start", tenant=COMPANIES[0],
                                  method="POST", path="/api/v1/sessions", args=args, company_ids=COMPANIES,
                                  headers=headers, body=body)
'''


_HOT = r"""
import inspect, json, os, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from stormproof.harness.load import client
from stormproof.harness.history import HistoryRecorder
n = int(sys.argv[2])
companies = tuple(f"c0a80164-0000-4000-8000-00000000000{i}" for i in range(1, 9))
raw = BODY
body = {"appointment_id": "0b8f5a77-3c1d-4e0a-8f7e-61c2d9a40001", "notes": "bench", "source": "sessions"}
path = os.path.join(tempfile.mkdtemp(), "h.jsonl")
new = "fingerprint" in inspect.signature(client.record_request).parameters
if new:
    from stormproof.harness.history.spool import SpooledRecorder
    recorder = SpooledRecorder(path, client.Derived(companies))
else:
    recorder = HistoryRecorder(path)
began = time.process_time()
data = json.dumps(body).encode()  # sent in every arm, off included
for i in range(n):  # what record_request does besides the HTTP call and the answer handling both arms do
    args = {"appointment_id": body["appointment_id"], "idempotency_key": f"k{i}"}
    if new:
        handle = recorder.invoke("u1", "session.start", companies[0], args, data)
        recorder.complete(handle, 201, raw, False, None)
    else:
        args = {**args, "payload_fp": client.payload_fingerprint(body)}
        invoke = recorder.invoke("u1", "session.start", tenant=companies[0], args=args)
        result, _ = client.extract_result(raw, False, companies)
        recorder.complete(invoke, status=201, result=result)
hot = time.process_time() - began
began = time.process_time()
recorder.close()
print(json.dumps({"hot": hot / n, "close": (time.process_time() - began) / (2 * n)}))
"""


def hot_path(tree: Path, n: int) -> dict[str, float]:
    code = "BODY = " + _SERVER.split("BODY = ", 1)[1].split("HEAD = ", 1)[0] + _HOT
    out = subprocess.run([sys.executable, "-c", code, str(tree), str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_arm(mode: str, tree: Path, port: int, seconds: float, users: int, work: Path) -> dict[str, float]:
    arm_dir = Path(tempfile.mkdtemp(dir=work))
    locustfile = arm_dir / "bench_locustfile.py"
    locustfile.write_text(_LOCUSTFILE)
    out = arm_dir / "out.json"
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_OUT": str(out), "BENCH_DIR": str(arm_dir),
           "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
         "-t", f"{int(seconds)}s", "--host", f"http://127.0.0.1:{port}", "--only-summary", "--loglevel", "WARNING",
         "--exit-code-on-error", "0"],
        env=env, cwd=arm_dir, check=True, capture_output=True, timeout=seconds + 120,
    )
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="another checkout of the project, recording as it did")
    options = parser.parse_args()
    arms = [("off", "off", REPO)]
    if options.baseline:
        arms.append(("baseline", "on", options.baseline.resolve()))
    arms.append(("this tree", "on", REPO))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)])
    loads: list[tuple[float, float, float]] = [os.getloadavg()]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in arms}
    try:
        if not wait_for_port("127.0.0.1", port, timeout=10):
            raise SystemExit("the bench's HTTP server did not start")
        with tempfile.TemporaryDirectory() as work:
            for round_ in range(options.rounds):
                # Taking turns, each round starting with the next arm: a busy moment of the machine, or what
                # the arm before leaves behind (its history being written back to disk), hits every arm alike.
                for name, mode, tree in arms[round_ % len(arms):] + arms[:round_ % len(arms)]:
                    results[name].append(run_arm(mode, tree, port, options.seconds, options.users, Path(work)))
                    loads.append(os.getloadavg())
    finally:
        server.terminate()
        server.wait(timeout=10)
    hot: dict[str, list[dict[str, float]]] = {name: [] for name, mode, _ in arms if mode == "on"}
    for _ in range(options.rounds):
        for name, mode, tree in arms:
            if mode == "on":
                hot[name].append(hot_path(tree, 50_000))
    print(f"machine: {os.cpu_count()} cores; load average (1 min) during the runs: "
          f"{min(l[0] for l in loads):.2f} to {max(l[0] for l in loads):.2f}")
    print(f"{options.rounds} rounds of {options.seconds:g} s per arm, {options.users} users, one Locust process")
    print(f"{'':11}{'CPU us/req':>11}{'overhead':>10}{'req/s':>9}{'requests':>10}{'close us/op':>13}  per round (us/req)")
    off = statistics.median(r["cpu"] / r["requests"] for r in results["off"]) * 1e6
    for name, _, _ in arms:
        runs = results[name]
        per = [r["cpu"] / r["requests"] * 1e6 for r in runs]
        cpu = statistics.median(per)
        rps = statistics.median(r["requests"] / r["wall"] for r in runs)
        close = statistics.median(r["close_cpu"] / r["ops"] * 1e6 for r in runs) if runs[0]["ops"] else 0.0
        overhead = "" if name == "off" else f"{(cpu - off) / off:+.1%}"
        print(f"{name:11}{cpu:>11.1f}{overhead:>10}{rps:>9.0f}{sum(r['requests'] for r in runs):>10,}"
              f"{close:>13.1f}  {' '.join(f'{p:.0f}' for p in per)}")
    print("recording's own work per request, without HTTP (50,000 requests in a loop, median of the rounds):")
    for name, runs in hot.items():
        us = statistics.median(r["hot"] for r in runs) * 1e6
        close = statistics.median(r["close"] for r in runs) * 1e6
        print(f"  {name:11}{us:>8.2f} us/request on the load's hot path ({us / off:.2%} of the off arm's CPU per "
              f"request); {close:.2f} us/op when the recorder closes")


if __name__ == "__main__":
    main()
