"""Settings are validated at start-up: unsafe defaults and unknown weakenings are refused."""

from __future__ import annotations

import pytest

from stormproof.reference_app.settings import DEV_JWT_SECRET, Settings, SettingsError
from stormproof.reference_app.weaken import WEAKENINGS, UnknownWeakeningError, parse_weakenings

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1:5432/app", "REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_defaults_are_fine_in_development() -> None:
    settings = Settings.from_env(BASE)
    assert settings.environment == "development"
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_default_secret_is_refused_outside_development() -> None:
    with pytest.raises(SettingsError, match="STORMPROOF_JWT_SECRET"):
        Settings.from_env({**BASE, "STORMPROOF_ENV": "production"})
    with pytest.raises(SettingsError, match="SHUNYA_WEBHOOK_SECRET"):
        Settings.from_env({**BASE, "STORMPROOF_ENV": "production", "STORMPROOF_JWT_SECRET": "x" * 40})
    ok = Settings.from_env(
        {**BASE, "STORMPROOF_ENV": "production", "STORMPROOF_JWT_SECRET": "x" * 40, "SHUNYA_WEBHOOK_SECRET": "y" * 40}
    )
    assert ok.jwt_secret != DEV_JWT_SECRET


def test_missing_urls_are_named() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL and REDIS_URL"):
        Settings.from_env({})


def test_bad_integer_is_named() -> None:
    with pytest.raises(SettingsError, match="STORMPROOF_RACE_DELAY_MS"):
        Settings.from_env({**BASE, "STORMPROOF_RACE_DELAY_MS": "soon"})


def test_weakenings_parse_and_unknown_names_fail() -> None:
    assert parse_weakenings(" session-lock, assignment-guard ,") == {"session-lock", "assignment-guard"}
    assert parse_weakenings("") == frozenset()
    with pytest.raises(UnknownWeakeningError, match="session-lok"):
        parse_weakenings("session-lok")
    assert {"session-lock", "session-unique-index", "assignment-lock", "assignment-guard",
            "idempotency-keys", "tenant-guard"} <= set(WEAKENINGS)
