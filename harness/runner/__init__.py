"""Running a scenario end to end: stack up, load and faults together, quiesce, check, report.

``run_scenario`` (plan, then ``run_plan``) is the product's main job, behind ``stormproof run`` and the
pytest helper ``run_scenario`` fixture. The run directory receives
``history.jsonl``, ``result.json``, ``junit.xml``, ``report.html``, Locust's
stats and the services' logs. Exit codes: 0 pass, 1 violation, 2 error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import RunOptions
    from .run import RunOutcome, run_plan, run_scenario

__all__ = ["RunOptions", "RunOutcome", "run_plan", "run_scenario"]

#: Loaded on first use: a replay needs only ``runner.capture``, and the run module brings the plan, the
#: report's templates and the load (about 0.4 s of CPU in the written reproducer's own process).
_LAZY = {"RunOptions": ".options", "RunOutcome": ".run", "run_plan": ".run", "run_scenario": ".run"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
