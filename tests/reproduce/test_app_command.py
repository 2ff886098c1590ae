"""``reproduce --app-command``: the replay and the written pytest file run a backend started by a command.

The "other backend" is the reference app started as a user's own service
would be (see tests/runner/test_external_app.py), so the test proves the
plumbing: the command reaches the replay's stack, the file keeps it, and the
file run by itself starts it, fails with the weakening and passes without.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from stormproof.harness.reproduce import ReproduceOptions, reproduce
from stormproof.harness.reproduce.command import time_test_file

COMMAND = (sys.executable, "-m", "stormproof.reference_app", "serve", "--host", "{host}", "--port", "{port}")


def test_reproduce_against_an_app_started_by_command(race_run: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    figures = reproduce(race_run, ReproduceOptions(tries=2, shrink=False, check_fixed=False, out_dir=tmp_path,
                                                   test_tries=2, app_command=COMMAND), out)
    assert figures["after"]["reproduced"] >= 1, out.getvalue()
    case = (tmp_path / "case.json").read_text()
    assert "stormproof.reference_app" in case and '"serve"' in case
    test = Path(figures["test"])
    text = test.read_text()
    assert f"APP_COMMAND = {list(COMMAND)!r}" in text
    assert "--app-command" in text  # the generating command line says it too
    weak, _ = time_test_file(test, "session-lock,session-unique-index")
    assert weak == 1
    fixed, _ = time_test_file(test, "")
    assert fixed == 0
