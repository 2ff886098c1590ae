"""Packaging that plays well with others (issue 16 item 3): the distribution installs one
top-level import name, ``stormproof``, so a user project with its own ``harness``,
``scenarios`` or ``reference_app`` package keeps them, and the plugin still works there.

Before, the distribution installed the repository's folders as top-level packages, and a
project with its own ``scenarios`` package got ``ImportError: cannot import name 'Scenario'
from 'scenarios'`` as soon as the plugin loaded a scenario.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

GENERIC = ("harness", "scenarios", "reference_app")

USER_PACKAGE = {
    "harness/__init__.py": "WHO = 'the user project harness'\n",
    "scenarios/__init__.py": "class Scenario:\n    '''The user project's own Scenario.'''\n",
    "reference_app/__init__.py": "APP = 'the user project app'\n",
}

USER_TEST = '''
import harness
import reference_app
import scenarios
from stormproof.harness.plan import PlanError


def test_the_project_keeps_its_own_packages():
    assert harness.WHO == "the user project harness"
    assert reference_app.APP == "the user project app"
    assert scenarios.Scenario.__doc__ == "The user project's own Scenario."


def test_the_plugin_runs_beside_them(stormproof_redis, run_scenario):
    import redis

    client = redis.Redis.from_url(stormproof_redis.url)
    assert client.ping()
    # run_scenario imports the harness's scenario loader lazily: it must find Stormproof's,
    # not the project's scenarios package (a missing name fails before anything starts).
    try:
        run_scenario("no-such-scenario-here")
    except PlanError as exc:
        assert "no-such-scenario-here" in str(exc)
    else:
        raise AssertionError("an unknown scenario name must be refused")
'''


def test_the_distribution_claims_one_top_level_name() -> None:
    top = importlib.metadata.distribution("stormproof").read_text("top_level.txt")
    assert top is not None and top.split() == ["stormproof"], top


def test_no_generic_name_is_importable_outside_the_checkout(tmp_path: Path) -> None:
    probe = "import importlib.util, sys; print([n for n in sys.argv[1:] if importlib.util.find_spec(n)])"
    done = subprocess.run([sys.executable, "-c", probe, *GENERIC, "stormproof.harness.cli"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['stormproof.harness.cli']", done.stdout + done.stderr


def test_a_project_with_its_own_harness_and_scenarios_packages(tmp_path: Path) -> None:
    for name, text in USER_PACKAGE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -p no:locust\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "test_user.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout, done.stdout[-2000:]
