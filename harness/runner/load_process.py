"""Locust in its own process (it patches the standard library with gevent), fed one JSON config."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..load.config import LoadConfig
from ..stack import ManagedProcess

__all__ = ["load_exceptions", "start_load"]

LOCUSTFILE = Path(__file__).resolve().parent.parent / "load" / "locustfile.py"


def start_load(
    config: LoadConfig, run_dir: Path, *, users: int, spawn_rate: float, duration_s: float, workers: int,
    jwt_secret: str | None = None,
) -> ManagedProcess:
    """Start headless Locust; it stops by itself after ``duration_s`` (or its shape's last stage).

    ``jwt_secret`` (the key the stack signs its tokens with) reaches the load through its environment, not
    the config file kept in the run directory: the load signs tokens that expire during the run with it.
    """
    locust_dir = run_dir / "locust"
    locust_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "load-config.json"
    config_path.write_text(config.to_json())
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--csv", str(locust_dir / "stats"), "--json-file", str(locust_dir / "stats"),
        "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING",
        "--logfile", str(locust_dir / "locust.log"),
    ]
    if not config.stages:
        argv += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{max(1, round(duration_s))}s"]
    if workers > 0:
        argv += ["--processes", str(workers)]
    env = {**os.environ, "STORMPROOF_LOAD_CONFIG": str(config_path)}
    if jwt_secret:
        env["STORMPROOF_LOAD_JWT_SECRET"] = jwt_secret
    process = ManagedProcess("locust", argv, log_path=locust_dir / "stdout.log", env=env, stop_signal=2)
    process.start()
    return process


#: How Locust logs an exception raised in a user's task (``locust.user.task``) or ``on_start`` (``users``).
_LOGGED = re.compile(r"/ERROR/locust\.user\.(?:task|users): (.*)$")


def load_exceptions(run_dir: Path) -> str | None:
    """What went wrong in the load's own code, or None: Locust counts an exception raised by a user's
    action (or its ``on_start``) and carries on, so without this a run whose users could not act, or
    whose actions broke half way, was judged on the little it did and could pass.

    Read from ``locust/locust.log``, where Locust logs each one as it happens (its
    ``stats_exceptions.csv`` is written every second, so the last ones may never reach it).
    """
    try:
        lines = (run_dir / "locust" / "locust.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    count, first, where = 0, "", ""
    for number, line in enumerate(lines):
        found = _LOGGED.search(line)
        if found is None:
            continue
        count += 1
        if count == 1:
            first, frames = found.group(1).strip(), []
            for follow in lines[number + 1:]:
                if not follow.strip() or follow.startswith("["):
                    break
                if follow.strip().startswith("File"):
                    frames.append(follow.strip())
                elif not follow.startswith((" ", "Traceback")):
                    first = follow.strip()  # the exception's own line: its type and message
            where = f" at {frames[-1]}" if frames else ""
    if count == 0:
        return None
    return (f"the load's own code raised {count} exception(s), so some of its actions never ran "
            f"(first: {first}{where}); see locust/locust.log")
