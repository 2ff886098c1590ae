"""The README's "Load with plain Locust" lines work exactly as written.

One real test: the README's block runs verbatim in a non-interactive bash (so
`stormproof up ... &` has SIGINT ignored and `kill %1` sends SIGTERM), in a
fresh directory holding only `.venv` and `locustfile.py`; `check` must give a
pass and the stack must be gone afterwards. The rest are unit tests with no
stack: the atomic connection file, the load waiting for it, the stack file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stormproof.harness.cli import _write_atomically
from stormproof.harness.load.stackfile import wait_for_stack_file
from stormproof.harness.runner.check import StackFile, read_stack_file

ROOT = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Load with plain Locust"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_readme_block_is_what_this_test_runs() -> None:
    block = readme_block()
    assert "stormproof up --json-file stack.json &" in block
    assert "stormproof check stormproof-history --stack stack.json" in block
    assert "kill %1" in block


def test_plain_locust_then_check_gives_a_pass(tmp_path: Path) -> None:
    """Up in the background, Locust headless for 10 s, check, stop: as a user types it."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / "locustfile.py").symlink_to(ROOT / "locustfile.py")
    script = readme_block() + "\nwait\necho \"stack exit $?\"\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMPROOF_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    out = done.stdout + done.stderr
    assert "smoke: PASS" in done.stdout, done.stdout[-3000:] + done.stderr[-1500:]
    assert "stack exit 0" in done.stdout, out[-4000:]  # SIGTERM from `kill %1` stopped it cleanly
    assert not (tmp_path / "stack.json").exists()  # removed with the stack
    runs = list((tmp_path / "reports").glob("check-smoke-*"))
    assert len(runs) == 1
    result = json.loads((runs[0] / "result.json").read_text())
    assert result["verdict"] == "pass"
    assert result["stats"]["requests"] > 20
    assert (runs[0] / "report.html").is_file() and (runs[0] / "history.jsonl").stat().st_size > 0


def test_connection_file_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "stack.json"
    seen: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(target.read_text())
            except FileNotFoundError:
                pass

    thread = threading.Thread(target=reader)
    thread.start()
    big = json.dumps({"tenants": ["x" * 1000] * 500}) + "\n"
    for _ in range(30):
        _write_atomically(target, big)
    stop.set()
    thread.join()
    assert seen and all(text == big for text in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temporary left behind


def test_the_load_waits_for_the_stack_file(tmp_path: Path) -> None:
    target = tmp_path / "stack.json"
    target.write_text("")  # what `up --json > stack.json &` leaves at first
    threading.Timer(0.5, lambda: target.write_text('{"app_url": "http://127.0.0.1:1"}\n')).start()
    started = time.monotonic()
    assert wait_for_stack_file(target, timeout_s=10) == {"app_url": "http://127.0.0.1:1"}
    assert 0.4 < time.monotonic() - started < 5
    with pytest.raises(RuntimeError, match="stormproof up --json-file"):
        wait_for_stack_file(tmp_path / "never.json", timeout_s=0.3)


def test_stack_file_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="still running"):
        read_stack_file(tmp_path / "gone.json")
    (tmp_path / "half.json").write_text('{"app_url": ')
    with pytest.raises(ValueError, match="not a complete JSON object"):
        read_stack_file(tmp_path / "half.json")
    with pytest.raises(ValueError, match="lacks database_url"):
        StackFile({"app_url": "http://x", "tenants": []})


def test_check_skips_histories_older_than_the_stack(tmp_path: Path) -> None:
    from stormproof.harness.runner.check import check_histories

    history = tmp_path / "stormproof-history"
    history.mkdir()
    (history / "load-1.jsonl").write_text("")
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"app_url": "http://127.0.0.1:1", "database_url": "postgresql://x@127.0.0.1:1/x",
                                 "tenants": [], "ready_at": time.time() + 3600}))
    with pytest.raises(ValueError, match="older than the stack"):
        check_histories(history, stack, out_dir=tmp_path / "reports")
    with pytest.raises(ValueError, match="no \\*.jsonl histories"):
        check_histories(tmp_path / "empty", stack, out_dir=tmp_path / "reports")
