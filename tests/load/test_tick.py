"""A scenario's ``tick_ms`` reaches the load's users (limit-race: a tenant's users send at the same instant)."""

from __future__ import annotations

import json
from pathlib import Path

from stormproof.harness.load.config import LoadConfig
from stormproof.harness.plan.scenario import read_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_tick_survives_the_trip_to_the_load_process() -> None:
    config = LoadConfig(app_url="http://127.0.0.1:1", tenants=(), webhook_secret="s", tick_s=0.25)
    assert LoadConfig.from_dict(json.loads(config.to_json())).tick_s == 0.25
    assert LoadConfig.from_dict({"app_url": "http://x", "tenants": [], "webhook_secret": "s"}).tick_s == 0.0


def test_limit_race_sends_on_a_tick() -> None:
    assert read_scenario(SCENARIOS / "limit-race.toml").load.tick_ms == 250
