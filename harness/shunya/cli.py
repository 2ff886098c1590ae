"""Command line of the stub: ``python -m stormproof.harness.shunya --port N --webhook-url URL --webhook-secret S``.

Why: scenarios run the stub as its own process next to the app; ``main``
is also what the ``stormproof shunya`` subcommand calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .config import ConfigError, StubConfig
from .runner import bind_socket, build_server

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stormproof.harness.shunya",
        description="Run the Shunya stub: a fault-injecting stand-in for the Shunya call-analysis service.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on; 0 picks a free one (default 8787)")
    parser.add_argument("--webhook-url", required=True, help="where to POST job webhooks (must be loopback)")
    parser.add_argument("--webhook-secret", required=True, help="HMAC secret for X-Shunya-Signature")
    parser.add_argument(
        "--config",
        default=None,
        metavar="JSON",
        help='initial fault config as a JSON object, e.g. \'{"complete_after_ms": 200}\'',
    )
    parser.add_argument(
        "--allow-remote-webhook",
        action="store_true",
        help="allow a non-loopback webhook host (only for a private test network)",
    )
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stub in the foreground until SIGINT/SIGTERM; return the exit status.

    SIGINT returns 0 after a graceful shutdown; on SIGTERM uvicorn shuts down
    gracefully and then re-raises the signal, so the process ends by SIGTERM.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    config = StubConfig()
    if args.config is not None:
        try:
            patch = json.loads(args.config)
            if not isinstance(patch, dict):
                raise ValueError("--config must be a JSON object")
            config = config.updated(patch)
        except (ValueError, ConfigError) as exc:
            parser.error(f"--config: {exc}")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        server, _core = build_server(
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            config=config,
            allow_remote_webhook=args.allow_remote_webhook,
            log_level=args.log_level,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"shunya stub: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    # Listen before announcing: connections made right after the announcement
    # wait in the backlog until uvicorn starts accepting, instead of being refused.
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    print(f"shunya stub listening on http://{host}:{port} -> webhooks to {args.webhook_url}", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully, then re-raises the captured SIGINT;
        # a requested stop is a clean exit for the CLI.
        pass
    return 0
