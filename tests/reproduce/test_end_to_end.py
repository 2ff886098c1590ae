"""From a caught session-start race to a pytest file that fails with the weakening and passes without it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from stormproof.harness.reproduce import ReproduceOptions, reproduce

ROOT = Path(__file__).resolve().parents[2]


def _pytest(test: Path, weaken: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "STORMPROOF_WEAKEN"))}
    if weaken is not None:
        env["STORMPROOF_WEAKEN"] = weaken
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(test)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_reproduce_writes_a_test_that_fails_only_with_the_weakening(race_run: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    # shrinking has its own tests (test_select_shrink.py); here the point is the file, kept short
    figures = reproduce(race_run, ReproduceOptions(tries=2, shrink=False, check_fixed=False, out_dir=tmp_path,
                                                   test_tries=2), out)
    assert figures["after"]["reproduced"] >= 1, out.getvalue()
    assert figures["shrunk"]["requests"] <= figures["selected"]["requests"]
    test = Path(figures["test"])
    text = test.read_text()
    assert "STORMPROOF_WEAKEN" in text and "sent together" in text
    weak = _pytest(test, "session-lock,session-unique-index")
    assert weak.returncode == 1, weak.stdout[-2000:] + weak.stderr[-2000:]
    assert "broke single-active-session" in weak.stdout
    fixed = _pytest(test, None)
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr[-2000:]
