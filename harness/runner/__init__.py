"""Running a scenario end to end: stack up, load and faults together, quiesce, check, report.

``run_scenario`` (plan, then ``run_plan``) is the product's main job, behind ``stormproof run`` and the
pytest helper ``run_scenario`` fixture. The run directory receives
``history.jsonl``, ``result.json``, ``junit.xml``, ``report.html``, Locust's
stats and the services' logs. Exit codes: 0 pass, 1 violation, 2 error.
"""

from .options import RunOptions
from .run import RunOutcome, run_plan, run_scenario

__all__ = ["RunOptions", "RunOutcome", "run_plan", "run_scenario"]
