"""The pytest plugin, as a user project sees it: a fresh directory with its own
tests and pytest.ini, the plugin loaded through its ``pytest11`` entry point.

Starts two small PostgreSQL clusters and a Redis (a few seconds): run under
the heavy lock with the other service tests.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = '''
import psycopg
import sqlalchemy

import stormproof.harness.runner
from stormproof.harness.pytest_plugin import factories, option

second_postgres = factories.postgres_proc()
second_db = factories.database("second_postgres")
run_mine = factories.run_scenario(scenario_dir="my_scenarios", duration_s=3)


def test_plain_dsns_for_psycopg_and_urls_for_sqlalchemy(stormproof_postgres, stormproof_database):
    with psycopg.connect(stormproof_database.dsn) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with psycopg.connect(stormproof_database.url) as conn:
        assert conn.execute("SELECT x FROM t").fetchone() == (1,)
    engine = sqlalchemy.create_engine(stormproof_database.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()
    with psycopg.connect(stormproof_postgres.dsn) as conn:
        conn.execute("SELECT 1")
    with psycopg.connect(stormproof_postgres.url) as conn:
        conn.execute("SELECT 1")
    assert stormproof_postgres.sqlalchemy_url.startswith("postgresql+psycopg://")
    other = stormproof_database()  # a second database, on call
    assert other.name != stormproof_database.name
    with psycopg.connect(other.dsn) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_redis_properties(stormproof_redis, request):
    assert isinstance(stormproof_redis.url, str) and stormproof_redis.url.endswith("/0")
    assert stormproof_redis.port == int(option(request.config, "redis_port"))
    assert stormproof_redis.client().ping()
    assert stormproof_redis.url_for(3).endswith("/3")


def test_factories_make_more(second_postgres, second_db, stormproof_postgres):
    assert second_postgres.port != stormproof_postgres.port
    with psycopg.connect(second_db.url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (second_db.name,)


def test_options_are_ini_settings_and_flags_the_flag_winning(request):
    assert option(request.config, "out") == "from-ini"
    assert option(request.config, "scenario_dir") == "from-flag"
    assert option(request.config, "backend") == "local"


def test_run_scenario_factory_looks_in_its_own_directory(run_mine, monkeypatch):
    seen = {}
    monkeypatch.setattr(stormproof.harness.runner, "run_scenario", lambda spec, options: seen.update(spec=spec, options=options))
    run_mine("mine")
    assert seen["spec"].name == "mine" and seen["options"].duration_s == 3
    run_mine("smoke")  # not there: the built-in one
    assert seen["spec"].name == "smoke"
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_plugin_in_a_user_project(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text(textwrap.dedent("""
        [pytest]
        stormproof_out = from-ini
        stormproof_scenario_dir = from-ini-dir
    """))
    scenarios = tmp_path / "my_scenarios"
    scenarios.mkdir()
    smoke = (ROOT / "scenarios" / "smoke.toml").read_text()
    (scenarios / "mine.toml").write_text(smoke.replace('name = "smoke"', 'name = "mine"', 1))
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:locust",
         "--stormproof-scenario-dir", "from-flag", "--stormproof-redis-port", str(port)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout


def test_fixtures_are_documented() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:locust", "-q",
                           str(ROOT / "tests" / "plugin" / "__init__.py")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    text = done.stdout
    for name in ("stormproof_postgres", "stormproof_redis", "stormproof_database", "reference_app",
                 "reference_app_module", "reference_app_template", "run_scenario"):
        line = next((line for line in text.splitlines() if line.startswith(name)), None)
        assert line is not None, f"{name} missing from pytest --fixtures"
        after = text[text.index(line) + len(line):].lstrip("\n")
        assert after.startswith("    ") and "no docstring" not in after.splitlines()[0], name


def test_apps_never_share_a_redis_database_while_both_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two running apps on one Redis database share a Celery queue (each worker takes the other's tasks): a database
    is given to one running stack at a time, back once that stack has stopped, and never one of those left to
    tests that pick theirs by hand."""
    from stormproof.harness import pytest_plugin as plugin

    monkeypatch.setattr(plugin, "_redis_dbs_held", set())
    held = [plugin._take_redis_db() for _ in plugin._APP_REDIS_DBS]
    assert sorted(held) == list(plugin._APP_REDIS_DBS) and not {0, 3, 7, 60, 61, 62, 63} & set(held)
    with pytest.raises(RuntimeError, match="held by a running app"):
        plugin._take_redis_db()

    class Stack:  # what _stop_stack needs of a LocalStack
        redis_db = held[5]

        def stop(self) -> None:
            raise OSError("a process would not die")

    with pytest.raises(OSError):
        plugin._stop_stack(Stack())  # type: ignore[arg-type]
    assert plugin._take_redis_db() == held[5]  # given back even when the stop failed
