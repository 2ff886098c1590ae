"""A scenario as plain data: load mix and shape, fault schedule, invariants, SLOs, seed.

The models and the parser live in :mod:`stormproof.harness.plan` (one typed run plan,
parsed once); this module keeps the names existing callers import.
``ScenarioError`` is :class:`stormproof.harness.plan.PlanError`: its message names the
file, the field path and the allowed values.
"""

from __future__ import annotations

from stormproof.harness.plan import LoadSpec, PlanError, Scenario, StackSpec, parse_scenario, read_scenario

__all__ = ["Scenario", "LoadSpec", "StackSpec", "ScenarioError", "parse_scenario", "read_scenario"]

ScenarioError = PlanError
