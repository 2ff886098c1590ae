"""``python -m stormproof.reference_app {migrate,seed,serve,relay}``: run the reference app by hand.

``relay`` runs the outbox relay and sweeper on their own (the API processes
run them too); several relays share the work. All of them read DATABASE_URL and REDIS_URL (and the other STORMPROOF_* settings)
from the environment; see the README's "Running the reference app".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from .settings import Settings, SettingsError
from .weaken import UnknownWeakeningError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stormproof.reference_app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the Alembic migrations to DATABASE_URL")
    seed_p = sub.add_parser("seed", help="insert tenants, reps and appointments; print tokens as JSON")
    seed_p.add_argument("--tenants", type=int, default=2)
    seed_p.add_argument("--reps", type=int, default=3)
    seed_p.add_argument("--appointments", type=int, default=5)
    seed_p.add_argument("--no-consent", action="store_true", help="seed appointments without consent rows")
    serve_p = sub.add_parser("serve", help="serve the app with uvicorn")
    serve_p.add_argument("--host", default="127.0.0.1")
    serve_p.add_argument("--port", type=int, default=8000)
    serve_p.add_argument("--workers", type=int, default=None,
                         help="uvicorn worker processes (default: STORMPROOF_APP_WORKERS, else the cores available)")
    sub.add_parser("relay", help="publish outbox rows to the broker, and re-publish lost ones, until stopped")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except (SettingsError, UnknownWeakeningError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.command == "migrate":
        from .db import migrate

        migrate(settings.database_url)
        return 0
    if args.command == "seed":
        from .seed import seed

        tenants = seed(settings, tenants=args.tenants, reps=args.reps, appointments=args.appointments,
                       consent=not args.no_consent)
        json.dump([t.to_dict() for t in tenants], sys.stdout, indent=2)
        print()
        return 0
    if args.command == "relay":
        return _relay(settings)
    import uvicorn

    from .settings import default_app_workers

    try:
        workers = args.workers or default_app_workers()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Counters live per process; without a shared directory /metrics would show one worker's share.
        metrics_dir = tempfile.mkdtemp(prefix="stormproof-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ.setdefault("STORMPROOF_ENV", settings.environment)
    uvicorn.run(
        "stormproof.reference_app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level="warning",
        # No proxy is trusted to name the client: consent evidence records the connection's address (plan F3).
        proxy_headers=False,
    )
    return 0


def _relay(settings: Settings) -> int:
    import asyncio

    from .context import build_context
    from .obs.logging import configure_logging

    configure_logging()

    async def run() -> None:
        ctx = build_context(settings, pool_size=2)
        try:
            await ctx.tasks.outbox.run()
        finally:
            await ctx.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
