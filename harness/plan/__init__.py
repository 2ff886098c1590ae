"""The run plan: a scenario file and the command-line options, parsed once into frozen typed models.

::

    read_scenario(path) / parse_scenario(data, source)  -> Scenario   (the file, checked)
    build_plan(scenario, RunOptions(...))               -> RunPlan    (+ options, backend targets, drawn faults)
    plan.to_dict() / plan_from_dict(data)                              (result.json's ``plan``, round trip)

Every mistake is a :class:`PlanError` whose message names the file (or
"command line"), the field path (``faults[0].params.latncy``, ``--users``)
and the allowed values, raised before any service starts. The runner, the
nemesis, result.json and the report take the ``RunPlan``; nothing parses a
fault twice.

Modules: ``base`` (the frozen, strict model base), ``errors``, ``faults``
(one model per fault kind), ``targets`` (what each backend offers),
``scenario`` (the file), ``options`` (the flags, raw), ``run_plan``.
"""

from __future__ import annotations

from .errors import PlanError
from .faults import FAULT_KINDS, NETWORK_FAULTS, PARAMS, PROCESS_FAULTS, Fault, FaultTemplate, RandomFaults
from .options import RunOptions
from .run_plan import ALWAYS_CHECKS, SLO_CHECKS, RunPlan, build_plan, plan_from_dict
from .scenario import SLO, LoadSpec, Scenario, StackSpec, Stage, parse_scenario, read_scenario
from .targets import Targets, targets_for

__all__ = [
    "FAULT_KINDS",
    "NETWORK_FAULTS",
    "PARAMS",
    "PROCESS_FAULTS",
    "SLO",
    "SLO_CHECKS",
    "ALWAYS_CHECKS",
    "Fault",
    "FaultTemplate",
    "LoadSpec",
    "PlanError",
    "RandomFaults",
    "RunOptions",
    "RunPlan",
    "Scenario",
    "StackSpec",
    "Stage",
    "Targets",
    "build_plan",
    "parse_scenario",
    "plan_from_dict",
    "read_scenario",
    "targets_for",
]
