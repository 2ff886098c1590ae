"""A run whose load code raised is an error: Locust counts the exception and carries on, the run did less."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stormproof.harness.runner.load_process import load_exceptions

LOCUSTFILE = """
from locust import User, constant, task


class Broken(User):
    wait_time = constant(0.1)
    fail = {fail}

    @task
    def act(self):
        if self.fail:
            raise KeyError("company")
"""


def _run_locust(tmp_path: Path, *, fail: bool) -> Path:
    run_dir = tmp_path / ("broken" if fail else "fine")
    (run_dir / "locust").mkdir(parents=True)
    locustfile = run_dir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE.format(fail=fail))
    subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
                    "-u", "2", "-r", "2", "-t", "2s", "--csv", str(run_dir / "locust" / "stats"),
                    "--exit-code-on-error", "0", "--loglevel", "WARNING",
                    "--logfile", str(run_dir / "locust" / "locust.log")],
                   check=True, capture_output=True, timeout=60)
    return run_dir


@pytest.mark.parametrize("fail", [True, False], ids=["raises", "clean"])
def test_exceptions_in_the_load_are_reported(tmp_path: Path, fail: bool) -> None:
    message = load_exceptions(_run_locust(tmp_path, fail=fail))
    if fail:
        assert message is not None and "raised" in message and "KeyError: 'company'" in message and "\n" not in message
        assert "locustfile.py" in message and "in act" in message  # where it was raised
        assert "locust/locust.log" in message
    else:
        assert message is None


def test_no_log_no_error(tmp_path: Path) -> None:
    assert load_exceptions(tmp_path) is None
