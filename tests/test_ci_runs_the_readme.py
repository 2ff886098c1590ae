"""CI runs the README's test command exactly: what a newcomer runs is what the landing gate runs.

The two drifted once: CI ignored a module of short scenario runs that the README's command still ran,
and that failed 11 tests on a busy machine while CI stayed green.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if "pytest" in line]
    assert commands, "the README gives no test command"
    return commands[0].removeprefix("scripts/install.sh && ").strip()


def test_ci_runs_the_readme_test_command_and_nothing_less() -> None:
    command = _readme_test_command()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if "pytest" in line and not line.lstrip().startswith("#")]
    assert command in ci, f"the README's test command {command!r} is not a line of .ci/run: {ci}"
    assert not any("--ignore" in line or "--deselect" in line or " -k " in line for line in ci), ci
