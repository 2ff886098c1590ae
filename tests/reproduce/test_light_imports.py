"""What the written reproducer's own process imports, and when: its CPU competes with the app's start.

Each check runs in a fresh interpreter (``sys.modules`` of this one already holds everything).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_seed_and_the_snapshot_reader_leave_celery_and_the_runner_out() -> None:
    out = _run("""
        import sys
        import stormproof.reference_app.seed, stormproof.harness.runner.capture
        print(sorted(m for m in ("celery", "stormproof.harness.runner.run", "jinja2") if m in sys.modules))
        from stormproof.harness.runner import RunOptions, run_scenario, quiesce  # still there when asked for
        print(RunOptions.__name__, run_scenario.__name__, quiesce.__name__)
    """)
    assert out.splitlines() == ["[]", "RunOptions run_scenario stormproof.harness.runner.quiesce"]


def test_the_attempt_modules_are_imported_while_the_stack_starts() -> None:
    out = _run("""
        import sys
        from stormproof.harness.reproduce import Replayer, Step, Case
        from stormproof.harness.reproduce.replay import ATTEMPT_MODULES
        case = Case(invariant="single-active-session", steps=(Step(1, 0, "u1", "appointment.list", "c0", {}, 200, "ok"),),
                    refs={"c0": "t0"}, stack={"app_workers": 1, "task_workers": 0})
        assert "stormproof.reference_app.seed" not in sys.modules
        with Replayer(case) as replayer:
            print([m for m in ATTEMPT_MODULES if m not in sys.modules])
    """)
    assert out.strip() == "[]"
