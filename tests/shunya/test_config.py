"""StubConfig.updated validates every field and is all-or-nothing."""

from __future__ import annotations

import math

import pytest

from stormproof.harness.shunya import ConfigError, StubConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("error_rate", -0.1),
        ("error_rate", 1.5),
        ("error_rate", math.nan),
        ("error_rate", "0.5"),
        ("error_rate", True),
        ("fail_rate", 2),
        ("error_status", 404),
        ("error_status", 428),
        ("error_status", 600),
        ("latency_ms", -1),
        ("latency_ms", 1.5),
        ("latency_jitter_ms", -5),
        ("complete_after_ms", -1),
        ("complete_after_ms", True),
        ("webhook_delay_ms", -1),
        ("webhook_duplicates", 11),
        ("webhook_reorder", -1),
        ("webhook_max_attempts", 0),
        ("webhook_timeout_ms", 0),
        ("webhook_enabled", 1),
        ("webhook_on_poll_rate", 1.5),
        ("seed", "7"),
        ("seed", -1),
        ("no_such_setting", 1),
    ],
)
def test_invalid_values_are_rejected_with_the_field_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        StubConfig().updated({field: value})
    assert field in info.value.errors


def test_update_is_all_or_nothing_and_does_not_mutate() -> None:
    base = StubConfig()
    with pytest.raises(ConfigError) as info:
        base.updated({"latency_ms": 10, "error_rate": 7})
    assert set(info.value.errors) == {"error_rate"}
    assert base == StubConfig()


def test_valid_update_applies_and_normalises_rates() -> None:
    cfg = StubConfig().updated({"error_rate": 1, "fail_rate": 0, "seed": 3, "webhook_reorder": 4})
    assert cfg.error_rate == 1.0 and isinstance(cfg.error_rate, float)
    assert cfg.seed == 3 and cfg.webhook_reorder == 4
    assert cfg.updated({"seed": None}).seed is None
    assert cfg.to_dict()["webhook_reorder"] == 4
