"""Named scenarios: load mix, fault schedule, invariants, SLOs and seed, as TOML files beside this module.

``stormproof list`` shows them; ``stormproof run NAME`` runs one. A path to
any ``.toml`` file works as a name too, so users keep their own scenarios
where they like.
"""

from __future__ import annotations

from pathlib import Path

from .spec import LoadSpec, Scenario, ScenarioError, StackSpec, parse_scenario, read_scenario

__all__ = [
    "LoadSpec",
    "Scenario",
    "ScenarioError",
    "StackSpec",
    "SCENARIO_DIR",
    "load_scenario",
    "parse_scenario",
    "read_scenario",
    "scenario_names",
]

SCENARIO_DIR = Path(__file__).parent


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or any scenario file by path (a name with ``/`` or ``.toml`` is a path)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or "/" in name_or_path or path.is_file():
        return read_scenario(path)  # a missing file says "file not found"
    builtin = SCENARIO_DIR / f"{name_or_path}.toml"
    if builtin.exists():
        return read_scenario(builtin)
    raise ScenarioError(
        "", "", f"no scenario named {name_or_path!r}; built-in: {', '.join(scenario_names())} "
        "(or give a path to a .toml file)"
    )
